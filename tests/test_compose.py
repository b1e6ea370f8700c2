"""docker-compose.yml agrees with the code: settings names, CLI commands, ports."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml
from typer.main import get_command

from provgraph.cli import app
from provgraph.events.settings import ENV_PREFIX, Settings

COMPOSE = yaml.safe_load((Path(__file__).resolve().parent.parent / "docker-compose.yml").read_text())
PROVGRAPH_SERVICES = ("projector", "api", "launcher", "pipeline-controller")


def _resolve(value: Any) -> str:
    """`${VAR:-default}` -> default, as compose would without the variable set."""
    return re.sub(r"\$\{[A-Z_]+:-([^}]*)\}", r"\1", str(value))


def env_of(service: str) -> dict[str, str]:
    return {k: _resolve(v) for k, v in COMPOSE["services"][service].get("environment", {}).items()}


def test_the_stack_has_every_service() -> None:
    assert set(COMPOSE["services"]) == {"kafka", "neo4j", *PROVGRAPH_SERVICES}


def test_every_provgraph_variable_is_a_setting_and_validates() -> None:
    for service in PROVGRAPH_SERVICES:
        env = {k: v for k, v in env_of(service).items() if k.startswith(ENV_PREFIX)}
        fields = {k[len(ENV_PREFIX) :].lower(): v for k, v in env.items()}
        unknown = set(fields) - set(Settings.model_fields)
        assert not unknown, f"{service}: {unknown} are not settings"
        Settings.model_validate(fields)


def test_service_commands_are_cli_commands() -> None:
    commands = set(get_command(app).commands)  # type: ignore[attr-defined]
    for service in PROVGRAPH_SERVICES:
        assert COMPOSE["services"][service]["command"][0] in commands


def test_addresses_match_the_ports_services_listen_on() -> None:
    env = env_of("projector")
    kafka_listeners = COMPOSE["services"]["kafka"]["environment"]["KAFKA_LISTENERS"]
    host, port = env["PROVGRAPH_KAFKA_BOOTSTRAP_SERVERS"].split(":")
    assert host == "kafka" and f"PLAINTEXT://:{port}" in kafka_listeners
    neo4j_host, neo4j_port = env["PROVGRAPH_NEO4J_URI"].removeprefix("bolt://").split(":")
    assert neo4j_host == "neo4j" and f"{neo4j_port}:{neo4j_port}" in COMPOSE["services"]["neo4j"]["ports"]
    api = COMPOSE["services"]["api"]
    port = api["command"][api["command"].index("--port") + 1]
    assert f"{port}:{port}" in api["ports"] and Settings().api_port == int(port)
    neo4j_auth = _resolve(COMPOSE["services"]["neo4j"]["environment"]["NEO4J_AUTH"])
    assert neo4j_auth == f"{env['PROVGRAPH_NEO4J_USER']}/{env['PROVGRAPH_NEO4J_PASSWORD']}"
