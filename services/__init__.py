"""Long-running Kafka consumers (faststream): `projector` (lineage topic -> Neo4j, failures to the
dead-letter topic) and `launcher` (run requests -> Kubernetes Jobs). They keep no state outside
Kafka, Neo4j and Kubernetes, so any number can be restarted or scaled by consumer group."""
