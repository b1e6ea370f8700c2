"""Real services for tests: started once per session by the repo's own scripts, stopped at the end.

`ensure(name)` returns the environment the service's `env` subcommand prints (e.g.
PROVGRAPH_KAFKA_BOOTSTRAP_SERVERS). When that variable is already set in the environment, the
running service is reused and left alone; otherwise `scripts/infra/<name>.sh start` starts it (it
fetches and caches what it needs) and the session stops it at exit.
"""

from __future__ import annotations

import atexit
import os
import shlex
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SCRIPTS = REPO / "scripts" / "infra"

# The variable whose presence means "already running, reuse it".
MARKER = {
    "kafka": "PROVGRAPH_KAFKA_BOOTSTRAP_SERVERS",
    "neo4j": "PROVGRAPH_NEO4J_URI",
    "s3": "PROVGRAPH_S3_ENDPOINT_URL",
    "k8s": "KUBECONFIG",
}

# The environment as the session found it: unit-test fixtures clear PROVGRAPH_* variables later.
_ENV = dict(os.environ)
_started: dict[str, dict[str, str]] = {}
_reused: dict[str, dict[str, str]] = {}


def _script(name: str, *args: str, timeout: float = 1800) -> str:
    env = {**os.environ, "PYTHON": str(REPO / ".venv" / "bin" / "python")}
    proc = subprocess.run(
        [str(SCRIPTS / f"{name}.sh"), *args], capture_output=True, text=True, env=env, timeout=timeout, check=False
    )
    if proc.returncode != 0:
        raise RuntimeError(f"scripts/infra/{name}.sh {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}")
    return proc.stdout


def _parse_env(text: str) -> dict[str, str]:
    env: dict[str, str] = {}
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("export "):
            key, _, value = line[len("export ") :].partition("=")
            env[key] = shlex.split(value)[0] if value else ""
    return env


def ensure(name: str) -> dict[str, str]:
    marker = MARKER[name]
    if marker in _ENV:
        return {marker: _ENV[marker]}
    if name in _started:
        return _started[name]
    if name in _reused:
        return _reused[name]
    if _running(name):  # started by someone else (a developer, another session): use it, leave it
        _reused[name] = _parse_env(_script(name, "env"))
        return _reused[name]
    _script(name, "start")
    _started[name] = _parse_env(_script(name, "env"))
    atexit.register(stop, name)
    return _started[name]


def _running(name: str) -> bool:
    env = {**os.environ, "PYTHON": str(REPO / ".venv" / "bin" / "python")}
    proc = subprocess.run([str(SCRIPTS / f"{name}.sh"), "status"], capture_output=True, env=env, check=False)
    return proc.returncode == 0


def stop(name: str) -> None:
    if _started.pop(name, None) is not None:
        _script(name, "stop", timeout=120)


def owns(name: str) -> bool:
    """Whether this session started `name` (and so may stop it: see `restart`)."""
    return name in _started


def restart(name: str, action: str) -> None:
    """`stop` or `start` a service this session owns (for outage tests); refuses shared services."""
    if name not in _started:
        raise RuntimeError(f"{name} is not owned by this test session; outage tests need their own")
    _script(name, action)
