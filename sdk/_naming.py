"""OpenLineage dataset naming for the URIs users pass, and provgraph's own `store://` URIs.

/abs/path or file:///abs/path   -> namespace "file",           name "/abs/path"
s3://bucket/key (gs, az, ...)   -> namespace "s3://bucket",    name "key"
https://host/path               -> namespace "https://host",   name "/path"
memory://path                   -> namespace "memory",         name "/path"
store://project/key[@version]   -> namespace "store://project", name "key" (a logged artifact)
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from provgraph.events.errors import ConfigError, NotFound

if TYPE_CHECKING:
    from provgraph.graph.contract import LineageStore

STORE_SCHEME = "store"
_RUN_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._\-]{0,127}")
"""An MLRun `@uid`: a run id (provgraph's `context.uid`)."""
_PATH_NAMED = {"file", "local", "memory"}


@dataclass(frozen=True, slots=True)
class StoreRef:
    """`store://<project>/<key>[@<version>]`: an artifact logged by a run, optionally pinned; or MLRun's
    `…@<uid>`: the version the run `producer` wrote (see `version_of`)."""

    project: str
    key: str
    version: str | None = None
    producer: str | None = None

    @property
    def namespace(self) -> str:
        return f"{STORE_SCHEME}://{self.project}"

    def __str__(self) -> str:
        at = self.version or self.producer
        return f"{self.namespace}/{self.key}" + (f"@{at}" if at else "")


MLRUN_STORE_KINDS = ("artifacts", "datasets", "models")
"""MLRun's `store://<kind>/<project>/<key>[:tag][@uid]` URIs name the same artifacts as provgraph's."""


def parse_store_uri(uri: str) -> StoreRef:
    """provgraph's `store://<project>/<key>[@<version>]`, or MLRun's `store://<kind>/<project>/<key>[:tag][@uid]`
    (kind artifacts, datasets or models; three or more segments). MLRun's `@uid` (the producing run's
    id, not a content hash) becomes `producer`; a tag other than `latest` is refused (not supported yet)."""
    rest = uri[len(f"{STORE_SCHEME}://") :]
    project, _, key = rest.partition("/")
    mlrun_form = project in MLRUN_STORE_KINDS and "/" in key
    if mlrun_form:
        project, _, key = key.partition("/")
    version = producer = None
    if "@" in key:
        key, _, version = key.rpartition("@")
    if mlrun_form:
        key, _, tag = key.partition(":")
        if tag not in ("", "latest"):
            raise ConfigError(
                f"artifact URI {uri!r}: tags are not supported yet (only :latest); pin @sha256:<hash> or @<run uid>"
            )
        if version and not version.startswith("sha256:"):
            if not _RUN_ID.fullmatch(version):
                raise ConfigError(f"artifact URI {uri!r}: @{version[:80]!r} is neither @sha256:<hash> nor a run uid")
            version, producer = None, version
    if not project or not key:
        raise ConfigError(f"bad artifact URI {uri!r}: expected store://<project>/<key>[@<version>]")
    return StoreRef(project, key, version or None, producer)


def version_of(ref: StoreRef, graph: LineageStore) -> str | None:
    """The content hash `ref` names: its pinned version; for MLRun's `@<uid>` the version that run
    wrote under the key (it must have completed and written exactly one); else the latest (None if none)."""
    if ref.version is not None:
        return ref.version
    if ref.producer is None:
        latest = graph.latest_version(ref.namespace, ref.key)
        return latest.version if latest else None
    run = graph.run(ref.producer)
    if run is None:
        raise NotFound(f"artifact URI {ref}: no run {ref.producer!r} in the graph")
    mine = [o for o in run.outputs if (o.namespace, o.name) == (ref.namespace, ref.key)]
    written = sorted({o.version for o in mine if not o.attempted})
    if not written:
        why = f"did not complete ({run.state.value}), so it wrote nothing" if mine else "has no such output"
        raise NotFound(f"artifact URI {ref}: run {ref.producer} {why} under {ref.key!r} in project {ref.project!r}")
    if len(written) > 1:
        raise ConfigError(
            f"artifact URI {ref}: run {ref.producer} wrote {ref.key!r} {len(written)} times; pin one of "
            + ", ".join(f"@{v}" for v in written)
        )
    return written[0]


def is_store_uri(uri: str) -> bool:
    return uri.startswith(f"{STORE_SCHEME}://")


def normalise(uri: str) -> str:
    """Local paths become absolute (so the same file always has the same dataset name)."""
    if "://" not in uri:
        return os.path.abspath(os.path.expanduser(uri))
    if uri.startswith("file://"):
        return os.path.abspath(uri[len("file://") :])
    return uri


def dataset_identity(uri: str) -> tuple[str, str]:
    """(namespace, name) of the dataset a URI points at."""
    if is_store_uri(uri):
        ref = parse_store_uri(uri)
        return ref.namespace, ref.key
    uri = normalise(uri)
    if "://" not in uri:
        return "file", uri
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
