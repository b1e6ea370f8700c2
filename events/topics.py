"""Kafka topic names, versioned: a breaking change gets a new topic, never a reinterpretation."""

LINEAGE = "provgraph.lineage.v1"
"""Every RunEvent, keyed by root run id."""

REQUESTS = "provgraph.requests.v1"
"""Run requests for the launcher, keyed by run id."""

DLQ = "provgraph.dlq.v1"
"""Events that failed validation or projection: original bytes + error + stage + source offset."""

PROGRESS = "provgraph.progress.v1"
"""The projector's notice after each batch's graph transaction: the offsets it reached, JSON
`[[topic, partition, next], ...]`. A hint for the API's read-your-writes watcher (api/consistency.py);
the graph's progress nodes stay the truth."""

CONFIGS: dict[str, dict[str, str]] = {PROGRESS: {"retention.ms": str(60 * 60 * 1000)}}
"""Settings a topic is created with beyond the broker's defaults, by logical name. A notice is worth
nothing once sent (the API reads from the end), so an hour keeps the topic small (~10-20 a second)."""


def topic(name: str, prefix: str = "") -> str:
    """The topic name with an optional deployment prefix (e.g. per test session or tenant)."""
    return f"{prefix}{name}"
