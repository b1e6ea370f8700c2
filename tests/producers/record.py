"""Record real OpenLineage events from third-party integrations, for the producer fixtures.

Producers: `dbt-ol build` (openlineage-dbt) over a dbt-duckdb project, and `airflow dags test`
(Airflow's OpenLineage provider) over a DAG whose file I/O Airflow reports as hook lineage.
Each producer runs twice in a fresh copy of its project (so "versions across two runs" exist) with
OpenLineage's own file transport, inside the cached venv `scripts/ol-producers.sh` builds. The
recording is cached under `$PROVGRAPH_INFRA_DIR/ol-producers/recordings/`, keyed by the pinned
versions and every file of the project, so a warm test session reads it in milliseconds and any
change to the project or the pins records anew. Nothing here is hand-written: the events are what
the integration emitted.
"""

from __future__ import annotations

import fcntl
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

RECORDER_VERSION = 1
"""Part of every recording's cache key: bump it when a change here changes what gets recorded."""


def infra_dir() -> Path:
    return Path(os.environ.get("PROVGRAPH_INFRA_DIR") or REPO / ".infra")


def venv_bin(name: str) -> Path:
    """The producer's venv bin/ (built once by the script; its one-line error otherwise)."""
    proc = subprocess.run([str(SCRIPT), "venv", name], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"{SCRIPT.name} venv {name} failed:\n{proc.stderr[-3000:]}")
    return Path(proc.stdout.strip().splitlines()[-1])


def _key(bin_dir: Path, project: Path) -> str:
    digest = hashlib.sha256(f"{bin_dir.parent.name} {RECORDER_VERSION}".encode())
    for path in sorted(p for p in project.rglob("*") if p.is_file()):
        digest.update(str(path.relative_to(project)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]


def recorded(name: str, project: Path, record: Any) -> list[Events]:
    """The cached recording of `name` (one list of events per run), recorded now if missing."""
    bin_dir = venv_bin(name)
    cache = infra_dir() / "ol-producers" / "recordings" / f"{name}-{_key(bin_dir, project)}.json"
    cache.parent.mkdir(parents=True, exist_ok=True)
    with open(cache.parent / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one recorder per producer at a time (shared work folders)
        if not cache.is_file():
            write_atomic(cache, json.dumps(record(bin_dir, project)).encode())
        runs: list[Events] = json.loads(cache.read_text())
    return runs


def _file_transport(workdir: Path, events: Path) -> dict[str, str]:
    config = workdir / "openlineage.yml"
    config.write_text(f"transport:\n  type: file\n  log_file_path: {events}\n  append: true\n")
    return {"OPENLINEAGE_CONFIG": str(config)}


def _events(path: Path) -> Events:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def record_dbt(bin_dir: Path, project: Path) -> list[Events]:
    """`dbt-ol build` twice over a copy of the dbt project (duckdb): the events of each run.

    dbt exits 1 (one model and one test fail on purpose); any other outcome, or no events, fails.
    Dataset names are relative to the project (`duckdb://shop.duckdb`), so they do not vary."""
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


def airflow_workdir() -> Path:
    """Where the DAG runs: a fixed folder, since the dataset names are the files' absolute paths."""
    return infra_dir() / "ol-producers" / "work" / "airflow"


def record_airflow(bin_dir: Path, project: Path) -> list[Events]:
    """`airflow dags test --use-executor` twice (two logical dates) over a copy of the DAG folder.

    The executor runs each task in its own process, as a deployment does (in-process `dags test`
    lets one task's hook lineage leak into the next task's events). The DAG fails on purpose (exit 1).
    """
    workdir = airflow_workdir()
    shutil.rmtree(workdir, ignore_errors=True)
    shutil.copytree(project, workdir)
    home = workdir / "airflow-home"
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("OPENLINEAGE", "AIRFLOW"))},
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(workdir / "dags"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__OPENLINEAGE__NAMESPACE": "shop-airflow",
        "SHOP_DATA": str(workdir / "data"),
        "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    home.mkdir()
    _run([str(bin_dir / "airflow"), "db", "migrate"], env, {0})
    runs: list[Events] = []
    for i, date in enumerate(("2026-01-02", "2026-01-03")):
        events = workdir / f"run{i}.jsonl"
        _run(
            [str(bin_dir / "airflow"), "dags", "test", "--use-executor", "shop_daily", date],
            {**env, **_file_transport(home, events)},
            {1},
        )
        runs.append(_events(events))
    return runs


def _run(args: list[str], env: dict[str, str], ok: set[int]) -> None:
    proc = subprocess.run(args, env=env, capture_output=True, text=True, check=False)
    if proc.returncode not in ok:
        raise RuntimeError(f"{' '.join(args[-3:])} exited {proc.returncode}:\n{(proc.stdout + proc.stderr)[-4000:]}")


def dbt_runs() -> list[Events]:
    return recorded("dbt", HERE / "dbt_project", record_dbt)


def airflow_runs() -> list[Events]:
    return recorded("airflow", HERE / "airflow_project", record_airflow)
