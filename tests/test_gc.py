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
