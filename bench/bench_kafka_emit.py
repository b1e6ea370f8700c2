"""Events per second through the Kafka transport to a real broker, and through the local spool.

Five figures: `emit` to Kafka (synchronous, acks=all, idempotent: each call returns once the broker
acknowledged); `emit_many` of each run's events after its first (how a run's last events go
together, one acknowledgement wait per call); `Spool.append` alone (fsync per record); `emit` while
Kafka is unreachable (what a run pays during an outage: spool append + bookkeeping); and re-sending
a full spool to Kafka.

Uses the broker named by PROVGRAPH_KAFKA_BOOTSTRAP_SERVERS, else starts the repo's own
(scripts/infra/kafka.sh) and stops it at exit.
"""

from __future__ import annotations

import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # for tests.services

from provgraph.events.model import RunEvent
from provgraph.events.serde import dumps
from provgraph.events.settings import Settings
from provgraph.events.synthetic import workload
from provgraph.events.transport.factory import kafka_config
from provgraph.events.transport.kafka import KafkaTransport
from provgraph.events.transport.spool import Spool
from tests.services import ensure

UNREACHABLE = "127.0.0.1:1"


def main() -> None:
    servers = ensure("kafka")["PROVGRAPH_KAFKA_BOOTSTRAP_SERVERS"]
    events = list(workload(500))  # 3,000 realistic events
    n = len(events)
    with tempfile.TemporaryDirectory(dir=Path(__file__).resolve().parent.parent) as tmp:
        prefix = f"bench-{uuid.uuid4().hex[:8]}."
        config = kafka_config(Settings(home=Path(tmp), kafka_bootstrap_servers=servers, kafka_topic_prefix=prefix))
        transport = KafkaTransport(config)
        transport.emit(events[0])  # connect and create topics outside the measurement
        t0 = time.perf_counter()
        for e in events:
            transport.emit(e)
        emit_rate = n / (time.perf_counter() - t0)
        assert transport.close() and transport.pending == 0

        transport = KafkaTransport(config)
        transport.emit(events[0])
        runs: dict[str, list[RunEvent]] = {}
        for e in events:
            runs.setdefault(e.run.run_id, []).append(e)
        t0 = time.perf_counter()
        for run in runs.values():
            transport.emit(run[0])
            transport.emit_many(run[1:])
        many_rate = n / (time.perf_counter() - t0)
        assert transport.close() and transport.pending == 0

        spool = Spool(Path(tmp) / "raw")
        bodies = [(e.root_run_id.encode(), dumps(e)) for e in events]
        t0 = time.perf_counter()
        for key, value in bodies:
            spool.append(key, value)
        append_rate = n / (time.perf_counter() - t0)

        offline = KafkaTransport(config.model_copy(update={"bootstrap_servers": UNREACHABLE}))
        offline.emit(events[0])  # the first failure (a refused connection) is not what we measure
        t0 = time.perf_counter()
        for e in events:
            offline.emit(e)
        outage_rate = n / (time.perf_counter() - t0)
        offline.close(timeout=0)

        resend = KafkaTransport(config)
        t0 = time.perf_counter()
        sent, remaining = resend.drain()
        resend_rate = sent / (time.perf_counter() - t0)
        resend.close()
        assert (sent, remaining) == (n + 1, 0), (sent, remaining)

    print(f"{n} events, avg {sum(len(b) for _, b in bodies) / n:,.0f} bytes, broker {servers}", file=sys.stderr)
    print(
        f"kafka emit: {emit_rate:,.0f} events/s (synchronous, acks=all);"
        f" a run's events after START by emit_many: {many_rate:,.0f} events/s;"
        f" spool append: {append_rate:,.0f} events/s (fsync each);"
        f" emit while Kafka is down: {outage_rate:,.0f} events/s;"
        f" spool re-send: {resend_rate:,.0f} events/s"
    )


if __name__ == "__main__":
    main()
