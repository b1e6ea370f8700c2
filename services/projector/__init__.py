"""The graph projector service: Kafka lineage topic → Neo4j, failures → dead-letter topic.

Entry points for the CLI: `run_projector(settings)` (`provgraph projector`), `replay_neo4j(settings,
progress)` (`provgraph replay` with the Neo4j store) and `list_dlq(settings, limit)` (`provgraph dlq
list`). Layout: `handlers.py` (the batch handler), `app.py` (broker + app assembly), `replay.py`,
`dead_letters.py` (the DLQ record format).
"""

from provgraph.services.projector.app import create_app, run_projector
from provgraph.services.projector.dead_letters import DeadLetter
from provgraph.services.projector.replay import list_dlq, replay_neo4j

__all__ = ["DeadLetter", "create_app", "list_dlq", "replay_neo4j", "run_projector"]
