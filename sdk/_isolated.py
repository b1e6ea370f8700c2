"""Isolated environments: run a function whose requirements this environment lacks in a cached
virtual environment built with uv.

An environment is keyed by the Python version, the requirements and provgraph's version, and kept
under `<home>/envs/<key>`, so a second run with the same requirements starts at once. It sees this
environment's packages after its own (a `.pth` file adds them), which is how `provgraph` itself is
importable there; the run executes in it through `provgraph exec`, like a reproduction, and records
that interpreter's package digest as every run does.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import platform
import shutil
import site
import subprocess
import sys
from pathlib import Path

from provgraph._backend import Backend
from provgraph._execution import RunResult
from provgraph.events.errors import ConfigError
from provgraph.events.facets import CodeJobFacet
from provgraph.events.request import RunRequest
from provgraph.events.settings import Settings
from provgraph.events.version import __version__

MARKER = ".provgraph-env.json"
BUILD_TIMEOUT_S = 600


def missing(requirements: list[str]) -> list[str]:
    """The requirements this interpreter does not satisfy (absent, or a version outside the specifier)."""
    from importlib import metadata

    from packaging.requirements import InvalidRequirement, Requirement

    out = []
    for text in requirements:
        try:
            req = Requirement(text)
        except InvalidRequirement as exc:
            raise ConfigError(f"invalid requirement {text[:120]!r}: {exc}") from exc
        if req.marker is not None and not req.marker.evaluate():
            continue
        try:
            version = metadata.version(req.name)
        except metadata.PackageNotFoundError:
            out.append(text)
            continue
        if req.specifier and not req.specifier.contains(version, prereleases=True):
            out.append(text)
    return out


def env_key(requirements: list[str]) -> str:
    """Python (version and interpreter), the requirements (normalised, sorted) and provgraph's version."""
    from packaging.requirements import InvalidRequirement, Requirement

    normalised = set()
    for text in requirements:
        try:
            normalised.add(str(Requirement(text)))
        except InvalidRequirement:
            normalised.add(text)
    body = {
        "python": f"{platform.python_implementation()} {platform.python_version()} {sys.executable}",
        "requirements": sorted(normalised),
        "provgraph": __version__,
    }
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:24]


def _uv(settings: Settings) -> str:
    found = settings.uv or shutil.which("uv")
    if not found:
        raise ConfigError("isolated environments are built with uv: install it or set PROVGRAPH_UV to its path")
    return str(found)


def cached_environment(requirements: list[str], settings: Settings) -> Path | None:
    """The interpreter of the environment for `requirements` if it is already built, else None."""
    folder = settings.home / "envs" / env_key(requirements)
    return folder / "bin" / "python" if (folder / MARKER).is_file() else None


def environment(requirements: list[str], settings: Settings) -> Path:
    """The interpreter of the cached environment for `requirements`, built first if needed (under a
    file lock, so concurrent runs build it once; a half-built one is rebuilt)."""
    from provgraph._hub import check_requirement

    requirements = [check_requirement(r) for r in requirements]  # index packages only: no URL, no option
    cached = cached_environment(requirements, settings)
    if cached is not None:
        return cached
    envs = settings.home / "envs"
    envs.mkdir(parents=True, exist_ok=True)
    key = env_key(requirements)
    folder = envs / key
    python = folder / "bin" / "python"
    with open(envs / f"{key}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (folder / MARKER).is_file():
            return python
        shutil.rmtree(folder, ignore_errors=True)
        uv = _uv(settings)
        _call([uv, "venv", "--quiet", "--python", sys.executable, str(folder)], "creating")
        purelib = subprocess.run(
            [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        lines = [f"import site; site.addsitedir({p!r})" for p in site.getsitepackages() if Path(p).is_dir()]
        (Path(purelib) / "_provgraph_base.pth").write_text("\n".join(lines) + "\n")
        if requirements:
            _call([uv, "pip", "install", "--quiet", "--python", str(python), "--", *requirements], "installing into")
        (folder / MARKER).write_text(json.dumps({"requirements": requirements, "provgraph": __version__}))
    return python


def _call(command: list[str], what: str) -> None:
    try:
        done = subprocess.run(
            command,
            capture_output=True,
            text=True,
            timeout=BUILD_TIMEOUT_S,
            check=False,
            env={**os.environ, "VIRTUAL_ENV": ""},
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ConfigError(f"{what} an isolated environment failed: {exc}") from exc
    if done.returncode != 0:
        tail = " ".join(done.stderr.strip().splitlines()[-3:])
        raise ConfigError(f"{what} an isolated environment failed: {tail}")


def run_isolated(request: RunRequest, code: CodeJobFacet, backend: Backend) -> RunResult:
    """Run `request` with the interpreter of its function's environment (`provgraph exec`) and wait."""
    from provgraph.runtimes.process import launch, settings_env, supervise

    assert request.function is not None
    python = environment(request.function.requirements, backend.settings)
    env = {**os.environ, **settings_env(backend.settings)}
    env.pop("VIRTUAL_ENV", None)
    child = launch(request, code, backend, backend.transport, env=env, cwd=os.getcwd(), python=python)
    return supervise(child, backend.transport)
