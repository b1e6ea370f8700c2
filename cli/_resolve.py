"""From what a user types to the node it names: any node the API can name, the CLI can name.

In order:
    --namespace NS --name NAME     the dataset or job with that name (both exist: ambiguous)
    run:… job:… dataset:…          a node id, verbatim (namespaces may hold `://`: duckdb://, s3://);
                                   other text with `:` but no `://` is read as a node id too
    store://project/key[@version]  a logged artifact
    an existing local path, or one starting with / ./ ../ ~     a local file (namespace `file`)
    anything else                  a run id or its unique prefix, or a job or dataset name fragment
                                   (`search`); an exact run id or name wins over fragments

Several matches are listed on stderr and the command exits 1 (`Ambiguous`); none is `NotFound`.
"""

from __future__ import annotations

from pathlib import Path

import typer

from provgraph._naming import is_store_uri, parse_store_uri, resolve_version
from provgraph.cli._app import UsageProblem, err_console
from provgraph.events.errors import ConfigError, NotFound
from provgraph.graph.contract import LineageStore
from provgraph.graph.ids import NodeId, as_recorded, parse_node_id

NAMESPACE = typer.Option("--namespace", help="With --name: the dataset (or job) in this namespace")
NAME = typer.Option("--name", help="With --namespace: its name")

NODE_PREFIXES = ("run:", "job:", "dataset:")
MAX_CANDIDATES = 20


class Ambiguous(ConfigError):
    """The text names several nodes (they were listed on stderr); exit 1."""


def _pick(text: str, candidates: list[NodeId]) -> NodeId:
    unique = list(dict.fromkeys(candidates))
    if not unique:
        raise NotFound(f"nothing matches {text!r} (try `provgraph search`)")
    if len(unique) == 1:
        return unique[0]
    for node in unique[:MAX_CANDIDATES]:
        err_console.print(f"  {node}", highlight=False, soft_wrap=True, markup=False)
    more = "" if len(unique) <= MAX_CANDIDATES else f" (first {MAX_CANDIDATES} listed)"
    raise Ambiguous(f"{text!r} matches {len(unique)} nodes{more}; pass one of the ids listed above")


def check_target(target: str | None, namespace: str | None, name: str | None) -> None:
    """Refuse a call naming no node (or two ways at once) before any store is opened."""
    if namespace is not None or name is not None:
        if target is not None or namespace is None or name is None:
            raise UsageProblem("give either a target or both --namespace and --name")
    elif not target:
        raise UsageProblem("give a target (a node id, a run id, a name, a path) or --namespace and --name")


def resolve(store: LineageStore, target: str | None, namespace: str | None = None, name: str | None = None) -> NodeId:
    """The node `target` (or `--namespace`/`--name`) names in `store`."""
    check_target(target, namespace, name)
    if namespace is not None and name is not None:
        found = [
            n
            for n, ok in (
                (NodeId.dataset(namespace, name), store.dataset(namespace, name)),
                (NodeId.job(namespace, name), store.job(namespace, name)),
            )
            if ok
        ]
        return _pick(f"{namespace} {name}", found)
    assert target is not None  # check_target
    if target.startswith(NODE_PREFIXES) or (":" in target and "://" not in target):
        return as_recorded(parse_node_id(target), store)  # a node id, or a clear error about one
    if is_store_uri(target):
        ref = parse_store_uri(target)
        pinned = resolve_version(ref, store) if ref.producer or ref.alias else ref.version
        return NodeId.dataset(ref.namespace, ref.key, pinned)
    path = Path(target).expanduser()
    if target.startswith(("/", "./", "../", "~")) or path.exists():
        return NodeId.dataset("file", str(path.resolve()))
    runs = [NodeId.run(r) for r in store.run_ids_with_prefix(target, MAX_CANDIDATES + 1)]
    named = [parse_node_id(i) for i in store.search(target, ("job", "dataset"), MAX_CANDIDATES + 1)]
    exact = [n for n in runs if n.key[0] == target] + [n for n in named if n.key[1] == target]
    return _pick(target, exact if len(exact) == 1 else runs + named)


def resolve_run(store: LineageStore, text: str) -> str:
    """A run id from `run:<id>`, an id, or a unique prefix of one."""
    bare = text.removeprefix("run:")
    ids = store.run_ids_with_prefix(bare, MAX_CANDIDATES + 1)
    if bare in ids:
        return bare
    if not ids:
        raise NotFound(f"no run {text!r} (see `provgraph runs`)")
    return _pick(text, [NodeId.run(i) for i in ids]).key[0]
