"""The pipeline controller: advances pipeline runs of the kubernetes engine from run events.

Entry point for the CLI: `run_controller(settings)` (`provgraph pipeline-controller`). The decisions
themselves are `provgraph.pipelines.remote.advance`; this package reads the lineage topic and
publishes the run requests the launcher turns into Jobs.
"""

from provgraph.services.pipeline_controller.app import Controller, run_controller

__all__ = ["Controller", "run_controller"]
