"""A document with several operations must name the one to run: the GraphQL spec's GetOperation
is an error without `operationName`, but strawberry falls back to the first operation (its
ExecutionContext.operation_name), so such a request silently ran whatever came first.

Refused as a validation error, so it is a request error on every transport: no `data` over HTTP
(the view answers 400 for it whatever the Accept, as strawberry does for an unknown operation
name) and an `error` message, not a `next`, over graphql-transport-ws."""

from __future__ import annotations

from collections.abc import Iterator

from graphql import OperationDefinitionNode
from strawberry.extensions import SchemaExtension

from schema.errors import ApiError


class OperationNotChosen(ApiError):
    code = "BAD_REQUEST"


class OperationNameRequired(SchemaExtension):
    """Runs after ValidationCache (which has set the validation errors by then)."""

    def on_validate(self) -> Iterator[None]:
        context = self.execution_context
        document = context.graphql_document
        # What the client sent: `operation_name` is strawberry's fallback to the first operation.
        # strawberry is pinned (pyproject.toml), so this private name holds.
        named = context._provided_operation_name
        operations = (
            [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
            if document
            else []
        )
        if named is None and len(operations) > 1:
            error = OperationNotChosen(
                f"The document has {len(operations)} operations: name the one to run in operationName."
            )
            context.pre_execution_errors = [*(context.pre_execution_errors or []), error]
        yield
