"""`mlrun.artifacts.plots`."""

from provgraph._artifacts import ChartArtifact, PlotArtifact, PlotlyArtifact

__all__ = ["ChartArtifact", "PlotArtifact", "PlotlyArtifact"]
