"""The error tree, drawn once. Callers catch the branch that matches what they can do about it.

    ProvgraphError                 anything provgraph raises on purpose; the CLI prints it as one line
    ├── ConfigError(ValueError)    bad settings or arguments: fix the input
    ├── ContractError(ValueError)  an event (or request) breaks the contract: goes to the dead-letter topic
    │   └── EventConflict          an event id already recorded with different content (HTTP 409)
    ├── Forbidden(PermissionError) a write into another project: its run or its logged artifact (HTTP 403)
    ├── TransportError             an event could not be delivered (the spool keeps it)
    ├── ProjectionError            the graph store refused a write or a query
    │   ├── Inadmissible           an event breaks a write rule (events/admission.py): dead-lettered, never retried
    │   └── StoreUnavailable       the store cannot be reached now: retry later, dead-letter nothing
    ├── NotFound(LookupError)      an unknown run, dataset, job or node id
    └── ReproduceRefused           a run cannot be reproduced faithfully; the message says why

It lives in `events/` because every layer (events, graph, sdk, services) needs it and `events/`
imports nothing else of provgraph.
"""


class ProvgraphError(Exception):
    """Base of every error provgraph raises on purpose."""


class ConfigError(ProvgraphError, ValueError):
    pass


class ContractError(ProvgraphError, ValueError):
    pass


class EventConflict(ContractError):
    pass


class Forbidden(ProvgraphError, PermissionError):
    pass


class TransportError(ProvgraphError):
    pass


class ProjectionError(ProvgraphError):
    pass


class Inadmissible(ProjectionError):
    pass


class StoreUnavailable(ProjectionError):
    pass


class NotFound(ProvgraphError, LookupError):
    pass


class ReproduceRefused(ProvgraphError):
    pass
