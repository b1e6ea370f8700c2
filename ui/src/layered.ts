// A linear-time layered layout for big lineage graphs: dagre's crossing minimisation takes seconds past a
// few hundred nodes, so past DAGRE_MAX_NODES nodes are ranked by longest path along the data flow and
// ordered within a rank by the mean position of their predecessors (one barycentre sweep).
import type { Core } from "cytoscape";

export const DAGRE_MAX_NODES = 300;

export function layered(cy: Core, rankSep = 170, nodeSep = 46): void {
  const ids = cy.nodes().map((n) => n.id());
  const preds = new Map<string, string[]>(ids.map((id) => [id, []]));
  const succs = new Map<string, string[]>(ids.map((id) => [id, []]));
  cy.edges().forEach((e) => {
    preds.get(e.target().id())?.push(e.source().id());
    succs.get(e.source().id())?.push(e.target().id());
  });
  // Longest-path ranks in topological order (Kahn); nodes on a cycle, if any, keep rank 0.
  const rank = new Map<string, number>(ids.map((id) => [id, 0]));
  const waiting = new Map<string, number>(ids.map((id) => [id, preds.get(id)!.length]));
  const queue = ids.filter((id) => waiting.get(id) === 0);
  for (let i = 0; i < queue.length; i++) {
    const u = queue[i];
    for (const v of succs.get(u)!) {
      rank.set(v, Math.max(rank.get(v)!, rank.get(u)! + 1));
      waiting.set(v, waiting.get(v)! - 1);
      if (waiting.get(v) === 0) queue.push(v);
    }
  }
  const ranks: string[][] = [];
  for (const id of ids) (ranks[rank.get(id)!] ??= []).push(id);
  const slot = new Map<string, number>();
  ranks.forEach((members, r) => {
    if (r > 0) {
      const centre = (id: string) => {
        const ps = preds.get(id)!.filter((p) => slot.has(p));
        return ps.length ? ps.reduce((s, p) => s + slot.get(p)!, 0) / ps.length : Number.MAX_SAFE_INTEGER;
      };
      const keys = new Map(members.map((id) => [id, centre(id)]));
      members.sort((a, b) => keys.get(a)! - keys.get(b)! || a.localeCompare(b));
    } else members.sort();
    members.forEach((id, i) => slot.set(id, i - (members.length - 1) / 2));
  });
  cy.batch(() => {
    cy.nodes().forEach((n) => {
      n.position({ x: rank.get(n.id())! * rankSep, y: slot.get(n.id())! * nodeSep });
    });
  });
}
