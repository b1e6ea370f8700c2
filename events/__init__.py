"""The provgraph event contract: OpenLineage 2-0-x RunEvents plus provgraph facets.

`events/` knows nothing about graphs or the SDK: it defines the wire format (`model`, `facets`),
the one serialiser (`serde`), topic names (`topics`) and the transports that carry events.
"""

from provgraph.events.model import (
    PRODUCER,
    Dataset,
    EventType,
    Job,
    Run,
    RunEvent,
)
from provgraph.events.serde import dumps, event_id, loads

__all__ = ["PRODUCER", "Dataset", "EventType", "Job", "Run", "RunEvent", "dumps", "event_id", "loads"]
