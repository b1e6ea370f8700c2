"""`mlrun.artifacts.model`."""

from provgraph._artifacts import ModelArtifact

__all__ = ["ModelArtifact"]
