"""Static analysis of an operation before it runs: its cost (DESIGN §4), the fields and types it
reaches (for the permission table) and whether it introspects.

Cost: every field weighs what the weight table (schema/costs.py, next to the permission table)
says; a field it leaves out weighs 1 if it is an object (a connection's edge 0: its node counts)
and 0 if it is a scalar or enum. A field with `first`/`last` adds that number times the cost of
what it selects (absent: its default, or the page maximum; above the maximum: BAD_REQUEST); any
other field adds the cost of its selection once. Fragments count where they are spread. So
`{ me { via } }` costs 1, `{ analytics(query: …) { totals { value } } }` costs 10 (the weight
of Query.analytics) + 1 (`totals`) = 11, and `{ orders(first: 20) { edges { node { customer {
id } } } } }` costs 1 + 20 * (0 + 1 + 1) = 41. That is `requestedQueryCost`, checked against
GRAPHQL_MAX_COST and paid from the rate bucket before anything runs.

Actual cost (`actualQueryCost`): the same rule applied to the answer instead of the question. A
field that answered with a value (an object, a list, even an empty one: the work of finding
nothing was done) costs its weight; a field that answered null (not found, refused, failed)
costs nothing; a list's selection counts once for each item it returned, in place of `first`.
So a connection that asked for 50 and found 5 costs 1 + 5 * its node, and an `analytics` that
failed on a bad range costs nothing. The guard refunds requested - actual, and never keeps more
than requested: a list without `first` is charged as one item and may bring more.

Cursors (`after`, `before`) are checked here too, before anything runs: one that is not exactly a
cursor a connection gives out is BAD_REQUEST (strawberry would raise on it mid-query: INTERNAL).
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from typing import Any

from graphql import (
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLNamedType,
    GraphQLObjectType,
    GraphQLSchema,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
    assert_input_type,
    get_named_type,
    is_composite_type,
    type_from_ast,
    value_from_ast,
)
from strawberry.relay import to_base64
from strawberry.relay.types import PREFIX

from schema import costs
from schema.errors import bad_request

PAGE_MAX = 100
INTROSPECTION_FIELDS = frozenset({"__schema", "__type"})
NODE_FIELDS = frozenset({"node", "nodes"})
CURSOR_ARGS = ("after", "before")
MAX_OFFSET = 10**9  # deeper than any list here; keeps `offset + 1` inside PostgreSQL's bigint


@dataclass
class Charge:
    """What one response key costs when it comes back: its field's weight, and its selection's
    charges for each object in it (empty for a scalar)."""

    weight: int
    selection: dict[str, Charge] = field(default_factory=dict)

    def merge(self, other: Charge) -> None:
        """The same key selected twice (fragments, repeats): the answer holds it once."""
        self.weight = max(self.weight, other.weight)
        _merge(self.selection, other.selection)


def _merge(into: dict[str, Charge], charges: dict[str, Charge]) -> None:
    for key, charge in charges.items():
        if key in into:
            into[key].merge(charge)
        else:
            into[key] = charge


@dataclass
class Analysis:
    operation: str  # query | mutation | subscription
    cost: int = 0
    charges: dict[str, Charge] = field(default_factory=dict)  # for actual_cost, by response key
    root_fields: set[str] = field(default_factory=set)  # "Query.me"
    node_types: set[str] = field(default_factory=set)  # object types fetched through `node`
    introspection: bool = False


def _default_weight(named: GraphQLNamedType) -> int:
    """A field the weight table leaves out: 0 a scalar or enum, 1 an object; a connection's edge
    costs nothing of its own (its node is the object), as in Shopify's model: `edges { node { … }
    }` costs per node, not twice."""
    if not is_composite_type(named):
        return 0
    fields = getattr(named, "fields", {})
    return 0 if "node" in fields and "cursor" in fields else 1


def cursor_offset(cursor: str) -> int | None:
    """The offset in a cursor as connections mint it (base64 of `arrayconnection:<n>`); None for
    any other text, including other spellings of the same bytes."""
    if len(cursor) > 64:
        return None
    try:
        prefix, _, offset = base64.b64decode(cursor, validate=True).decode("ascii").partition(":")
    except ValueError:  # not ASCII, not base64 (binascii.Error), not text (UnicodeDecodeError)
        return None
    if prefix != PREFIX or not offset.isascii() or not offset.isdigit() or int(offset) > MAX_OFFSET:
        return None
    return int(offset) if to_base64(PREFIX, int(offset)) == cursor else None


def _check_cursors(node: FieldNode, definition, variables: dict[str, Any]) -> None:
    for argument in node.arguments or ():  # None in graphql-core 3.3 when absent
        name = argument.name.value
        if name in CURSOR_ARGS and name in definition.args:
            value = value_from_ast(argument.value, definition.args[name].type, variables)
            # not a string: GraphQL's own coercion refuses it (BAD_REQUEST) once execution starts
            if isinstance(value, str) and cursor_offset(value) is None:
                raise bad_request(
                    f"`{name}` is not a cursor of this list: give one a page returned, or null."
                )


def _page_size(node: FieldNode, definition, variables: dict[str, Any]) -> int:
    if not ("first" in definition.args or "last" in definition.args):
        return 1
    given = {
        name: definition.args[name].default_value
        for name in ("first", "last")
        if name in definition.args and isinstance(definition.args[name].default_value, int)
    }
    for argument in node.arguments or ():
        name = argument.name.value
        if name in ("first", "last"):
            arg_type = definition.args[name].type
            given[name] = value_from_ast(argument.value, arg_type, variables)
    sizes = [value for value in given.values() if isinstance(value, int)]
    if any(size < 0 or size > PAGE_MAX for size in sizes):
        raise bad_request(f"`first` and `last` must be 0 to {PAGE_MAX}.")
    return max(sizes) if sizes else PAGE_MAX


class _Walker:
    def __init__(
        self,
        schema: GraphQLSchema,
        fragments: dict[str, FragmentDefinitionNode],
        variables: dict[str, Any],
        analysis: Analysis,
    ):
        self.schema = schema
        self.fragments = fragments
        self.variables = variables
        self.analysis = analysis
        self.under_node = False

    def walk(
        self,
        selection_set: SelectionSetNode | None,
        parent: GraphQLNamedType,
        depth: int,
        charges: dict[str, Charge],
    ) -> int:
        """The cost of a selection; what each of its response keys costs goes into `charges`."""
        if selection_set is None:
            return 0
        total = 0
        for selection in selection_set.selections:
            if isinstance(selection, FieldNode):
                total += self.field(selection, parent, depth, charges)
            elif isinstance(selection, InlineFragmentNode):
                condition = selection.type_condition
                target = self.schema.get_type(condition.name.value) if condition else parent
                reached = self.reach(target, parent)
                total += self.walk(selection.selection_set, reached, depth, charges)
            elif isinstance(selection, FragmentSpreadNode):
                fragment = self.fragments.get(selection.name.value)
                if fragment is not None:
                    target = self.schema.get_type(fragment.type_condition.name.value)
                    reached = self.reach(target, parent)
                    total += self.walk(fragment.selection_set, reached, depth, charges)
        return total

    def reach(self, target: GraphQLNamedType | None, parent: GraphQLNamedType) -> GraphQLNamedType:
        if self.under_node and isinstance(target, GraphQLObjectType):
            self.analysis.node_types.add(target.name)
        return target or parent

    def field(
        self, node: FieldNode, parent: GraphQLNamedType, depth: int, charges: dict[str, Charge]
    ) -> int:
        name = node.name.value
        if name.startswith("__"):
            if name in INTROSPECTION_FIELDS:
                self.analysis.introspection = True
            return 0
        definition = getattr(parent, "fields", {}).get(name)
        if definition is None:  # validation has refused it already
            return 0
        if depth == 0:
            self.analysis.root_fields.add(f"{parent.name}.{name}")
        _check_cursors(node, definition, self.variables)
        named = get_named_type(definition.type)
        if self.under_node and isinstance(named, GraphQLObjectType):
            self.analysis.node_types.add(named.name)
        weight = costs.weight(parent.name, name, _default_weight(named))
        charge = Charge(weight)
        key = node.alias.value if node.alias else name
        if not is_composite_type(named):
            if weight:
                _merge(charges, {key: charge})
            return weight
        entering_node = depth == 0 and name in NODE_FIELDS
        self.under_node = self.under_node or entering_node
        child = self.walk(node.selection_set, named, depth + 1, charge.selection)
        if entering_node:
            self.under_node = False
        _merge(charges, {key: charge})
        return weight + _page_size(node, definition, self.variables) * child


def analyse(
    schema: GraphQLSchema, document, operation_name: str | None, variables: dict[str, Any] | None
) -> Analysis | None:
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    operation = next(
        (
            op
            for op in operations
            if operation_name is None or (op.name and op.name.value == operation_name)
        ),
        None,
    )
    if operation is None:
        return None
    fragments = {
        d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
    }
    kind = operation.operation.value
    root = schema.get_root_type(operation.operation)
    if root is None:  # the schema has no such operations: execution refuses it, nothing to count
        return None
    analysis = Analysis(operation=kind)
    given = dict(variables or {})
    for definition in operation.variable_definitions or ():
        name = definition.variable.name.value
        if name not in given and definition.default_value is not None:
            # Validation has refused unknown and output types; this raises the TypeError that
            # value_from_ast would.
            variable_type = assert_input_type(type_from_ast(schema, definition.type))
            given[name] = value_from_ast(definition.default_value, variable_type)
    walker = _Walker(schema, fragments, given, analysis)
    analysis.cost = walker.walk(operation.selection_set, root, 0, analysis.charges)
    return analysis


def actual_cost(charges: dict[str, Charge], data: object) -> int:
    """What an answer cost (see the module's docstring): each key that came back with a value
    costs its weight, and its selection counts once for each object in it. Iterative: it runs
    over every response."""
    total = 0
    stack: list[tuple[dict, dict[str, Charge]]] = (
        [(data, charges)] if isinstance(data, dict) else []
    )
    while stack:
        value, selection = stack.pop()
        for key, charge in selection.items():
            answer = value.get(key)
            if answer is None:
                continue
            total += charge.weight
            if not charge.selection:
                continue
            items = [answer]
            while items:
                item = items.pop()
                if type(item) is dict:
                    stack.append((item, charge.selection))
                elif type(item) is list:
                    items.extend(item)
    return total
