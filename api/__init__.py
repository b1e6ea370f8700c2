"""The GraphQL API (`provgraph serve`): docs/API.md is the user's guide.

    app.py        create_app(settings): routes, middleware, lifespan
    schema.py     types and resolvers over the LineageStore contract (SQLite or Neo4j)
    mutations.py  the Mutation root: `reproduce`
    context.py    the store behind the API and the per-request context
    scope.py      what a token's projects may see
    auth.py       API tokens (hashed) and the bearer-token middleware
    guards.py     depth/alias/cost limits, time budget, error masking and codes
    ingest.py     POST /api/v1/lineage (OpenLineage)
    server.py     uvicorn: serve(), ServerThread for tests and benchmarks

Nothing here is imported by `import provgraph`; strawberry and uvicorn load with the server only.
"""
