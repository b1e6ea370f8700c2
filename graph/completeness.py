"""Is every event of a run in the graph? Judged from what the projection keeps per run.

A run is incomplete when:
- `sequenceGap`: its events carry sequence numbers (`provgraph_event.seq`, 1, 2, 3 …) and one
  below the greatest seen is missing;
- `countUnmet`: its producer declared how many events it sent (`provgraph_event.total`) and fewer
  of 1..total arrived;
- `noStart`: no START event arrived (a tag's or a deletion's run is one COMPLETE event by design);
- `noTerminal`: no COMPLETE/FAIL/ABORT arrived and its last event is older than
  `terminal_timeout_s` (setting `completeness_timeout_s`; 0 = never).
Events without a sequence number (seq 0: producers other than provgraph's) can only be judged by
the last two rules. The answer is the same whatever order the events arrived in.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from provgraph.events.states import DELETE_JOB, TAG_JOB, RunState
from provgraph.graph.views import Completeness

MAX_MISSING = 100
"""Missing sequence numbers listed per run (a forged seq of 2^63 must not make a list that long)."""

TERMINAL = (RunState.COMPLETE.value, RunState.FAIL.value, RunState.ABORT.value)
ONE_EVENT_JOBS = (TAG_JOB, DELETE_JOB)
"""Jobs whose runs provgraph records as one COMPLETE event: no START is missing from them."""


@dataclass(frozen=True)
class CompletenessRules:
    terminal_timeout_s: float = 86400.0

    def cutoff(self, now: datetime | None = None) -> str:
        """Runs whose last event is before this time (ISO text) and have not ended are `noTerminal`;
        "" when the rule is off."""
        if self.terminal_timeout_s <= 0:
            return ""
        return ((now or datetime.now(UTC)) - timedelta(seconds=self.terminal_timeout_s)).isoformat()

    def judge(
        self,
        *,
        state: str,
        has_start: bool,
        seqs: Sequence[int],
        declared: int | None,
        last_event_at: str | None,
        job: str = "",
        now: datetime | None = None,
    ) -> Completeness:
        present = sorted(set(s for s in seqs if s > 0))
        top = max(present[-1] if present else 0, declared or 0)
        have = set(present)
        missing: list[int] = []
        k = 1
        while k <= top and len(missing) < MAX_MISSING:  # at most len(have) + MAX_MISSING rounds
            if k not in have:
                missing.append(k)
            k += 1
        reasons: list[str] = []
        if present and len(present) < present[-1]:
            reasons.append("sequenceGap")
        if declared and sum(1 for s in present if s <= declared) < declared:
            reasons.append("countUnmet")
        if not has_start and job not in ONE_EVENT_JOBS:
            reasons.append("noStart")
        cutoff = self.cutoff(now)
        if state not in TERMINAL and cutoff and (last_event_at or "") < cutoff:
            reasons.append("noTerminal")
        return Completeness(complete=not reasons, missing=missing, reasons=reasons)
