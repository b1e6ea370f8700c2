"""The CPU a local server process has used, for benches that print a server's share beside their own."""

from __future__ import annotations

import os
from pathlib import Path

INFRA = Path(os.environ.get("PROVGRAPH_INFRA_DIR", Path(__file__).resolve().parent.parent / ".infra"))


def cpu_s(pid: int) -> float:
    """User + system CPU seconds of process `pid` so far (NaN once it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def neo4j_pid(instance: str = "neo4j") -> int | None:
    """The pid of a Neo4j instance the repo's infra script started (`run/<instance>/neo4j.pid`)."""
    try:
        return int((INFRA / "run" / instance / "neo4j.pid").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None
