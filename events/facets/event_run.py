"""Run facet `provgraph_event`: identity and per-run order of an event.

`eventId` de-duplicates redelivered events; `seq` (1, 2, 3 … per run) orders a run's events
whatever order they arrive in, and exposes gaps. It is a signed 64-bit integer, never negative.
`total`, on a run's last (terminal) event, is how many events the run sent in all (seq 1..total),
so a reader can tell that events are missing even when the missing ones are the last.
"""

from typing import ClassVar

from provgraph.events.facets.base import Facet, schema_url
from provgraph.events.facets.values import NonNegativeInt64


class EventRunFacet(Facet):
    FACET_NAME: ClassVar[str] = "provgraph_event"
    SCHEMA_URL: ClassVar[str] = schema_url("1-0-0", "EventRunFacet")

    event_id: str
    seq: NonNegativeInt64
    total: NonNegativeInt64 | None = None
