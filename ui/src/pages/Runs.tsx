import { useMemo, useState } from "react";
import { fmt, hasArg, RUN_SUMMARY, RunSummary } from "../api";
import { ErrorLine, RunLink, State, useQuery } from "../components";
import { matches, parseWhere } from "../filter";
import { navigate, Route, useFeatures } from "../main";

const STATES = ["", "REQUESTED", "START", "RUNNING", "COMPLETE", "FAIL", "ABORT", "LOST"];
const PAGE = 50;

interface RunsData {
  runs: { edges: { cursor: string; node: RunSummary }[]; pageInfo: { hasNextPage: boolean; endCursor: string | null } };
}

type SortKey = { col: string; desc: boolean };

function cell(run: RunSummary, col: string): unknown {
  if (col.startsWith("params.")) return run.params?.[col.slice(7)];
  if (col.startsWith("metrics.")) return run.metrics?.[col.slice(8)];
  return (run as unknown as Record<string, unknown>)[col];
}

function compare(a: unknown, b: unknown): number {
  if (a === b) return 0;
  if (a === undefined || a === null) return 1;
  if (b === undefined || b === null) return -1;
  if (typeof a === "number" && typeof b === "number") return a - b;
  return String(a).localeCompare(String(b));
}

function duration(run: RunSummary): string {
  if (!run.startedAt || !run.endedAt) return "";
  const s = (Date.parse(run.endedAt) - Date.parse(run.startedAt)) / 1000;
  return s < 60 ? `${s.toFixed(1)}s` : `${(s / 60).toFixed(1)}m`;
}

/** Runs newest first, a page at a time (cursor pagination on the server); filters live in the URL. */
export function RunsPage({ route }: { route: Route }) {
  const features = useFeatures();
  const q = route.query;
  const filters = {
    project: q.get("project") ?? "",
    job: q.get("job") ?? "",
    state: q.get("state") ?? "",
    where: q.get("where") ?? "",
  };
  const after = q.get("after") ?? "";
  const back = (q.get("back") ?? "").split(",").filter(Boolean);
  const serverWhere = hasArg(features, "Query", "runs", "filter");
  const [draft, setDraft] = useState(filters);
  const [sort, setSort] = useState<SortKey | null>(null);
  const [selected, setSelected] = useState<string[]>([]);

  let clauses: ReturnType<typeof parseWhere> = [];
  let whereError: string | null = null;
  try {
    clauses = parseWhere(filters.where);
  } catch (e) {
    whereError = String((e as Error).message);
  }

  // The page size is written into the query: the server costs a variable `first` at its 500 maximum.
  const args = ["$after: String", "$project: String", "$job: String", "$state: RunState"];
  const pass = [`first: ${PAGE}`, "after: $after", "project: $project", "job: $job", "state: $state"];
  if (serverWhere) {
    args.push("$filter: String");
    pass.push("filter: $filter");
  }
  const query = `query Runs(${args.join(", ")}) { runs(${pass.join(", ")}) {
    edges { cursor node { ${RUN_SUMMARY} } } pageInfo { hasNextPage endCursor } } }`;
  const variables: Record<string, unknown> = {
    after: after || null,
    project: filters.project || null,
    job: filters.job || null,
    state: filters.state || null,
  };
  if (serverWhere) variables.filter = filters.where || null;
  const { data, error, loading, loadedKey } = useQuery<RunsData>(query, variables, JSON.stringify(variables));

  const page = useMemo(() => data?.runs.edges.map((e) => e.node) ?? [], [data]);
  const rows = useMemo(() => {
    const kept = serverWhere || !clauses.length ? page : page.filter((r) => matches(r, clauses));
    if (!sort) return kept;
    return [...kept].sort((a, b) => compare(cell(a, sort.col), cell(b, sort.col)) * (sort.desc ? -1 : 1));
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [page, sort, filters.where, serverWhere]);
  const paramCols = useMemo(() => keys(page, "params"), [page]);
  const metricCols = useMemo(() => keys(page, "metrics"), [page]);

  const go = (f: typeof filters, extra: Record<string, string | undefined> = {}) =>
    navigate("runs", { project: f.project, job: f.job, state: f.state, where: f.where, ...extra });

  const header = (col: string, label: string) => (
    <th
      className="sortable"
      onClick={() => setSort(sort?.col === col ? { col, desc: !sort.desc } : { col, desc: false })}
      data-col={col}
    >
      {label}
      {sort?.col === col ? (sort.desc ? " ▼" : " ▲") : ""}
    </th>
  );

  return (
    <section>
      <h1>Runs</h1>
      <form
        className="filters"
        onSubmit={(e) => {
          e.preventDefault();
          go(draft);
        }}
      >
        <input name="project" placeholder="project" value={draft.project} onChange={(e) => setDraft({ ...draft, project: e.target.value })} />
        <input name="job" placeholder="job" value={draft.job} onChange={(e) => setDraft({ ...draft, job: e.target.value })} />
        <select name="state" value={draft.state} onChange={(e) => setDraft({ ...draft, state: e.target.value })}>
          {STATES.map((s) => (
            <option key={s} value={s}>
              {s || "any state"}
            </option>
          ))}
        </select>
        <input
          name="where"
          className="wide"
          placeholder="metrics.accuracy > 0.9 and params.lr = 0.01"
          value={draft.where}
          onChange={(e) => setDraft({ ...draft, where: e.target.value })}
        />
        <button type="submit">Filter</button>
        <button
          type="button"
          className="link"
          onClick={() => {
            const none = { project: "", job: "", state: "", where: "" };
            setDraft(none);
            go(none);
          }}
        >
          clear
        </button>
      </form>
      {filters.where && !serverWhere && !whereError && (
        <p className="muted">params/metrics conditions are applied to the runs of this page (this server has no runs(filter:)).</p>
      )}
      <ErrorLine error={whereError ?? error} />
      <div className="toolbar">
        <button
          disabled={selected.length < 2}
          onClick={() => navigate("compare", { ids: selected.join(",") })}
          data-testid="compare-selected"
        >
          Compare {selected.length || ""} selected
        </button>
        <span className="muted">{loading ? "loading…" : `${rows.length} run${rows.length === 1 ? "" : "s"} on this page`}</span>
        <span className="spacer" />
        <button disabled={!back.length} onClick={() => {
            const last = back[back.length - 1];
            go(filters, { after: last === "-" ? undefined : last, back: back.slice(0, -1).join(",") });
          }}>
          ‹ newer
        </button>
        <button
          disabled={!data?.runs.pageInfo.hasNextPage}
          onClick={() => go(filters, { after: data?.runs.pageInfo.endCursor ?? undefined, back: [...back, after || "-"].join(",") })}
          data-testid="next-page"
        >
          older ›
        </button>
      </div>
      <table className="runs" data-loading={loading ? "1" : "0"} data-loaded={loadedKey ?? ""}>
        <thead>
          <tr>
            <th />
            {header("runId", "run")}
            {header("jobName", "job")}
            {header("project", "project")}
            {header("state", "state")}
            {header("startedAt", "started")}
            <th>duration</th>
            {paramCols.map((k) => header(`params.${k}`, k))}
            {metricCols.map((k) => header(`metrics.${k}`, k))}
          </tr>
          {(paramCols.length > 0 || metricCols.length > 0) && (
            <tr className="group">
              <th colSpan={7} />
              {paramCols.length > 0 && <th colSpan={paramCols.length}>params</th>}
              {metricCols.length > 0 && <th colSpan={metricCols.length}>metrics</th>}
            </tr>
          )}
        </thead>
        <tbody>
          {rows.map((r) => (
            <tr key={r.runId} data-run={r.runId}>
              <td>
                <input
                  type="checkbox"
                  aria-label={`select ${r.runId}`}
                  checked={selected.includes(r.runId)}
                  onChange={(e) =>
                    setSelected(e.target.checked ? [...selected, r.runId] : selected.filter((x) => x !== r.runId))
                  }
                />
              </td>
              <td>
                <RunLink id={r.runId} label={r.runId.slice(0, 12)} />
              </td>
              <td>{r.jobName}</td>
              <td>{r.project}</td>
              <td>
                <State state={r.state} />
              </td>
              <td className="nowrap">{r.startedAt ? new Date(r.startedAt).toLocaleString() : ""}</td>
              <td>{duration(r)}</td>
              {paramCols.map((k) => (
                <td key={k} className="mono">
                  {fmt(r.params?.[k])}
                </td>
              ))}
              {metricCols.map((k) => (
                <td key={k} className="mono num">
                  {fmt(r.metrics?.[k])}
                </td>
              ))}
            </tr>
          ))}
        </tbody>
      </table>
      {!loading && !rows.length && !error && <p className="muted">no runs match</p>}
    </section>
  );
}

function keys(runs: RunSummary[], field: "params" | "metrics"): string[] {
  const seen = new Set<string>();
  for (const r of runs) for (const k of Object.keys(r[field] ?? {})) seen.add(k);
  return [...seen].sort().slice(0, 8);
}
