"""Publishes how far the projector has projected, with the batch it reached (read-your-writes).

Called by `BatchProjector.write` with the batch's next offset per partition, before `Pipeline`
commits them to Kafka. The batch's graph transaction advances the progress as its last statement
(no commit of its own: a reader waiting on it sees it as soon as the data); a batch that had to be
bisected publishes it in its own small transaction after its last part. Never ahead of the data;
at worst behind it after a crash, until the batch is projected again. See graph/progress.py.
"""

from __future__ import annotations

from typing import Any

from provgraph.graph.contract import LineageStore
from provgraph.graph.progress import KafkaProgress, Offsets


def apply(store: LineageStore, folded: Any, offsets: Offsets) -> None:
    """Write a folded batch and, in its transaction when `store` keeps the progress (Neo4j), `offsets`."""
    if offsets and isinstance(store, KafkaProgress):
        store.apply_prepared(folded, offsets=offsets)
    else:
        store.apply_prepared(folded)


def publish(store: LineageStore, offsets: Offsets) -> None:
    """Record `offsets` as projected in `store`, if it keeps the projector's progress (Neo4j does)."""
    if offsets and isinstance(store, KafkaProgress):
        store.advance_progress(offsets)
