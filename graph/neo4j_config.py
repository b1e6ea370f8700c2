"""Where the Neo4j graph lives, and how driver errors leave the Neo4j modules.

Driver errors stop at `translated`: they leave as `ProjectionError`, or `Neo4jUnavailable` when
retrying the same call may succeed (server down, leader switch, deadlock).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, ParamSpec, TypeVar

from neo4j.exceptions import DriverError, Neo4jError
from pydantic import BaseModel, ConfigDict

from provgraph.events.errors import ConfigError, ProjectionError, StoreUnavailable

if TYPE_CHECKING:
    from provgraph.events.settings import Settings

P = ParamSpec("P")
T = TypeVar("T")


class Neo4jUnavailable(StoreUnavailable):
    """Neo4j could not be reached, or asked for a retry; the same call may succeed later."""


class Neo4jConfig(BaseModel):
    """Where the graph lives. `password=None` connects without authentication."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    uri: str
    user: str = "neo4j"
    password: str | None = None
    database: str | None = None
    """None: the server's default database."""
    connection_timeout_s: float = 10.0

    @classmethod
    def from_settings(cls, settings: Settings) -> Neo4jConfig:
        if not settings.neo4j_uri:
            raise ConfigError("the Neo4j store needs a server: set PROVGRAPH_NEO4J_URI (e.g. bolt://127.0.0.1:7687)")
        return cls(
            uri=settings.neo4j_uri,
            user=settings.neo4j_user,
            password=settings.neo4j_password,
            database=settings.neo4j_database,
        )


class TooLarge(Exception):
    """A transaction hit the server's memory limit: retrying it unchanged cannot succeed, so it is
    raised past the driver's retry loop (which retries every `TransientError`) as this."""

    def __init__(self, cause: Neo4jError) -> None:
        super().__init__(cause.message or str(cause))
        self.cause = cause


TOO_LARGE = "Neo.TransientError.General.MemoryPoolOutOfMemoryError"
# Not the data's fault: wait and retry rather than dead-letter (wrong credentials, missing database).
_NOT_THE_DATA = ("Neo.ClientError.Security.", "Neo.ClientError.Database.DatabaseNotFound")


@contextmanager
def translated(what: str) -> Iterator[None]:
    """Driver errors leave as provgraph errors, naming what was being done.

    `Neo4jUnavailable`: retrying later may succeed (server down, transient, auth or database
    misconfigured). `ProjectionError`: this request cannot succeed (a refused value, too large).
    """
    try:
        yield
    except TooLarge as exc:
        raise ProjectionError(
            f"Neo4j {what} failed: the transaction is too large for the server's memory limit ({exc});"
            " write fewer events at once"
        ) from exc.cause
    except (Neo4jError, DriverError) as exc:
        code = getattr(exc, "code", None) or ""
        retryable = exc.is_retryable() or code.startswith(_NOT_THE_DATA)
        kind = Neo4jUnavailable if retryable else ProjectionError
        detail = getattr(exc, "message", None) or str(exc) or type(exc).__name__
        raise kind(f"Neo4j {what} failed ({type(exc).__name__}): {detail}") from exc


def guarded(what: str) -> Callable[[Callable[P, T]], Callable[P, T]]:
    """`translated(what)` around every call of the decorated function."""

    def wrap(fn: Callable[P, T]) -> Callable[P, T]:
        @functools.wraps(fn)
        def inner(*args: P.args, **kwargs: P.kwargs) -> T:
            with translated(what):
                return fn(*args, **kwargs)

        return inner

    return wrap
