"""The pipeline DSL: a pipeline is a function that calls `step(...)`; passing one step's output as
another step's input defines the DAG.

    @pipeline
    def train_flow(raw: str, lr: float = 0.1):
        prep = step(prepare, inputs={"raw": raw}, outputs=["train_set", "test_set"])
        model = step(train, params={"lr": lr}, inputs={"train_set": prep.outputs["train_set"]}, outputs=["model"])
        step(evaluate, inputs={"model": model.outputs["model"], "test_set": prep.outputs["test_set"]},
             when=model.results["train_accuracy"] > 0.5)

Calling the pipeline function only builds the graph; nothing runs. `Pipeline.validate` refuses
cycles, unknown outputs, missing arguments and type mismatches before any step runs, naming the
step, so a broken pipeline never leaves half its runs behind.
"""

from __future__ import annotations

import contextvars
import inspect
import operator
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from provgraph._code import Handler, load_handler
from provgraph._execution import CONTEXT_NAMES, _coerce
from provgraph.events.errors import ConfigError, ProvgraphError

STEP_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")
HUB_PREFIX = "hub://"
SCALARS = ("int", "float", "bool", "str")


class PipelineError(ConfigError):
    """The pipeline is refused before anything runs; the message names the step at fault."""


@dataclass(frozen=True)
class OutputRef:
    """Output `key` of step `step`: a pinned artifact URI once the step has run."""

    step: str
    key: str


_OPS: dict[str, Callable[[Any, Any], bool]] = {
    "==": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}


@dataclass(frozen=True)
class Condition:
    """`when=` of a step: a comparison of an upstream step's result with a constant."""

    ref: ResultRef
    op: str
    value: Any

    def holds(self, results: dict[str, Any]) -> bool:
        if self.ref.key not in results:
            raise PipelineError(
                f"condition of a step reads result {self.ref.key!r} of step {self.ref.step!r}, which it did not log"
            )
        try:
            return bool(_OPS[self.op](results[self.ref.key], self.value))
        except TypeError as exc:
            raise PipelineError(f"condition {self} cannot compare: {exc}") from exc

    def __str__(self) -> str:
        return f"{self.ref.step}.results[{self.ref.key!r}] {self.op} {self.value!r}"

    def __bool__(self) -> bool:
        """Refused: `a > 1 and b > 2` would silently keep `b > 2` alone (Python's `and` asks each
        side's truth while the pipeline is built, before any step ran)."""
        raise PipelineError(
            f"condition {self} has no truth value while the pipeline is built: a step's `when=` takes one"
            " comparison (combine them in the upstream step's results, not with and/or/not)"
        )


@dataclass(frozen=True, eq=False)
class ResultRef:
    """Result `key` of step `step`: usable as a param (resolved when the step has run) or in `when=`."""

    step: str
    key: str

    def __eq__(self, other: object) -> Condition:  # type: ignore[override]
        return Condition(self, "==", other)

    def __ne__(self, other: object) -> Condition:  # type: ignore[override]
        return Condition(self, "!=", other)

    def __lt__(self, other: object) -> Condition:
        return Condition(self, "<", other)

    def __le__(self, other: object) -> Condition:
        return Condition(self, "<=", other)

    def __gt__(self, other: object) -> Condition:
        return Condition(self, ">", other)

    def __ge__(self, other: object) -> Condition:
        return Condition(self, ">=", other)

    __hash__ = object.__hash__


class _Outputs:
    def __init__(self, step: Step) -> None:
        self._step = step

    def __getitem__(self, key: str) -> OutputRef:
        if key not in self._step.declared_outputs:
            declared = ", ".join(self._step.declared_outputs) or "none"
            raise PipelineError(f"step {self._step.name!r} declares no output {key!r} (declared: {declared})")
        return OutputRef(self._step.name, key)


class _Results:
    def __init__(self, step: Step) -> None:
        self._step = step

    def __getitem__(self, key: str) -> ResultRef:
        return ResultRef(self._step.name, key)


@dataclass(eq=False)
class Step:
    """One node of the DAG: a handler (function, `file.py:func` or `hub://name`) with its arguments."""

    name: str
    handler: Handler | str
    params: dict[str, Any]
    inputs: dict[str, str | OutputRef]
    declared_outputs: tuple[str, ...]
    when: Condition | None = None
    retries: int = 0
    cache: bool = True
    ordering: set[str] = field(default_factory=set)
    """Steps this one runs after without reading their outputs (`after`)."""

    @property
    def outputs(self) -> _Outputs:
        return _Outputs(self)

    @property
    def results(self) -> _Results:
        return _Results(self)

    def after(self, *steps: Step) -> Step:
        """Run this step only once `steps` have completed (an ordering with no data between them)."""
        self.ordering.update(s.name for s in steps)
        return self

    @property
    def upstream(self) -> set[str]:
        """Every step this one waits for: outputs it reads, results it uses, `after`, its condition."""
        deps = set(self.ordering)
        deps.update(v.step for v in self.inputs.values() if isinstance(v, OutputRef))
        deps.update(v.step for v in self.params.values() if isinstance(v, ResultRef))
        if self.when is not None:
            deps.add(self.when.ref.step)
        return deps

    @property
    def is_hub(self) -> bool:
        return isinstance(self.handler, str) and self.handler.startswith(HUB_PREFIX)


@dataclass
class Pipeline:
    """A built DAG: steps in the order they were declared, and the params it was built with."""

    name: str
    params: dict[str, Any]
    steps: dict[str, Step] = field(default_factory=dict)

    def add(self, new: Step, explicit_name: bool) -> Step:
        if new.name in self.steps:
            if explicit_name:
                raise PipelineError(f"two steps are named {new.name!r}: give each step (and each fan_out) its own name")
            n = 2
            while f"{new.name}-{n}" in self.steps:
                n += 1
            new.name = f"{new.name}-{n}"
        self.steps[new.name] = new
        return new

    def order(self) -> list[str]:
        """Steps in dependency order (declaration order among independent ones); refuses cycles."""
        for s in self.steps.values():
            for dep in sorted(s.upstream):
                if dep not in self.steps:
                    raise PipelineError(f"step {s.name!r} depends on unknown step {dep!r}")
        done: list[str] = []
        placed: set[str] = set()
        pending = list(self.steps)
        while pending:
            ready = [n for n in pending if self.steps[n].upstream <= placed]
            if not ready:
                raise PipelineError(f"steps {', '.join(repr(n) for n in _cycle(self, pending))} form a cycle")
            for n in ready:
                done.append(n)
                placed.add(n)
            pending = [n for n in pending if n not in placed]
        return done

    def downstream(self, name: str) -> set[str]:
        """Every step that waits, directly or not, for `name`."""
        out: set[str] = set()
        frontier = {name}
        while frontier:
            frontier = {s.name for s in self.steps.values() if s.upstream & frontier} - out
            out |= frontier
        return out

    def validate(self) -> list[str]:
        """Check the whole DAG before anything runs; returns the run order."""
        order = self.order()
        for s in self.steps.values():
            if s.retries < 0:
                raise PipelineError(f"step {s.name!r}: retries must be >= 0")
            if not s.is_hub:
                check_signature(s, resolve(s))
        return order


def _cycle(pipe: Pipeline, pending: list[str]) -> list[str]:
    """One cycle among `pending` (every one of them waits for another one of them)."""
    start = pending[0]
    path = [start]
    current = start
    while True:
        current = sorted(pipe.steps[current].upstream & set(pending))[0]
        if current in path:
            return [*path[path.index(current) :], current]
        path.append(current)


def resolve(s: Step) -> Handler:
    """The step's function (a `file.py:func` is imported from the file as it is now)."""
    if callable(s.handler):
        return s.handler
    try:
        return load_handler(s.handler)
    except ConfigError as exc:
        raise PipelineError(f"step {s.name!r}: {exc}") from exc


def _annotation(p: inspect.Parameter) -> str:
    a = p.annotation
    if a is inspect.Parameter.empty:
        return ""
    return a if isinstance(a, str) else getattr(a, "__name__", str(a))


def check_signature(s: Step, handler: Handler) -> None:
    """Every argument has a parameter of a fitting type, and every required parameter gets one."""
    sig = inspect.signature(handler)
    params = sig.parameters
    extra_ok = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    for key, value in s.inputs.items():
        if key not in params and not extra_ok:
            raise PipelineError(f"step {s.name!r}: {_name(handler)}() has no parameter {key!r} for input {key!r}")
        kind = _annotation(params[key]) if key in params else ""
        if kind in SCALARS:
            what = f"output {value.key!r} of step {value.step!r}" if isinstance(value, OutputRef) else repr(value)
            raise PipelineError(
                f"step {s.name!r}: input {key!r} is a dataset ({what}) but {_name(handler)}() takes {key}: {kind}"
            )
        if not isinstance(value, OutputRef | str):
            raise PipelineError(f"step {s.name!r}: input {key!r} must be a URI or a step output, not {value!r}")
    for key, value in s.params.items():
        if key not in params and not extra_ok:
            raise PipelineError(f"step {s.name!r}: {_name(handler)}() has no parameter {key!r}")
        if isinstance(value, OutputRef):
            raise PipelineError(
                f"step {s.name!r}: param {key!r} is output {value.key!r} of step {value.step!r}; pass outputs as inputs"
            )
        kind = _annotation(params[key]) if key in params else ""
        if kind.endswith("DataItem"):
            raise PipelineError(f"step {s.name!r}: {key!r} is a DataItem; pass it in inputs, not params")
        if not isinstance(value, ResultRef) and key in params:
            try:
                _coerce(value, params[key].annotation, key)
            except ConfigError as exc:
                raise PipelineError(f"step {s.name!r}: {exc}") from exc
    for i, (name, p) in enumerate(params.items()):
        if p.kind in (inspect.Parameter.VAR_KEYWORD, inspect.Parameter.VAR_POSITIONAL):
            continue
        if _annotation(p).endswith("Context") or (i == 0 and name in CONTEXT_NAMES):
            continue
        if p.default is inspect.Parameter.empty and name not in s.inputs and name not in s.params:
            raise PipelineError(f"step {s.name!r}: {_name(handler)}() needs {name!r}: pass it as a param or input")


def _name(handler: Handler) -> str:
    return str(getattr(handler, "__name__", "handler"))


def default_name(handler: Handler | str) -> str:
    """A step's name when none is given: the function's name (of `file.py:func`, of `hub://…/func`)."""
    if isinstance(handler, str) and handler.startswith("hub://"):  # hub://[source/]func[:version]
        return handler.rpartition("/")[2].partition(":")[0] or "step"
    if isinstance(handler, str):
        return handler.rpartition("/")[2].rpartition(":")[2] or "step"
    return _name(handler)


_building: contextvars.ContextVar[Pipeline | None] = contextvars.ContextVar("provgraph_pipeline", default=None)


def step(
    handler: Handler | str,
    params: dict[str, Any] | None = None,
    inputs: Mapping[str, str | OutputRef | None] | None = None,
    *,
    name: str | None = None,
    outputs: Sequence[str] = (),
    when: Condition | None = None,
    retries: int = 0,
    cache: bool = True,
) -> Step:
    """Add a step to the pipeline being built. `outputs` declares the artifact keys the handler logs
    (what later steps may read); `when` runs it only if an upstream result compares true (otherwise it
    and its dependants are SKIPPED); `retries` re-runs a failed step; `cache=False` always executes it.
    An input given as None is not given (an optional input: the handler's default applies)."""
    pipe = _building.get()
    explicit = name is not None
    if pipe is None:
        raise PipelineError("step() is called inside a pipeline function (run it with provgraph pipeline run)")
    name = name or default_name(handler)
    if not STEP_NAME.match(name):
        raise PipelineError(f"step name {name!r} must be 1-100 letters, digits, '_', '.' or '-'")
    if isinstance(when, bool):
        raise PipelineError(f"step {name!r}: when= needs a condition on a step's result, e.g. prep.results['n'] > 0")
    made = Step(
        name=name,
        handler=handler,
        params=dict(params or {}),
        inputs={k: v for k, v in (inputs or {}).items() if v is not None},
        declared_outputs=tuple(outputs),
        when=when,
        retries=retries,
        cache=cache,
    )
    return pipe.add(made, explicit_name=explicit)


def fan_out(
    handler: Handler | str,
    over: Iterable[Any],
    param: str,
    params: dict[str, Any] | None = None,
    inputs: dict[str, str | OutputRef] | None = None,
    *,
    name: str | None = None,
    **options: Any,
) -> list[Step]:
    """One step per value of `over`, passed as `param`: `<name>-0`, `<name>-1`, … (run in parallel).
    Without `name`, a fan-out of a handler fanned out before (a fan-out in a loop) is `<handler>-2-0` …"""
    values = list(over)
    base = root = name or default_name(handler)
    pipe, n = _building.get(), 2
    while name is None and pipe is not None and any(f"{base}-{i}" in pipe.steps for i in range(len(values))):
        base, n = f"{root}-{n}", n + 1
    return [
        step(handler, {**(params or {}), param: value}, inputs, name=f"{base}-{i}", **options)
        for i, value in enumerate(values)
    ]


@dataclass(frozen=True)
class PipelineDef:
    """A pipeline function; `build(params)` calls it to make the DAG."""

    func: Callable[..., Any]
    name: str

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.func(*args, **kwargs)

    def build(self, params: dict[str, Any] | None = None) -> Pipeline:
        from provgraph._execution import effective_params

        bound = effective_params(self.func, dict(params or {}), {})
        sig = inspect.signature(self.func)
        unknown = sorted(set(bound) - set(sig.parameters))
        if unknown and not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in sig.parameters.values()):
            raise PipelineError(f"pipeline {self.name!r} has no param {unknown[0]!r}")
        missing = [
            n
            for n, p in sig.parameters.items()
            if p.default is inspect.Parameter.empty
            and n not in bound
            and p.kind not in (inspect.Parameter.VAR_KEYWORD, inspect.Parameter.VAR_POSITIONAL)
        ]
        if missing:
            raise PipelineError(f"pipeline {self.name!r} needs param {missing[0]!r} (-p {missing[0]}=…)")
        pipe = Pipeline(self.name, bound)
        token = _building.set(pipe)
        try:
            self.func(**bound)
        except ProvgraphError:
            raise
        except Exception as exc:  # the user's pipeline function: its failure, said in one line
            raise PipelineError(
                f"pipeline {self.name!r} failed while building its steps: {type(exc).__name__}: {exc}"
            ) from exc
        finally:
            _building.reset(token)
        if not pipe.steps:
            raise PipelineError(f"pipeline {self.name!r} declares no steps")
        return pipe


def pipeline(func: Callable[..., Any] | None = None, *, name: str | None = None) -> Any:
    """Decorator: mark `func` as a pipeline (`@pipeline` or `@pipeline(name="…")`)."""

    def wrap(f: Callable[..., Any]) -> PipelineDef:
        return PipelineDef(f, name or f.__name__)

    return wrap(func) if func is not None else wrap


def as_pipeline(obj: Any) -> PipelineDef:
    """A `PipelineDef`, or a plain function treated as one."""
    if isinstance(obj, PipelineDef):
        return obj
    if callable(obj):
        return PipelineDef(obj, obj.__name__)
    raise PipelineError(f"{obj!r} is not a pipeline function")
