"""`mlrun.datastore`: `DataItem` (provgraph's, so isinstance checks on a handler's inputs hold)."""

from provgraph._dataitem import DataItem
from provgraph._mlrun import get_dataitem

__all__ = ["DataItem", "get_dataitem"]
