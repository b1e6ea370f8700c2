"""Publishes how far the projector has projected, once a batch is in the graph (read-your-writes).

Called by `Pipeline` after a batch's graph transaction committed and before its offsets are
committed to Kafka, with the batch's next offset per partition. Written in its own small
transaction (one MERGE per partition in the batch): never ahead of the data, at worst behind it
after a crash, until the batch is projected again. See graph/progress.py.
"""

from __future__ import annotations

from provgraph.graph.contract import LineageStore
from provgraph.graph.progress import KafkaProgress, Offsets


def publish(store: LineageStore, offsets: Offsets) -> None:
    """Record `offsets` as projected in `store`, if it keeps the projector's progress (Neo4j does)."""
    if offsets and isinstance(store, KafkaProgress):
        store.advance_progress(offsets)
