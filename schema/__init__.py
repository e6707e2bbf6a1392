"""The one GraphQL schema, merged from one module per domain."""

from __future__ import annotations

import strawberry
from django.conf import settings
from strawberry.extensions import MaxTokensLimiter, ParserCache, ValidationCache
from strawberry.tools import merge_types

from schema import (
    accounts,
    alerts,
    analytics,
    analytics_overview,
    audit,
    catalog,
    core,
    customer_segments,
    customers,
    dashboards,
    events,
    exports,
    live,
    orders,
    payment_analytics,
    payment_methods,
    payments,
    reports,
    tenants,
)
from schema.compiler.extension import SelectionCompiler
from schema.errors import give_codes
from schema.extensions.guard import OperationGuard
from schema.extensions.limits import DocumentLimits
from schema.extensions.operation import OperationNameRequired
from schema.extensions.optimizer import QueryOptimizer
from schema.extensions.strings import NulFreeVariables

Query = merge_types(
    "Query",
    (
        core.Query,
        accounts.Query,
        tenants.Query,
        audit.Query,
        catalog.Query,
        customers.Query,
        customer_segments.Query,
        orders.Query,
        payments.Query,
        payment_methods.Query,
        payment_analytics.Query,
        events.Query,
        analytics.Query,
        analytics_overview.Query,
        dashboards.Query,
        reports.Query,
        alerts.Query,
        live.Query,
        exports.Query,
    ),
)
Mutation = merge_types(
    "Mutation",
    (
        accounts.Mutation,
        tenants.Mutation,
        catalog.Mutation,
        customers.Mutation,
        orders.Mutation,
        payments.Mutation,
        payment_methods.Mutation,
        events.Mutation,
        dashboards.Mutation,
        reports.Mutation,
        alerts.Mutation,
        exports.Mutation,
    ),
)
Subscription = merge_types(
    "Subscription",
    (core.Subscription, alerts.Subscription, live.Subscription, exports.Subscription),
)


class Schema(strawberry.Schema):
    def process_errors(self, errors, execution_context=None) -> None:
        give_codes(errors)


schema = Schema(
    query=Query,
    mutation=Mutation,
    subscription=Subscription,
    extensions=[
        lambda: MaxTokensLimiter(max_token_count=settings.GRAPHQL_MAX_TOKENS),
        lambda: ParserCache(maxsize=512),
        DocumentLimits,
        lambda: ValidationCache(maxsize=512),
        OperationNameRequired,  # after ValidationCache, which sets the validation errors
        NulFreeVariables,  # before the guard: a refused operation costs nothing
        OperationGuard,
        QueryOptimizer,
        SelectionCompiler,  # last: inside the guard, which has admitted and charged the operation
    ],
)
