// The one way the UI talks to provgraph: POST /graphql with the session's token (if the server wants one).
// The token lives in sessionStorage: it is gone when the tab closes and is never sent anywhere but here.

export const TOKEN_KEY = "provgraph.token";

export class AuthRequired extends Error {}

export function getToken(): string | null {
  return sessionStorage.getItem(TOKEN_KEY);
}

export function setToken(token: string | null): void {
  if (token) sessionStorage.setItem(TOKEN_KEY, token);
  else sessionStorage.removeItem(TOKEN_KEY);
}

export async function gql<T>(query: string, variables: Record<string, unknown> = {}): Promise<T> {
  const headers = { "content-type": "application/json", ...authorised() };
  const res = await fetch("/graphql", { method: "POST", headers, body: JSON.stringify({ query, variables }) });
  return (await answer<{ data: T }>(res)).data;
}

function authorised(): Record<string, string> {
  const token = getToken();
  return token ? { authorization: `Bearer ${token}` } : {};
}

/** The JSON body of a server answer; `AuthRequired` on 401, an Error (GraphQL's messages first) otherwise. */
async function answer<T>(res: Response): Promise<T> {
  if (res.status === 401) throw new AuthRequired((await res.json().catch(() => ({}))).error ?? "token required");
  const body = await res.json().catch(() => null);
  if (!body) throw new Error(`HTTP ${res.status}`);
  if (body.errors?.length) throw new Error(body.errors.map((e: { message: string }) => e.message).join("; "));
  if (!res.ok) throw new Error(body.error ?? `HTTP ${res.status}`);
  return body as T;
}

/** What today's server offers, asked once at load: fields other branches add appear here when they land. */
export interface TypeRef {
  kind: string;
  name: string | null;
  ofType: TypeRef | null;
}
export interface FieldInfo {
  name: string;
  args: { name: string }[];
  type: TypeRef;
}
export interface Features {
  types: Record<string, FieldInfo[]>;
}

export function has(f: Features, type: string, field: string): boolean {
  return f.types[type]?.some((x) => x.name === field) ?? false;
}

export function hasArg(f: Features, type: string, field: string, arg: string): boolean {
  return f.types[type]?.find((x) => x.name === field)?.args.some((a) => a.name === arg) ?? false;
}

function named(t: TypeRef): TypeRef {
  return t.ofType ? named(t.ofType) : t;
}

/** A selection for `type.field` built from the schema: leaves as they are, objects by their leaf fields
 * (one level), so the UI can show a field another branch adds without knowing its shape in advance. */
export function selection(f: Features, type: string, field: string): string {
  const info = f.types[type]?.find((x) => x.name === field);
  if (!info || info.args.length) return "";
  const target = named(info.type);
  if (target.kind !== "OBJECT" || !target.name) return field;
  const leaves = (f.types[target.name] ?? [])
    .filter((x) => !x.args.length && ["SCALAR", "ENUM"].includes(named(x.type).kind))
    .map((x) => x.name);
  return leaves.length ? `${field} { ${leaves.join(" ")} }` : "";
}

/** Selections for the fields of `type` the UI does not know by name (e.g. tags): shown generically. */
export function extraFields(f: Features, type: string, known: string[]): string[] {
  return (f.types[type] ?? [])
    .filter((x) => !known.includes(x.name) && !x.args.length)
    .map((x) => selection(f, type, x.name))
    .filter(Boolean);
}

/** The schema's types and fields, introspected once by the server (api/ui.py); also the sign-in check. */
export async function loadFeatures(): Promise<Features> {
  const data = await answer<{ __schema: { types: { name: string; fields: FieldInfo[] | null }[] } }>(
    await fetch("/features.json", { headers: authorised() }),
  );
  const features: Features = { types: {} };
  for (const t of data.__schema.types) if (t.fields && !t.name.startsWith("__")) features.types[t.name] = t.fields;
  return features;
}

export type Json = unknown;

export interface DatasetRef {
  id: string;
  namespace: string;
  name: string;
  version: string;
  binding: string;
  kind: string | null;
}

export interface RunSummary {
  runId: string;
  project: string;
  jobName: string;
  state: string;
  startedAt: string | null;
  endedAt: string | null;
  params: Record<string, Json>;
  metrics: Record<string, Json>;
}

export interface RunDetail extends RunSummary {
  codeHash: string | null;
  results: Record<string, Json>;
  runtime: Record<string, Json>;
  error: { message: string; stackTrace?: string | null } | null;
  parentRunId: string | null;
  reproduces: { originalRunId: string; verdict: string; differences: Json } | null;
  inputs: DatasetRef[];
  outputs: DatasetRef[];
  jobVersion: {
    codeHash: string;
    entrypoint: string | null;
    sourceUri: string | null;
    gitCommit: string | null;
    gitDirty: boolean | null;
  } | null;
  // Present only when the server has them (feature-detected):
  logs?: { text: string; size: number };
  metricHistory?: Json;
  children?: { runId: string; jobName: string; state: string }[];
}

export const RUN_SUMMARY = "runId project jobName state startedAt endedAt params metrics";

export function shortHash(v: string | null | undefined, n = 19): string {
  if (!v) return "";
  return v.length > n ? `${v.slice(0, n)}…` : v;
}

export function fmt(v: Json): string {
  if (v === null || v === undefined) return "";
  if (typeof v === "number") return Number.isInteger(v) ? String(v) : String(Number(v.toPrecision(6)));
  if (typeof v === "string") return v;
  return JSON.stringify(v);
}

/** `dataset:<ns>:<name>[@<version>]` split as graph/ids.py does: a namespace may contain "://". */
export function splitDatasetId(id: string): { namespace: string; name: string } | null {
  const rest = id.replace(/^dataset:/, "");
  let start = 0;
  for (;;) {
    const i = rest.indexOf(":", start);
    if (i < 0) return null;
    if (rest.startsWith("://", i)) {
      start = i + 3;
      continue;
    }
    return { namespace: rest.slice(0, i), name: rest.slice(i + 1) };
  }
}
