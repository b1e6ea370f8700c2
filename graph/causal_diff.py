"""Why do two artifacts (or two runs) differ? (`provgraph diff`, GraphQL `diff`)

Both upstream graphs are walked with `lineage` (bounded like any walk), the runs in them read with
`run`, and aligned by job: starting from the two producers, a pair of runs whose outputs differ is
explained by its own differences (code hash, params, environment) and by each input that differs:
an input written by runs of the same job on both sides is explained by that pair in turn (so only
the EARLIEST divergences are reported), a root input (written by no run in the walk) by its content.
Upstream differences that did not change what the downstream run read did not propagate: they are
listed as `no_effect`, never as causes.

Pure functions over the `LineageStore` contract, so both stores answer alike; `prune` and
`visible` let the API apply a token's scope to everything read.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import Field

from provgraph.events.errors import ConfigError, NotFound
from provgraph.graph.contract import DEFAULT_DEPTH, LineageStore
from provgraph.graph.ids import NodeId, dataset_node_id, parse_node_id
from provgraph.graph.views import DatasetRef, Direction, LineageGraph, RunView, View

MAX_DIFF_RUNS = 500
"""Runs read per side; a larger upstream graph is cut and the answer flagged partial."""
ENVIRONMENT = ("image", "python", "packages_digest")
"""Runtime facts that make a different environment (process ids, hosts and times differ by nature)."""

CauseKind = Literal["code", "param", "input", "environment", "structure", "unexplained"]


class Cause(View):
    kind: CauseKind
    job: str = Field(description="The job's name ('' for an artifact no run produced)")
    namespace: str = ""
    key: str = Field("", description="The param, input binding or environment fact")
    a: Any = None
    b: Any = None
    run_a: str | None = None
    run_b: str | None = None

    def text(self) -> str:
        """The cause in a few words, values shortened (`to_json` keeps them whole)."""
        who = f"{self.job}'s " if self.job else ""
        if self.kind == "param":
            return f"{who}param {self.key} {_value(self.a)} → {_value(self.b)}"
        if self.kind in ("code", "environment"):
            what = "code" if self.kind == "code" else self.key
            return f"{who}{what} {_value(self.a)} → {_value(self.b)}"
        if self.kind == "input":
            change = _dataset_change(self.a, self.b)
            return f"{self.job} read {change}" if self.job else f"content {change}"
        if self.kind == "unexplained":
            return f"{self.job} wrote a different {self.key} from the same code, params, inputs and environment"
        return f"{who}{self.key}: {_value(self.a)} → {_value(self.b)}"


class CausalDiff(View):
    a: str
    b: str
    same_content: bool
    causes: list[Cause] = Field(default_factory=list)
    """The earliest divergences that changed B's content."""
    no_effect: list[Cause] = Field(default_factory=list)
    """Differences of aligned upstream runs whose outputs hashed the same: not causes."""
    partial: bool = False
    partial_reasons: list[str] = Field(default_factory=list)

    def summary(self) -> str:
        """One sentence: "B differs from A because …", or "same content"."""
        a, b = _label(self.a), _label(self.b)
        if self.same_content:
            return f"{b} and {a}: same content"
        if not self.causes:
            return f"{b} differs from {a}; no cause found in the walked lineage"
        return f"{b} differs from {a} because " + " and ".join(c.text() for c in self.causes)


@dataclass
class _Side:
    """One side's upstream graph: runs by id, who wrote each dataset version, what each run read."""

    runs: dict[str, RunView] = field(default_factory=dict)
    writers: dict[str, list[RunView]] = field(default_factory=dict)
    reads: dict[str, dict[str, str]] = field(default_factory=dict)

    def producer(self, version: str | None, reader: RunView | None) -> RunView | None:
        """The run that wrote what `reader` read: of the version's writers (several when they wrote
        identical bytes), the one that ended last before the reader started; else, as
        `produced_by`, the earliest started."""
        writers = self.writers.get(version or "", [])
        if reader is not None and reader.started_at is not None:
            start = reader.started_at
            before = [w for w in writers if w.ended_at is not None and w.ended_at <= start]
            if before:
                return max(before, key=lambda w: (w.ended_at or start, w.run_id))
        return min(writers, key=_started, default=None)


def _started(r: RunView) -> tuple[bool, str, str]:
    return (r.started_at is None, r.started_at.isoformat() if r.started_at else "", r.run_id)


def causal_diff(
    store: LineageStore,
    a: NodeId,
    b: NodeId,
    *,
    depth: int = DEFAULT_DEPTH,
    fan_out: int = 100,
    prune: Callable[[LineageGraph], LineageGraph] = lambda g: g,
    visible: Callable[[RunView], bool] = lambda r: True,
) -> CausalDiff:
    """Compare two dataset versions (or two runs) by the earliest differences upstream of them; a
    dataset named without a version is its latest. A node that does not exist, or that `visible`
    hides, is `NotFound` ("no such node")."""
    a, b = _pinned(store, a), _pinned(store, b)
    if {a.kind, b.kind} not in ({"run"}, {"datasetVersion"}):
        raise ConfigError("diff compares two dataset versions (dataset:<ns>:<name>@<version>, store://…) or two runs")
    starts: list[RunView] = []
    for n in (a, b):
        if n.kind == "run":
            view = store.run(n.key[0])
            if view is None or not visible(view):
                raise NotFound(f"no such node: {n}")
            starts.append(view)
        elif store.dataset_version(*n.key) is None:
            raise NotFound(f"no such node: {n}")
    reasons: list[str] = []
    differ = _Differ(*(_walk(store, n, depth, fan_out, prune, visible, reasons) for n in (a, b)))
    same = differ.start(a, b, starts)
    return CausalDiff(
        a=str(a),
        b=str(b),
        same_content=same,
        causes=differ.causes,
        no_effect=differ.quiet,
        partial=bool(reasons),
        partial_reasons=sorted(set(reasons)),
    )


def _pinned(store: LineageStore, node: NodeId) -> NodeId:
    if node.kind != "dataset":
        return node
    latest = store.latest_version(*node.key)
    if latest is None:
        raise NotFound(f"no such node: {node}")
    return NodeId.dataset(latest.namespace, latest.name, latest.version)


def _walk(
    store: LineageStore,
    node: NodeId,
    depth: int,
    fan_out: int,
    prune: Callable[[LineageGraph], LineageGraph],
    visible: Callable[[RunView], bool],
    reasons: list[str],
) -> _Side:
    graph = prune(store.lineage(node, Direction.UPSTREAM, depth, fan_out))
    reasons += graph.partial_reasons
    side = _Side()
    run_ids = [n.id.removeprefix("run:") for n in graph.nodes if n.kind == "run"]
    if len(run_ids) > MAX_DIFF_RUNS:
        reasons.append("runs")
        run_ids = run_ids[:MAX_DIFF_RUNS]
    for run_id in run_ids:
        view = store.run(run_id)
        if view is not None and visible(view):
            side.runs[run_id] = view
    for e in sorted(graph.edges, key=lambda e: (e.kind, e.source, e.target)):
        writer = side.runs.get(e.source.removeprefix("run:"))
        if writer is None:
            continue
        if e.kind == "WROTE":
            side.writers.setdefault(e.target, []).append(writer)
        elif e.kind == "READ":
            name = parse_node_id(e.target).key[1]
            side.reads.setdefault(writer.run_id, {}).setdefault(e.binding or name, e.target)
    return side


class _Differ:
    """Walks aligned pairs down from the start. A pair whose output differed (`effect`) adds to
    `causes`; a pair that wrote the same bytes on both sides adds its differences to `quiet`."""

    def __init__(self, a: _Side, b: _Side) -> None:
        self.a, self.b = a, b
        self.causes: list[Cause] = []
        self.quiet: list[Cause] = []
        self.seen: set[tuple[str, str]] = set()

    def start(self, a: NodeId, b: NodeId, runs: list[RunView]) -> bool:
        """Explain the two start nodes; True when they hold the same content."""
        if runs:
            ra, rb = runs
            same = ra.run_id == rb.run_id or (bool(ra.outputs) and _outputs(ra) == _outputs(rb))
            self._pair(ra, rb, effect=not same, output="output")
            return same
        ida, idb = (dataset_node_id(*n.key) for n in (a, b))
        if a.key[2] == b.key[2] and a.key[2] != "unversioned":
            return True
        self._input(None, None, "", ida, idb, effect=True)
        return False

    def _pair(self, ra: RunView, rb: RunView, *, effect: bool, output: str) -> None:
        """This aligned pair's own differences, then its inputs'; a pair whose output differed
        with no difference found is `unexplained` (non-deterministic, or a cut walk)."""
        if (ra.run_id, rb.run_id) in self.seen or ra.run_id == rb.run_id:
            return
        self.seen.add((ra.run_id, rb.run_id))
        sink = self.causes if effect else self.quiet
        before = len(sink)
        sink += _local(ra, rb)
        reads_a, reads_b = self.a.reads.get(ra.run_id, {}), self.b.reads.get(rb.run_id, {})
        for binding in dict.fromkeys([*reads_a, *reads_b]):
            self._input(ra, rb, binding, reads_a.get(binding), reads_b.get(binding), effect=effect)
        if effect and len(sink) == before:
            sink.append(
                Cause(
                    kind="unexplained",
                    job=ra.job_name,
                    namespace=ra.namespace,
                    key=output,
                    run_a=ra.run_id,
                    run_b=rb.run_id,
                )
            )

    def _input(
        self, ra: RunView | None, rb: RunView | None, binding: str, da: str | None, db: str | None, *, effect: bool
    ) -> None:
        """An input of an aligned pair (or the two start artifacts): when runs of one job wrote
        both versions, that pair explains it (only quietly if the versions are equal); else a
        differing root input is a cause by its content, and a different producer a structural one."""
        pa, pb = self.a.producer(da, ra), self.b.producer(db, rb)
        job, namespace = (ra.job_name, ra.namespace) if ra is not None else ("", "")
        if pa is not None and pb is not None and (pa.namespace, pa.job_name) == (pb.namespace, pb.job_name):
            if pa.run_id == pb.run_id and da != db:  # one run wrote both: two of its outputs
                self._add(
                    effect,
                    Cause(
                        kind="structure",
                        job=pa.job_name,
                        namespace=pa.namespace,
                        key="output",
                        a=da,
                        b=db,
                        run_a=pa.run_id,
                        run_b=pb.run_id,
                    ),
                )
                return
            self._pair(pa, pb, effect=effect and da != db, output=_dataset_name(db or da or ""))
            return
        if da == db:
            return
        if pa is None and pb is None and da is not None and db is not None:
            self._add(effect, Cause(kind="input", job=job, namespace=namespace, key=binding, a=da, b=db))
            return
        both = da is not None and db is not None
        self._add(
            effect,
            Cause(
                kind="structure",
                job=job,
                namespace=namespace,
                key=f"{binding} produced by" if both else f"input {binding}",
                a=_job_of(pa) if both else da,
                b=_job_of(pb) if both else db,
                run_a=pa.run_id if pa else None,
                run_b=pb.run_id if pb else None,
            ),
        )

    def _add(self, effect: bool, cause: Cause) -> None:
        (self.causes if effect else self.quiet).append(cause)


def _local(ra: RunView, rb: RunView) -> list[Cause]:
    """The pair's own differences: code hash (or the function called in it), each param, each
    environment fact."""
    base = {"job": ra.job_name, "namespace": ra.namespace, "run_a": ra.run_id, "run_b": rb.run_id}
    out: list[Cause] = []
    if ra.code_hash != rb.code_hash:
        out.append(Cause(kind="code", key="code_hash", a=ra.code_hash, b=rb.code_hash, **base))
    elif ra.entrypoint != rb.entrypoint:
        out.append(Cause(kind="code", key="entrypoint", a=ra.entrypoint, b=rb.entrypoint, **base))
    for key in dict.fromkeys([*ra.params, *rb.params]):
        va, vb = ra.params.get(key), rb.params.get(key)
        if _canon(va) != _canon(vb):
            out.append(Cause(kind="param", key=key, a=va, b=vb, **base))
    for key in ENVIRONMENT:
        va, vb = ra.runtime.get(key), rb.runtime.get(key)
        if _canon(va) != _canon(vb):
            out.append(Cause(kind="environment", key=key, a=va, b=vb, **base))
    return out


def _outputs(r: RunView) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for d in r.outputs:
        if not d.attempted:
            out.setdefault(d.binding or d.name, []).append(_ref(d))
    return {k: sorted(v) for k, v in out.items()}


def _ref(d: DatasetRef) -> str:
    return dataset_node_id(d.namespace, d.name, d.version)


def _job_of(r: RunView | None) -> str | None:
    return f"{r.namespace}/{r.job_name}" if r is not None else None


def _canon(v: Any) -> str:
    return json.dumps(v, sort_keys=True, default=str)


def _short(text: str) -> str:
    """`sha256:0123456789ab…` for a digest, the text itself otherwise."""
    algo, sep, hexd = text.partition(":")
    return f"{algo}:{hexd[:12]}…" if sep and algo == "sha256" and len(hexd) > 12 else text


def _value(v: Any) -> str:
    if v is None:
        return "unset"
    return _short(v) if isinstance(v, str) else _canon(v)


def _dataset_name(node: str) -> str:
    name = parse_node_id(node).key[1]
    return name.rstrip("/").rsplit("/", 1)[-1] or name


def _dataset_change(a: str | None, b: str | None) -> str:
    """`raw.csv sha256:ab… → sha256:cd…`, or both names when the dataset itself changed."""
    if a is None or b is None:
        return f"{_label(a) if a else 'nothing'} → {_label(b) if b else 'nothing'}"
    ka, kb = parse_node_id(a).key, parse_node_id(b).key
    if ka[:2] == kb[:2]:
        return f"{_dataset_name(a)} {_short(ka[2])} → {_short(kb[2])}"
    return f"{_label(a)} → {_label(b)}"


def _label(node: str) -> str:
    """A node as people name it: `model@sha256:0123…` or `run 1f2e…`."""
    parsed = parse_node_id(node)
    if parsed.kind == "run":
        return f"run {parsed.key[0]}"
    version = f"@{_short(parsed.key[2])}" if parsed.kind == "datasetVersion" else ""
    return _dataset_name(node) + version
