import { useState } from "react";
import { extraFields, fmt, Json, splitDatasetId } from "../api";
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
        <div>{ns && name ? <DatasetDetail ns={ns} name={name} version={route.query.get("version")} /> : <p className="muted">Pick an artifact.</p>}</div>
      </div>
    </section>
  );
}
