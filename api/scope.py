"""What one request may see: the projects of its token, applied to everything the store answers.

A project is a job namespace. The rules, applied after the store answers and before anything is
returned, so they hold for every store:

- a run or a job is visible when its namespace is one of the token's projects;
- a dataset is visible unless it is another project's logged artifact (namespace
  `store://<project>`); external data (`file`, `s3://bucket` …) is shared by every project,
  but who produced it is answered only with visible runs;
- a lineage walk drops other projects' runs with every edge that touches them, then keeps only
  the nodes still reachable from the start along the walk's direction (hops are recounted), so
  nothing is reached through a hidden run. Cut reasons that name a hidden node are dropped.

Writes follow `events/admission.py` (a run stays in its project, `store://<p>` is written only by
runs of `p`); `api/ingest.py` adds that every `store://` dataset an event names is in the token's
projects (docs/SECURITY.md).

Hidden things look exactly like missing ones (null, empty, "no such node"), so a token cannot
probe for another project's run ids.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from provgraph.graph.views import Direction, LineageEdge, LineageGraph, LineageNode, RunView

STORE_PREFIX = "store://"


@dataclass(frozen=True)
class Scope:
    """The projects a request may read and write; `projects=None` means all of them (insecure local)."""

    projects: frozenset[str] | None
    token_id: str | None = None

    @staticmethod
    def everything() -> Scope:
        return Scope(None)

    @property
    def unrestricted(self) -> bool:
        return self.projects is None

    def allows(self, project: str) -> bool:
        return self.projects is None or project in self.projects

    def readable(self, project: str | None) -> list[str | None]:
        """The project filters a listing asks the store for: `project` if allowed (else none), all
        projects at once (`None`) when unrestricted, else each of the token's projects."""
        if project is not None:
            return [project] if self.allows(project) else []
        return [None] if self.projects is None else [*sorted(self.projects)]

    def run_visible(self, run: RunView | None) -> bool:
        return run is not None and self.allows(run.namespace)

    def dataset_visible(self, namespace: str) -> bool:
        if namespace.startswith(STORE_PREFIX):
            return self.allows(namespace[len(STORE_PREFIX) :])
        return True

    def node_visible(self, node: LineageNode) -> bool:
        if node.kind == "run":
            return self.allows(str(node.props.get("namespace", "")))
        return self.dataset_visible(str(node.props.get("namespace", "")))

    def prune(self, graph: LineageGraph) -> LineageGraph:
        """The part of a lineage walk this scope may see (the graph itself when unrestricted)."""
        if self.unrestricted:
            return graph
        nodes = {n.id: n for n in graph.nodes if self.node_visible(n)}
        edges = [e for e in graph.edges if e.source in nodes and e.target in nodes]
        hops = _reachable(graph.direction, [n.id for n in graph.nodes if n.hop == 0 and n.id in nodes], edges)
        hidden = [n.id for n in graph.nodes if n.id not in hops]
        kept = [i for i, r in enumerate(graph.cut_reasons) if not any(h in r for h in hidden)]
        reasons = [graph.cut_reasons[i] for i in kept]
        return graph.model_copy(
            update={
                "nodes": sorted(
                    (replace(nodes[i], hop=hop) for i, hop in hops.items()),
                    key=lambda n: (n.hop, n.id),
                ),
                "edges": [e for e in edges if e.source in hops and e.target in hops],
                "partial": bool(reasons),
                "cut_reasons": reasons,
                "cut_codes": [graph.cut_codes[i] for i in kept],
            }
        )


def _reachable(direction: Direction, roots: list[str], edges: list[LineageEdge]) -> dict[str, int]:
    """Breadth-first hops from `roots` following edges the way the walk did.

    Edges point run -> dataset version. Upstream, a dataset version leads to the runs that WROTE
    it and a run to what it READ; downstream, a dataset version leads to the runs that READ it and
    a run to what it WROTE. An ATTEMPTED edge is walked as a WROTE one.
    """
    from_dataset, from_run = ("WROTE", "READ") if direction == Direction.UPSTREAM else ("READ", "WROTE")
    nxt: dict[str, list[str]] = {}
    for e in edges:
        kind = "WROTE" if e.kind == "ATTEMPTED" else e.kind
        if kind == from_run:
            nxt.setdefault(e.source, []).append(e.target)
        elif kind == from_dataset:
            nxt.setdefault(e.target, []).append(e.source)
    hops = dict.fromkeys(roots, 0)
    frontier = list(roots)
    hop = 0
    while frontier:
        hop += 1
        frontier = [m for n in frontier for m in nxt.get(n, []) if m not in hops]
        frontier = list(dict.fromkeys(frontier))
        for m in frontier:
            hops[m] = hop
    return hops
