"""Fields the compiler does not know, answered by the resolver path for their subtree.

The compiled pages hold null where such a field was selected. `execute_deferred` runs, through
graphql-core as the resolver path would, an operation cut down to those fields: each root
connection with its arguments, its `edges { node { … } }`, and below the node only the fields on
the way to a deferred one and the deferred fields themselves (the client's own field nodes, so
aliases, arguments, fragments, locations and error paths are theirs). The same page in the same
order comes back (the caller runs both in one snapshot), and `merge` copies each deferred value
into the compiled JSON, and each null the resolver path propagated from a failed non-null field.
Errors are the resolver path's own, in its order.
"""

from __future__ import annotations

from copy import copy
from typing import Any

from graphql import (
    DocumentNode,
    ExecutionResult,
    FieldNode,
    OperationDefinitionNode,
    SelectionSetNode,
    execute,
)

from schema.compiler.connection import Page
from schema.compiler.sql import Shape, Unknown


def execute_deferred(
    execution_context: Any, operation: OperationDefinitionNode, pages: list[Page]
) -> ExecutionResult:
    """The resolver path's answer to the deferred fields of `pages` (those that defer any)."""
    roots = [
        _with(page.nodes, [_with(page.edge_nodes, [_with(page.node_nodes, _cut(page.shape))])])
        for page in pages
        if page.defers and page.shape is not None
    ]
    cut = copy(operation)
    cut.selection_set = SelectionSetNode(selections=tuple(roots))
    document = execution_context.graphql_document
    fragments = [item for item in document.definitions if item.kind == "fragment_definition"]
    strawberry_schema = execution_context.schema
    result = execute(
        strawberry_schema._schema,
        DocumentNode(definitions=(cut, *fragments)),
        root_value=execution_context.root_value,
        context_value=execution_context.context,
        variable_values=execution_context.variables,
        operation_name=execution_context.operation_name,
        execution_context_class=strawberry_schema.execution_context_class,
    )
    assert isinstance(result, ExecutionResult)  # synchronous: every resolver of ours is
    if result.errors:
        strawberry_schema.process_errors(result.errors, execution_context)
    return result


def merge(page: Page, compiled: dict[str, Any], answered: Any) -> Any:
    """`compiled` (a page's connection JSON) with the resolver path's `answered` merged in."""
    if answered is None:  # a failed non-null field took the whole connection with it
        return None
    edges_key = _key(page.edge_nodes)
    node_key = _key(page.node_nodes)
    answered_edges = answered.get(edges_key)
    if answered_edges is None:
        compiled[edges_key] = None
        return compiled
    edges = compiled[edges_key]
    if len(edges) != len(answered_edges):  # never in one snapshot: refuse rather than misplace
        raise Unknown("the pages differ")
    for index, (edge, answered_edge) in enumerate(zip(edges, answered_edges, strict=True)):
        if answered_edge is None:
            edges[index] = None
            continue
        assert page.shape is not None
        edge[node_key] = _merged(page.shape, edge[node_key], answered_edge[node_key])
    return compiled


def _merged(shape: Shape, compiled: Any, answered: Any) -> Any:
    if compiled is None or answered is None:
        return None if answered is None else compiled
    if isinstance(compiled, list):
        if len(compiled) != len(answered):
            raise Unknown("the lists differ")
        return [_merged(shape, item, other) for item, other in zip(compiled, answered, strict=True)]
    for key, _ in shape.deferred:
        compiled[key] = answered[key]
    for key, _, child in shape.children:
        if child.defers:
            compiled[key] = _merged(child, compiled[key], answered[key])
    return compiled


def _cut(shape: Shape | None) -> list[FieldNode]:
    """The selections that lead to the deferred fields of `shape`, in the client's order."""
    if shape is None:
        return []
    deferred = dict(shape.deferred)
    children = {key: (nodes, child) for key, nodes, child in shape.children if child.defers}
    selections: list[FieldNode] = []
    for key in shape.order:
        if key in deferred:
            selections.extend(deferred[key])
        elif key in children:
            nodes, child = children[key]
            selections.append(_with(nodes, _cut(child)))
    return selections


def _with(nodes: list[FieldNode], selections: list[FieldNode]) -> FieldNode:
    """The field of `nodes` (one response key) selecting only `selections`."""
    field = copy(nodes[0])
    field.directives = ()  # they included it already (collect_fields dropped what they skip)
    field.selection_set = SelectionSetNode(selections=tuple(selections))
    return field


def _key(nodes: list[FieldNode]) -> str:
    node = nodes[0]
    return node.alias.value if node.alias else node.name.value
