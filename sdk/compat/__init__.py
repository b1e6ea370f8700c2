"""Compatibility modules for code written against other tools' APIs (today: MLRun, `compat.mlrun`).

`mlrun_importable()` makes `import mlrun` find `provgraph.compat.mlrun` while a run loads and
executes its handler - only when the real package is not installed and the `mlrun_compat` setting
is on. Outside that window `import mlrun` fails as it would without MLRun: provgraph never installs
a top-level `mlrun` package.
"""

from __future__ import annotations

import functools
import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import sys
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from types import ModuleType

COMPAT = "provgraph.compat.mlrun"
DOCS = "docs/MLRUN.md"


class MissingMLRunAPI(ModuleNotFoundError):
    """An MLRun module provgraph's compatibility layer does not provide."""


def missing(what: str) -> str:
    return f"{what} is not provided by provgraph's MLRun compatibility layer; install mlrun to use it (see {DOCS})"


class _Alias(importlib.abc.Loader):
    """Loads `mlrun.x` as the already imported `provgraph.compat.mlrun.x` (one module object, one set of classes)."""

    def __init__(self, module: ModuleType) -> None:
        self.module = module
        self.spec = module.__spec__

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType:
        return self.module

    def exec_module(self, module: ModuleType) -> None:
        module.__spec__ = self.spec  # importing set the alias's spec; the module keeps its own identity


class _Finder(importlib.abc.MetaPathFinder):
    def find_spec(
        self, fullname: str, path: Sequence[str] | None = None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname != "mlrun" and not fullname.startswith("mlrun."):
            return None
        real = COMPAT + fullname[len("mlrun") :]
        if importlib.util.find_spec(real) is None:
            raise MissingMLRunAPI(missing(f"module {fullname!r}"), name=fullname)
        module = importlib.import_module(real)
        return importlib.machinery.ModuleSpec(fullname, _Alias(module), is_package=hasattr(module, "__path__"))


_lock = threading.Lock()
_active = 0
_finder = _Finder()


@functools.cache
def real_mlrun_installed() -> bool:
    """Whether the real `mlrun` package can be imported (checked once per process)."""
    return importlib.util.find_spec("mlrun") is not None


@contextmanager
def mlrun_importable(enabled: bool = True) -> Iterator[None]:
    """While inside, `import mlrun` finds the compatibility module (unless MLRun is installed or
    `enabled` is false); on leaving, the finder and the `mlrun` aliases are removed again."""
    global _active
    if not enabled or real_mlrun_installed():
        yield
        return
    with _lock:
        if _active == 0:
            sys.meta_path.insert(0, _finder)
        _active += 1
    try:
        yield
    finally:
        with _lock:
            _active -= 1
            if _active == 0:
                sys.meta_path.remove(_finder)
                # submodules import their parent first: no `mlrun`, nothing to remove
                aliases = (
                    [n for n in sys.modules if n == "mlrun" or n.startswith("mlrun.")] if "mlrun" in sys.modules else []
                )
                for name in aliases:
                    if getattr(sys.modules[name], "__name__", "").startswith(COMPAT):
                        del sys.modules[name]
