"""`--where` / GraphQL `runs(filter:)`: a small, safe language for finding runs.

    metrics.accuracy > 0.9 and params.lr = 0.01 and state = FAIL and started >= "2026-03-01"

Grammar: conditions joined by `and`; a condition is `FIELD OP VALUE`, OP one of = != < <= > >=.
Fields: `params.<key>`, `metrics.<key>` (the metric's latest step), `labels.<key>` (a label's text:
a number there is compared as it is written, `labels.v = 2` matches the label "2"), `state`, `job`, `project`
(`=` only: they are the filter's own fields), `started` and `ended` (ISO times). Values: numbers,
quoted strings ('…' or "…"), `true`/`false`, or a bare word (a string). A number matches only
numeric values and a string only strings, so `params.lr > 0.5` never compares text with numbers;
non-finite metric values (NaN, ±Infinity) match no comparison.

The parser builds `Condition`s; the stores turn them into parametrised SQL/Cypher from fixed
fragments (field kinds and operators are looked up, never spliced), with values and keys always
passed as parameters. Errors are one line saying where the text went wrong.
"""

from __future__ import annotations

import math
import re
from dataclasses import replace
from datetime import UTC, datetime

from provgraph.events.errors import ConfigError
from provgraph.events.states import RunState
from provgraph.graph.contract import Condition, Op, RunFilter, Value

MAX_QUERY = 2000
"""Characters in a query; beyond it nobody is typing."""
MAX_CONDITIONS = 16
OPS = ("=", "!=", "<", "<=", ">", ">=")

_TOKEN = re.compile(
    r"""\s*(?:
      (?P<op><=|>=|!=|=|<|>)
    | (?P<str>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')
    | (?P<time>\d{4}-\d\d-\d\d(?:[T\s]?[\d:.]+)?(?:Z|[+-]\d\d:?\d\d)?(?![\w.:]))
    | (?P<num>[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?(?![\w.]))
    | (?P<word>[A-Za-z_][\w.:/\-]*)
    )""",
    re.VERBOSE,
)
_KEY = re.compile(r"[A-Za-z_][\w\-]*")
_LABEL_KEY = re.compile(r"[A-Za-z_][\w.\-]*(?:/[A-Za-z_][\w.\-]*)?")
"""A label key as Kubernetes and MLRun write them (`app.kubernetes.io/name`)."""


class QueryError(ConfigError):
    """The text is not a valid run query; the message says where."""


def _tokens(text: str) -> list[tuple[str, str, int]]:
    out: list[tuple[str, str, int]] = []
    at = 0
    while True:
        while at < len(text) and text[at].isspace():
            at += 1
        if at == len(text):
            break
        m = _TOKEN.match(text, at)
        if m is None or m.end() == at:
            raise QueryError(f"cannot read the query at character {at + 1}: {text[at : at + 20].strip()!r}")
        kind = m.lastgroup
        assert kind is not None
        out.append((kind, m.group(kind), m.start(kind)))
        at = m.end()
    return out


def _unquote(token: str) -> str:
    return re.sub(r"\\(.)", r"\1", token[1:-1])


def parse(text: str) -> tuple[RunFilter, tuple[Condition, ...]]:
    """The query as the fields of a `RunFilter` (state, job, project) plus the other conditions."""
    if len(text) > MAX_QUERY:
        raise QueryError(f"the query is {len(text)} characters long; the limit is {MAX_QUERY}")
    tokens = _tokens(text)
    if not tokens:
        raise QueryError("the query is empty: write conditions such as `metrics.accuracy > 0.9 and params.lr = 0.01`")
    base = RunFilter()
    conditions: list[Condition] = []
    i = 0
    while True:
        if len(tokens) < i + 3:
            rest = text[tokens[i][2] :].strip() if i < len(tokens) else ""
            raise QueryError(f"the query ends in the middle of a condition ({rest!r}): expected FIELD OP VALUE")
        (fk, field, fpos), (ok, op, opos), (vk, raw, vpos) = tokens[i : i + 3]
        if fk != "word":
            raise QueryError(f"expected a field at character {fpos + 1}, got {field!r}")
        if ok != "op":
            raise QueryError(f"expected one of {' '.join(OPS)} after {field!r} at character {opos + 1}, got {op!r}")
        if vk == "op":
            raise QueryError(f"expected a value at character {vpos + 1}, got {raw!r}")
        value: Value = float(raw) if vk == "num" else _unquote(raw) if vk == "str" else raw  # word, time
        if vk == "num" and field.startswith("labels."):
            value = raw  # labels are text: compared as written
        if vk == "word" and raw in ("true", "false"):
            value = raw  # booleans are kept, and compared, as the strings "true" / "false"
        if isinstance(value, float) and not math.isfinite(value):
            raise QueryError(f"the number at character {vpos + 1} is too large")
        base = _add(base, conditions, field, op, value, fpos)  # type: ignore[arg-type]
        if len(conditions) > MAX_CONDITIONS:
            raise QueryError(f"at most {MAX_CONDITIONS} param, metric, label and time conditions")
        i += 3
        if i == len(tokens):
            return base, tuple(conditions)
        kind, word, pos = tokens[i]
        if word.lower() != "and" or kind != "word":
            hint = " (only `and` joins conditions)" if word.lower() == "or" else ""
            raise QueryError(f"expected `and` at character {pos + 1}, got {word!r}{hint}")
        i += 1


def _add(base: RunFilter, conditions: list[Condition], field: str, op: Op, value: Value, pos: int) -> RunFilter:
    prefix, dot, key = field.partition(".")
    if dot and prefix == "labels":
        if not _LABEL_KEY.fullmatch(key):
            raise QueryError(f"{field!r} at character {pos + 1}: a label key is letters, digits, _ - . and one /")
        conditions.append(Condition("label", key, op, value if isinstance(value, str) else f"{value:g}"))
        return base
    if dot:
        if prefix not in ("params", "metrics"):
            raise QueryError(
                f"unknown field {field!r} at character {pos + 1}: use params.<key>, metrics.<key> or labels.<key>"
            )
        if not _KEY.fullmatch(key):
            raise QueryError(f"{field!r} at character {pos + 1}: a key is letters, digits, _ and -")
        if prefix == "metrics" and not isinstance(value, float):
            raise QueryError(f"{field} compares with a number, not {value!r}")
        conditions.append(Condition("param" if prefix == "params" else "metric", key, op, value))
        return base
    if field in ("started", "ended"):
        conditions.append(Condition(field, "", op, _time(value, field)))  # type: ignore[arg-type]
        return base
    if field not in ("state", "job", "project"):
        raise QueryError(
            f"unknown field {field!r} at character {pos + 1}: use params.<key>, metrics.<key>, labels.<key>,"
            " state, job, project, started or ended"
        )
    if op != "=":
        raise QueryError(f"{field} supports only `=` (got {op!r})")
    text = value if isinstance(value, str) else f"{value:g}"
    if getattr(base, field) is not None:
        raise QueryError(f"{field} is given twice")
    if field == "state":
        if text.upper() not in RunState.__members__:
            raise QueryError(f"{text!r} is not a run state; use one of {', '.join(RunState)}")
        return replace(base, state=RunState(text.upper()))
    return replace(base, job=text) if field == "job" else replace(base, project=text)


def _time(value: Value, field: str) -> str:
    """An ISO time as the stores keep it (UTC, isoformat), so text comparison is time order."""
    try:
        when = datetime.fromisoformat(str(value))
    except ValueError:
        raise QueryError(f"{field} compares with an ISO time such as 2026-03-01 or 2026-03-01T12:00:00Z") from None
    return (when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)).isoformat()


def merge(options: RunFilter, query: RunFilter) -> RunFilter:
    """Command-line options and the query's own state/job/project: both may say the same, not differ."""
    out = options
    for name in ("project", "job", "state"):
        a, b = getattr(options, name), getattr(query, name)
        if a is not None and b is not None and a != b:
            raise QueryError(f"{name} is '{a}' in the options and '{b}' in the query")
        if b is not None:
            out = replace(out, **{name: b})
    return out
