"""Projections of the event log into a lineage graph.

`contract` is the query contract every store answers (tests/contract/ is its shared suite);
`projection` turns an event into store-agnostic facts; `sqlite_store` (embedded) and
`neo4j_store` (production; its settings and errors in `neo4j_config`, statements in `neo4j_cypher`,
batch folding in `neo4j_rows`) write and query them; `embedded` keeps the SQLite graph caught up
with the SQLite event log. Every store can be dropped and rebuilt by replaying the log.
"""
