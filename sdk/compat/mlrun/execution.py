"""`mlrun.execution`: the run context class."""

from provgraph._context import Context as MLClientCtx

__all__ = ["MLClientCtx"]
