"""Run states, event types, the unversioned marker, the order key, and the job names and patterns of tag
and deletion runs: what readers of the graph need of the event model without its pydantic classes
(`provgraph runs` lists runs without building or importing them). `events.model` and the facet modules
re-export them."""

from __future__ import annotations

import re
from enum import StrEnum

UNVERSIONED = "unversioned"

TAG_JOB = "provgraph.tag"
"""The job name of every tag run (`facets/tag_run.py`); its namespace is the artifact's project."""
ALIAS = re.compile(r"[a-z][a-z0-9_.-]{0,62}")
"""An alias: lower case, starts with a letter, at most 63 characters; never `latest` (that is the newest version)."""
DELETE_JOB = "provgraph.delete"
"""The job name of every deletion run (`facets/tombstone_run.py`); its namespace is the deleted object's project."""
PROJECT = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
"""A project name a run may take (letters, digits, '.', '_', '-'): it is a path segment of `store://` URIs."""
ARTIFACT_KEY = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}(?:/[A-Za-z0-9][A-Za-z0-9._-]{0,127}){0,15}")
"""A key the SDK logs an artifact under: MLRun's characters, in '/'-separated segments (no ':' or '@',
which `store://` URIs read as an alias or a version; no '..')."""
ARTIFACT_TARGET = re.compile(r"store://(?P<project>[^/@]+)/(?P<key>[^@]+?)(?:@(?P<version>[^@]+))?")
"""`store://<project>/<key>[@<version>]`: every version of an artifact, or one."""


class EventType(StrEnum):
    START = "START"
    RUNNING = "RUNNING"
    COMPLETE = "COMPLETE"
    FAIL = "FAIL"
    ABORT = "ABORT"
    OTHER = "OTHER"

    @property
    def is_terminal(self) -> bool:
        return self in (EventType.COMPLETE, EventType.FAIL, EventType.ABORT)


class RunState(StrEnum):
    """A run's state: its latest event's type (terminal events win), or one of two derived states.

    REQUESTED: stored for a run launched but not started (an OTHER event with the requested facet).
    LOST: never stored; a reader shows a START/RUNNING run whose process is gone or silent as LOST
    (see graph/liveness.py). A StrEnum, so it compares equal to, and serialises as, its name.
    """

    START = "START"
    RUNNING = "RUNNING"
    COMPLETE = "COMPLETE"
    FAIL = "FAIL"
    ABORT = "ABORT"
    OTHER = "OTHER"
    REQUESTED = "REQUESTED"
    LOST = "LOST"

    @property
    def is_terminal(self) -> bool:
        """Set by a terminal event (COMPLETE, FAIL, ABORT)."""
        return self.name in EventType.__members__ and EventType[self.name].is_terminal


def order_key(seq: int, at: str) -> str:
    """`RunEvent.order_key` from the event's seq and `event_time.isoformat(timespec="microseconds")`:
    its first 26 characters are the wall-clock time (the year has 4 digits), its offset is left out."""
    return f"{seq:012d}|{at[:26]}" if seq < 10**12 else f"~{seq:019d}|{at[:26]}"
