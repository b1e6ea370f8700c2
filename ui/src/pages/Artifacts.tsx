import { useState } from "react";
import { extraFields, fmt, gql, has, Json, splitDatasetId } from "../api";
import { datasetHref, ErrorLine, Hash, lineageHref, RunLink, State, useQuery } from "../components";
import { navigate, Route, useFeatures } from "../main";

interface Version {
  id: string;
  version: string;
  kind: string | null;
  size: number | null;
  uri: string | null;
  createdAt: string | null;
  producedBy: { runId: string; jobName: string; state: string } | null;
  [extra: string]: Json;
}

const KNOWN_DATASET = ["namespace", "name", "kind", "versions", "id", "latest"];
const KNOWN_VERSION = ["namespace", "name", "version", "kind", "size", "uri", "createdAt", "id", "producedBy"];

function Consumers({ node }: { node: string }) {
  const { data, error } = useQuery<{ lineage: { nodes: { id: string; kind: string; hop: number; props: Record<string, Json> }[] } }>(
    "query Consumers($node: ID!) { lineage(node: $node, direction: DOWNSTREAM, depth: 1) { nodes { id kind hop props } } }",
    { node },
    node,
  );
  const runs = data?.lineage.nodes.filter((n) => n.kind === "RUN" && n.hop === 1) ?? [];
  if (error) return <ErrorLine error={error} />;
  if (!data) return <span className="muted">…</span>;
  if (!runs.length) return <span className="muted">none</span>;
  return (
    <>
      {runs.map((r) => (
        <span key={r.id}>
          <RunLink id={r.id.replace(/^run:/, "")} label={String(r.props.job)} />{" "}
        </span>
      ))}
    </>
  );
}

interface RegistryVersion {
  version: {
    id: string;
    version: string;
    size: number | null;
    createdAt: string | null;
    producedBy: { runId: string; jobName: string; state: string } | null;
  };
  producedBy: string | null;
  consumers: string[];
  aliases: string[];
  format: string | null;
  framework: string | null;
  meta: Record<string, Json> | null;
}

interface Registry {
  uri: string;
  kind: string | null;
  versionCount: number;
  versions: RegistryVersion[];
  tagHistory: { alias: string; version: string; at: string; by: string; runId: string }[];
}

const REGISTRY = `query Artifact($uri: String!) { artifact(uri: $uri) { uri kind versionCount
  versions { version { id version size createdAt producedBy { runId jobName state } } producedBy consumers aliases format framework meta }
  tagHistory { alias version at by runId } } }`;

/** Metadata as logged: a table's schema/stats/preview as tables, anything else as JSON. */
function Meta({ v }: { v: RegistryVersion }) {
  const meta: Record<string, Json> = { ...(v.format ? { format: v.format } : {}), ...(v.framework ? { framework: v.framework } : {}), ...(v.meta ?? {}) };
  const keys = Object.keys(meta).sort();
  if (!keys.length) return <p className="muted">no metadata</p>;
  const header = Array.isArray(meta.header) ? (meta.header as Json[]).map(String) : null;
  return (
    <div className="meta" data-testid="meta">
      <table className="kv">
        <tbody>
          {keys.map((k) => (
            <tr key={k} data-meta={k}>
              <th>{k}</th>
              <td className="mono">
                {k === "preview" && Array.isArray(meta.preview) ? (
                  <table className="kv small">
                    {header && (
                      <thead>
                        <tr>
                          {header.map((h) => (
                            <th key={h}>{h}</th>
                          ))}
                        </tr>
                      </thead>
                    )}
                    <tbody>
                      {(meta.preview as Json[]).map((row, i) => (
                        <tr key={i}>{Array.isArray(row) ? row.map((c, j) => <td key={j}>{fmt(c)}</td>) : <td>{fmt(row)}</td>}</tr>
                      ))}
                    </tbody>
                  </table>
                ) : meta[k] !== null && typeof meta[k] === "object" ? (
                  <pre>{JSON.stringify(meta[k], null, 1)}</pre>
                ) : (
                  fmt(meta[k])
                )}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

/** Move an alias with the `tag` mutation (recorded as an event: who and when), then show the new history. */
function TagForm({ uri, versions, onMoved }: { uri: string; versions: string[]; onMoved: () => void }) {
  const [alias, setAlias] = useState("");
  const [version, setVersion] = useState(versions[versions.length - 1] ?? "");
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  return (
    <form
      className="filters"
      data-testid="tag-form"
      onSubmit={async (e) => {
        e.preventDefault();
        setBusy(true);
        setError(null);
        try {
          await gql("mutation Tag($d: String!, $a: String!, $v: String) { tag(dataset: $d, alias: $a, version: $v) { runId } }", {
            d: uri,
            a: alias.trim(),
            v: version || null,
          });
          onMoved();
        } catch (err) {
          setError(String((err as Error).message));
        } finally {
          setBusy(false);
        }
      }}
    >
      <input name="alias" placeholder="alias, e.g. production" value={alias} onChange={(e) => setAlias(e.target.value)} />
      <select name="version" value={version} onChange={(e) => setVersion(e.target.value)}>
        {[...versions].reverse().map((v) => (
          <option key={v} value={v}>
            {v.slice(0, 19)}…
          </option>
        ))}
      </select>
      <button type="submit" disabled={busy || !alias.trim()}>
        Move alias
      </button>
      <ErrorLine error={error} />
    </form>
  );
}

function RegistryDetail({ uri, version }: { uri: string; version: string | null }) {
  const features = useFeatures();
  const [tick, setTick] = useState(0);
  const { data, error } = useQuery<{ artifact: Registry | null }>(REGISTRY, { uri }, `${uri}#${tick}`);
  if (error) return <ErrorLine error={error} />;
  if (!data) return <p className="muted">loading…</p>;
  const a = data.artifact;
  if (!a) return <p className="error">No artifact {uri} (unknown, or not in your token's projects).</p>;
  const [ns, name] = [uri.slice(0, uri.indexOf("/", "store://".length)), uri.slice(uri.indexOf("/", "store://".length) + 1)];
  const selected = a.versions.find((v) => v.version.version === version) ?? a.versions[a.versions.length - 1];
  return (
    <div className="artifact" data-testid="artifact">
      <h2>
        {a.uri} {a.kind && <span className="muted">({a.kind})</span>} <span className="muted">{a.versionCount} versions</span>
      </h2>
      <table className="kv">
        <thead>
          <tr>
            <th>version (content hash)</th>
            <th>aliases</th>
            <th>size</th>
            <th>created</th>
            <th>produced by</th>
            <th>consumers</th>
            <th />
          </tr>
        </thead>
        <tbody>
          {[...a.versions].reverse().map((v) => (
            <tr key={v.version.id} data-version={v.version.version} className={selected === v ? "on" : ""}>
              <td>
                <a href={datasetHref({ namespace: ns, name, version: v.version.version })}>
                  <Hash value={v.version.version} />
                </a>
              </td>
              <td className="aliases">
                {v.aliases.map((al) => (
                  <span key={al} className="alias">
                    {al}
                  </span>
                ))}
              </td>
              <td className="num">{v.version.size ?? ""}</td>
              <td className="nowrap">{v.version.createdAt ? new Date(v.version.createdAt).toLocaleString() : ""}</td>
              <td>
                {v.version.producedBy ? (
                  <>
                    <RunLink id={v.version.producedBy.runId} label={v.version.producedBy.jobName} /> <State state={v.version.producedBy.state} />
                  </>
                ) : v.producedBy ? (
                  <RunLink id={v.producedBy} label={v.producedBy.slice(0, 12)} />
                ) : (
                  <span className="muted">external</span>
                )}
              </td>
              <td>
                {v.consumers.length ? v.consumers.map((c) => <RunLink key={c} id={c} label={`${c.slice(0, 12)} `} />) : <span className="muted">none</span>}
              </td>
              <td>
                <a href={lineageHref(v.version.id)}>lineage</a>
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      {selected && (
        <>
          <h3>
            Metadata of <Hash value={selected.version.version} />
          </h3>
          <Meta v={selected} />
        </>
      )}
      {has(features, "Mutation", "tag") && (
        <TagForm uri={a.uri} versions={a.versions.map((v) => v.version.version)} onMoved={() => setTick((t) => t + 1)} />
      )}
      <h3>Alias history</h3>
      {a.tagHistory.length ? (
        <table className="kv" data-testid="tag-history">
          <tbody>
            {[...a.tagHistory].reverse().map((m) => (
              <tr key={m.runId}>
                <td className="nowrap">{new Date(m.at).toLocaleString()}</td>
                <td className="alias-name">{m.alias}</td>
                <td>
                  <Hash value={m.version} />
                </td>
                <td className="muted">{m.by}</td>
              </tr>
            ))}
          </tbody>
        </table>
      ) : (
        <p className="muted">no alias was ever set</p>
      )}
    </div>
  );
}

function DatasetDetail({ ns, name, version }: { ns: string; name: string; version: string | null }) {
  const features = useFeatures();
  const extraD = extraFields(features, "Dataset", KNOWN_DATASET);
  const extraV = extraFields(features, "DatasetVersion", KNOWN_VERSION);
  const { data, error } = useQuery<{ dataset: { namespace: string; name: string; kind: string | null; versions: Version[]; [k: string]: Json } | null }>(
    `query Dataset($ns: String!, $name: String!) { dataset(namespace: $ns, name: $name) {
      namespace name kind ${extraD.join(" ")}
      versions { id version kind size uri createdAt producedBy { runId jobName state } ${extraV.join(" ")} } } }`,
    { ns, name },
    `${ns}/${name}`,
  );
  if (error) return <ErrorLine error={error} />;
  if (!data) return <p className="muted">loading…</p>;
  const d = data.dataset;
  if (!d) return <p className="error">No dataset {ns}/{name} (unknown, or not in your token's projects).</p>;
  const extraNames = extraD.map((s) => s.split(" ")[0]);
  const extraVNames = extraV.map((s) => s.split(" ")[0]);
  return (
    <div className="artifact" data-testid="artifact">
      <h2>
        {d.namespace}/{d.name} {d.kind && <span className="muted">({d.kind})</span>}
      </h2>
      {extraNames.map((k) => (
        <p key={k}>
          {k}: <span className="mono">{fmt(d[k])}</span>
        </p>
      ))}
      <table className="kv">
        <thead>
          <tr>
            <th>version (content hash)</th>
            <th>kind</th>
            <th>size</th>
            <th>created</th>
            <th>produced by</th>
            <th>consumers</th>
            {extraVNames.map((k) => (
              <th key={k}>{k}</th>
            ))}
            <th />
          </tr>
        </thead>
        <tbody>
          {[...d.versions].reverse().map((v) => (
            <tr key={v.id} className={version === v.version ? "on" : ""}>
              <td>
                <a href={datasetHref({ namespace: ns, name, version: v.version })}>
                  <Hash value={v.version} />
                </a>
              </td>
              <td>{v.kind}</td>
              <td className="num">{v.size ?? ""}</td>
              <td className="nowrap">{v.createdAt ? new Date(v.createdAt).toLocaleString() : ""}</td>
              <td>
                {v.producedBy ? (
                  <>
                    <RunLink id={v.producedBy.runId} label={v.producedBy.jobName} /> <State state={v.producedBy.state} />
                  </>
                ) : (
                  <span className="muted">external</span>
                )}
              </td>
              <td>{version === v.version ? <Consumers node={v.id} /> : <span className="muted">select</span>}</td>
              {extraVNames.map((k) => (
                <td key={k} className="mono">
                  {fmt(v[k])}
                </td>
              ))}
              <td>
                <a href={lineageHref(v.id)}>lineage</a>
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

export function ArtifactsPage({ route }: { route: Route }) {
  const features = useFeatures();
  const text = route.query.get("q") ?? "";
  const [draft, setDraft] = useState(text);
  const ns = route.query.get("ns");
  const name = route.query.get("name");
  const { data, error } = useQuery<{ search: { id: string; label: string }[] }>(
    "query Artifacts($text: String!) { search(text: $text, kinds: [DATASET], limit: 200) { id label } }",
    { text },
    text,
  );
  return (
    <section>
      <h1>Artifacts and models</h1>
      <form
        className="filters"
        onSubmit={(e) => {
          e.preventDefault();
          navigate("artifacts", { q: draft });
        }}
      >
        <input name="q" placeholder="name contains…" value={draft} onChange={(e) => setDraft(e.target.value)} />
        <button type="submit">Search</button>
      </form>
      <ErrorLine error={error} />
      <div className="split">
        <ul className="list">
          {data?.search.map((h) => {
            const parts = splitDatasetId(h.id);
            if (!parts) return null;
            const { namespace: hns, name: hname } = parts;
            return (
              <li key={h.id} className={hns === ns && hname === name ? "on" : ""}>
                <a href={datasetHref({ namespace: hns, name: hname })}>
                  <span className="muted">{hns}/</span>
                  {hname}
                </a>
              </li>
            );
          })}
          {data && !data.search.length && <li className="muted">no artifacts</li>}
        </ul>
        <div>
          {ns && name ? (
            ns.startsWith("store://") && has(features, "Query", "artifact") ? (
              <RegistryDetail uri={`${ns}/${name}`} version={route.query.get("version")} key={`${ns}/${name}`} />
            ) : (
              <DatasetDetail ns={ns} name={name} version={route.query.get("version")} />
            )
          ) : (
            <p className="muted">Pick an artifact.</p>
          )}
        </div>
      </div>
    </section>
  );
}
