import { useEffect, useRef } from "react";
import uPlot from "uplot";
import "uplot/dist/uPlot.min.css";
import type { Json } from "./api";

export type Series = Record<string, [number, number][]>; // metric -> (step, value) points

/** Metric history: GraphQL `Run.metricHistory` gives [{key, steps: [n…], values: [v…]}] (a non-finite value
 * is the string "NaN"/"Infinity"/"-Infinity": not drawn); {key: [v…]} and [{key, step, value}] are read too. */
export function toSeries(raw: Json): Series {
  const out: Series = {};
  const add = (key: string, step: unknown, value: unknown) => {
    const v = typeof value === "string" ? Number(value) : value;
    if (typeof v !== "number" || !Number.isFinite(v)) return;
    (out[key] ??= []).push([Number(step ?? out[key]?.length ?? 0), v]);
  };
  const addPoints = (key: string, points: unknown) => {
    if (!Array.isArray(points)) return;
    points.forEach((p, i) => {
      if (p && typeof p === "object") {
        const o = p as Record<string, unknown>;
        add(key, o.step ?? i, o.value);
      } else add(key, i, p);
    });
  };
  if (Array.isArray(raw)) {
    for (const item of raw) {
      if (!item || typeof item !== "object") continue;
      const o = item as Record<string, unknown>;
      const key = String(o.key ?? o.name ?? o.metric ?? "");
      if (!key) continue;
      if (Array.isArray(o.steps) && Array.isArray(o.values)) {
        const values = o.values as unknown[];
        (o.steps as unknown[]).forEach((step, i) => add(key, step, values[i]));
      } else if (Array.isArray(o.points ?? o.history)) addPoints(key, o.points ?? o.history);
      else add(key, o.step, o.value);
    }
  } else if (raw && typeof raw === "object") {
    for (const [key, points] of Object.entries(raw as Record<string, unknown>)) addPoints(key, points);
  }
  for (const pts of Object.values(out)) pts.sort((a, b) => a[0] - b[0]);
  return out;
}

export function MetricChart({ name, points }: { name: string; points: [number, number][] }) {
  const box = useRef<HTMLDivElement>(null);
  useEffect(() => {
    if (!box.current) return;
    const plot = new uPlot(
      {
        title: name,
        width: 360,
        height: 200,
        scales: { x: { time: false } },
        axes: [{ label: "step" }, {}],
        series: [{ label: "step" }, { label: name, stroke: "#2563eb", width: 2, points: { show: points.length < 50 } }],
      },
      [points.map((p) => p[0]), points.map((p) => p[1])],
      box.current,
    );
    return () => plot.destroy();
  }, [name, points]);
  // The plotted points, for tests and readers of the page: "step:value" pairs.
  return <div className="chart" data-metric={name} data-points={points.map((p) => `${p[0]}:${p[1]}`).join(" ")} ref={box} />;
}
