"""Registered functions: a handler with its source, requirements, image, default params and
description, versioned by content hash, recorded as events (docs/DESIGN.md "Functions").

A registration is a completed run of job `provgraph.function.register` whose one output is the
function's definition, `store://<project>/functions/<name>@<sha256 of the definition>` (canonical
JSON, stored content-addressed beside its source snapshot). So the log and both graph stores hold
every version, who registered it and when, with no new event type or store table; `function list`
and `function show` read them back; `function://name[@sha256:…]` runs one, recording the
definition's hash in the run's `function` (as `hub://` records its hub item).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from provgraph._backend import Backend
from provgraph._code import Handler, load_from_file
from provgraph._emitter import RunEmitter
from provgraph._hub import FILE_NAME, MAX_SOURCE_BYTES, check_requirement, normalize_name, signature
from provgraph._naming import run_project
from provgraph.events.artifacts import check_digest
from provgraph.events.atomic import write_atomic
from provgraph.events.errors import ConfigError, NotFound
from provgraph.events.facets import (
    ArtifactDatasetFacet,
    DatasetVersionDatasetFacet,
    FunctionRef,
    RuntimeRunFacet,
)
from provgraph.events.model import Dataset, DatasetFacets
from provgraph.graph.contract import RunFilter

REGISTER_JOB = "provgraph.function.register"
PREFIX = "function://"
FORMAT = "provgraph-function+json"
_URI = re.compile(r"function://([A-Za-z0-9][A-Za-z0-9_-]{0,127})(?:@(sha256:[0-9a-f]{64}))?")


def dataset_name(name: str) -> str:
    return f"functions/{normalize_name(name)}"


@dataclass(frozen=True)
class Registered:
    name: str
    function_hash: str
    definition: dict[str, Any]
    run_id: str | None = None
    registered_at: str | None = None


def register(
    spec: str,
    backend: Backend,
    *,
    name: str | None = None,
    project: str | None = None,
    description: str = "",
    requirements: list[str] | None = None,
    image: str | None = None,
    params: dict[str, Any] | None = None,
) -> Registered:
    """Register `file.py:function`; registering the same definition again records nothing new."""
    from provgraph._run import new_run_id

    path_text, sep, handler = spec.rpartition(":")
    path = Path(path_text).expanduser()
    if not sep or not handler.isidentifier() or not path.is_file():
        raise ConfigError(f"{spec!r} must name an existing path/to/file.py:function")
    if not FILE_NAME.fullmatch(path.name):
        raise ConfigError(f"{path.name!r} is not a Python file name")
    source = path.read_bytes()
    if len(source) > MAX_SOURCE_BYTES:
        raise ConfigError(f"{path} is larger than {MAX_SOURCE_BYTES} bytes")
    summary, _ = signature(source, handler)  # refuses a file without that function; never imports it
    try:
        json.dumps(params or {}, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"default params must be JSON values: {exc}") from exc
    code_hash, _ = backend.artifacts.put_bytes(source)
    definition: dict[str, Any] = {
        "name": normalize_name(name or handler),
        "description": description or summary,
        "filename": path.name,
        "handler": handler,
        "code_hash": code_hash,
        "requirements": [check_requirement(r) for r in requirements or []],
        "image": image,
        "params": params or {},
        "kind": "job",
    }
    body = json.dumps(definition, sort_keys=True, separators=(",", ":")).encode()
    function_hash, size = backend.artifacts.put_bytes(body)
    project = run_project(project, backend.settings.project)
    latest = backend.graph().latest_version(f"store://{project}", dataset_name(definition["name"]))
    if latest is not None and latest.version == function_hash:
        return Registered(definition["name"], function_hash, definition)
    run_id = new_run_id()
    emitter = RunEmitter(backend.transport, run_id=run_id, namespace=project, job_name=REGISTER_JOB, code=None)
    ref = _ref(definition, function_hash)
    emitter.start({"name": definition["name"]}, RuntimeRunFacet(kind="local", function=ref))
    output = Dataset(
        namespace=f"store://{project}",
        name=dataset_name(definition["name"]),
        facets=DatasetFacets(
            version=DatasetVersionDatasetFacet(dataset_version=function_hash),
            artifact=ArtifactDatasetFacet(
                kind="artifact", key=dataset_name(definition["name"]), size=size, format=FORMAT
            ),
        ),
    )
    emitter.running(outputs=[output])
    emitter.complete({"name": definition["name"], "function_hash": function_hash})
    backend.transport.flush()
    return Registered(definition["name"], function_hash, definition, run_id)


def _ref(definition: dict[str, Any], function_hash: str) -> FunctionRef:
    return FunctionRef(
        name=definition["name"],
        version=function_hash,
        function_hash=function_hash,
        code_hash=definition["code_hash"],
        requirements=definition["requirements"],
    )


def list_functions(backend: Backend, project: str | None = None) -> list[Registered]:
    """The newest version of each registered function of `project`, by name."""
    project = run_project(project, backend.settings.project)
    newest: dict[str, Registered] = {}
    for run in backend.graph().runs(RunFilter(project=project, job=REGISTER_JOB), first=10_000):
        name, digest = run.results.get("name"), run.results.get("function_hash")
        if run.state == "COMPLETE" and isinstance(name, str) and isinstance(digest, str) and name not in newest:
            started = run.started_at.isoformat() if run.started_at else None
            newest[name] = Registered(name, digest, {}, run.run_id, started)
    return [newest[k] for k in sorted(newest)]


def show(name: str, backend: Backend, project: str | None = None, version: str | None = None) -> Registered:
    """A registered function's definition: the newest, or `version` (its hash)."""
    project = run_project(project, backend.settings.project)
    if version is None:
        found = backend.graph().latest_version(f"store://{project}", dataset_name(name))
        if found is None:
            raise NotFound(f"no function {normalize_name(name)!r} in project {project} (provgraph function register)")
        version = found.version
    digest = check_digest(version)
    if not backend.artifacts.exists(digest):
        raise NotFound(f"function {normalize_name(name)} {digest} is not in the artifact store")
    definition = json.loads(backend.artifacts.get_bytes(digest))
    if not isinstance(definition, dict) or definition.get("name") != normalize_name(name):
        raise ConfigError(f"{digest} is not the definition of function {normalize_name(name)!r}")
    return Registered(definition["name"], digest, definition)


@dataclass(frozen=True)
class Resolved:
    registered: Registered
    source: bytes

    @property
    def entrypoint(self) -> str:
        return f"{self.registered.definition['filename']}:{self.registered.definition['handler']}"

    def ref(self, *, isolated: bool = False) -> FunctionRef:
        return _ref(self.registered.definition, self.registered.function_hash).model_copy(update={"isolated": isolated})

    def load(self, backend: Backend) -> Handler:
        """Import the verified source (written under `<home>/functions/<code hash>/` for tracebacks)."""
        d = self.registered.definition
        path = backend.settings.home / "functions" / str(d["code_hash"]).removeprefix("sha256:") / d["filename"]
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.is_file() or path.read_bytes() != self.source:
            write_atomic(path, self.source)
        return load_from_file(path, d["handler"], f"function://{self.registered.name}", source=self.source)


def resolve(uri: str, backend: Backend) -> Resolved:
    """`function://name[@sha256:…]`: the definition (newest, or that version) and its verified source."""
    m = _URI.fullmatch(uri)
    if m is None:
        raise ConfigError(f"{uri!r} is not a function URI (function://name[@sha256:…])")
    found = show(m.group(1), backend, version=m.group(2))
    d = found.definition
    if not FILE_NAME.fullmatch(str(d.get("filename"))) or not str(d.get("handler")).isidentifier():
        raise ConfigError(f"function {found.name}: malformed definition {found.function_hash}")
    source = backend.artifacts.get_bytes(check_digest(str(d.get("code_hash"))))  # verified against its hash
    return Resolved(found, source)
