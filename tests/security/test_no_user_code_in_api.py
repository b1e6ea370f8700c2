"""The API never runs user code, and nothing reads outside its folder or trusts unverified bytes.

- an artifact name from the graph is checked before any path is built from it;
- a code snapshot is executed only from bytes that hash to its name, whatever the on-disk cache holds;
- the `reproduce` mutation runs the handler in another process with a minimal environment;
- provgraph's own files are no input, so the server never opens and closes a database file behind
  SQLite's back, and a token revoked or created by the CLI takes effect in the running server.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

import provgraph as pg
from provgraph._code import code_cache, handler_from_snapshot
from provgraph.api.app import create_app
from provgraph.api.auth import TokenStore
from provgraph.api.server import ServerThread
from provgraph.events.artifacts import ArtifactStore
from provgraph.events.errors import ConfigError, ContractError
from provgraph.events.facets import CodeJobFacet, DatasetVersionDatasetFacet
from provgraph.events.model import Dataset, DatasetFacets, EventType, Job, JobFacets, Run, RunEvent
from provgraph.runtimes.process import RUN_SETTINGS

BIN = Path(sys.executable).parent / "provgraph"
MUTATION = "mutation($id: ID!) { reproduce(runId: $id) { runId state verdict } }"
RUN = "query($id: ID!) { run(id: $id) { state error { message } outputs { version } reproduces { verdict } } }"
TRAVERSAL = "sha256:/../../../../tokens.db"


def who_am_i(ctx: pg.Context) -> None:
    ctx.log_artifact("who", body=json.dumps({"pid": os.getpid(), "env": sorted(os.environ)}))


def copy(ctx: pg.Context, data: pg.DataItem) -> None:
    ctx.log_artifact("copy", body=data.get())


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def forged_run(run_id: str, code: CodeJobFacet, namespace: str, name: str, version: str) -> RunEvent:
    """A COMPLETE run, as any token holder can POST one, reusing a real code snapshot."""
    return RunEvent(
        event_type=EventType.COMPLETE,
        event_time=datetime.now(UTC),
        run=Run(run_id=run_id),
        job=Job(namespace="default", name="copy", facets=JobFacets(code=code)),
        inputs=[
            Dataset(
                namespace=namespace,
                name=name,
                facets=DatasetFacets(version=DatasetVersionDatasetFacet(dataset_version=version)),
            )
        ],
    )


def code_of(backend: pg.Backend, run_id: str) -> CodeJobFacet:
    run = backend.graph().run(run_id)
    assert run is not None and run.job_version is not None and run.job_version.entrypoint is not None
    jv = run.job_version
    return CodeJobFacet(code_hash=jv.code_hash, entrypoint=jv.entrypoint)


def test_artifact_names_are_checked_before_any_path_is_built(settings: pg.Settings) -> None:
    store = ArtifactStore(settings.artifact_url)
    for bad in (TRAVERSAL, "sha256:" + "A" * 64, "md5:" + "a" * 64, "sha256:" + "a" * 63, "sha256:" + "a" * 64 + "/"):
        with pytest.raises(ConfigError, match="not an artifact name"):
            store.exists(bad)
        with pytest.raises(ConfigError, match="not an artifact name"):
            store.uri(bad)


def test_a_traversal_version_never_becomes_a_path(backend: pg.Backend, tmp_path: Path) -> None:
    """The write rules keep such a version out of the record, and the artifact store refuses the name
    before building any path, whoever asks (a graph written by an older version, a caller's URI)."""
    (tmp_path / "in.txt").write_text("x")
    original = pg.run(copy, inputs={"data": str(tmp_path / "in.txt")}, backend=backend).raise_for_state()
    forged = forged_run("forged", code_of(backend, original.run_id), "store://default", "k", TRAVERSAL)
    with pytest.raises(ContractError, match=re.escape(f"version {TRAVERSAL!r} is not a content hash")):
        backend.transport.emit(forged)
    assert backend.graph().run("forged") is None
    for use in (backend.artifacts.exists, backend.artifacts.get_bytes, backend.artifacts.uri):
        with pytest.raises(ConfigError, match=re.escape(f"not an artifact name: {TRAVERSAL!r}")):
            use(TRAVERSAL)
    # and as an input URI a run is given: refused before the run starts
    with pytest.raises(ConfigError, match=re.escape(f"not an artifact name: {TRAVERSAL!r}")):
        pg.run(copy, inputs={"data": f"store://default/k@{TRAVERSAL}"}, backend=backend)


def test_a_tampered_artifact_is_refused_on_read(backend: pg.Backend, tmp_path: Path) -> None:
    (tmp_path / "in.txt").write_text("original")
    first = pg.run(copy, inputs={"data": str(tmp_path / "in.txt")}, backend=backend).raise_for_state()
    digest = sha(b"original")
    Path(backend.artifacts.uri(digest)).write_bytes(b"tampered")
    with pytest.raises(ConfigError, match=f"hash to {sha(b'tampered')}, not {digest}"):
        backend.artifacts.get_bytes(digest)
    again = pg.run(copy, inputs={"data": first.outputs["copy"]}, backend=backend)
    assert again.state == "FAIL"
    assert again.error == (
        f"CorruptArtifact: input 'data': the bytes at '{first.outputs['copy']}' hash to {sha(b'tampered')},"
        f" not the pinned {digest}"
    )


def test_a_tampered_code_cache_is_rewritten_and_never_executed() -> None:
    source = b"def handler():\n    return 'original'\n# " + os.urandom(8).hex().encode() + b"\n"  # a fresh hash
    digest = sha(source)
    assert handler_from_snapshot(source, digest, "mod.py:handler")() == "original"
    cached = code_cache() / digest.removeprefix("sha256:") / "mod.py"
    cached.write_bytes(b"def handler():\n    return 'tampered'\n")
    assert handler_from_snapshot(source, digest, "mod.py:handler")() == "original"
    assert cached.read_bytes() == source
    assert oct(code_cache().stat().st_mode & 0o777) == "0o700"
    with pytest.raises(ConfigError, match="code snapshot is corrupt"):
        handler_from_snapshot(b"def handler(): return 1\n", digest, "mod.py:handler")


@pytest.fixture
def served(settings: pg.Settings) -> Iterator[tuple[str, str]]:
    tokens = TokenStore(settings.tokens_db)
    token = tokens.create(["default"])[1]
    tokens.close()
    with ServerThread(create_app(settings)) as url:
        yield url, token


def call(url: str, token: str, query: str, **variables: Any) -> httpx.Response:
    return httpx.post(
        f"{url}/graphql",
        json={"query": query, "variables": variables},
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    )


def test_the_mutation_runs_the_handler_in_another_process_with_a_clean_env(
    settings: pg.Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Imported here, not at the top: this module is also `who_am_i`'s code snapshot, loaded by the
    # reproduction in its own process, where the `tests` package is not importable.
    from tests.helpers import wait_for

    monkeypatch.setenv("SERVER_SECRET", "s3cr3t")
    monkeypatch.setenv("PROVGRAPH_NEO4J_PASSWORD", "n30")
    backend = pg.Backend(settings)
    original = pg.run(who_am_i, backend=backend).raise_for_state()
    backend.close()
    tokens = TokenStore(settings.tokens_db)
    token = tokens.create(["default"])[1]
    tokens.close()
    on_host = settings.model_copy(update={"api_reproduce_on_host": True})  # the host-process path under test
    with ServerThread(create_app(on_host)) as url:
        started = time.monotonic()
        body = call(url, token, MUTATION, id=original.run_id).json()
        assert time.monotonic() - started < 10
        assert body["data"]["reproduce"]["state"] == "REQUESTED" and body["data"]["reproduce"]["verdict"] is None
        new = body["data"]["reproduce"]["runId"]

        def completed() -> dict[str, Any] | None:
            run: dict[str, Any] = call(url, token, RUN, id=new).json()["data"]["run"]
            assert run["state"] not in ("FAIL", "ABORT"), run
            return run if run["state"] == "COMPLETE" else None

        run = wait_for(f"the reproduction {new} to complete", completed)
    seen = json.loads(ArtifactStore(settings.artifact_url).get_bytes(run["outputs"][0]["version"]))
    assert seen["pid"] != os.getpid()
    allowed = {"PATH", "HOME", "LANG", "LC_CTYPE", "PROVGRAPH_CONFIG"}
    allowed |= {f"PROVGRAPH_{n.upper()}" for n in RUN_SETTINGS}
    assert set(seen["env"]) <= allowed, set(seen["env"]) - allowed
    assert run["reproduces"]["verdict"] == "DIVERGED"  # another pid: and said so


def provgraph(settings: pg.Settings, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PROVGRAPH_")}
    env["PROVGRAPH_HOME"] = str(settings.home)
    return subprocess.run([str(BIN), *args], capture_output=True, text=True, env=env, timeout=60, check=True)


def wait_for_status(url: str, token: str, status: int, within: float) -> float:
    """Seconds until the API answers `token` with `status` (at most `within`)."""
    from tests.helpers import wait_for  # not at the top: see test_the_mutation_runs_the_handler_in_…

    started = time.monotonic()
    wait_for(
        f"HTTP {status}",
        lambda: call(url, token, "{ runs(first: 1) { nodes { runId } } }").status_code == status,
        within,
        interval=0.05,
    )
    return time.monotonic() - started


@pytest.mark.slow
def test_own_files_are_no_input_and_cli_token_changes_reach_the_running_server(
    settings: pg.Settings, tmp_path: Path, served: tuple[str, str]
) -> None:
    url, token = served
    backend = pg.Backend(settings)
    (tmp_path / "in.txt").write_text("x")
    original = pg.run(copy, inputs={"data": str(tmp_path / "in.txt")}, backend=backend).raise_for_state()
    code = code_of(backend, original.run_id)
    # (this process serves the API: reading a database file here would itself drop the server's locks)
    for i, db in enumerate((settings.tokens_db, settings.events_db)):
        backend.transport.emit(forged_run(f"forged-{i}", code, "file", str(db), sha(b"forged")))
    link = tmp_path / "innocent.db"
    os.link(settings.tokens_db, link)  # a hard link is the same file
    backend.transport.emit(forged_run("forged-link", code, "file", str(link), sha(b"forged")))
    with pytest.raises(ConfigError, match="inside provgraph's own folder"):
        pg.run(copy, inputs={"data": str(settings.tokens_db)}, backend=backend)
    with pytest.raises(ConfigError, match="inside provgraph's own folder"):
        pg.run(copy, inputs={"data": str(link)}, backend=backend)
    backend.close()
    for run_id, db in (("forged-0", settings.tokens_db), ("forged-1", settings.events_db), ("forged-link", link)):
        body = call(url, token, MUTATION, id=run_id).json()
        assert body["data"] is None
        assert body["errors"][0]["message"] == (
            f"input {str(db)!r}: {str(db)!r} is inside provgraph's own folder {settings.home} (or one of its"
            " database files); provgraph never reads its own state as an input"
        )
    # the server's databases are intact: the CLI (another process) revokes and creates tokens
    assert call(url, token, "{ runs(first: 1) { nodes { runId } } }").status_code == 200
    token_id = token.split("_")[1]
    provgraph(settings, "token", "revoke", token_id)
    assert wait_for_status(url, token, 401, within=2) < 2
    fresh = provgraph(settings, "token", "create", "--project", "default").stdout.strip()
    assert wait_for_status(url, fresh, 200, within=2) < 2
    for suffix in ("-wal", "-shm"):
        assert Path(f"{settings.tokens_db}{suffix}").exists()
