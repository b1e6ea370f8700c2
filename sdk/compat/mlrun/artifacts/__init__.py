"""`mlrun.artifacts`: the artifact classes `log_artifact` accepts."""

from provgraph._artifacts import (
    Artifact,
    ChartArtifact,
    DatasetArtifact,
    DirArtifact,
    ModelArtifact,
    PlotArtifact,
    PlotlyArtifact,
    TableArtifact,
)

__all__ = [
    "Artifact",
    "ChartArtifact",
    "DatasetArtifact",
    "DirArtifact",
    "ModelArtifact",
    "PlotArtifact",
    "PlotlyArtifact",
    "TableArtifact",
]
