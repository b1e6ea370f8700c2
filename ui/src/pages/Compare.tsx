import { useState } from "react";
import { fmt, Json, RunDetail } from "../api";
import { ErrorLine, RunLink, State, useQuery } from "../components";
import { navigate } from "../main";

const FIELDS = `runId project jobName state startedAt endedAt params metrics results codeHash runtime
  inputs { id namespace name version binding } jobVersion { codeHash gitCommit gitDirty }`;

type Row = { section: string; key: string; values: Json[] };

function rows(runs: RunDetail[]): Row[] {
  const out: Row[] = [];
  const section = (name: string, pick: (r: RunDetail) => Record<string, Json>) => {
    const keys = [...new Set(runs.flatMap((r) => Object.keys(pick(r) ?? {})))].sort();
    for (const k of keys) out.push({ section: name, key: k, values: runs.map((r) => pick(r)?.[k]) });
  };
  out.push({ section: "run", key: "job", values: runs.map((r) => `${r.project}/${r.jobName}`) });
  out.push({ section: "run", key: "state", values: runs.map((r) => r.state) });
  out.push({ section: "code", key: "code hash", values: runs.map((r) => r.jobVersion?.codeHash ?? r.codeHash) });
  out.push({ section: "code", key: "git commit", values: runs.map((r) => r.jobVersion?.gitCommit ?? null) });
  section("params", (r) => r.params);
  section("metrics", (r) => r.metrics);
  section("results", (r) => r.results);
  section("inputs", (r) => Object.fromEntries(r.inputs.map((i) => [i.binding || i.name, `${i.namespace}/${i.name}@${i.version}`])));
  section("environment", (r) => r.runtime);
  return out;
}

/** Runs side by side; rows whose values differ are highlighted. */
export function ComparePage({ ids }: { ids: string[] }) {
  const [draft, setDraft] = useState(ids.join(", "));
  const query = ids.length
    ? `query Compare { ${ids.map((id, i) => `r${i}: run(id: ${JSON.stringify(id)}) { ${FIELDS} }`).join("\n")} }`
    : null;
  const { data, error } = useQuery<Record<string, RunDetail | null>>(query, {}, ids.join(","));
  const [onlyDiff, setOnlyDiff] = useState(false);
  const runs = ids.map((_, i) => data?.[`r${i}`] ?? null);
  const missing = ids.filter((_, i) => data && !runs[i]);
  const found = runs.filter((r): r is RunDetail => r !== null);
  const table = rows(found).filter((r) => !onlyDiff || new Set(r.values.map((v) => JSON.stringify(v ?? null))).size > 1);
  return (
    <section>
      <h1>Compare runs</h1>
      <form
        className="filters"
        onSubmit={(e) => {
          e.preventDefault();
          navigate("compare", { ids: draft.split(/[\s,]+/).filter(Boolean).join(",") });
        }}
      >
        <input name="ids" className="wide" placeholder="run ids, comma-separated (or select runs on the Runs page)" value={draft} onChange={(e) => setDraft(e.target.value)} />
        <button type="submit">Compare</button>
        <label>
          <input type="checkbox" checked={onlyDiff} onChange={(e) => setOnlyDiff(e.target.checked)} /> only differences
        </label>
      </form>
      <ErrorLine error={error} />
      {missing.length > 0 && <p className="error">Not found (or not yours): {missing.join(", ")}</p>}
      {found.length > 0 && (
        <table className="compare">
          <thead>
            <tr>
              <th />
              <th />
              {found.map((r) => (
                <th key={r.runId}>
                  <RunLink id={r.runId} label={r.runId.slice(0, 12)} /> <State state={r.state} />
                </th>
              ))}
            </tr>
          </thead>
          <tbody>
            {table.map((row) => {
              const differs = new Set(row.values.map((v) => JSON.stringify(v ?? null))).size > 1;
              return (
                <tr key={`${row.section}.${row.key}`} className={differs ? "differs" : ""} data-key={`${row.section}.${row.key}`}>
                  <th className="muted">{row.section}</th>
                  <th>{row.key}</th>
                  {row.values.map((v, i) => (
                    <td key={i} className="mono">
                      {fmt(v)}
                    </td>
                  ))}
                </tr>
              );
            })}
          </tbody>
        </table>
      )}
    </section>
  );
}
