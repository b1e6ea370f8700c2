"""`mlrun.datastore.base`."""

from provgraph._dataitem import DataItem

__all__ = ["DataItem"]
