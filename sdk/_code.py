"""Handlers and their code version: load `file.py:func`, snapshot the source, read git state.

The code version is the sha256 of the source snapshot (the whole module file, so helpers the
handler calls are included); the snapshot is stored in the artifact store under that hash, so
`reproduce` and `provgraph exec` can load exactly the code that ran. Git commit and dirty flag are
recorded when the file is in a repository; they are informative, the hash is the identity.
"""

from __future__ import annotations

import ast
import dataclasses
import dis
import functools
import hashlib
import importlib.util
import inspect
import linecache
import os
import re
import stat
import subprocess
import sys
import tempfile
import textwrap
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import CodeType, ModuleType
from typing import Any

from provgraph.compat import mlrun_importable
from provgraph.events.atomic import write_atomic
from provgraph.events.errors import ConfigError

Handler = Callable[..., Any]


@dataclass(frozen=True)
class CodeSnapshot:
    source: bytes
    code_hash: str
    entrypoint: str
    """`<file name>:<function>`: how to find the handler inside the snapshot."""
    source_path: str | None
    git_commit: str | None
    git_dirty: bool | None
    unknown: str | None = None
    """Why the loaded code is not `source` (the file was edited after it was imported), else None."""


def load_handler(spec: str, *, mlrun_compat: bool = True) -> Handler:
    """`path/to/file.py:function` -> the function, loaded from that file (`mlrun_compat`: while it is
    imported, `import mlrun` finds provgraph's compatibility module when MLRun is not installed)."""
    path_text, sep, func_name = spec.rpartition(":")
    if not sep or not path_text or not func_name:
        raise ConfigError(f"handler {spec!r} must look like path/to/file.py:function")
    path = Path(path_text).expanduser().resolve()
    if not path.is_file():
        raise ConfigError(f"handler file not found: {path_text}")
    return load_from_file(path, func_name, spec, mlrun_compat=mlrun_compat)


def load_from_file(
    path: Path, func_name: str, label: str | None = None, source: bytes | None = None, *, mlrun_compat: bool = True
) -> Handler:
    """Import `path` as a fresh module and return its `func_name`. With `source`, those (already
    verified) bytes are compiled instead of whatever the file holds now; `path` names them only."""
    module_name = f"provgraph_handler_{hashlib.sha1(str(path).encode()).hexdigest()[:12]}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise ConfigError(f"cannot import {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    folder = str(path.resolve().parent)
    if source is None and folder not in sys.path:  # as `python file.py`: its siblings import (`from steps import …`)
        sys.path.insert(0, folder)
    try:
        with mlrun_importable(mlrun_compat):
            if source is None:
                spec.loader.exec_module(module)
            else:
                exec(_compiled_source(source, str(path)), module.__dict__)
    except Exception as exc:
        sys.modules.pop(module_name, None)
        raise ConfigError(f"importing {path.name} failed: {type(exc).__name__}: {exc}") from exc
    func = getattr(module, func_name, None)
    if not callable(func):
        raise ConfigError(f"{path.name} has no function {func_name!r} ({label or path})")
    if type(func).__module__.split(".")[0] == "kfp":
        raise ConfigError(
            f"{func_name!r} in {path.name} is a Kubeflow Pipelines {type(func).__name__} (kfp.dsl): provgraph runs"
            " plain functions and pipelines written with provgraph.pipelines (step, pipeline), and compiles"
            " those to KFP with `--engine kfp` (docs/PIPELINES.md)"
        )
    return func  # type: ignore[no-any-return]


def snapshot(handler: Handler) -> CodeSnapshot:
    func_name = getattr(handler, "__qualname__", getattr(handler, "__name__", "handler"))
    try:
        source_file = inspect.getsourcefile(handler)
    except TypeError:
        source_file = None
    st = _regular_file(source_file)
    if source_file and st is not None:
        path = os.path.realpath(source_file)
        snap = _file_snapshot(path, st.st_mtime_ns, st.st_size, func_name)
        changed = _edited_since_import(handler, path, st.st_mtime_ns, st.st_size)
        return dataclasses.replace(snap, unknown=changed) if changed else snap
    source = interactive_source(handler)
    digest = "sha256:" + hashlib.sha256(source).hexdigest()
    return CodeSnapshot(source, digest, f"handler.py:{func_name}", None, None, None)


def _regular_file(path: str | None) -> os.stat_result | None:
    """`path`'s status when it is a regular file (symlinks followed), else None."""
    try:
        st = os.stat(path) if path else None
    except (OSError, ValueError):
        return None
    return st if st is not None and stat.S_ISREG(st.st_mode) else None


def interactive_source(handler: Handler) -> bytes:
    """A self-contained module for a handler defined in a notebook or REPL: the imports, helper
    functions and classes and literal values it uses from its namespace (transitively), then the
    handler. Anything else it uses (a DataFrame, an open connection, a closure) cannot be recorded,
    so the run is refused, naming it, rather than recorded as reproducible when it is not."""
    func_name = getattr(handler, "__qualname__", getattr(handler, "__name__", "handler"))
    if "<locals>" in func_name or getattr(handler, "__closure__", None):
        raise ConfigError(f"{func_name!r} is nested in another function; define it at the top level to run it")
    snap = _Interactive(func_name, getattr(handler, "__module__", "") or "")
    snap.visit(handler, func_name)
    parts = [
        "# snapshot of an interactively defined handler, taken by provgraph",
        *sorted(snap.imports.values()),
        "",
        *snap.constants.values(),
        "",
        *snap.definitions.values(),
    ]
    source = "\n".join(parts).encode()
    try:
        compile(source, "handler.py", "exec", dont_inherit=True)
    except SyntaxError as exc:
        raise ConfigError(f"the snapshot of {func_name!r} does not compile: {exc}") from exc
    return source


class _Interactive:
    """What an interactive handler needs, gathered name by name (definitions after what they use)."""

    def __init__(self, func_name: str, module: str) -> None:
        self.func_name = func_name
        self.module = module
        self.imports: dict[str, str] = {}
        self.constants: dict[str, str] = {}
        self.definitions: dict[str, str] = {}
        self.visiting: set[str] = set()

    def known(self, name: str) -> bool:
        return any(name in d for d in (self.visiting, self.imports, self.constants, self.definitions))

    def visit(self, value: Any, name: str) -> None:
        self.visiting.add(name)
        namespace = getattr(value, "__globals__", None) or vars(sys.modules.get(value.__module__, sys))
        for used in sorted(_used_names(value)):
            if not self.known(used) and used in namespace:  # else a builtin or an attribute name
                self.record(namespace[used], used)
        text = _source(value)
        if text is None:
            raise ConfigError(f"cannot read the source of {name!r}; define it in a .py file")
        if getattr(value, "__name__", name) != name:
            text += f"\n{name} = {value.__name__}\n"
        self.definitions[name] = text

    def record(self, value: Any, used: str) -> None:
        if isinstance(value, ModuleType):
            self.imports[used] = f"import {value.__name__}" + (f" as {used}" if used != value.__name__ else "")
            return
        module_name = getattr(value, "__module__", None) or ""
        qualname = getattr(value, "__qualname__", None) or ""
        module = sys.modules.get(module_name)
        importable = module_name != self.module and "." not in qualname and "<" not in qualname
        if callable(value) and importable and getattr(module, qualname, None) is value:
            self.imports[used] = f"from {module_name} import {qualname}" + (f" as {used}" if used != qualname else "")
            return
        if inspect.isfunction(value) or inspect.isclass(value):
            if getattr(value, "__closure__", None):
                raise ConfigError(f"{self.func_name!r} uses {used!r}, a closure; define it at the top level")
            self.visit(value, used)
            return
        literal = _literal(value)
        if literal is None:
            raise ConfigError(
                f"{self.func_name!r} uses {used!r} ({type(value).__name__}) from the interactive namespace, which"
                " cannot be recorded for reproduction: pass it as a param or input, create it inside the"
                " function, or define the handler in a .py file"
            )
        self.constants[used] = f"{used} = {literal}"


def _source(value: Any) -> str | None:
    """The source of a function or class. A class of a module without a file (a notebook's) is
    found from its methods' code, which `inspect` (Python < 3.13) does not do."""
    try:
        return textwrap.dedent(inspect.getsource(value))
    except (OSError, TypeError):
        if not inspect.isclass(value):
            return None
    for member in vars(value).values():
        code = getattr(getattr(member, "__func__", member), "__code__", None)
        if not isinstance(code, CodeType):
            continue
        lines = linecache.getlines(code.co_filename)
        header = re.compile(rf"\s*class\s+{re.escape(value.__name__)}\b")
        for start in range(min(code.co_firstlineno, len(lines)) - 1, -1, -1):
            if header.match(lines[start]):
                return textwrap.dedent("".join(inspect.getblock(lines[start:])))
    return None


GLOBAL_OPS = frozenset({"LOAD_GLOBAL", "LOAD_NAME", "STORE_GLOBAL", "DELETE_GLOBAL"})


def _global_names(code: CodeType) -> set[str]:
    """Names a code object (and code nested in it) looks up as globals: not its attribute names, so
    `d.items()` does not drag a notebook variable `items` into the snapshot."""
    names = {i.argval for i in dis.get_instructions(code) if i.opname in GLOBAL_OPS}
    for const in code.co_consts:
        if isinstance(const, CodeType):
            names |= _global_names(const)
    return names


def _used_names(value: Any) -> set[str]:
    """Global names a function (its code, defaults' names and decorators) or a class (its methods, bases) uses."""
    names: set[str] = set()
    if inspect.isclass(value):
        for base in value.__bases__:
            if base is not object:
                names.add(base.__name__)
        for member in vars(value).values():
            inner = getattr(member, "__func__", member)
            code = getattr(inner, "__code__", None)
            if isinstance(code, CodeType):
                names |= _global_names(code)
    else:
        code = getattr(value, "__code__", None)
        if isinstance(code, CodeType):
            names |= _global_names(code)
    try:
        tree = ast.parse(_source(value) or "")
    except SyntaxError:
        return names
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            extra: list[ast.expr] = list(node.decorator_list)
            if isinstance(node, ast.ClassDef):
                extra += node.bases
            else:
                extra += [a for a in (*node.args.defaults, *node.args.kw_defaults) if a is not None]
                extra += [a.annotation for a in (*node.args.args, *node.args.kwonlyargs) if a.annotation]
            names |= {n.id for e in extra for n in ast.walk(e) if isinstance(n, ast.Name)}
    return names


def _literal(value: object) -> str | None:
    """`repr(value)` when it evaluates back to an equal value (literals, and containers of them)."""
    if not isinstance(value, bool | int | float | complex | str | bytes | tuple | list | dict | set | frozenset):
        return None if value is not None else "None"
    text = repr(value)
    try:
        same = ast.literal_eval(text) == value
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        return None
    return text if same and len(text) <= 1 << 20 else None


@functools.lru_cache(maxsize=256)
def _file_snapshot(path: str, mtime_ns: int, size: int, func_name: str) -> CodeSnapshot:
    """Cached per (file, mtime, size): re-hashing and asking git on every run would dominate overhead."""
    source = Path(path).read_bytes()
    digest = "sha256:" + hashlib.sha256(source).hexdigest()
    commit, dirty = _git_state(Path(path))
    return CodeSnapshot(source, digest, f"{Path(path).name}:{func_name}", path, commit, dirty)


@functools.lru_cache(maxsize=256)
def _compiled(path: str, mtime_ns: int, size: int) -> tuple[dict[str, CodeType], dict[str, object]]:
    """The file as it is now: its functions' code objects by qualified name, and its literal constants."""
    source = Path(path).read_bytes()
    codes: dict[str, CodeType] = {}
    pending = [compile(source, path, "exec", dont_inherit=True)]
    while pending:
        code = pending.pop()
        codes[code.co_qualname] = code
        pending.extend(c for c in code.co_consts if isinstance(c, CodeType))
    constants: dict[str, object] = {}
    for node in ast.parse(source).body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            try:
                constants[node.targets[0].id] = ast.literal_eval(node.value)
            except ValueError:
                continue
    return codes, {k: v for k, v in constants.items() if _immutable(v)}


def _immutable(value: object) -> bool:
    if isinstance(value, tuple | frozenset):
        return all(_immutable(v) for v in value)
    return value is None or isinstance(value, bool | int | float | complex | str | bytes)


def _edited_since_import(handler: Handler, path: str, mtime_ns: int, size: int) -> str | None:
    """A reason when the file no longer holds the code that runs: the handler, or a function, class
    or literal constant of its module that it names (transitively), compiles differently now.

    Only what the handler reaches is compared, so code that an import hook rewrote elsewhere in the
    module (pytest's assertion rewriting, for one) does not make every run's code unknown."""
    codes, constants = _compiled(path, mtime_ns, size)
    module = sys.modules.get(getattr(handler, "__module__", "") or "")
    namespace = vars(module) if module is not None else {}
    pending: list[object] = [handler]
    seen: set[int] = set()
    while pending:
        item = pending.pop()
        value = inspect.unwrap(item) if callable(item) else item
        if value is None or id(value) in seen:
            continue
        seen.add(id(value))
        if isinstance(value, type):
            if value.__module__ == getattr(module, "__name__", None):
                pending.extend(vars(value).values())
            continue
        if isinstance(value, property):
            pending.extend((value.fget, value.fset, value.fdel))
            continue
        code = getattr(getattr(value, "__func__", value), "__code__", None)  # also classmethod, staticmethod
        if not isinstance(code, CodeType):
            continue
        if code.co_filename != path and os.path.realpath(code.co_filename) != path:  # `path` is a real path
            continue
        if codes.get(code.co_qualname) != code:
            return f"{Path(path).name} was edited after it was imported ({code.co_qualname} changed)"
        for name in _names(code):
            if name in constants and name in namespace and namespace[name] != constants[name]:
                return f"{Path(path).name} was edited after it was imported ({name} is now {constants[name]!r})"
            pending.append(namespace.get(name))
    return None


@functools.lru_cache(maxsize=1024)
def _names(code: CodeType) -> frozenset[str]:
    """Global names a code object (or any code nested in it) refers to (once per code object: a
    code object never changes)."""
    names = set(code.co_names)
    for const in code.co_consts:
        if isinstance(const, CodeType):
            names |= _names(const)
    return frozenset(names)


def _git_state(path: Path) -> tuple[str | None, bool | None]:
    """(HEAD commit, file modified or untracked), or (None, None) outside a repository or before its
    first commit. One `git status` process answers both (it prints HEAD's commit with `--branch`):
    each git process is a fork and exec on a run's critical path (~5 ms)."""

    def git(*args: str) -> tuple[int, str]:
        try:
            out = subprocess.run(
                ["git", *args], cwd=path.parent, capture_output=True, text=True, timeout=5, check=False
            )
        except (OSError, subprocess.TimeoutExpired):
            return -1, ""
        return out.returncode, out.stdout

    code, out = git("status", "--porcelain=v2", "--branch", "--no-ahead-behind", "--", path.name)
    if code in (-1, 128):  # no git, a timeout, or not in a repository
        return None, None
    if code != 0:  # a git before 2.17 (no --no-ahead-behind), a broken index: the two questions apart
        code, commit = git("rev-parse", "HEAD")
        if code != 0:
            return None, None
        code, status = git("status", "--porcelain", "--", path.name)
        return commit.strip(), code == 0 and bool(status.strip())
    lines = out.splitlines()
    commit = next((line.split()[2] for line in lines if line.startswith("# branch.oid ")), "(initial)")
    if commit == "(initial)":  # no commit yet: `rev-parse HEAD` fails there too
        return None, None
    return commit, any(not line.startswith("#") for line in lines)


@functools.lru_cache(maxsize=64)
def _compiled_source(source: bytes, path: str) -> CodeType:
    """`source` compiled as the module file `path`, once per process for the same bytes: a pipeline's
    step server compiles a snapshot before it forks the steps that run it (`precompile_snapshot`)."""
    return compile(source, path, "exec", dont_inherit=True)


def handler_from_snapshot(source: bytes, code_hash: str, entrypoint: str, *, mlrun_compat: bool = True) -> Handler:
    """Load the handler from a stored source snapshot, after checking the bytes are the ones hashed.

    The snapshot is also written to a per-user cache folder so tracebacks and `inspect` show it,
    but what executes is always the verified `source`: a cached file someone edited is rewritten,
    never run.
    """
    path, func_name = _snapshot_file(source, code_hash, entrypoint)
    return load_from_file(path, func_name, entrypoint, source=source, mlrun_compat=mlrun_compat)


def precompile_snapshot(source: bytes, code_hash: str, entrypoint: str) -> None:
    """Check and compile a snapshot as `handler_from_snapshot` would, without running any of it, so
    the processes this one forks load it without compiling it again."""
    path, _ = _snapshot_file(source, code_hash, entrypoint)
    _compiled_source(source, str(path))


def _snapshot_file(source: bytes, code_hash: str, entrypoint: str) -> tuple[Path, str]:
    """The snapshot's file in the code cache (rewritten unless it holds `source`) and the function's
    name, once the bytes are checked against `code_hash`."""
    actual = "sha256:" + hashlib.sha256(source).hexdigest()
    if actual != code_hash:
        raise ConfigError(f"code snapshot is corrupt: expected {code_hash}, got {actual}")
    file_name, sep, func_name = entrypoint.rpartition(":")
    if not sep or not file_name.endswith(".py"):
        raise ConfigError(f"entrypoint {entrypoint!r} must look like file.py:function")
    path = code_cache() / code_hash.removeprefix("sha256:") / Path(file_name).name
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        cached = path.read_bytes()
    except FileNotFoundError:
        cached = None
    if cached != source:
        write_atomic(path, source)
    return path, func_name


def code_cache() -> Path:
    """`$TMPDIR/provgraph-code-<uid>`, private to this user (0700); refuses a folder someone else owns."""
    folder = Path(tempfile.gettempdir()) / f"provgraph-code-{os.getuid()}"
    folder.mkdir(mode=0o700, exist_ok=True)
    st = folder.lstat()
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.getuid() or st.st_mode & 0o022:
        raise ConfigError(f"the code cache {folder} is not a private folder of this user; remove it")
    return folder
