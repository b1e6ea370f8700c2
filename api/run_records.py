"""What a run left behind besides its outcome: captured output (`Run.logs`) and every step of its
metrics (`Run.metricHistory`). `schema.Run` exposes the resolvers below; both read only the run
the caller already may see (a `Run` object exists only for a visible run).

Logs are bounded: the API returns at most `MAX_LOG_BYTES` (the tail by default, or from an
offset, so a client can follow a running run by passing the previous `end`). Metric series are
bounded per metric (`MAX_METRIC_STEPS`).
"""

from __future__ import annotations

from functools import cache

import strawberry
from strawberry.scalars import JSON

from provgraph.api.context import RequestContext
from provgraph.api.scalars import Long
from provgraph.events.artifacts import ArtifactStore
from provgraph.events.errors import ConfigError
from provgraph.events.facets.values import encode_float
from provgraph.graph.run_logs import read_log
from provgraph.graph.views import MetricSeries

MAX_LOG_BYTES = 1 << 20
DEFAULT_LOG_BYTES = 64 << 10
MAX_METRIC_STEPS = 10_000


@strawberry.type(description="A run's captured stdout, stderr and logger records (a window of it).")
class RunLogs:
    text: str = strawberry.field(description="UTF-8 text; a gap the run could not store is a marker line")
    start: Long = strawberry.field(description="Offset of the first byte of `text` in the whole output")
    end: Long = strawberry.field(description="Offset just past the last byte known; pass it as `from` to follow")
    size: Long = strawberry.field(description="Bytes of output known so far")


@strawberry.type(description="Every logged step of one metric, in step order.")
class MetricHistory:
    key: str
    steps: list[Long]
    values: JSON = strawberry.field(
        description='A list of numbers; non-finite values are the strings "NaN", "Infinity", "-Infinity"'
    )
    truncated: bool = strawberry.field(description="More steps exist than `limit` allowed")

    @staticmethod
    def of(s: MetricSeries) -> MetricHistory:
        return MetricHistory(
            key=s.key,
            steps=[Long(step) for step in s.steps],
            values=JSON([encode_float(v) for v in s.values]),
            truncated=s.truncated,
        )


@cache
def _artifacts(url: str, s3_endpoint_url: str | None) -> ArtifactStore:
    return ArtifactStore(url, s3_endpoint_url)


async def run_logs(ctx: RequestContext, run_id: str, from_: int | None, max_bytes: int) -> RunLogs:
    if not 0 <= max_bytes <= MAX_LOG_BYTES:
        raise ConfigError(f"maxBytes must be between 0 and {MAX_LOG_BYTES} (got {max_bytes})")
    if from_ is not None and from_ < 0:
        raise ConfigError(f"from must be >= 0 (got {from_})")
    if ctx.settings is None:
        raise ConfigError("this server has no artifact store configured: logs cannot be read")
    artifacts = _artifacts(ctx.settings.artifact_url, ctx.settings.s3_endpoint_url)
    store = ctx.store

    def read() -> RunLogs:
        chunks = store.log_chunks(run_id)
        size = max((c.offset + c.size for c in chunks), default=0)
        if from_ is None:
            log = read_log(chunks, artifacts.get_chunk, tail=max_bytes)
        else:
            log = read_log(chunks, artifacts.get_chunk, start=from_, limit=max_bytes)
        return RunLogs(text=log.text, start=Long(log.start), end=Long(log.end), size=Long(size))

    return await ctx.call(read)


async def metric_history(ctx: RequestContext, run_id: str, keys: list[str] | None, limit: int) -> list[MetricHistory]:
    if not 0 <= limit <= MAX_METRIC_STEPS:
        raise ConfigError(f"limit must be between 0 and {MAX_METRIC_STEPS} (got {limit})")
    series = await ctx.call(ctx.store.metric_history, run_id, keys, limit)
    return [MetricHistory.of(s) for s in series]
