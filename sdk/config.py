"""Settings: read once into a frozen object and passed down; nothing reads the environment later.

Precedence, highest first: arguments to `Settings(...)` > environment variables `PROVGRAPH_<FIELD>`
(e.g. `PROVGRAPH_TRANSPORT=kafka`) > the TOML file named by `PROVGRAPH_CONFIG`, else
`./provgraph.toml` > defaults. Unknown keys are an error, so a typo never silently falls back.
With no configuration at all provgraph is embedded: SQLite event log and graph under `home`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import Field, ValidationError
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from provgraph.events.errors import ConfigError


def _config_file() -> Path:
    return Path(os.environ.get("PROVGRAPH_CONFIG", "provgraph.toml"))


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PROVGRAPH_", extra="forbid", frozen=True)

    home: Path = Field(default_factory=lambda: Path.home() / ".provgraph")
    """Embedded state: events.db (the log), graph.db (the projection), artifacts/, spool/."""
    project: str = "default"
    """Job namespace for runs that do not name one."""
    transport: Literal["sqlite", "kafka", "memory"] = "sqlite"
    """Where events go: the embedded log, or Kafka (with the local spool when Kafka is down)."""
    store: Literal["sqlite", "neo4j"] = "sqlite"
    """Which graph the CLI and the API read."""
    artifact_store: str | None = None
    """fsspec URL for content-addressed artifacts and code snapshots; default `<home>/artifacts`."""

    kafka_bootstrap_servers: str | None = None
    kafka_topic_prefix: str = ""
    kafka_partitions: int = Field(default=3, ge=1)
    kafka_delivery_timeout_s: float = Field(default=5.0, gt=0)

    neo4j_uri: str | None = None
    neo4j_user: str = "neo4j"
    neo4j_password: str | None = None
    neo4j_database: str | None = None

    s3_endpoint_url: str | None = None
    """Endpoint for s3:// artifact stores and inputs (e.g. a local S3-compatible server)."""

    api_url: str = "http://127.0.0.1:8765"

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return init_settings, env_settings, TomlConfigSettingsSource(settings_cls, toml_file=_config_file())

    @property
    def events_db(self) -> Path:
        return self.home / "events.db"

    @property
    def graph_db(self) -> Path:
        return self.home / "graph.db"

    @property
    def spool_dir(self) -> Path:
        return self.home / "spool"

    @property
    def artifact_url(self) -> str:
        return self.artifact_store or str(self.home / "artifacts")


def load_settings(**overrides: object) -> Settings:
    """Settings from the environment and config file; a bad value is a `ConfigError` naming it."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        err = exc.errors()[0]
        field = ".".join(str(p) for p in err["loc"])
        raise ConfigError(f"invalid setting {field} (PROVGRAPH_{field.upper()}): {err['msg']}") from exc
