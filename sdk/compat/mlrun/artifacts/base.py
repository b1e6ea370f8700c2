"""`mlrun.artifacts.base`."""

from provgraph._artifacts import Artifact, DirArtifact

__all__ = ["Artifact", "DirArtifact"]
