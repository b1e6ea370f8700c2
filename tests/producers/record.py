"""Record real OpenLineage events from third-party integrations, for the producer fixtures.

Each producer runs twice in a fresh copy of its project (so "versions across two runs" exist) with
OpenLineage's own file transport, inside the cached venv `scripts/ol-producers.sh` builds. The
recording is cached under `$PROVGRAPH_INFRA_DIR/ol-producers/recordings/`, keyed by the pinned
versions and every file of the project, so a warm test session reads it in milliseconds and any
change to the project or the pins records anew. Nothing here is hand-written: the events are what
the integration emitted.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from provgraph.events.atomic import write_atomic

HERE = Path(__file__).parent
REPO = HERE.parent.parent
SCRIPT = REPO / "scripts" / "ol-producers.sh"

Events = list[dict[str, Any]]


def infra_dir() -> Path:
    return Path(os.environ.get("PROVGRAPH_INFRA_DIR") or REPO / ".infra")


def venv_bin(name: str) -> Path:
    """The producer's venv bin/ (built once by the script; its one-line error otherwise)."""
    proc = subprocess.run([str(SCRIPT), "venv", name], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"{SCRIPT.name} venv {name} failed:\n{proc.stderr[-3000:]}")
    return Path(proc.stdout.strip().splitlines()[-1])


def _key(bin_dir: Path, project: Path) -> str:
    digest = hashlib.sha256(bin_dir.parent.name.encode())
    digest.update(Path(__file__).read_bytes())
    for path in sorted(p for p in project.rglob("*") if p.is_file()):
        digest.update(str(path.relative_to(project)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]


def recorded(name: str, project: Path, record: Any) -> list[Events]:
    """The cached recording of `name` (one list of events per run), recorded now if missing."""
    bin_dir = venv_bin(name)
    cache = infra_dir() / "ol-producers" / "recordings" / f"{name}-{_key(bin_dir, project)}.json"
    if cache.is_file():
        runs: list[Events] = json.loads(cache.read_text())
        return runs
    runs = record(bin_dir, project)
    cache.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(cache, json.dumps(runs).encode())
    return runs


def _file_transport(workdir: Path, events: Path) -> dict[str, str]:
    config = workdir / "openlineage.yml"
    config.write_text(f"transport:\n  type: file\n  log_file_path: {events}\n  append: true\n")
    return {"OPENLINEAGE_CONFIG": str(config)}


def _events(path: Path) -> Events:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def record_dbt(bin_dir: Path, project: Path) -> list[Events]:
    """`dbt-ol build` twice over a copy of the dbt project (duckdb): the events of each run.

    dbt exits 1 (one model and one test fail on purpose); any other outcome, or no events, fails."""
    runs: list[Events] = []
    with tempfile.TemporaryDirectory(prefix="ol-dbt-") as tmp:
        workdir = Path(tmp) / "shop"
        shutil.copytree(project, workdir)
        for i in range(2):
            events = Path(tmp) / f"run{i}.jsonl"
            env = {
                **{k: v for k, v in os.environ.items() if not k.startswith(("OPENLINEAGE", "DBT_"))},
                **_file_transport(workdir, events),
                "OPENLINEAGE_NAMESPACE": "shop",
                "DBT_PROFILES_DIR": str(workdir),
                "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
                "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
            }
            proc = subprocess.run(
                [str(bin_dir / "dbt-ol"), "build"], cwd=workdir, env=env, capture_output=True, text=True, check=False
            )
            if proc.returncode != 1 or not events.is_file():
                raise RuntimeError(f"dbt-ol build exited {proc.returncode} (expected 1):\n{proc.stdout[-4000:]}")
            runs.append(_events(events))
    return runs


def dbt_runs() -> list[Events]:
    return recorded("dbt", HERE / "dbt_project", record_dbt)
