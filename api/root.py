"""The schema's one root: `Query` of `schema.py` merged with each topic's query type.

A topic (lineage facets, registry, pipelines, …) keeps its types and resolvers in its own module
and adds its query class to `TOPIC_QUERIES`, so no module grows into a catch-all.
"""

from __future__ import annotations

from graphql import GraphQLError
from strawberry import Schema as StrawberrySchema
from strawberry.extensions import AddValidationRules, MaxTokensLimiter, ParserCache, ValidationCache
from strawberry.schema.config import StrawberryConfig
from strawberry.tools import merge_types
from strawberry.types import ExecutionContext

from provgraph.api.column_lineage import ColumnLineageQuery
from provgraph.api.completeness import CompletenessQuery
from provgraph.api.consistency import consistent_with
from provgraph.api.diff import DiffQuery
from provgraph.api.guards import MAX_TOKENS, MaskAndLabelErrors, log_errors, validation_rules
from provgraph.api.limits import FairShare
from provgraph.api.mutations import mutation_root
from provgraph.api.pipelines import PipelineQuery
from provgraph.api.registry import RegistryQuery
from provgraph.api.scalars import LONG, Long
from provgraph.api.schema import Query
from provgraph.api.tags import TagsQuery
from provgraph.api.ui import UiQuery

TOPIC_QUERIES: tuple[type, ...] = (
    RegistryQuery,
    ColumnLineageQuery,
    CompletenessQuery,
    PipelineQuery,
    UiQuery,
    DiffQuery,
    TagsQuery,
)


class Schema(StrawberrySchema):
    def process_errors(self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None) -> None:
        """Runs before `MaskErrors`: logs what clients will not see (strawberry would log every error)."""
        log_errors(errors)


def build_schema() -> Schema:
    """The schema with every guardrail of `guards.py` installed."""
    return Schema(
        query=merge_types("Query", (Query, *TOPIC_QUERIES)),
        mutation=mutation_root(),
        config=StrawberryConfig(scalar_map={Long: LONG}),
        directives=[consistent_with],
        # Factories, not instances: strawberry builds fresh extensions for every request.
        extensions=[
            lambda: ParserCache(maxsize=256),
            lambda: MaxTokensLimiter(max_token_count=MAX_TOKENS),
            lambda: AddValidationRules([*validation_rules()]),
            lambda: ValidationCache(maxsize=256),
            FairShare,
            MaskAndLabelErrors,
        ],
    )
