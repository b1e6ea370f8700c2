// `metrics.accuracy > 0.9 and params.lr = 0.01`: the `--where` language of `provgraph runs`, evaluated on the
// loaded page when the server has no `runs(filter:)` yet (the server evaluates it when it has).
import type { RunSummary } from "./api";

export interface Clause {
  path: string[];
  op: string;
  value: string | number;
}

const CLAUSE = /^\s*([A-Za-z_][\w.-]*)\s*(==|!=|>=|<=|=|>|<)\s*("([^"]*)"|'([^']*)'|\S+)\s*$/;

export function parseWhere(text: string): Clause[] {
  if (!text.trim()) return [];
  return text.split(/\s+and\s+/i).map((part) => {
    const m = CLAUSE.exec(part);
    if (!m) throw new Error(`cannot read "${part.trim()}": write e.g. metrics.accuracy > 0.9 and params.lr = 0.01`);
    const raw = m[4] ?? m[5] ?? m[3];
    const quoted = m[4] !== undefined || m[5] !== undefined;
    const value = !quoted && raw !== "" && !Number.isNaN(Number(raw)) ? Number(raw) : raw;
    return { path: m[1].split("."), op: m[2] === "==" ? "=" : m[2], value };
  });
}

function lookup(run: RunSummary, path: string[]): unknown {
  const [head, ...rest] = path;
  let v: unknown =
    head === "metrics" || head === "params"
      ? run[head]
      : ({ state: run.state, job: run.jobName, project: run.project, run: run.runId } as Record<string, unknown>)[head];
  for (const key of rest) v = v && typeof v === "object" ? (v as Record<string, unknown>)[key] : undefined;
  return v;
}

export function matches(run: RunSummary, clauses: Clause[]): boolean {
  return clauses.every(({ path, op, value }) => {
    const v = lookup(run, path);
    if (v === undefined || v === null) return false;
    const a = typeof value === "number" ? Number(v) : String(v);
    if (typeof value === "number" && Number.isNaN(a as number)) return false;
    switch (op) {
      case "=":
        return a === value;
      case "!=":
        return a !== value;
      case ">":
        return a > value;
      case ">=":
        return a >= value;
      case "<":
        return a < value;
      default:
        return a <= value;
    }
  });
}
