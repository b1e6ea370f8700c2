"""Stable, parseable node ids shared by the CLI, the API and both stores.

    run:<run id>
    job:<namespace>:<name>
    dataset:<namespace>:<name>                 every version of a dataset
    dataset:<namespace>:<name>@<version>       one dataset version (version = sha256:<hex> or unversioned)
    column:<namespace>:<name>#<field>          one column of a dataset (`%` and `#` in the field escaped)

A namespace may itself contain "://" (e.g. `s3://bucket`), so the namespace ends at the first
":" that is not the start of "://" (`events.id_text`). A name may contain "@"; only a trailing
"@<version>" without "/" is read as a version.

Every id is built here (`NodeId`, or the `*_node_id` functions where a store makes many of them).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal, Protocol

from provgraph.events.errors import ConfigError
from provgraph.events.id_text import split_namespace

NodeKind = Literal["run", "job", "dataset", "datasetVersion"]

RUN_PREFIX = "run:"


def run_node_id(run_id: str) -> str:
    return RUN_PREFIX + run_id


def job_node_id(namespace: str, name: str) -> str:
    return f"job:{namespace}:{name}"


def dataset_node_id(namespace: str, name: str, version: str | None = None) -> str:
    """A dataset's id, or one version's when `version` is given."""
    base = f"dataset:{namespace}:{name}"
    return base if version is None else f"{base}@{version}"


def column_node_id(dataset: str, field: str) -> str:
    """A column's id from its dataset's id (`dataset:<ns>:<name>`); the field is escaped, so the
    last `#` always ends the dataset's name and no two columns share an id."""
    escaped = field.replace("%", "%25").replace("#", "%23")
    return f"column:{dataset.removeprefix('dataset:')}#{escaped}"


def split_runs(node_ids: Iterable[str]) -> tuple[list[str], list[str]]:
    """The run ids of the runs among `node_ids`, and the other node ids, each in order."""
    runs: list[str] = []
    others: list[str] = []
    for node_id in node_ids:
        if node_id.startswith(RUN_PREFIX):
            runs.append(node_id[len(RUN_PREFIX) :])
        else:
            others.append(node_id)
    return runs, others


def as_run_id(text: str) -> str:
    """A run id given bare or as its node id (`run:<id>`): users may type either."""
    return text.removeprefix(RUN_PREFIX)


@dataclass(frozen=True, slots=True)
class NodeId:
    kind: NodeKind
    key: tuple[str, ...]

    def __str__(self) -> str:
        if self.kind == "run":
            return run_node_id(self.key[0])
        if self.kind == "job":
            return job_node_id(*self.key)
        return dataset_node_id(*self.key)

    @staticmethod
    def run(run_id: str) -> NodeId:
        return NodeId("run", (run_id,))

    @staticmethod
    def job(namespace: str, name: str) -> NodeId:
        return NodeId("job", (namespace, name))

    @staticmethod
    def dataset(namespace: str, name: str, version: str | None = None) -> NodeId:
        if version is None:
            return NodeId("dataset", (namespace, name))
        return NodeId("datasetVersion", (namespace, name, version))


def parse_node_id(text: str) -> NodeId:
    kind, sep, rest = text.partition(":")
    if not sep or not rest:
        raise ConfigError(
            f"not a node id: {text!r} (expected run:<id>, job:<ns>:<name> or dataset:<ns>:<name>[@<version>])"
        )
    if kind == "run":
        return NodeId.run(rest)
    if kind not in ("job", "dataset"):
        raise ConfigError(f"unknown node kind {kind!r} in {text!r} (expected run, job or dataset)")
    namespace, name = _split_namespace(rest, text)
    if kind == "job":
        return NodeId.job(namespace, name)
    base, at, version = name.rpartition("@")
    if at and base and version and "/" not in version:
        return NodeId.dataset(namespace, base, version)
    return NodeId.dataset(namespace, name)


class _Datasets(Protocol):
    def dataset(self, namespace: str, name: str) -> object | None: ...
    def dataset_version(self, namespace: str, name: str, version: str) -> object | None: ...


def as_recorded(node: NodeId, store: _Datasets, *, versioned: bool = True) -> NodeId:
    """`node` as the graph knows it: a dataset name may hold `@` (`db.t@v1`, `/p/a@b`), so the id
    `dataset:ns:a@b` is version `b` of `a` or the dataset `a@b`. The version reading stands when that
    version exists (or, with `versioned=False`, when dataset `a` does), else the whole name when such
    a dataset exists; otherwise `node` unchanged (the caller says it is not found)."""
    if node.kind != "datasetVersion":
        return node
    namespace, name, version = node.key
    split = store.dataset_version(namespace, name, version) if versioned else store.dataset(namespace, name)
    if split is None and store.dataset(namespace, whole := f"{name}@{version}") is not None:
        return NodeId.dataset(namespace, whole)
    return node


def _split_namespace(rest: str, text: str) -> tuple[str, str]:
    """`<namespace>:<name>` as `events.id_text.split_namespace` reads it, or `ConfigError`."""
    split = split_namespace(rest)
    if split is None:
        raise ConfigError(f"node id {text!r} has no name after its namespace (expected <namespace>:<name>)")
    namespace, name = split
    if not namespace or not name:
        raise ConfigError(f"node id {text!r} needs both a namespace and a name")
    return namespace, name
