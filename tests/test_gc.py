"""`provgraph gc`: bytes no live version references go, bytes still referenced stay (local store and real S3)."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest

import provgraph as pg
from provgraph._delete import delete, gc
from provgraph.events.artifacts import sha256_bytes

NOW = timedelta(0)


def log_three(ctx: pg.Context) -> None:
    ctx.log_artifact("a", body=b"shared bytes")
    ctx.log_artifact("b", body=b"shared bytes")  # the same content hash as `a`
    ctx.log_artifact("c", body=b"only c")


def _collect(backend: pg.Backend) -> None:
    shared, only_c = sha256_bytes(b"shared bytes"), sha256_bytes(b"only c")
    pg.run(log_three, backend=backend).raise_for_state()
    assert gc(backend, min_age=NOW).removed == []  # everything is referenced
    delete("artifact", "store://default/a", backend)
    assert gc(backend, min_age=NOW).removed == []  # `b` still references the shared bytes
    assert backend.artifacts.get_bytes(shared) == b"shared bytes"
    delete("artifact", f"store://default/c@{only_c}", backend)
    assert gc(backend, min_age=timedelta(hours=1)).removed == []  # too young to judge: maybe an upload under way
    dry = gc(backend, dry_run=True, min_age=NOW)
    assert [(o.digest, o.size) for o in dry.removed] == [(only_c, 6)] and backend.artifacts.exists(only_c)
    done = gc(backend, min_age=NOW)
    assert [o.digest for o in done.removed] == [only_c] and done.freed == 6
    assert not backend.artifacts.exists(only_c) and backend.artifacts.exists(shared)
    assert gc(backend, min_age=NOW).removed == []


def test_gc_on_the_local_store_keeps_bytes_a_live_version_shares(settings: pg.Settings) -> None:
    _collect(pg.Backend(settings))


@pytest.mark.s3
def test_gc_on_s3_keeps_bytes_a_live_version_shares(settings: pg.Settings, s3: str) -> None:
    import boto3

    bucket = f"pg-{uuid.uuid4().hex[:12]}"
    boto3.client("s3", endpoint_url=s3).create_bucket(Bucket=bucket)
    backend = pg.Backend(settings.model_copy(update={"artifact_store": f"s3://{bucket}/a", "s3_endpoint_url": s3}))
    _collect(backend)


def test_a_deleted_project_frees_its_code_snapshot_and_outputs(settings: pg.Settings) -> None:
    backend = pg.Backend(settings)
    result = pg.run(log_three, backend=backend, project="gone").raise_for_state()
    code = backend.graph().run(result.run_id).code_hash  # type: ignore[union-attr]
    delete("project", "gone", backend)
    removed = {o.digest for o in gc(backend, min_age=NOW).removed}
    assert removed == {sha256_bytes(b"shared bytes"), sha256_bytes(b"only c"), code}


def test_an_old_object_stored_again_is_judged_by_that_use_and_gc_clears_unfinished_uploads(
    backend: pg.Backend, tmp_path: object
) -> None:
    """A run storing bytes an old unreferenced object already holds touches it, so a `gc` running
    meanwhile keeps it (its `--min-age` protects the new use, not the first write); copies a killed
    process left half done are removed once older than the minimum age."""
    import os
    import time
    from pathlib import Path

    from provgraph.graph.gc import collect

    store = backend.artifacts
    digest, _ = store.put_bytes(b"reused later")
    old = time.time() - 3 * 3600
    os.utime(store.uri(digest), (old, old))
    store.put_bytes(b"reused later")  # a run logs the same bytes again
    report = collect(store, live=set(), min_age=timedelta(hours=1))
    assert report.removed == [] and store.exists(digest)
    unfinished = Path(store.root) / "objects" / "incoming" / ".dead.tmp"
    unfinished.parent.mkdir(parents=True, exist_ok=True)
    unfinished.write_bytes(b"half a copy")
    os.utime(unfinished, (old, old))
    assert collect(store, live={digest}, min_age=timedelta(hours=1)).debris == 1
    assert not unfinished.exists()


def test_a_damaged_object_is_written_again_by_the_next_put(backend: pg.Backend, tmp_path: object) -> None:
    """Storing bytes whose object exists but was cut short (a crash of another writer, a disk
    fault) replaces it: `get` works again, where it used to stay corrupt for good."""
    from pathlib import Path

    store = backend.artifacts
    digest, _ = store.put_bytes(b"whole object")
    Path(store.uri(digest)).write_bytes(b"whole")  # cut short
    store.put_bytes(b"whole object")
    assert store.get_bytes(digest) == b"whole object"
    source = Path(str(tmp_path)) / "model.bin"
    source.write_bytes(b"x" * 3_000_000)
    digest, size = store.put_file(source)
    Path(store.uri(digest)).write_bytes(b"x" * 10)
    assert store.put_file(source) == (digest, size) and store.get_bytes(digest) == source.read_bytes()
    assert not list((Path(store.root) / "objects" / "incoming").glob("*.tmp"))  # no copy left behind
