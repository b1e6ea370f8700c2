"""Settings: read once into a frozen object and passed down; nothing reads the environment later.

Precedence, highest first: arguments to `Settings(...)` > environment variables `PROVGRAPH_<FIELD>`
(e.g. `PROVGRAPH_TRANSPORT=kafka`) > the TOML file named by `PROVGRAPH_CONFIG`, else
`./provgraph.toml` > defaults. Unknown keys are an error, so a typo never silently falls back: an
unknown key in the file, a `PROVGRAPH_*` variable that is neither a setting nor in `NOT_SETTINGS`,
and a file named by `PROVGRAPH_CONFIG` that does not exist.
With no configuration at all provgraph is embedded: SQLite event log and graph under `home`.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator

from provgraph.events.errors import ConfigError
from provgraph.events.states import PROJECT

ENV_PREFIX = "PROVGRAPH_"

NOT_SETTINGS = frozenset(
    {
        "PROVGRAPH_CONFIG",  # the settings file itself
        "PROVGRAPH_DEBUG",  # CLI: tracebacks instead of one-line errors
        "PROVGRAPH_TOKEN",  # docs/API.md's examples keep an API token in it (read by curl, not by us)
        # scripts/infra/*.sh and tests/services.py: the test services, their versions, ports and timeouts
        "PROVGRAPH_INFRA_DIR",
        "PROVGRAPH_INFRA_STOP_TIMEOUT",
        "PROVGRAPH_MVN_DEP_PLUGIN",
        "PROVGRAPH_KAFKA_VERSION",
        "PROVGRAPH_KAFKA_LOG4J_VERSION",
        "PROVGRAPH_KAFKA_PORT",
        "PROVGRAPH_KAFKA_CONTROLLER_PORT",
        "PROVGRAPH_KAFKA_START_TIMEOUT",
        "PROVGRAPH_NEO4J_VERSION",
        "PROVGRAPH_NEO4J_BOLT_PORT",
        "PROVGRAPH_NEO4J_HTTP_PORT",
        "PROVGRAPH_NEO4J_START_TIMEOUT",
        "PROVGRAPH_NEO4J_INSTANCE",
        "PROVGRAPH_NEO4J_HEAP",
        "PROVGRAPH_NEO4J_PAGECACHE",
        "PROVGRAPH_S3_PORT",
        "PROVGRAPH_S3_START_TIMEOUT",
        "PROVGRAPH_K8S_VERSION",
        "PROVGRAPH_K8S_PORT",
        "PROVGRAPH_K8S_START_TIMEOUT",
        "PROVGRAPH_K8S_STOP_TIMEOUT",
        "PROVGRAPH_KWOK_VERSION",
        "PROVGRAPH_MLRUN_VERSION",  # scripts/mlrun-venv.sh: the MLRun release the compatibility tests run against
        "PROVGRAPH_KFP_VERSION",  # scripts/kfp-venv.sh: the kfp SDK release the kfp engine tests run against
        "PROVGRAPH_ETCD_VERSION",
        "PROVGRAPH_ETCD_PORT",
        "PROVGRAPH_ETCD_PEER_PORT",
        "PROVGRAPH_KCM_PORT",
        "PROVGRAPH_SCHEDULER_PORT",
    }
)
"""`PROVGRAPH_*` variables that are not settings (so not typos); every such name used in this
repository must be listed here (tests/test_config.py checks)."""


def _config_file() -> Path | None:
    """The file named by `PROVGRAPH_CONFIG` (which must exist; set but empty: no file at all), else
    `./provgraph.toml` if present."""
    named = os.environ.get("PROVGRAPH_CONFIG")
    if named is None:
        return Path("provgraph.toml")
    if named == "":
        return None
    if not Path(named).is_file():
        raise ConfigError(f"PROVGRAPH_CONFIG names {named!r}, which is not a file")
    return Path(named)


class Settings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    home: Path = Field(default_factory=lambda: Path.home() / ".provgraph")
    """Embedded state: events.db (the log), graph.db (the projection), artifacts/, spool/."""
    project: str = Field(default="default", pattern=f"^{PROJECT.pattern}$")
    """Job namespace for runs that do not name one (a name `store://` URIs can carry: `states.PROJECT`)."""
    transport: Literal["sqlite", "kafka", "http", "memory"] = "sqlite"
    """Where events go: the embedded log, Kafka, or an OpenLineage HTTP endpoint (the last two with the
    local spool while they do not accept events)."""
    store: Literal["sqlite", "neo4j"] = "sqlite"
    """Which graph the CLI and the API read."""
    artifact_store: str | None = None
    """fsspec URL for content-addressed artifacts and code snapshots; default `<home>/artifacts`."""

    snapshot_inputs_max_bytes: int = Field(default=0, ge=0)
    """Inputs up to this size are copied into the artifact store when read, so `reproduce` can use
    them after the original data changed; 0 turns snapshots off."""

    mlrun_compat: bool = True
    """When the real `mlrun` package is absent, `import mlrun` inside a run's process gets provgraph's
    compatibility module (`provgraph.compat.mlrun`); false makes it fail as it would without MLRun."""
    secrets_file: Path | None = None
    """`KEY=VALUE` lines read by `context.get_secret` before the environment (MLRun's secrets file)."""
    pipeline_parallelism: int = Field(default=4, ge=1)
    """Steps of one local pipeline run executing at once (each in its own process)."""

    heartbeat_interval_s: float = Field(default=30.0, ge=0)
    """A running run sends a RUNNING heartbeat this often (0 = never), so readers elsewhere can tell it is alive."""
    heartbeat_timeout_s: float = Field(default=90.0, ge=0)
    """Readers show a START/RUNNING run with no event for this long as LOST (0 = never); on the run's own
    machine its process is checked instead."""

    completeness_timeout_s: float = Field(default=86400.0, ge=0)
    """A run with no COMPLETE/FAIL/ABORT event this long after its last event is incomplete
    (`noTerminal` in `Run.completeness`, `incompleteRuns`, `provgraph doctor`); 0 = never."""
    isolated: Literal["never", "missing", "always"] = "never"
    """Functions with requirements (hub items, registered functions) run in a cached virtual environment
    built with uv: `always`, when this environment lacks one (`missing`), or only with `--isolated`."""
    uv: Path | None = None
    """The uv executable that builds isolated environments; default: `uv` on PATH."""

    kafka_bootstrap_servers: str | None = None
    kafka_topic_prefix: str = ""
    kafka_partitions: int = Field(default=3, ge=1)
    kafka_delivery_timeout_s: float = Field(default=5.0, gt=0)

    http_url: str | None = None
    """Base URL of the OpenLineage HTTP endpoint for `transport = "http"`: a provgraph API or any
    OpenLineage backend; events are POSTed to `<http_url>/<http_endpoint>`."""
    http_endpoint: str = "api/v1/lineage"
    http_token: SecretStr | None = None
    """Sent as `Authorization: Bearer <token>` (a provgraph API token with the run's project)."""
    http_timeout_s: float = Field(default=5.0, gt=0)
    """Longest one POST may take before the event goes to the spool (then retried with backoff)."""

    neo4j_uri: str | None = None
    neo4j_user: str = "neo4j"
    neo4j_password: str | None = None
    neo4j_database: str | None = None

    s3_endpoint_url: str | None = None
    """Endpoint for s3:// artifact stores and inputs (e.g. a local S3-compatible server)."""

    api_host: str = "127.0.0.1"
    """Interface `provgraph serve` listens on; anything but loopback needs API tokens."""
    api_port: int = Field(default=8765, ge=0, le=65535)
    """TCP port of `provgraph serve` (0 picks a free one)."""
    api_tokens_db: Path | None = None
    """SQLite file holding the API tokens (hashed); default `<home>/tokens.db`."""
    api_query_timeout_s: float = Field(default=10.0, gt=0)
    """Time budget of one GraphQL request; store calls still running at the deadline end it with an error."""
    consistency_timeout_s: float = Field(default=5.0, gt=0, le=300)
    """Longest a read given a consistency token (`consistentWith`, `--consistent-with`) waits for the
    graph to reach it before it fails (NOT_CONSISTENT)."""
    api_costly_cost: int = Field(default=200, ge=0)
    """GraphQL operations estimated at this cost or more are costly (any `lineage` is); cheaper ones bypass
    the fair-share limits below (see api/limits.py)."""
    api_client_costly_cost: int = Field(default=5000, ge=1)
    """Estimated cost of the costly operations one client (API token; address with --insecure-local) may
    have in flight at once."""
    api_costly_wait_s: float = Field(default=2.0, ge=0)
    """How long a costly operation waits for its client's share before HTTP 429 (RATE_LIMITED)."""
    api_costly_store_calls: int = Field(default=1, ge=1)
    """Lineage walks running at once in the whole server (worker threads share the GIL and the cores)."""
    api_reproduce_on_host: bool = False
    """Let token holders' `reproduce` run on this server's host (a process running the recorded code
    as the server's user, with its files); off: their reproductions go to Kubernetes only. An
    `--insecure-local` server (one user, on their machine) reproduces on its host either way."""

    k8s_kubeconfig: Path | None = None
    """Kubeconfig the launcher uses; unset: $KUBECONFIG or ~/.kube/config, else the pod's service account."""
    k8s_namespace: str = "default"
    """Namespace of the Jobs for run requests that name none; the launcher watches it."""
    k8s_namespaces: list[str] = Field(default_factory=list)
    """Further namespaces run requests may name (comma-separated); `*` = any (needs cluster-wide RBAC)."""
    k8s_backoff_limit: int = Field(default=0, ge=0)
    """Job `backoffLimit`. A retried pod re-runs the handler under the same run id, so 0 (no retry) is the
    safe default."""
    k8s_ttl_seconds_after_finished: int | None = Field(default=86400, ge=0)
    """Job `ttlSecondsAfterFinished`: Kubernetes deletes finished Jobs after this long; unset keeps them."""
    k8s_active_deadline_seconds: int | None = Field(default=None, gt=0)
    """Job `activeDeadlineSeconds`: a run still going after this long fails (DeadlineExceeded)."""
    k8s_image_pull_policy: Literal["Always", "IfNotPresent", "Never"] | None = None
    """`imagePullPolicy` of the run container; unset: Kubernetes' default for the image's tag."""
    k8s_service_account: str | None = None
    """Service account of run pods; unset: the namespace's `default`."""
    k8s_pod_annotations: dict[str, str] = Field(default_factory=dict)
    """Extra annotations on run pods (a JSON object in the environment), e.g. for a mesh or an autoscaler."""
    k8s_job_finalizer: bool = True
    """Jobs carry the launcher's finalizer, so a Job deleted while the launcher is down is still reported
    (ABORT) when it comes back; switch off only if launchers are removed without cleaning up their Jobs."""
    launcher_concurrency: int = Field(default=16, ge=1)
    """Run requests the launcher turns into Jobs at the same time."""

    @field_validator("k8s_namespaces", mode="before")
    @classmethod
    def _comma_separated(cls, value: Any) -> Any:
        """`PROVGRAPH_K8S_NAMESPACES=a,b` arrives as text."""
        return [part.strip() for part in value.split(",") if part.strip()] if isinstance(value, str) else value

    @field_validator("k8s_pod_annotations", mode="before")
    @classmethod
    def _json_object(cls, value: Any) -> Any:
        """`PROVGRAPH_K8S_POD_ANNOTATIONS='{"a": "b"}'` arrives as text."""
        return json.loads(value) if isinstance(value, str) else value

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

    @property
    def tokens_db(self) -> Path:
        return self.api_tokens_db or self.home / "tokens.db"


KAFKA_UNSET = "no Kafka servers configured: set PROVGRAPH_KAFKA_BOOTSTRAP_SERVERS (e.g. 127.0.0.1:9092)"


def require_kafka(settings: Settings) -> str:
    """The Kafka bootstrap servers; every Kafka user (transport, services, kubernetes runtime) fails
    with the same `ConfigError` when none are set."""
    if not settings.kafka_bootstrap_servers:
        raise ConfigError(KAFKA_UNSET)
    return settings.kafka_bootstrap_servers


HTTP_UNSET = "no HTTP endpoint configured: set PROVGRAPH_HTTP_URL (e.g. https://provgraph.example.com)"


def require_http(settings: Settings) -> str:
    """The HTTP transport's base URL, or `ConfigError` when none is set."""
    if not settings.http_url:
        raise ConfigError(HTTP_UNSET)
    return settings.http_url


def _from_file(path: Path | None) -> dict[str, Any]:
    if path is None or not path.is_file():
        return {}
    import tomllib  # lazy: a run or a command without a config file does not pay its import

    try:
        with path.open("rb") as f:
            data = tomllib.load(f)
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"cannot read config file {path}: {exc}") from exc
    return dict(data.get("provgraph", data))


def _from_env() -> dict[str, Any]:
    fields = [name.upper() for name in Settings.model_fields]
    known = {ENV_PREFIX + field for field in fields} | NOT_SETTINGS
    unknown = sorted(v for v in os.environ if v.startswith(ENV_PREFIX) and v not in known)
    if unknown:
        import difflib  # lazy: only to suggest a name for a typo

        close = difflib.get_close_matches(unknown[0].removeprefix(ENV_PREFIX), fields, n=1)
        hint = f"did you mean {ENV_PREFIX}{close[0]}?" if close else "see the configuration table in the README"
        raise ConfigError(f"unknown environment variable {', '.join(unknown)}: not a provgraph setting ({hint})")
    # an empty variable is as if unset: `PROVGRAPH_HOME= provgraph run …` must not mean the current folder
    return {
        name: os.environ[ENV_PREFIX + name.upper()]
        for name in Settings.model_fields
        if os.environ.get(ENV_PREFIX + name.upper())
    }


def load_settings(**overrides: Any) -> Settings:
    """Settings from arguments, environment and config file; a bad value is a `ConfigError` naming it."""
    values = {**_from_file(_config_file()), **_from_env(), **overrides}
    try:
        return Settings.model_validate(values)
    except ValidationError as exc:
        err = exc.errors()[0]
        field = ".".join(str(p) for p in err["loc"])
        raise ConfigError(f"invalid setting {field} (PROVGRAPH_{field.upper()}): {err['msg']}") from exc
