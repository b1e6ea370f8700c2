"""Handlers and their code version: load `file.py:func`, snapshot the source, read git state.

The code version is the sha256 of the source snapshot (the whole module file, so helpers the
handler calls are included); the snapshot is stored in the artifact store under that hash, so
`reproduce` and `provgraph exec` can load exactly the code that ran. Git commit and dirty flag are
recorded when the file is in a repository; they are informative, the hash is the identity.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import inspect
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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


def load_handler(spec: str) -> Handler:
    """`path/to/file.py:function` -> the function, loaded from that file."""
    path_text, sep, func_name = spec.rpartition(":")
    if not sep or not path_text or not func_name:
        raise ConfigError(f"handler {spec!r} must look like path/to/file.py:function")
    path = Path(path_text).expanduser().resolve()
    if not path.is_file():
        raise ConfigError(f"handler file not found: {path_text}")
    return load_from_file(path, func_name, spec)


def load_from_file(path: Path, func_name: str, label: str | None = None) -> Handler:
    module_name = f"provgraph_handler_{hashlib.sha1(str(path).encode()).hexdigest()[:12]}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise ConfigError(f"cannot import {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        sys.modules.pop(module_name, None)
        raise ConfigError(f"importing {path.name} failed: {type(exc).__name__}: {exc}") from exc
    func = getattr(module, func_name, None)
    if not callable(func):
        raise ConfigError(f"{path.name} has no function {func_name!r} ({label or path})")
    return func  # type: ignore[no-any-return]


def snapshot(handler: Handler) -> CodeSnapshot:
    func_name = getattr(handler, "__qualname__", getattr(handler, "__name__", "handler"))
    try:
        source_file = inspect.getsourcefile(handler)
    except TypeError:
        source_file = None
    if source_file and Path(source_file).is_file():
        path = Path(source_file).resolve()
        stat = path.stat()
        return _file_snapshot(str(path), stat.st_mtime_ns, stat.st_size, func_name)
    try:
        source = inspect.getsource(handler).encode()
    except (OSError, TypeError) as exc:
        raise ConfigError(f"cannot read the source of {func_name!r}; define it in a .py file") from exc
    digest = "sha256:" + hashlib.sha256(source).hexdigest()
    return CodeSnapshot(source, digest, f"handler.py:{func_name}", None, None, None)


@functools.lru_cache(maxsize=256)
def _file_snapshot(path: str, mtime_ns: int, size: int, func_name: str) -> CodeSnapshot:
    """Cached per (file, mtime, size): re-hashing and asking git on every run would dominate overhead."""
    source = Path(path).read_bytes()
    digest = "sha256:" + hashlib.sha256(source).hexdigest()
    commit, dirty = _git_state(Path(path))
    return CodeSnapshot(source, digest, f"{Path(path).name}:{func_name}", path, commit, dirty)


def _git_state(path: Path) -> tuple[str | None, bool | None]:
    def git(*args: str) -> str | None:
        try:
            out = subprocess.run(
                ["git", *args], cwd=path.parent, capture_output=True, text=True, timeout=5, check=False
            )
        except (OSError, subprocess.TimeoutExpired):
            return None
        return out.stdout.strip() if out.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    if commit is None:
        return None, None
    status = git("status", "--porcelain", "--", path.name)
    return commit, bool(status)


def handler_from_snapshot(source: bytes, code_hash: str, entrypoint: str) -> Handler:
    """Load the handler from a stored source snapshot, after checking the bytes are the ones hashed."""
    actual = "sha256:" + hashlib.sha256(source).hexdigest()
    if actual != code_hash:
        raise ConfigError(f"code snapshot is corrupt: expected {code_hash}, got {actual}")
    file_name, sep, func_name = entrypoint.rpartition(":")
    if not sep or not file_name.endswith(".py"):
        raise ConfigError(f"entrypoint {entrypoint!r} must look like file.py:function")
    folder = Path(tempfile.gettempdir()) / "provgraph-code" / code_hash.removeprefix("sha256:")
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / Path(file_name).name
    if not path.exists():
        write_atomic(path, source)
    return load_from_file(path, func_name, entrypoint)
