"""The one GraphQL schema, merged from one module per domain."""

from __future__ import annotations

import strawberry
from django.conf import settings
from strawberry.extensions import MaxAliasesLimiter, MaxTokensLimiter, QueryDepthLimiter
from strawberry.tools import merge_types
from strawberry_django.optimizer import DjangoOptimizerExtension

from schema import accounts, audit, core, tenants
from schema.errors import give_codes
from schema.extensions.guard import OperationGuard

Query = merge_types("Query", (core.Query, accounts.Query, tenants.Query, audit.Query))
Mutation = merge_types("Mutation", (accounts.Mutation, tenants.Mutation))
Subscription = merge_types("Subscription", (core.Subscription,))


class Schema(strawberry.Schema):
    def process_errors(self, errors, execution_context=None) -> None:
        give_codes(errors)


schema = Schema(
    query=Query,
    mutation=Mutation,
    subscription=Subscription,
    extensions=[
        lambda: MaxTokensLimiter(max_token_count=settings.GRAPHQL_MAX_TOKENS),
        lambda: QueryDepthLimiter(max_depth=settings.GRAPHQL_MAX_DEPTH),
        lambda: MaxAliasesLimiter(max_alias_count=settings.GRAPHQL_MAX_ALIASES),
        OperationGuard,
        DjangoOptimizerExtension,
    ],
)
