import { useEffect, useState } from "react";
import { gql, has, RunDetail, shortHash } from "../api";
import { DatasetRefs, ErrorLine, Hash, KeyValues, lineageHref, RunLink, State, useQuery } from "../components";
import { MetricChart, toSeries } from "../MetricChart";
import { useFeatures } from "../main";
import { PipelineDag } from "./Pipeline";

const DETAIL = `runId project jobName state startedAt endedAt params metrics codeHash results runtime error { message stackTrace } parentRunId
  reproduces { originalRunId verdict differences }
  inputs { id namespace name version binding kind } outputs { id namespace name version binding kind }
  jobVersion { codeHash entrypoint sourceUri gitCommit gitDirty }`;

/** Run fields asked for only when this server has them (an older server lacks some). */
const OPTIONAL: Record<string, string> = {
  logs: "logs { text size }",
  metricHistory: "metricHistory { key steps values truncated }",
  children: "children { runId jobName state }",
};

interface Repro {
  runId: string;
  state: string;
  verdict: string | null;
  differences: unknown;
}

function Reproduce({ runId }: { runId: string }) {
  const [repro, setRepro] = useState<Repro | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  // Poll the new run until its verdict arrives (REPRODUCED, DIVERGED or FAILED).
  useEffect(() => {
    if (!repro || (repro.verdict && repro.verdict !== "PENDING")) return;
    const timer = window.setTimeout(async () => {
      try {
        const d = await gql<{ run: { state: string; reproduces: { verdict: string; differences: unknown } | null } | null }>(
          "query Repro($id: ID!) { run(id: $id) { state reproduces { verdict differences } } }",
          { id: repro.runId },
        );
        setRepro({
          ...repro,
          state: d.run?.state ?? repro.state,
          verdict: d.run?.reproduces?.verdict ?? null,
          differences: d.run?.reproduces?.differences ?? null,
        });
      } catch (e) {
        setError(String((e as Error).message));
      }
    }, 1000);
    return () => window.clearTimeout(timer);
  }, [repro]);

  const start = async () => {
    setBusy(true);
    setError(null);
    try {
      const d = await gql<{ reproduce: { runId: string; state: string } }>(
        "mutation Reproduce($id: ID!) { reproduce(runId: $id) { runId state } }",
        { id: runId },
      );
      setRepro({ runId: d.reproduce.runId, state: d.reproduce.state, verdict: null, differences: null });
    } catch (e) {
      setError(String((e as Error).message));
    } finally {
      setBusy(false);
    }
  };

  const done = repro?.verdict && repro.verdict !== "PENDING";
  return (
    <div className="reproduce">
      <button onClick={start} disabled={busy || (!!repro && !done)} data-testid="reproduce">
        Reproduce
      </button>
      {repro && (
        <span>
          {" "}
          run <RunLink id={repro.runId} label={repro.runId.slice(0, 12)} /> <State state={repro.state} />{" "}
          {done ? (
            <strong className={`verdict verdict-${repro.verdict!.toLowerCase()}`} data-testid="verdict">
              {repro.verdict}
            </strong>
          ) : (
            <span className="muted">waiting for the verdict…</span>
          )}
        </span>
      )}
      {done && Array.isArray(repro!.differences) && repro!.differences.length > 0 && (
        <pre className="mono small">{JSON.stringify(repro!.differences, null, 2)}</pre>
      )}
      <ErrorLine error={error} />
    </div>
  );
}

function Source({ runId }: { runId: string }) {
  const [shown, setShown] = useState(false);
  const { data, error } = useQuery<{ codeSnapshot: { size: number; text: string | null } | null }>(
    shown ? "query Source($id: ID!) { codeSnapshot(runId: $id) { size text } }" : null,
    { id: runId },
    `${runId}:${shown}`,
  );
  if (!shown)
    return (
      <button onClick={() => setShown(true)} data-testid="show-source">
        Show source
      </button>
    );
  if (error) return <ErrorLine error={error} />;
  if (!data) return <span className="muted">loading…</span>;
  const snap = data.codeSnapshot;
  if (!snap) return <p className="muted">no source snapshot was kept for this run</p>;
  if (snap.text === null) return <p className="muted">the snapshot is too large to show ({snap.size} bytes)</p>;
  return (
    <pre className="log" data-testid="source">
      {snap.text}
    </pre>
  );
}

export function RunPage({ runId }: { runId: string }) {
  const features = useFeatures();
  const extra = Object.entries(OPTIONAL)
    .filter(([f]) => has(features, "Run", f))
    .map(([, sel]) => sel)
    .join(" ");
  const { data, error, loading } = useQuery<{ run: RunDetail | null }>(
    `query Run($id: ID!) { run(id: $id) { ${DETAIL} ${extra} } }`,
    { id: runId },
    runId,
  );
  if (loading && !data) return <p className="muted">loading…</p>;
  if (error) return <ErrorLine error={error} />;
  const run = data?.run;
  if (!run) return <p className="error">No run {runId} (unknown, or not in your token's projects).</p>;

  const series = run.metricHistory !== undefined ? toSeries(run.metricHistory) : {};
  const charted = Object.entries(series).filter(([, pts]) => pts.length > 0);
  return (
    <section className="run">
      <h1>
        {run.jobName} <State state={run.state} />
      </h1>
      <p className="mono muted">
        run {run.runId} · project {run.project} · started {run.startedAt ? new Date(run.startedAt).toLocaleString() : "?"}
        {run.endedAt ? ` · ended ${new Date(run.endedAt).toLocaleString()}` : ""}
      </p>
      <div className="toolbar">
        <Reproduce runId={run.runId} />
        <span className="spacer" />
        <a href={lineageHref(`run:${run.runId}`)}>upstream lineage</a>
        <a href={lineageHref(`run:${run.runId}`, "DOWNSTREAM")}>downstream lineage</a>
      </div>
      {run.reproduces && (
        <p>
          Reproduces <RunLink id={run.reproduces.originalRunId} />: <strong>{run.reproduces.verdict}</strong>
        </p>
      )}
      {run.error && <pre className="error">{run.error.message}</pre>}
      {run.error?.stackTrace && (
        <>
          <h2>Traceback</h2>
          <pre className="log" data-testid="traceback">
            {run.error.stackTrace}
          </pre>
        </>
      )}
      {has(features, "Query", "pipeline") && <PipelineDag runId={run.runId} />}
      <div className="grid">
        <div>
          <h2>Parameters</h2>
          <KeyValues values={run.params} empty="no parameters" />
        </div>
        <div>
          <h2>Metrics</h2>
          <KeyValues values={run.metrics} empty="no metrics" />
        </div>
        <div>
          <h2>Results</h2>
          <KeyValues values={run.results} empty="no results" />
        </div>
      </div>
      <h2>Metric history</h2>
      {charted.length ? (
        <div className="charts">
          {charted.map(([k, pts]) => (
            <MetricChart key={k} name={k} points={pts} />
          ))}
        </div>
      ) : (
        <p className="muted">
          {run.metricHistory === undefined
            ? "this server keeps only the latest value of each metric (no Run.metricHistory)"
            : "no metric steps recorded"}
        </p>
      )}
      <h2>Inputs</h2>
      <DatasetRefs refs={run.inputs} empty="no inputs" />
      <h2>Outputs</h2>
      <DatasetRefs refs={run.outputs} empty="no outputs" />
      <h2>Code</h2>
      {run.jobVersion ? (
        <table className="kv">
          <tbody>
            <tr>
              <th>code hash</th>
              <td>
                <Hash value={run.jobVersion.codeHash} />
              </td>
            </tr>
            <tr>
              <th>entrypoint</th>
              <td className="mono">{run.jobVersion.entrypoint}</td>
            </tr>
            <tr>
              <th>source</th>
              <td className="mono">{run.jobVersion.sourceUri}</td>
            </tr>
            <tr>
              <th>git</th>
              <td className="mono">
                {shortHash(run.jobVersion.gitCommit, 12)}
                {run.jobVersion.gitDirty ? " (dirty)" : ""}
              </td>
            </tr>
          </tbody>
        </table>
      ) : (
        <p className="muted">no code version recorded</p>
      )}
      {has(features, "Query", "codeSnapshot") && <Source runId={run.runId} />}
      <h2>Environment</h2>
      <KeyValues values={run.runtime} empty="no runtime recorded" />
      <h2>Parent and children</h2>
      <p>
        parent: {run.parentRunId ? <RunLink id={run.parentRunId} /> : <span className="muted">none</span>}
      </p>
      {run.children !== undefined ? (
        run.children.length ? (
          <ul>
            {run.children.map((c) => (
              <li key={c.runId}>
                <RunLink id={c.runId} label={`${c.jobName} ${c.runId.slice(0, 12)}`} /> <State state={c.state} />
              </li>
            ))}
          </ul>
        ) : (
          <p className="muted">no children</p>
        )
      ) : null}
      {run.logs && (
        <>
          <h2>Logs</h2>
          {run.logs.text ? <pre className="log">{run.logs.text}</pre> : <p className="muted">nothing printed</p>}
        </>
      )}
    </section>
  );
}
