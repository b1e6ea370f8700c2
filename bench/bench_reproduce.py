"""Time from `reproduce(run_id)` to verdict for a trivial handler (microseconds of its own work) on the
local runtime, median of 50 after 5 warm-up runs. Target: < 200 ms beyond the handler's own time."""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

import provgraph as pg


def trivial(ctx: pg.Context, data: pg.DataItem) -> dict[str, int]:
    body = data.get()
    ctx.log_artifact("copy", body=body)
    return {"n": len(body)}


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "in.bin").write_bytes(b"x" * 4096)
        backend = pg.Backend(pg.load_settings(home=root / "home"))
        original = pg.run(trivial, inputs={"data": str(root / "in.bin")}, backend=backend)
        times = []
        for _ in range(55):
            t0 = time.perf_counter()
            result = pg.reproduce(original.run_id, backend=backend)
            times.append(time.perf_counter() - t0)
            assert result.verdict is not None and result.verdict.verdict == "REPRODUCED"
        times = times[5:]
        print(
            f"reproduce -> verdict: median {statistics.median(times) * 1e3:.1f} ms,"
            f" p95 {statistics.quantiles(times, n=20)[-1] * 1e3:.1f} ms (target < 200 ms)"
        )


if __name__ == "__main__":
    main()
