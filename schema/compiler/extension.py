"""The selection compiler's extension: serve a query from compiled SQL when it can, else let the
resolver path run.

It acts after the guard has admitted the operation (permissions, cost, the rate bucket: the guard
reports the cost the same way whichever path serves it) and only on queries over HTTP (the sync
path; WebSocket operations run in the event loop and keep the resolver path). A query is compiled
when every root field is a root connection in ROOTS (or `__typename`). Under the node, fields the
catalogue does not know are answered by the resolver path for their subtree (fallback.py), in the
same snapshot. Anything else, and every error the resolver path would answer before reaching the
rows (arguments, cursors, page sizes), makes the whole operation go through graphql-core as
before: the compiler produces no error of its own.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from typing import Any

from django.conf import settings
from django.db import DatabaseError, transaction
from django.db import connection as db_connection
from graphql import ExecutionResult, GraphQLObjectType, OperationType
from graphql.execution.collect_fields import collect_fields
from graphql.execution.values import get_variable_values
from graphql.utilities import get_operation_ast
from strawberry.extensions import SchemaExtension

from apps.common.outages import is_outage
from schema.compiler import connection, fallback
from schema.compiler.catalogue import tables
from schema.compiler.sql import Compiler, Unknown
from schema.permissions import CUSTOMER_CONTACTS, check

logger = logging.getLogger(__name__)

# Root connections of compiled types whose rows come from their resolver's queryset as they are.
ROOTS = frozenset(
    {
        "orders",
        "recentOrders",
        "pendingOrders",
        "highValueOrders",
        "products",
        "customers",
        "vipCustomers",
        "newCustomers",
        "inactiveCustomers",
        "payments",
    }
)


class SelectionCompiler(SchemaExtension):
    def on_execute(self) -> Iterator[None]:
        context = self.execution_context
        if settings.GRAPHQL_COMPILER and context.result is None and not _in_event_loop():
            result = compiled(context)
            if result is not None:
                context.result = result
        yield


def compiled(execution_context: Any) -> ExecutionResult | None:
    """The operation's result from compiled SQL (with the resolver path's answers to the fields
    the compiler does not know), or None when the resolver path must serve all of it."""
    document = execution_context.graphql_document
    context = execution_context.context
    tenant = getattr(context, "tenant", None)
    if document is None or tenant is None:
        return None
    operation = get_operation_ast(document, execution_context.operation_name)
    if operation is None or operation.operation is not OperationType.QUERY:
        return None
    strawberry_schema = execution_context.schema
    schema = strawberry_schema._schema
    variables = get_variable_values(
        schema, operation.variable_definitions or (), execution_context.variables or {}
    )
    if isinstance(variables, list):  # variable errors: graphql-core reports them
        return None
    fragments = {
        definition.name.value: definition
        for definition in document.definitions
        if definition.kind == "fragment_definition"
    }
    root = schema.query_type
    assert isinstance(root, GraphQLObjectType)
    selected = collect_fields(schema, fragments, variables, root, operation.selection_set)
    if not selected or any(
        group[0].name.value not in ROOTS | {"__typename"} for group in selected.values()
    ):
        return None
    who = context.principal
    sees_contacts = check(CUSTOMER_CONTACTS, who, "contacts") is None
    pages: dict[str, connection.Page] = {}
    data: dict[str, Any] = {}
    try:
        for key, nodes in selected.items():
            if nodes[0].name.value == "__typename":
                continue
            compiler = Compiler(
                schema=schema,
                tables=tables(strawberry_schema),
                fragments=fragments,
                variables=variables,
                tenant_schema=tenant.schema_name,
                currency=tenant.currency,
                sees_contacts=sees_contacts,
                request=getattr(context, "request", None),
            )
            pages[key] = connection.plan(
                compiler, strawberry_schema, root, key, nodes, operation, context
            )
        deferring = [page for page in pages.values() if page.defers]
        with _one_snapshot() if deferring else nullcontext():
            answers = {key: connection.run(page) for key, page in pages.items()}
            if deferring:
                answered = fallback.execute_deferred(execution_context, operation, deferring)
                if answered.data is None:  # a failed non-null field took `data` with it
                    return ExecutionResult(data=None, errors=answered.errors)
                for page in deferring:
                    answers[page.key] = fallback.merge(
                        page, answers[page.key], answered.data[page.key]
                    )
    except Unknown:
        return None
    except DatabaseError as error:
        # Never expected but in an outage (a test runs every compiled field); the resolver path
        # answers instead, as it would have (with UNAVAILABLE in an outage), unless a transaction
        # is open, which a failed statement has spoilt.
        if is_outage(error):
            logger.warning("compiled SQL met an outage (%r); the resolver path answers", error)
        else:
            logger.exception("compiled SQL failed; the resolver path serves the operation")
        if db_connection.in_atomic_block:
            raise
        return None
    for key, nodes in selected.items():
        data[key] = root.name if nodes[0].name.value == "__typename" else answers[key]
    return ExecutionResult(data=data, errors=answered.errors if deferring else None)


@contextmanager
def _one_snapshot() -> Iterator[None]:
    """The compiled pages and the resolver path's answer to their deferred fields read the same
    rows: one REPEATABLE READ transaction (or the transaction already open)."""
    if db_connection.in_atomic_block:
        yield
        return
    with transaction.atomic():
        # On the driver's own cursor: the first statement of the transaction, as SET TRANSACTION
        # must be (Django's cursor may set the tenant's search_path first).
        db_connection.ensure_connection()
        with db_connection.connection.cursor() as cursor:
            cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        yield


def _in_event_loop() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True
