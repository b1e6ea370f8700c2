"""`mlrun.artifacts.dataset`."""

from provgraph._artifacts import DatasetArtifact, TableArtifact

__all__ = ["DatasetArtifact", "TableArtifact"]
