"""OpenLineage dataset naming for the URIs users pass, and provgraph's own `store://` URIs.

/abs/path or file:///abs/path   -> namespace "file",           name "/abs/path"
s3://bucket/key (gs, az, ...)   -> namespace "s3://bucket",    name "key"
https://host/path               -> namespace "https://host",   name "/path"
memory://path                   -> namespace "memory",         name "/path"
store://project/key[@version]   -> namespace "store://project", name "key" (a logged artifact)
store://project/key:alias       -> the same, at the version the alias points at (`graph/tags.py`)
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from provgraph.events.errors import ConfigError, NotFound
from provgraph.events.states import ALIAS, ARTIFACT_KEY, PROJECT

if TYPE_CHECKING:
    from provgraph.graph.contract import LineageStore

STORE_SCHEME = "store"
_RUN_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._\-]{0,127}")
"""An MLRun `@uid`: a run id (provgraph's `context.uid`)."""
_PATH_NAMED = {"file", "local", "memory"}


@dataclass(frozen=True, slots=True)
class StoreRef:
    """`store://<project>/<key>[@<version>|:<alias>]`: an artifact logged by a run, optionally pinned to a
    version or named by an alias (`production`; `latest` is the newest version, as no alias); or MLRun's
    `…@<uid>`: the version the run `producer` wrote (see `resolve_version`)."""

    project: str
    key: str
    version: str | None = None
    alias: str | None = None
    producer: str | None = None

    @property
    def namespace(self) -> str:
        return f"{STORE_SCHEME}://{self.project}"

    def __str__(self) -> str:
        at = self.version or self.producer
        pin = f"@{at}" if at else f":{self.alias}" if self.alias else ""
        return f"{self.namespace}/{self.key}{pin}"


MLRUN_STORE_KINDS = ("artifacts", "datasets", "models")
"""MLRun's `store://<kind>/<project>/<key>[:tag][@uid]` URIs name the same artifacts as provgraph's."""


def parse_store_uri(uri: str) -> StoreRef:
    """provgraph's `store://<project>/<key>[@<version>|:<alias>]`, or MLRun's
    `store://<kind>/<project>/<key>[:tag][@uid]` (kind artifacts, datasets or models; three or more
    segments; the tag is an alias unless `@uid` pins). MLRun's `@uid` (the producing run's id, not a
    content hash) becomes `producer`. A `:suffix` of the key's last segment is an alias when it is one (`ALIAS`)."""
    rest = uri[len(f"{STORE_SCHEME}://") :]
    project, _, key = rest.partition("/")
    mlrun_form = project in MLRUN_STORE_KINDS and "/" in key
    if mlrun_form:
        project, _, key = key.partition("/")
    version = producer = None
    if "@" in key:
        key, _, version = key.rpartition("@")
    if mlrun_form and version and not version.startswith("sha256:"):
        if not _RUN_ID.fullmatch(version):
            raise ConfigError(f"artifact URI {uri!r}: @{version[:80]!r} is neither @sha256:<hash> nor a run uid")
        version, producer = None, version
    key, alias = _alias_of(key)
    if mlrun_form and (version or producer):
        alias = None  # MLRun's `key:tag@uid`: the uid pins, the tag only labels it
    if alias and version:
        raise ConfigError(f"artifact URI {uri!r}: name a version (@…) or an alias (:{alias}), not both")
    if not project or not key:
        raise ConfigError(f"bad artifact URI {uri!r}: expected store://<project>/<key>[@<version>|:<alias>]")
    return StoreRef(project, key, version or None, None if alias == "latest" else alias, producer)


def _alias_of(key: str) -> tuple[str, str | None]:
    """(key, alias) of `some/key:alias`; a colon not followed by an alias stays in the key."""
    head, sep, tail = key.rpartition(":")
    if sep and "/" not in tail and ALIAS.fullmatch(tail):
        return head, tail
    return key, None


def resolve_version(ref: StoreRef, graph: LineageStore) -> str:
    """The content hash `ref` names: its pinned version; for MLRun's `@<uid>` the version that run wrote
    under the key (it must have completed and written exactly one); else its alias's (`graph/tags.py`) or
    the newest. `NotFound` if there is none."""
    from provgraph.graph.tags import resolve

    if ref.version:
        return ref.version
    if ref.producer is not None:
        return _written_by(ref, ref.producer, graph)
    found = resolve(graph, ref.namespace, ref.key, ref.alias)
    if found is None:
        what = f"alias {ref.alias!r} of artifact" if ref.alias else "artifact"
        raise NotFound(f"no {what} {ref.key!r} in project {ref.project!r}")
    return found.version


def _written_by(ref: StoreRef, producer: str, graph: LineageStore) -> str:
    run = graph.run(producer)
    if run is None or run.namespace != ref.project:  # only its own project's runs write an artifact: say no more
        raise NotFound(f"artifact URI {ref}: no run {producer!r} in the graph")
    mine = [o for o in run.outputs if (o.namespace, o.name) == (ref.namespace, ref.key)]
    written = sorted({o.version for o in mine if not o.attempted})
    if not written:
        why = f"did not complete ({run.state.value}), so it wrote nothing" if mine else "has no such output"
        raise NotFound(f"artifact URI {ref}: run {producer} {why} under {ref.key!r} in project {ref.project!r}")
    if len(written) > 1:
        raise ConfigError(
            f"artifact URI {ref}: run {producer} wrote {ref.key!r} {len(written)} times; pin one of "
            + ", ".join(f"@{v}" for v in written)
        )
    return written[0]


def is_store_uri(uri: str) -> bool:
    return uri.startswith(f"{STORE_SCHEME}://")


def normalise(uri: str) -> str:
    """Local paths become absolute (so the same file always has the same dataset name); a trailing
    "/" stays, as in MLRun, where handlers read it as "a folder" (`dataset_identity` drops it)."""
    if "://" in uri and not uri.startswith("file://"):
        return uri
    path = os.path.abspath(os.path.expanduser(uri.removeprefix("file://")))
    return path + "/" if uri.endswith("/") and not path.endswith("/") else path


def dataset_identity(uri: str) -> tuple[str, str]:
    """(namespace, name) of the dataset a URI points at."""
    if is_store_uri(uri):
        ref = parse_store_uri(uri)
        return ref.namespace, ref.key
    uri = normalise(uri)
    if "://" not in uri:
        return "file", uri.rstrip("/") or "/"
    parts = urlsplit(uri)
    scheme = parts.scheme.lower()
    if scheme in _PATH_NAMED:
        return scheme, "/" + (parts.netloc + parts.path).lstrip("/")
    if not parts.netloc:
        raise ConfigError(f"cannot name the dataset at {uri!r}: no host or bucket")
    name = parts.path if scheme in ("http", "https") else parts.path.lstrip("/")
    return f"{scheme}://{parts.netloc}", name or "/"


def uri_of(namespace: str, name: str) -> str:
    """The URI a dataset identity came from: the inverse of `dataset_identity`."""
    if namespace == "file":
        return name
    if namespace in _PATH_NAMED:
        return f"{namespace}:/{name}"
    if namespace.startswith(("http://", "https://")):
        return namespace + name
    return f"{namespace}/{name}"


def run_project(project: str | None, default: str) -> str:
    """The project a run writes to (`project`, else the settings' `default`), refused unless `store://`
    URIs can carry it (`PROJECT`): its artifacts are `store://<project>/<key>`."""
    chosen = project or default
    if not PROJECT.fullmatch(chosen):
        raise ConfigError(
            f"project {chosen[:80]!r}: letters, digits, '.', '_' and '-', starting with a letter or digit,"
            " at most 128 characters"
        )
    return chosen


def check_artifact_key(key: str) -> str:
    """An artifact key `store://` URIs read back as itself (`ARTIFACT_KEY`), else `ConfigError`."""
    if not ARTIFACT_KEY.fullmatch(key):
        raise ConfigError(
            f"artifact key {key[:80]!r}: letters, digits, '.', '_' and '-' (each '/'-separated part starting"
            " with a letter or digit); ':' and '@' would read as an alias or a version"
        )
    return key
