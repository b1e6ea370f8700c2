// A pipeline run's DAG (GraphQL `pipeline(runId)`): steps as a graph coloured by state, polled while
// the pipeline (or any step) is still going, so states change live without a reload.
import cytoscape, { Core } from "cytoscape";
import dagre from "cytoscape-dagre";
import { useEffect, useRef, useState } from "react";
import { gql } from "../api";
import { ErrorLine, RunLink, State } from "../components";
import { remeasureOnPress } from "../graphCanvas";

cytoscape.use(dagre);

interface Step {
  name: string;
  state: string;
  runId: string | null;
  cachedFrom: string | null;
  attempts: number;
  reason: string | null;
  durationS: number | null;
  upstream: string[];
}

interface Pipeline {
  run: { state: string };
  steps: Step[];
}

const QUERY = `query Pipeline($id: ID!) { pipeline(runId: $id) {
  run { state } steps { name state runId cachedFrom attempts reason durationS upstream } } }`;
const POLL_MS = 1000;
const ACTIVE = new Set(["START", "RUNNING", "REQUESTED", "PENDING", "OTHER"]);

const COLOURS: Record<string, [string, string]> = {
  COMPLETE: ["#dcfce7", "#166534"],
  CACHED: ["#e0f2fe", "#0369a1"],
  FAIL: ["#fee2e2", "#991b1b"],
  ABORT: ["#fee2e2", "#991b1b"],
  LOST: ["#fee2e2", "#991b1b"],
  SKIPPED: ["#f3f4f6", "#6b7280"],
  RUNNING: ["#dbeafe", "#1e40af"],
  START: ["#dbeafe", "#1e40af"],
};
const [WAITING_BG, WAITING_BORDER] = ["#fff", "#9ca3af"];

function stillGoing(p: Pipeline): boolean {
  return ACTIVE.has(p.run.state) || p.steps.some((s) => ACTIVE.has(s.state));
}

function DagCanvas({ steps }: { steps: Step[] }) {
  const box = useRef<HTMLDivElement>(null);
  const cy = useRef<Core | null>(null);
  const shape = steps.map((s) => `${s.name}<${s.upstream.join(",")}`).join(";");
  useEffect(() => {
    if (!box.current) return;
    const names = new Set(steps.map((s) => s.name));
    const graph = cytoscape({
      container: box.current,
      userZoomingEnabled: false,
      elements: [
        ...steps.map((s) => ({ data: { id: s.name, label: s.name } })),
        ...steps.flatMap((s) =>
          s.upstream.filter((u) => names.has(u)).map((u) => ({ data: { id: `${u}->${s.name}`, source: u, target: s.name } })),
        ),
      ],
      style: [
        {
          selector: "node",
          style: {
            label: "data(label)",
            shape: "round-rectangle",
            width: 120,
            height: 38,
            "text-valign": "center",
            "font-size": 11,
            "border-width": 2,
            "background-color": "data(bg)",
            "border-color": "data(border)",
          },
        },
        {
          selector: "edge",
          style: { width: 1.5, "curve-style": "bezier", "target-arrow-shape": "triangle", "line-color": "#9aa5b1", "target-arrow-color": "#9aa5b1" },
        },
      ],
    });
    graph.layout({ name: "dagre", rankDir: "LR", nodeSep: 20, rankSep: 60, animate: false } as cytoscape.LayoutOptions).run();
    graph.on("tap", "node", (e) => {
      const runId = e.target.data("runId");
      if (runId) window.location.hash = `#/run/${encodeURIComponent(runId)}`;
    });
    const unbind = remeasureOnPress(graph, box.current);
    cy.current = graph;
    return () => {
      unbind();
      graph.destroy();
      cy.current = null;
    };
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [shape]);
  // States change in place (no new layout): only colours and links move.
  useEffect(() => {
    const graph = cy.current;
    if (!graph) return;
    graph.batch(() => {
      for (const s of steps) {
        const [bg, border] = COLOURS[s.state] ?? [WAITING_BG, WAITING_BORDER];
        graph.getElementById(s.name).data({ bg, border, runId: s.runId, label: `${s.name}\n${s.state.toLowerCase()}` });
      }
    });
  });
  return <div className="dag" ref={box} data-testid="pipeline-dag" />;
}

export function PipelineDag({ runId }: { runId: string }) {
  const [pipeline, setPipeline] = useState<Pipeline | null | undefined>(undefined);
  const [error, setError] = useState<string | null>(null);
  const [polls, setPolls] = useState(0);
  useEffect(() => {
    let live = true;
    gql<{ pipeline: Pipeline | null }>(QUERY, { id: runId })
      .then((d) => live && setPipeline(d.pipeline))
      .catch((e) => live && setError(String(e.message ?? e)));
    return () => {
      live = false;
    };
  }, [runId, polls]);
  useEffect(() => {
    if (!pipeline || !stillGoing(pipeline)) return;
    const timer = window.setTimeout(() => setPolls((n) => n + 1), POLL_MS);
    return () => window.clearTimeout(timer);
  }, [pipeline]);
  if (error) return <ErrorLine error={error} />;
  if (!pipeline) return null; // not a pipeline run (or not yet loaded)
  return (
    <div className="pipeline" data-testid="pipeline" data-live={stillGoing(pipeline) ? "1" : "0"}>
      <h2>Pipeline</h2>
      <DagCanvas steps={pipeline.steps} />
      <table className="kv">
        <thead>
          <tr>
            <th>step</th>
            <th>state</th>
            <th>run</th>
            <th>after</th>
            <th>attempts</th>
            <th>duration</th>
            <th>note</th>
          </tr>
        </thead>
        <tbody>
          {pipeline.steps.map((s) => (
            <tr key={s.name} data-step={s.name} data-state={s.state}>
              <td>{s.name}</td>
              <td>
                <State state={s.state} />
              </td>
              <td>{s.runId ? <RunLink id={s.runId} label={s.runId.slice(0, 12)} /> : <span className="muted">-</span>}</td>
              <td className="muted">{s.upstream.join(", ")}</td>
              <td className="num">{s.attempts}</td>
              <td className="num">{s.durationS === null ? "" : `${s.durationS.toFixed(1)} s`}</td>
              <td className="muted">{s.cachedFrom ? `cached from ${s.cachedFrom.slice(0, 12)}` : s.reason ?? ""}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}
