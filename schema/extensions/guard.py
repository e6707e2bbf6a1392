"""The operation guard: before an operation runs, check the permission table, introspection,
cost (schema/extensions/cost.py, by the weights of schema/costs.py) and the rate bucket; after
it, report `extensions.cost` and refund what the answer did not use (requested - actual)."""

from __future__ import annotations

import math
from collections.abc import Iterator

from django.conf import settings
from graphql import GraphQLError
from strawberry.extensions import SchemaExtension

from apps.common import metrics, throttle
from schema import permissions
from schema.errors import ApiError, unauthenticated
from schema.extensions.cost import Charge, actual_cost, analyse


class OperationGuard(SchemaExtension):
    def __init__(self, *, execution_context=None) -> None:
        self.execution_context = execution_context
        self.requested = 0
        self.charges: dict[str, Charge] = {}
        self.actual: int | None = None
        self.status: throttle.BucketStatus | None = None
        self.bucket: str | None = None
        self.operation = "none"  # the first root field, for the metrics

    def on_execute(self) -> Iterator[None]:
        context = self.execution_context.context
        error = self._admit(context)
        if error is not None:
            self._count(context, (error.extensions or {}).get("code", "ERROR"))
            raise error
        yield
        self._settle()
        result = self.execution_context.result
        errors = (result.errors if result is not None else None) or []
        codes = [(error.extensions or {}).get("code", "ERROR") for error in errors]
        self._count(context, codes[0] if codes else "OK")

    def _count(self, context, code: str) -> None:
        tenant = getattr(context.tenant, "schema_name", "public")
        metrics.operation_done(tenant, self.operation, str(code), self.actual)

    def _admit(self, context) -> GraphQLError | None:
        ctx = self.execution_context
        analysis = analyse(
            ctx.schema._schema, ctx.graphql_document, ctx.operation_name, ctx.variables
        )
        if analysis is None:
            return None
        self.operation = min(analysis.root_fields, default="none")
        principal = context.principal
        schema_name = getattr(context.tenant, "schema_name", "public")
        self.bucket = throttle.bucket_key(schema_name, principal.credential_id)
        if analysis.introspection and not (
            settings.GRAPHQL_INTROSPECTION_PUBLIC or principal.is_authenticated
        ):
            return unauthenticated("Introspection needs a signed-in caller.")
        for name in sorted(analysis.root_fields):
            rule = permissions.RULES.get(name)
            if rule is None:  # never: a test keeps the table complete
                return ApiError(f"{name} has no permission rule.", code="FORBIDDEN")
            if (error := permissions.check(rule, principal, name)) is not None:
                return error
        for name in sorted(analysis.node_types):
            rule = permissions.RULES.get(name)
            if rule is not None and (error := permissions.check_type(rule, principal, name)):
                return error
        if analysis.root_fields and (
            error := permissions.check_operation_scope(
                principal, analysis.operation, analysis.root_fields
            )
        ):
            return error
        self.requested, self.charges = analysis.cost, analysis.charges
        if analysis.cost > settings.GRAPHQL_MAX_COST:
            return ApiError(
                f"Query cost {analysis.cost} exceeds the maximum of {settings.GRAPHQL_MAX_COST}.",
                code="QUERY_TOO_COMPLEX",
                cost=analysis.cost,
                maximumCost=settings.GRAPHQL_MAX_COST,
            )
        self.status = throttle.spend(self.bucket, analysis.cost)
        if self.status is not None and not self.status.allowed:
            retry = math.ceil(self.status.retry_after(analysis.cost) * 10) / 10
            return ApiError(
                f"Throttled: this query costs {analysis.cost}; retry in {retry} s.",
                code="THROTTLED",
                retryAfterSeconds=retry,
            )
        return None

    def _settle(self) -> None:
        result = self.execution_context.result
        if self.bucket is None or self.status is None or not self.status.allowed or result is None:
            return  # (a status means the bucket was paid from: it is set then)
        # what the answer cost by the same weights, never more than was charged (a list without
        # `first` is charged as one item and may bring more)
        self.actual = min(self.requested, actual_cost(self.charges, result.data))
        if self.actual < self.requested:
            available = throttle.refund(self.bucket, self.requested - self.actual)
            if available is not None:
                self.status = throttle.BucketStatus(
                    True, available, self.status.maximum_available, self.status.restore_rate
                )

    def get_results(self) -> dict[str, object]:
        cost: dict[str, object] = {
            "requestedQueryCost": self.requested,
            "actualQueryCost": self.actual,
        }
        if (
            self.status is None and self.bucket is not None
        ):  # refused before paying: show the bucket
            self.status = throttle.peek(self.bucket)
        if self.status is not None:
            cost["throttleStatus"] = self.status.as_extension()
        return {"cost": cost}
