"""Kafka topic names, versioned: a breaking change gets a new topic, never a reinterpretation."""

LINEAGE = "provgraph.lineage.v1"
"""Every RunEvent, keyed by root run id."""

REQUESTS = "provgraph.requests.v1"
"""Run requests for the launcher, keyed by run id."""

DLQ = "provgraph.dlq.v1"
"""Events that failed validation or projection: original bytes + error + stage + source offset."""


def topic(name: str, prefix: str = "") -> str:
    """The topic name with an optional deployment prefix (e.g. per test session or tenant)."""
    return f"{prefix}{name}"
