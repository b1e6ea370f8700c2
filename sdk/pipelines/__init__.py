"""Pipelines: compose functions into DAGs of tracked runs (see docs/PIPELINES.md).

from provgraph.pipelines import pipeline, step, run_pipeline, submit_pipeline (kubernetes engine)
"""

from provgraph.pipelines.dsl import (
    Condition,
    OutputRef,
    Pipeline,
    PipelineDef,
    PipelineError,
    ResultRef,
    Step,
    fan_out,
    pipeline,
    step,
)
from provgraph.pipelines.engine import PipelineFailed, PipelineResult, StepState, run_pipeline
from provgraph.pipelines.remote import submit_pipeline

__all__ = [
    "Condition",
    "OutputRef",
    "Pipeline",
    "PipelineDef",
    "PipelineError",
    "PipelineFailed",
    "PipelineResult",
    "ResultRef",
    "Step",
    "StepState",
    "fan_out",
    "pipeline",
    "run_pipeline",
    "step",
    "submit_pipeline",
]
