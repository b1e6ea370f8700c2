"""The pipeline controller acts on what the lineage topic says, so it checks what an event may make
it do: a pipeline run is advanced only with its OWN stored document (run id, project and pipeline
name must match the event), and a document is refused whole when any field is out of shape (a step
name that is not a plain name, a non-sha256 code hash)."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

import pytest

from provgraph import Backend, Settings
from provgraph.events.model import RunEvent
from provgraph.events.serde import dumps
from provgraph.events.transport.memory import MemoryTransport
from provgraph.pipelines.remote import ENGINE, PipelineDocument, submit_pipeline
from provgraph.services.pipeline_controller import Controller
from tests import pipeline_steps as ps

IMAGE = "registry.local/steps:1"


@dataclass
class Rec:
    value: bytes


@pytest.fixture
def kafka_settings(settings: Settings) -> Settings:
    """Kafka named but never reached: nothing here may publish."""
    return settings.model_copy(update={"transport": "kafka", "kafka_bootstrap_servers": "127.0.0.1:9"})


def _submitted(settings: Settings, raw: Path, project: str = "default") -> tuple[RunEvent, str]:
    memory = MemoryTransport()
    backend = Backend(settings, transport=memory)
    try:
        result = submit_pipeline(ps.three, {"raw": str(raw)}, backend=backend, image=IMAGE, project=project)
    finally:
        backend.close()
    [event] = memory.events
    assert event.run.facets.requested is not None and event.run.facets.requested.runtime == ENGINE
    assert event.run.run_id == result.run_id
    return event, event.run.facets.requested.request_hash


def _forged(event: RunEvent, digest: str) -> RunEvent:
    requested = event.run.facets.requested
    assert requested is not None
    facets = event.run.facets.model_copy(update={"requested": requested.model_copy(update={"request_hash": digest})})
    return event.model_copy(update={"run": event.run.model_copy(update={"facets": facets})})


def _advance(settings: Settings, events: list[RunEvent]) -> Controller:
    controller = Controller(settings, transport=MemoryTransport())
    touched = controller.apply([Rec(dumps(e)) for e in events])
    for run_id in sorted(touched):
        controller.advance(run_id)
    return controller


@pytest.fixture
def raw(tmp_path: Path) -> Path:
    path = tmp_path / "raw.txt"
    path.write_text("1 2 3 4")
    return path


def test_a_pipeline_run_naming_another_runs_document_is_ignored(
    kafka_settings: Settings, raw: Path, caplog: pytest.LogCaptureFixture
) -> None:
    first, digest = _submitted(kafka_settings, raw)
    second, _ = _submitted(kafka_settings, raw)
    caplog.set_level(logging.WARNING, "provgraph.services.pipeline_controller.app")
    controller = _advance(kafka_settings, [_forged(second, digest)])
    try:
        assert controller.acted == set()
        assert caplog.messages == [
            f"pipeline run {second.run.run_id} names the document of run {first.run.run_id}; ignored"
        ]
    finally:
        controller.close()


def test_a_document_of_another_project_is_ignored(
    kafka_settings: Settings, raw: Path, caplog: pytest.LogCaptureFixture
) -> None:
    event, _ = _submitted(kafka_settings, raw, project="alpha")
    moved = event.model_copy(update={"job": event.job.model_copy(update={"namespace": "beta"})})
    caplog.set_level(logging.WARNING, "provgraph.services.pipeline_controller.app")
    controller = _advance(kafka_settings, [moved])
    try:
        assert controller.acted == set()
        assert caplog.messages == [
            f"pipeline run {event.run.run_id} is beta/three; its document says alpha/three: ignored"
        ]
    finally:
        controller.close()


@pytest.mark.parametrize(
    ("field", "value"),
    [("name", "../../etc/passwd"), ("code_hash", "md5:0"), ("retries", 1000)],
)
def test_a_malformed_document_is_refused_whole(
    kafka_settings: Settings, raw: Path, caplog: pytest.LogCaptureFixture, field: str, value: object
) -> None:
    event, digest = _submitted(kafka_settings, raw)
    backend = Backend(kafka_settings, transport=MemoryTransport())
    try:
        doc = PipelineDocument.model_validate_json(backend.artifacts.get_bytes(digest)).model_dump(mode="json")
        doc["steps"][0][field] = value
        bad, _ = backend.artifacts.put_bytes(json.dumps(doc).encode())
    finally:
        backend.close()
    caplog.set_level(logging.WARNING, "provgraph.services.pipeline_controller.app")
    controller = _advance(kafka_settings, [_forged(event, bad)])
    try:
        assert controller.acted == set()
        [message] = caplog.messages
        assert message.startswith(
            f"pipeline run {event.run.run_id} cannot be advanced: {bad} is not a pipeline document"
        )
        assert f"steps.0.{field}" in message
    finally:
        controller.close()
