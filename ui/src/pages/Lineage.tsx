import cytoscape, { Core, ElementDefinition } from "cytoscape";
import dagre from "cytoscape-dagre";
import { useEffect, useRef, useState } from "react";
import { fmt, gql, has, hasArg } from "../api";
import { datasetHref, ErrorLine, State } from "../components";
import { remeasureOnPress } from "../graphCanvas";
import { DAGRE_MAX_NODES, layered } from "../layered";
import { href, navigate, Route, useFeatures } from "../main";

cytoscape.use(dagre);

interface LNode {
  id: string;
  kind: string;
  hop: number;
  label: string;
  props: Record<string, unknown>;
}
interface LEdge {
  source: string;
  target: string;
  kind: string;
  binding: string;
}
interface LGraph {
  root: string;
  depth: number;
  nodes: LNode[];
  edges: LEdge[];
  partial: boolean;
  cutReasons: string[];
  partialReasons?: unknown;
}

const FAILED = new Set(["FAIL", "ABORT", "LOST"]);

declare global {
  interface Window {
    __provgraph?: { cy?: Core; layoutMs?: number; layouts?: number };
  }
}

/** The graph so far: walks merge into it, so expanding a node adds to what is shown. */
interface Shown {
  nodes: Map<string, LNode & { frontier: boolean }>;
  edges: Map<string, LEdge>;
  cuts: string[];
  partialReasons: unknown[];
}

function emptyShown(): Shown {
  return { nodes: new Map(), edges: new Map(), cuts: [], partialReasons: [] };
}

async function walk(features: ReturnType<typeof useFeatures>, node: string, direction: string, depth: number): Promise<LGraph> {
  const withReasons = has(features, "Lineage", "partialReasons") ? "partialReasons" : "";
  const includeFailed = hasArg(features, "Query", "lineage", "includeFailed");
  const d = await gql<{ lineage: LGraph }>(
    `query Walk($node: ID!, $direction: Direction!, $depth: Int!) {
      lineage(node: $node, direction: $direction, depth: $depth, fanOutLimit: 500${includeFailed ? ", includeFailed: true" : ""}) {
        root depth partial cutReasons ${withReasons}
        nodes { id kind hop label props } edges { source target kind binding } } }`,
    { node, direction, depth },
  );
  return d.lineage;
}

function merge(shown: Shown, g: LGraph): Shown {
  const next: Shown = {
    nodes: new Map(shown.nodes),
    edges: new Map(shown.edges),
    cuts: [...new Set([...shown.cuts, ...g.cutReasons])],
    partialReasons: g.partialReasons ? [...shown.partialReasons, g.partialReasons] : shown.partialReasons,
  };
  for (const n of g.nodes) {
    const old = next.nodes.get(n.id);
    // A node at the walk's last hop may have more behind it: marked until it is expanded.
    const frontier = n.hop >= g.depth;
    next.nodes.set(n.id, { ...n, frontier: old ? old.frontier && frontier : frontier });
  }
  for (const e of g.edges) next.edges.set(`${e.source}|${e.target}|${e.kind}|${e.binding}`, e);
  return next;
}

function elements(shown: Shown): ElementDefinition[] {
  const out: ElementDefinition[] = [];
  for (const n of shown.nodes.values()) {
    const state = String(n.props.state ?? "");
    const classes = [n.kind === "RUN" ? "run" : "data"];
    if (FAILED.has(state)) classes.push("failed");
    if (n.frontier) classes.push("frontier");
    const label = n.kind === "RUN" ? `${n.props.job ?? n.label}\n${state.toLowerCase()}` : String(n.props.name ?? n.label);
    out.push({ data: { id: n.id, label }, classes: classes.join(" ") });
  }
  for (const [key, e] of shown.edges) {
    if (!shown.nodes.has(e.source) || !shown.nodes.has(e.target)) continue;
    // Drawn as data flows: a dataset into the run that READ it, a run into the dataset it WROTE.
    const [s, t] = e.kind === "READ" ? [e.target, e.source] : [e.source, e.target];
    out.push({ data: { id: key, source: s, target: t, label: e.binding }, classes: e.kind.toLowerCase() });
  }
  return out;
}

const STYLE: cytoscape.StylesheetJson = [
  {
    selector: "node",
    style: {
      label: "data(label)",
      "text-wrap": "wrap",
      "text-valign": "center",
      "font-size": 10,
      // A label too small to read is not drawn: a fitted 2,000-node graph paints without thousands of texts.
      "min-zoomed-font-size": 6,
      width: 110,
      height: 36,
      "background-color": "#e0ecff",
      "border-width": 1,
      "border-color": "#5b7bb5",
    },
  },
  { selector: "node.run", style: { shape: "round-rectangle", "background-color": "#e8f5e9", "border-color": "#2e7d32" } },
  { selector: "node.data", style: { shape: "ellipse" } },
  { selector: "node.failed", style: { "background-color": "#fdecea", "border-color": "#c62828", "border-width": 3 } },
  { selector: "node.frontier", style: { "border-style": "dashed", "border-width": 2 } },
  { selector: "node:selected", style: { "overlay-color": "#2563eb", "overlay-opacity": 0.15 } },
  { selector: "node.root", style: { "border-width": 4 } },
  {
    selector: "edge",
    style: {
      width: 1.5,
      "curve-style": "bezier",
      "target-arrow-shape": "triangle",
      "line-color": "#9aa5b1",
      "target-arrow-color": "#9aa5b1",
      label: "data(label)",
      "font-size": 8,
      "min-zoomed-font-size": 6,
      color: "#667",
    },
  },
  { selector: "edge.quiet", style: { label: "", "curve-style": "haystack" } },
  { selector: "edge.path", style: { "line-color": "#f59e0b", "target-arrow-color": "#f59e0b", width: 4 } },
  { selector: "node.path", style: { "border-color": "#f59e0b", "border-width": 4 } },
];

function SearchBox({ onPick }: { onPick: (id: string) => void }) {
  const [text, setText] = useState("");
  const [hits, setHits] = useState<{ id: string; kind: string; label: string }[] | null>(null);
  const [error, setError] = useState<string | null>(null);
  return (
    <form
      className="filters"
      onSubmit={async (e) => {
        e.preventDefault();
        try {
          const d = await gql<{ search: { id: string; kind: string; label: string }[] }>(
            "query Find($text: String!) { search(text: $text, limit: 30) { id kind label } }",
            { text },
          );
          setHits(d.search);
          setError(null);
        } catch (err) {
          setError(String((err as Error).message));
        }
      }}
    >
      <input name="search" placeholder="find a run, job or dataset" value={text} onChange={(e) => setText(e.target.value)} />
      <button type="submit">Search</button>
      <ErrorLine error={error} />
      {hits && (
        <ul className="hits">
          {hits.length === 0 && <li className="muted">nothing found</li>}
          {hits.map((h) => (
            <li key={h.id}>
              <button type="button" className="link" onClick={() => onPick(h.id)} data-node={h.id}>
                {h.kind.toLowerCase()}: {h.label}
              </button>
            </li>
          ))}
        </ul>
      )}
    </form>
  );
}

export function LineagePage({ route }: { route: Route }) {
  const features = useFeatures();
  const start = route.query.get("node") ?? "";
  const direction = route.query.get("direction") ?? "UPSTREAM";
  const depth = Number(route.query.get("depth") ?? 2);
  const [shown, setShown] = useState<Shown>(emptyShown);
  const [error, setError] = useState<string | null>(null);
  const [selected, setSelected] = useState<string | null>(null);
  const [pathFrom, setPathFrom] = useState<string | null>(null);
  const [pathLen, setPathLen] = useState<number | null>(null);
  const box = useRef<HTMLDivElement>(null);
  const cyRef = useRef<Core | null>(null);
  const shownRef = useRef(shown);
  shownRef.current = shown;
  // A new walk (start, direction or depth) is framed whole; an expansion keeps the user's view.
  const refit = useRef(true);

  const directions = direction === "BOTH" ? ["UPSTREAM", "DOWNSTREAM"] : [direction];

  useEffect(() => {
    if (!start) return;
    let live = true;
    setSelected(null);
    setPathFrom(null);
    const t0 = performance.now();
    Promise.all(directions.map((d) => walk(features, start, d, depth)))
      .then((gs) => {
        // How long the server's walk took (with the transfer), apart from the layout and the drawing.
        box.current?.setAttribute("data-walk-ms", (performance.now() - t0).toFixed(1));
        if (!live) return;
        refit.current = true;
        setShown(gs.reduce(merge, emptyShown()));
      })
      .catch((e) => live && setError(String(e.message)));
    return () => {
      live = false;
    };
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [start, direction, depth]);

  const expand = async (id: string) => {
    try {
      const gs = await Promise.all(["UPSTREAM", "DOWNSTREAM"].map((d) => walk(features, id, d, 1)));
      let next = gs.reduce(merge, shownRef.current);
      const n = next.nodes.get(id);
      if (n) next = { ...next, nodes: new Map(next.nodes).set(id, { ...n, frontier: false }) };
      setShown(next);
    } catch (e) {
      setError(String((e as Error).message));
    }
  };
  const expandRef = useRef(expand);
  expandRef.current = expand;

  useEffect(() => {
    if (!box.current) return;
    const cy = cytoscape({ container: box.current, style: STYLE, wheelSensitivity: 0.3, minZoom: 0.05, maxZoom: 1.5 });
    cy.on("tap", "node", (evt) => {
      const id = evt.target.id();
      setSelected(id);
      void expandRef.current(id);
    });
    cy.on("tap", (evt) => {
      if (evt.target === cy) setSelected(null);
    });
    const unbind = remeasureOnPress(cy, box.current);
    cyRef.current = cy;
    window.__provgraph = { ...window.__provgraph, cy };
    return () => {
      unbind();
      cy.destroy();
    };
  }, []);

  useEffect(() => {
    const cy = cyRef.current;
    if (!cy) return;
    const els = elements(shown);
    cy.batch(() => {
      cy.elements().remove();
      cy.add(els);
      cy.$id(start).addClass("root");
      // Thousands of edge labels cost more to draw than the graph they label: big graphs go without.
      if (cy.nodes().length > DAGRE_MAX_NODES) cy.edges().addClass("quiet");
    });
    const t0 = performance.now();
    if (cy.nodes().length > DAGRE_MAX_NODES) layered(cy);
    else cy.layout({ name: "dagre", rankDir: "LR", nodeSep: 12, rankSep: 60, animate: false } as cytoscape.LayoutOptions).run();
    const ms = performance.now() - t0;
    const count = (window.__provgraph?.layouts ?? 0) + 1;
    window.__provgraph = { ...window.__provgraph, cy, layoutMs: ms, layouts: count };
    box.current?.setAttribute("data-layout-ms", ms.toFixed(1));
    box.current?.setAttribute("data-layouts", String(count));
    box.current?.setAttribute("data-nodes", String(cy.nodes().length));
    if (refit.current || cy.nodes().length > 300) cy.fit(undefined, 30);
    else if (selected) cy.center(cy.$id(selected));
    if (selected) cy.$id(selected).select();
    refit.current = false;
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [shown]);

  // The path between two chosen nodes, whichever way edges point.
  useEffect(() => {
    const cy = cyRef.current;
    if (!cy) return;
    cy.elements().removeClass("path");
    setPathLen(null);
    if (!pathFrom || !selected || pathFrom === selected) return;
    const found = cy.elements().aStar({ root: cy.$id(pathFrom), goal: cy.$id(selected), directed: false });
    if (found.found) {
      found.path.addClass("path");
      setPathLen(found.path.edges().length);
    } else setPathLen(-1);
  }, [pathFrom, selected, shown]);

  const node = selected ? shown.nodes.get(selected) : undefined;
  const set = (q: Record<string, string>) => navigate("lineage", { node: start, direction, depth: String(depth), ...q });
  return (
    <section className="lineage">
      <h1>Lineage</h1>
      <SearchBox onPick={(id) => set({ node: id })} />
      {start && (
        <div className="toolbar">
          <span className="mono">{start}</span>
          <label>
            direction{" "}
            <select name="direction" value={direction} onChange={(e) => set({ direction: e.target.value })}>
              <option value="UPSTREAM">upstream</option>
              <option value="DOWNSTREAM">downstream</option>
              <option value="BOTH">both</option>
            </select>
          </label>
          <label>
            depth{" "}
            <select name="depth" value={depth} onChange={(e) => set({ depth: e.target.value })}>
              {Array.from({ length: 10 }, (_, i) => i + 1).map((d) => (
                <option key={d} value={d}>
                  {d}
                </option>
              ))}
            </select>
          </label>
          <span className="muted">
            {shown.nodes.size} nodes · click a node to expand it · dashed = may continue · red = failed run
          </span>
        </div>
      )}
      <ErrorLine error={error} />
      {shown.cuts.length > 0 && (
        <p className="warning" data-testid="partial">
          Partial: the walk was cut ({shown.cuts.join(", ")}); what is shown is not all there is.
        </p>
      )}
      {shown.partialReasons.length > 0 && <p className="warning">{shown.partialReasons.map(fmt).join("; ")}</p>}
      <div className="split">
        <div className="graph" ref={box} data-testid="graph" />
        <aside>
          {node ? (
            <div data-testid="selected" data-node={node.id}>
              <h3>{node.kind === "RUN" ? "run" : "dataset version"}</h3>
              <p className="mono small">{node.id}</p>
              {node.kind === "RUN" ? (
                <>
                  <p>
                    {String(node.props.job)} <State state={String(node.props.state)} />
                  </p>
                  <a href={href(`run/${node.id.replace(/^run:/, "")}`)}>open run</a>
                </>
              ) : (
                <a href={datasetHref({ namespace: String(node.props.namespace), name: String(node.props.name), version: String(node.props.version) })}>
                  open artifact
                </a>
              )}
              <table className="kv small">
                <tbody>
                  {Object.entries(node.props).map(([k, v]) => (
                    <tr key={k}>
                      <th>{k}</th>
                      <td className="mono">{fmt(v)}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
              <p>
                <button onClick={() => setPathFrom(node.id)} data-testid="path-from">
                  Path from here
                </button>{" "}
                <button onClick={() => set({ node: node.id })}>Start here</button>
              </p>
            </div>
          ) : (
            <p className="muted">Select a node.</p>
          )}
          {pathFrom && (
            <p className="small" data-testid="path">
              path from <span className="mono">{pathFrom}</span>
              {pathLen === null ? ": select another node" : pathLen < 0 ? ": no path among the shown nodes" : `: ${pathLen} edges`}{" "}
              <button className="link" onClick={() => setPathFrom(null)}>
                clear
              </button>
            </p>
          )}
        </aside>
      </div>
    </section>
  );
}
