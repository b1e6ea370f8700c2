"""Artifacts and inputs on S3 (a real S3-compatible server, moto, through fsspec/s3fs)."""

from __future__ import annotations

import hashlib
import uuid

import pytest

import provgraph as pg

pytestmark = pytest.mark.s3


def shout(ctx: pg.Context, text: pg.DataItem) -> dict[str, int]:
    body = text.get()
    ctx.log_dataset("loud", body.upper(), format="csv")
    return {"n": len(body)}


@pytest.fixture
def s3_settings(settings: pg.Settings, s3: str) -> pg.Settings:
    import boto3

    bucket = f"pg-{uuid.uuid4().hex[:12]}"
    boto3.client("s3", endpoint_url=s3).create_bucket(Bucket=bucket)
    return settings.model_copy(update={"artifact_store": f"s3://{bucket}/artifacts", "s3_endpoint_url": s3})


def test_runs_read_s3_inputs_and_store_outputs_and_code_on_s3(s3_settings: pg.Settings) -> None:
    import fsspec

    bucket = s3_settings.artifact_url.split("/")[2]
    opts = {"client_kwargs": {"endpoint_url": s3_settings.s3_endpoint_url}}
    with fsspec.open(f"s3://{bucket}/raw/words.csv", "wb", **opts) as f:
        f.write(b"a,b\nhello,world\n")
    backend = pg.Backend(s3_settings)
    result = pg.run(shout, inputs={"text": f"s3://{bucket}/raw/words.csv"}, backend=backend).raise_for_state()

    run = backend.graph().run(result.run_id)
    assert run is not None
    digest = "sha256:" + hashlib.sha256(b"a,b\nhello,world\n").hexdigest()
    assert [(i.namespace, i.name, i.version) for i in run.inputs] == [(f"s3://{bucket}", "raw/words.csv", digest)]
    out = run.outputs[0].version
    fs = fsspec.filesystem("s3", **opts)
    assert fs.cat_file(f"{bucket}/artifacts/objects/sha256/{out[7:9]}/{out[7:]}") == b"A,B\nHELLO,WORLD\n"
    assert run.job_version is not None and backend.artifacts.exists(run.job_version.code_hash)

    again = pg.reproduce(result.run_id, backend=backend)
    assert again.verdict is not None and again.verdict.verdict == "REPRODUCED"
