"""Typed handlers, as MLRun's packagers (MLRun >= 1.3): inputs converted to the parameter's annotation,
returned values logged by type, and `handler(outputs=[…], labels={…})` to name them.

    @provgraph.handler(outputs=["clean:dataset", "rows"])
    def prepare(raw: pd.DataFrame, limit: int = 10):
        df = raw.dropna()
        return df, len(df)          # -> dataset output "clean", result "rows"

Without hints a returned dict is the run's results and any other value is logged by type under the
key `return`. The real `mlrun.handler` decorator (MLRun installed) is read the same way.
"""

from __future__ import annotations

import functools
import inspect
import io
import json
import logging
import pickle
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from provgraph.events.errors import ConfigError

if TYPE_CHECKING:
    from provgraph._context import Context
    from provgraph._dataitem import DataItem

log = logging.getLogger("provgraph")

HINTS_ATTR = "__provgraph_handler__"


@dataclass(frozen=True)
class OutputHint:
    key: str
    artifact_type: str | None = None
    options: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class HandlerHints:
    outputs: tuple[OutputHint | None, ...] | None = None
    labels: dict[str, str] = field(default_factory=dict)
    parse_inputs: bool | dict[str, Any] = True


def handler(
    labels: dict[str, str] | None = None,
    outputs: list[str | dict[str, Any] | None] | None = None,
    inputs: bool | dict[str, Any] = True,
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """MLRun's `@mlrun.handler`: name (and type) the returned values with `outputs` ("key",
    "key:artifact_type", {"key": …, "artifact_type": …}, or None to skip one), add run `labels`, and
    (`inputs=False`) keep inputs as DataItems. The function itself is returned unchanged."""
    hints = HandlerHints(
        outputs=None if outputs is None else tuple(_output_hint(o) for o in outputs),
        labels={str(k): str(v) for k, v in (labels or {}).items()},
        parse_inputs=inputs,
    )

    def decorate(func: Callable[..., Any]) -> Callable[..., Any]:
        setattr(func, HINTS_ATTR, hints)
        return func

    return decorate


def _output_hint(spec: str | dict[str, Any] | None) -> OutputHint | None:
    if spec is None:
        return None
    if isinstance(spec, dict):
        if "key" not in spec:
            raise ConfigError(f"handler output {spec!r} needs a 'key'")
        options = {k: v for k, v in spec.items() if k not in ("key", "artifact_type")}
        return OutputHint(str(spec["key"]), spec.get("artifact_type"), options)
    key, _, kind = str(spec).partition(":")
    return OutputHint(key.strip(), kind.strip() or None)


def hints_of(func: Callable[..., Any]) -> HandlerHints:
    """provgraph's hints, or those of the real `mlrun.handler` wrapper (MLRun installed: its closure holds them)."""
    found = getattr(func, HINTS_ATTR, None)
    if isinstance(found, HandlerHints):
        return found
    code = getattr(func, "__code__", None)
    if code is not None and hasattr(func, "__wrapped__") and _is_mlrun_wrapper(code.co_filename, code.co_qualname):
        bound = inspect.getclosurevars(func).nonlocals
        made = handler(labels=bound.get("labels"), outputs=bound.get("outputs"), inputs=bound.get("inputs", True))
        return getattr(made(lambda: None), HINTS_ATTR)  # type: ignore[no-any-return]
    return HandlerHints()


def _is_mlrun_wrapper(filename: str, qualname: str) -> bool:
    return (
        Path(filename).parent.name == "package"
        and Path(filename).parent.parent.name == "mlrun"
        and (qualname == "handler.<locals>.decorator.<locals>.wrapper")
    )


# -- inputs ----------------------------------------------------------------------------------------


def annotations_of(func: Callable[..., Any]) -> dict[str, Any]:
    """Parameter annotations, resolved where possible (string annotations stay strings otherwise)."""
    try:
        return dict(_annotations(func))
    except TypeError:  # unhashable callable
        return dict(_resolve(func))


@functools.lru_cache(maxsize=256)
def _annotations(func: Callable[..., Any]) -> dict[str, Any]:
    """Cached per handler: resolving string annotations costs more than the rest of a run's overhead."""
    return _resolve(func)


def _resolve(func: Callable[..., Any]) -> dict[str, Any]:
    target = inspect.unwrap(func)
    try:
        return typing.get_type_hints(target)
    except Exception:  # noqa: BLE001 - any unresolvable annotation: fall back to the raw ones
        return dict(getattr(target, "__annotations__", {}))


def type_name(annotation: Any) -> str:
    """`pandas.DataFrame`, `numpy.ndarray`, `dict` …: a comparable name for a class or string annotation."""
    if isinstance(annotation, str):
        text = annotation.strip().strip("'\"")
        aliases = {"pd.": "pandas.", "np.": "numpy.", "pathlib.": ""}
        for short, full in aliases.items():
            text = full + text[len(short) :] if text.startswith(short) else text
        return text
    origin = typing.get_origin(annotation) or annotation
    module = getattr(origin, "__module__", "")
    name = getattr(origin, "__qualname__", getattr(origin, "__name__", ""))
    if module.startswith("pandas"):
        module = "pandas"
    if module == "builtins" or module.startswith("pathlib"):
        return str(name)
    return f"{module}.{name}"


def convert_input(item: DataItem, annotation: Any) -> Any:
    """The input as the annotation asks: DataFrame, ndarray, dict, list, str, bytes or Path; anything
    else (a DataItem annotation, none, an unknown type) gets the DataItem itself. In a union, as in
    MLRun, a DataItem member wins (`Union[FeatureSet, DataItem]`), `Optional[X]` is X, and any other
    union gets the DataItem."""
    members = [m for m in _union_members(annotation) if m is not type(None)]
    mlrun_item = next((m for m in members if type_name(m) == MLRUN_DATAITEM and isinstance(m, type)), None)
    if mlrun_item is not None:
        from provgraph._mlrun import real_mlrun_dataitem

        return real_mlrun_dataitem(item, mlrun_item)  # the real MLRun is installed
    if len(members) != 1:
        return item
    annotation = members[0]
    name = type_name(annotation) if annotation is not inspect.Parameter.empty else ""
    if name in ("pandas.DataFrame", "DataFrame"):
        return item.as_df()
    if name in ("numpy.ndarray", "ndarray"):
        import numpy as np

        if item.format in ("npy", "npz"):
            return np.load(io.BytesIO(_bytes(item)), allow_pickle=False)
        return item.as_df().to_numpy()
    if name in ("dict", "list"):
        value = json.loads(_bytes(item))
        expected = dict if name == "dict" else list
        if not isinstance(value, expected):
            raise ConfigError(f"input {item.key!r} holds a JSON {type(value).__name__}, not a {name}")
        return value
    if name == "str":
        return item.get(encoding="utf-8")
    if name == "bytes":
        return item.get()
    if name in ("Path", "PosixPath"):
        return Path(item.local())
    return item


MLRUN_DATAITEM = "mlrun.datastore.base.DataItem"


def _union_members(annotation: Any) -> tuple[Any, ...]:
    """The members of a `Union[...]`/`X | Y` annotation; any other annotation alone."""
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return typing.get_args(annotation)
    return (annotation,)


def _bytes(item: DataItem) -> bytes:
    return item.get()


# -- returns ---------------------------------------------------------------------------------------


def log_returned(ctx: Context, returned: Any, hints: HandlerHints) -> None:
    """Log what the handler returned: by its hints when it has them, else a dict as results and any
    other value by type under `return`."""
    if hints.outputs is None:
        if isinstance(returned, dict):
            ctx.log_results(returned)
        elif returned is not None:
            log_value(ctx, "return", returned)
        return
    values = list(returned) if isinstance(returned, tuple) and len(hints.outputs) > 1 else [returned]
    for hint, value in zip(hints.outputs, values, strict=False):
        if hint is not None:
            log_value(ctx, hint.key, value, hint.artifact_type)


ARRAY_SIZE_AS_RESULT = 10
"""An ndarray of fewer elements is a result, a larger one an npy artifact (MLRun's numpy packager)."""


RESULT_TYPES = (str, int, float, bool, dict, list)
"""Values MLRun's packagers log as results by default (with None, tuples, sets and numpy scalars)."""

PATH_TYPES = ("path", "directory", "file")
"""Artifact types that, for a str or Path value, name a file or folder to store."""


def log_value(ctx: Context, key: str, value: Any, artifact_type: str | None = None) -> None:
    """One value by type, as MLRun's packagers: DataFrame -> dataset, ndarray -> npy artifact (a small
    one a result), bytes/bytearray/Path/artifact objects -> artifacts, scalars, strings, lists, tuples,
    sets and dicts -> results (a dict or list with artifact_type "file" -> a JSON file), a str with
    artifact_type "path"/"file"/"directory" -> the file or folder it names; any other object (a fitted
    model, a Timestamp, a figure), or any value with artifact_type "object", pickled as `<key>.pkl`."""
    kind = (artifact_type or "").lower()
    name = type_name(type(value))
    if isinstance(value, set | frozenset | tuple):  # MLRun's set/tuple packagers: a list
        value = _as_list(value)
    elif isinstance(value, bytearray):
        value = bytes(value)
    if kind == "result":
        ctx.log_result(key, value)
    elif name in ("pandas.DataFrame", "pandas.Series"):
        frame = value.to_frame() if name == "pandas.Series" else value
        if kind in ("", "dataset"):
            ctx.log_dataset(key, frame)
        else:
            from provgraph._context import _serialise_table

            ctx.log_artifact(key, body=_serialise_table(key, frame, "csv", None), format="csv")
    elif kind == "object":  # MLRun's "object" artifact: the value pickled
        _log_pickled(ctx, key, value)
    elif name == "numpy.ndarray":
        _log_array(ctx, key, value, kind)
    elif isinstance(value, bytes):
        ctx.log_artifact(key, body=value)
    elif isinstance(value, Path) or (kind in PATH_TYPES and isinstance(value, str) and _names_a_path(value, kind)):
        _log_path(ctx, key, Path(value), kind)
    elif hasattr(value, "metadata") and hasattr(value, "spec"):
        ctx.log_artifact(value)
    elif _logged(value):  # returned what `log_artifact` gave back: it is an output already, named here
        ctx.log_result(key, value.uri)
    elif kind in ("file", "artifact") and isinstance(value, str | dict | list):
        body = value if isinstance(value, str) else json.dumps(value)
        ctx.log_artifact(key, body=body, format="txt" if isinstance(value, str) else "json")
    elif value is None or isinstance(value, RESULT_TYPES) or _numpy_scalar(value):
        ctx.log_result(key, value)
    else:  # MLRun's default packager: an object of no known type is pickled
        _log_pickled(ctx, key, value)


def _log_array(ctx: Context, key: str, value: Any, kind: str) -> None:
    """MLRun's ndarray packager: a small array a result, a "dataset" hint a table, else an .npy file."""
    if kind == "" and value.size < ARRAY_SIZE_AS_RESULT:
        ctx.log_result(key, value)
    elif kind == "dataset":
        import pandas as pd

        ctx.log_dataset(key, pd.DataFrame(value))
    else:
        import numpy as np

        buf = io.BytesIO()
        np.save(buf, value, allow_pickle=False)
        ctx.log_artifact(key, body=buf.getvalue(), format="npy")


def _logged(value: Any) -> bool:
    from provgraph._context import Artifact

    return isinstance(value, Artifact)


def _as_list(value: set[Any] | frozenset[Any] | tuple[Any, ...]) -> list[Any]:
    """A tuple in order; a set sorted when it can be (the same set logs the same result every run)."""
    if isinstance(value, tuple):
        return list(value)
    try:
        return sorted(value)
    except TypeError:
        return list(value)


def _numpy_scalar(value: Any) -> bool:
    """A numpy number or bool (MLRun's NumPyNumberPackager: a result)."""
    return type(value).__module__ == "numpy" and hasattr(value, "item") and getattr(value, "shape", None) == ()


def _names_a_path(value: str, kind: str) -> bool:
    """Whether a str output hinted `kind` is a path to store. "path"/"directory" always are (one that does
    not exist then fails the run, as in MLRun); "file" is when the file exists (otherwise its text is stored)."""
    return kind != "file" or Path(value).is_file()


def _log_path(ctx: Context, key: str, path: Path, kind: str) -> None:
    """The file or folder at `path` (a folder stored file by file, see `Context.log_artifact`)."""
    if not path.exists():
        raise ConfigError(f"output {key!r}: {kind} {str(path)!r} does not exist")
    if kind == "directory" and not path.is_dir():
        raise ConfigError(f"output {key!r}: {str(path)!r} is not a folder")
    if kind == "file" and not path.is_file():
        raise ConfigError(f"output {key!r}: {str(path)!r} is not a file")
    ctx.log_artifact(key, local_path=path)


def _log_pickled(ctx: Context, key: str, value: Any) -> None:
    """The value pickled, as MLRun's default packager does (cloudpickle when installed, for lambdas and
    locally defined classes, else pickle); one that cannot be pickled is recorded as its repr, with a warning."""
    try:
        import cloudpickle  # type: ignore[import-not-found,unused-ignore]

        dumps: Callable[[Any], bytes] = cloudpickle.dumps
    except ImportError:
        dumps = pickle.dumps
    try:
        body = dumps(value)
    except Exception as exc:  # noqa: BLE001 - whatever pickling raises: the run keeps its other outputs
        log.warning("output %r (%s) cannot be pickled (%s): recorded as its repr", key, type(value).__name__, exc)
        ctx.log_result(key, repr(value))
        return
    ctx.log_artifact(key, body=body, format="pkl", meta={"object_type": type_name(type(value))})
