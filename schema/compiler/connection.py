"""A root connection field served from one SQL statement.

The field's own resolver (the function under `@strawberry_django.connection`, called with the
arguments converted as strawberry converts them) still decides which rows and in which order, so
filters, sorts and their errors stay where they are. Paging follows strawberry's
`ListConnection.resolve_connection` (the same `SliceMetadata`, offset cursors, one row over the
page for `hasNextPage`), and `totalCount` is the window count strawberry-django's optimizer adds,
in the same statement. Anything the resolver path would answer with an error (a bad cursor,
`first` over the maximum, `last` without `before`) raises `Unknown`, so that path answers it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db.models import Count, Field, Window
from django.db.models.expressions import RawSQL
from graphql import FieldNode, GraphQLObjectType
from graphql.execution.collect_fields import collect_sub_fields
from graphql.execution.values import get_argument_values
from graphql.pyutils import Path
from graphql.type.definition import GraphQLResolveInfo, get_named_type
from strawberry.relay.utils import SliceMetadata, to_base64
from strawberry.schema.schema_converter import get_arguments
from strawberry.types.info import Info

from schema.compiler.sql import Compiler, Shape, Unknown

PAGING = ("before", "after", "first", "last")
CONNECTION_FIELDS = frozenset({"edges", "pageInfo", "totalCount", "__typename"})
EDGE_FIELDS = frozenset({"node", "cursor", "__typename"})


@dataclass
class Page:
    """A root connection ready to run: its queryset, window and the SQL of its nodes."""

    compiler: Compiler
    key: str
    nodes: list[FieldNode]
    connection_type: GraphQLObjectType
    edge_type: GraphQLObjectType
    selected: dict[str, list[FieldNode]]
    queryset: Any
    window: SliceMetadata
    node_sql: str | None  # None: no node is selected
    params: tuple[Any, ...]
    shape: Shape | None
    edge_nodes: list[FieldNode]  # the `edges` field (one response key) and its `node` field
    node_nodes: list[FieldNode]

    @property
    def defers(self) -> bool:
        return self.shape is not None and self.shape.defers


def plan(
    compiler: Compiler,
    strawberry_schema: Any,
    root: GraphQLObjectType,
    key: str,
    nodes: list[FieldNode],
    operation: Any,
    context: Any,
) -> Page:
    """Root connection field `nodes` (response key `key`) as a statement to run."""
    graphql_field = root.fields[nodes[0].name.value]
    field = graphql_field.extensions["strawberry-definition"]
    raw_info = GraphQLResolveInfo(
        nodes[0].name.value,
        nodes,
        graphql_field.type,
        root,
        Path(None, key, root.name),
        compiler.schema,
        compiler.fragments,
        None,
        operation,
        compiler.variables,
        context,
        lambda value: False,
    )
    info = Info(_raw_info=raw_info, _field=field)
    try:  # any error here is the resolver path's to answer, as it answers it
        raw = get_argument_values(graphql_field, nodes[0], compiler.variables)
        args, kwargs = get_arguments(
            field=field,
            source=None,
            info=info,
            kwargs=raw,
            config=strawberry_schema.config,
            scalar_registry=strawberry_schema.schema_converter.scalar_registry,
        )
        paging = {name: kwargs.pop(name, None) for name in PAGING}
        if paging["last"] is not None and paging["before"] is None:
            raise Unknown("last without before")
        window = SliceMetadata.from_arguments(info, **paging)
        queryset = field.base_resolver(*args, **kwargs)
    except Exception as error:
        raise Unknown("arguments") from error
    connection_type = get_named_type(graphql_field.type)
    assert isinstance(connection_type, GraphQLObjectType)
    selected = collect_sub_fields(
        compiler.schema, compiler.fragments, compiler.variables, connection_type, nodes
    )
    for group in selected.values():
        if group[0].name.value not in CONNECTION_FIELDS:
            raise Unknown(f"{connection_type.name}.{group[0].name.value}")
    edge_type = get_named_type(connection_type.fields["edges"].type)
    assert isinstance(edge_type, GraphQLObjectType)
    # One `edges` and one `node` key at most: each key's object is built by one SQL expression.
    edge_nodes = _one([group for group in selected.values() if group[0].name.value == "edges"])
    edge_fields = collect_sub_fields(
        compiler.schema, compiler.fragments, compiler.variables, edge_type, edge_nodes
    )
    for group in edge_fields.values():
        if group[0].name.value not in EDGE_FIELDS:
            raise Unknown(f"{edge_type.name}.{group[0].name.value}")
    node_nodes = _one([group for group in edge_fields.values() if group[0].name.value == "node"])
    node_type = get_named_type(edge_type.fields["node"].type)
    node_sql, shape = None, None
    if node_nodes:
        table = queryset.model._meta.db_table
        node_sql, shape = compiler.node_sql(node_type.name, f'"{table}"', node_nodes)
    return Page(
        compiler=compiler,
        key=key,
        nodes=nodes,
        connection_type=connection_type,
        edge_type=edge_type,
        selected=selected,
        queryset=queryset,
        window=window,
        node_sql=node_sql,
        params=tuple(compiler.params),
        shape=shape,
        edge_nodes=edge_nodes,
        node_nodes=node_nodes,
    )


def run(page: Page) -> dict[str, Any]:
    """The JSON of the connection (fields the compiler does not know are null until merged)."""
    compiler = page.compiler
    names = {group[0].name.value for group in page.selected.values()}
    window = page.window
    rows: list[tuple[Any, int]] = []
    if names & {"edges", "pageInfo"}:
        queryset = page.queryset.annotate(
            _compiled=RawSQL(page.node_sql or "NULL::json", page.params, output_field=Field())
        )
        if "totalCount" in names:  # counted over the filtered rows, before the page is cut
            queryset = queryset.annotate(_compiled_total=Window(Count(1), partition_by=None))
            rows = list(
                queryset[window.start : window.overfetch].values_list(
                    "_compiled", "_compiled_total"
                )
            )
        else:
            found = queryset[window.start : window.overfetch].values_list("_compiled", flat=True)
            rows = [(node, 0) for node in found]
    has_next = False
    if window.expected is not None and len(rows) == window.expected + 1:
        rows, has_next = rows[:-1], True
    if page.shape is not None and page.shape.finishes:
        page.shape.apply([row[0] for row in rows])
    cursors = [to_base64("arrayconnection", window.start + index) for index in range(len(rows))]

    answer: dict[str, Any] = {}
    for response_key, group in page.selected.items():
        name = group[0].name.value
        if name == "__typename":
            answer[response_key] = page.connection_type.name
        elif name == "totalCount":
            answer[response_key] = rows[0][1] if rows else page.queryset.count()
        elif name == "edges":
            answer[response_key] = _edges(compiler, page.edge_type, group, rows, cursors)
        else:
            answer[response_key] = _page_info(
                compiler, page.connection_type, group, window.start > 0, has_next, cursors
            )
    return answer


def _one(groups: list[list[FieldNode]]) -> list[FieldNode]:
    if len(groups) > 1:
        raise Unknown("the same field under two response keys")
    return groups[0] if groups else []


def _edges(
    compiler: Compiler,
    edge_type: GraphQLObjectType,
    nodes: list[FieldNode],
    rows: list[tuple[Any, int]],
    cursors: list[str],
) -> list[dict[str, Any]]:
    selected = collect_sub_fields(
        compiler.schema, compiler.fragments, compiler.variables, edge_type, nodes
    )
    edges = []
    for (node, _), cursor in zip(rows, cursors, strict=True):
        edge: dict[str, Any] = {}
        for key, group in selected.items():
            name = group[0].name.value
            if name == "node":
                edge[key] = node
            elif name == "cursor":
                edge[key] = cursor
            elif name == "__typename":
                edge[key] = edge_type.name
            else:
                raise Unknown(f"{edge_type.name}.{name}")
        edges.append(edge)
    return edges


def _page_info(
    compiler: Compiler,
    connection_type: GraphQLObjectType,
    nodes: list[FieldNode],
    has_previous: bool,
    has_next: bool,
    cursors: list[str],
) -> dict[str, Any]:
    page_type = get_named_type(connection_type.fields["pageInfo"].type)
    assert isinstance(page_type, GraphQLObjectType)
    selected = collect_sub_fields(
        compiler.schema, compiler.fragments, compiler.variables, page_type, nodes
    )
    values = {
        "__typename": page_type.name,
        "hasPreviousPage": has_previous,
        "hasNextPage": has_next,
        "startCursor": cursors[0] if cursors else None,
        "endCursor": cursors[-1] if cursors else None,
    }
    answer = {}
    for key, group in selected.items():
        name = group[0].name.value
        if name not in values:
            raise Unknown(f"PageInfo.{name}")
        answer[key] = values[name]
    return answer
