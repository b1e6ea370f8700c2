"""The graph behind the API, and what each request carries to the resolvers.

The server holds one `StoreHandle` for its lifetime, opened from settings (`settings.store`:
the embedded SQLite projection or Neo4j, see graph/factory.py), so the schema only ever talks to the
`LineageStore` contract. Embedded, the SDK and the ingest endpoint write only to the event log; `sync()` projects
what was appended since the last request before each request reads, so a POSTed event (or a
`pg.run` in another process) is visible to the next query.

`RequestContext` is strawberry's per-request context: the caller's `Scope`, the request's time
`Budget` (every store call goes through `ctx.call`, in a worker thread) and a batching loader for
run details.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from strawberry.dataloader import DataLoader

from provgraph.api.guards import LINEAGE_BOUNDS, Budget
from provgraph.api.scope import Scope
from provgraph.graph.contract import NOW, AsOf, LineageStore
from provgraph.graph.factory import StoreHandle, open_store
from provgraph.graph.ids import NodeId
from provgraph.graph.tombstones import LiveStore, deleted
from provgraph.graph.views import Direction, LineageGraph, RunView

if TYPE_CHECKING:
    from provgraph.api.limits import Lanes
    from provgraph.events.settings import Settings
    from provgraph.events.transport.base import Transport

T = TypeVar("T")


def open_graph_service(settings: Settings) -> StoreHandle:
    """The server's store for its lifetime, with the API's lineage bounds; on Neo4j it plans the
    walk's statements in the background, so a fresh server's first walks are not cut planning them."""
    return open_store(settings, bounds=LINEAGE_BOUNDS, warm=True)


@dataclass
class RequestContext:
    graph: StoreHandle
    scope: Scope
    budget: Budget
    lanes: Lanes
    client: str
    """Who the fair shares count against: `token:<id>`, or `address:<ip>` without tokens."""
    settings: Settings | None = None
    """What mutations need to act (e.g. start a reproduction); queries only read `graph`."""
    transport: Transport | None = None
    """The server's one transport (embedded: its one connection to the event log), for mutations."""
    response: Any = None
    """strawberry's sub-response (status and headers of the HTTP answer), see `refuse`."""
    costly: bool = False
    """Admitted as a costly operation (`limits.FairShare`): its walks take the server's walk slots."""
    extras: dict[str, Any] = field(default_factory=dict, repr=False)
    """Per-request state of topic modules (e.g. the batching loader of `facets.py`), by their key."""
    _runs: DataLoader[str, RunView | None] | None = field(default=None, repr=False)

    def refuse(self, status: int, headers: dict[str, str]) -> None:
        """Answer with HTTP `status` (e.g. 429) and these headers instead of 200."""
        if self.response is not None:
            self.response.status_code = status
            self.response.headers.update(headers)

    @property
    def store(self) -> LineageStore:
        """The store without what tombstones delete (`graph/tombstones.py`); `graph.store` has everything."""
        return LiveStore(self.graph.store)

    async def call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """A blocking store call in a worker thread, within the request's time budget."""
        return await self.budget.call(fn, *args, **kwargs)

    async def walk(
        self,
        node: NodeId,
        direction: Direction,
        depth: int,
        fan_out: int,
        *,
        include_failed: bool = False,
        at: AsOf = NOW,
    ) -> LineageGraph:
        """`store.lineage(…)`; for a costly operation in one of the server's few walk slots
        (`guards.StoreSlots`, which live on the costly lane's loop). A cheap operation's walks are
        1 hop (`producedBy`) and few: they run at once."""
        slots = self.lanes.store_slots if self.costly else None
        return await self.budget.call(
            self.store.lineage, node, direction, depth, fan_out, include_failed=include_failed, at=at, slots=slots
        )

    async def run_detail(self, run_id: str) -> RunView | None:
        """A run with inputs, outputs and job version, batched per request (lists of runs need it)."""
        if self._runs is None:
            self._runs = DataLoader(load_fn=self._load_runs)
        return await self._runs.load(run_id)

    async def _load_runs(self, run_ids: Sequence[str]) -> list[RunView | None]:
        return await self.call(self._live_runs, run_ids)

    def _live_runs(self, run_ids: Sequence[str]) -> list[RunView | None]:
        """The runs that exist and are not deleted, the tombstones of their projects read once for the batch."""
        store = self.graph.store
        found = [store.run(r) for r in run_ids]
        gone = deleted(store, {r.namespace for r in found if r is not None})
        return [r if r is not None and not gone.run(r.run_id, r.namespace, r.started_at) else None for r in found]
