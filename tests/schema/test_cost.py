"""Unit tests of the static query analysis (DESIGN §4): cost, root fields, types, introspection,
and the actual cost of an answer.

Cost rules: a field weighs what schema/costs.py says, else a scalar (or enum) 0, an object 1 (a
connection's edge 0); a field taking `first`/`last` costs its weight + n * (the cost of its
selection), n the page size asked for (absent: the page maximum, 100). The fields below weigh the
defaults unless a test says otherwise (tokenCreate: 10). Every expected number below is worked
out by hand in the comment next to it."""

from __future__ import annotations

from typing import Any

import pytest
import strawberry
from graphql import GraphQLError, parse

from schema import costs, schema
from schema.extensions.cost import PAGE_MAX, actual_cost, analyse


def run(query: str, variables: dict[str, Any] | None = None, operation_name: str | None = None):
    analysis = analyse(schema._schema, parse(query), operation_name, variables)
    assert analysis is not None
    return analysis


def cost(query: str, variables: dict[str, Any] | None = None) -> int:
    return run(query, variables).cost


# --- scalars and objects -------------------------------------------------------------------------


def test_page_maximum_is_one_hundred():
    assert PAGE_MAX == 100


def test_scalar_fields_cost_nothing():
    # me (object) 1; via, role (String, enum) 0 each
    assert cost("{ me { via role } }") == 1
    # tenant 1; name/slug/currency 0; domains is a list of String: still a scalar, 0; JSON 0
    assert cost("{ tenant { name slug currency domains settings } }") == 1


def test_typename_alone_costs_nothing():
    analysis = run("{ __typename }")
    assert analysis.cost == 0
    assert analysis.root_fields == set()
    assert analysis.introspection is False


def test_each_object_field_costs_one():
    # me 1 + user 1 + apiKey 1 = 3; tenant 1 → 4
    assert cost("{ me { via user { id email } apiKey { id name } } tenant { id } }") == 4


def test_adding_scalars_does_not_change_the_cost():
    lean = cost("{ me { user { id } } }")
    fat = cost("{ me { via role user { id email fullName } } }")
    assert lean == fat == 2


# --- connections ---------------------------------------------------------------------------------


def test_first_multiplies_the_selection():
    # node: Member 1 + user 1 = 2; edges 0 + 2 = 2; members 1 + 10 * 2 = 21
    assert cost("{ members(first: 10) { totalCount edges { node { id user { email } } } } }") == 21


def test_last_multiplies_the_selection():
    # edges 0 + node 1 = 1; members 1 + 5 * 1 = 6
    assert cost("{ members(last: 5) { edges { node { id } } } }") == 6


def test_first_and_last_take_the_larger():
    # members 1 + 7 * (edges 0 + node 1) = 8
    assert cost("{ members(first: 3, last: 7) { edges { node { id } } } }") == 8


def test_connection_with_only_scalars_costs_one():
    # totalCount 0, so members 1 + 10 * 0 = 1
    assert cost("{ members(first: 10) { totalCount } }") == 1


def test_missing_first_counts_the_page_maximum():
    # members 1 + 100 * (edges 0 + node 1 + user 1 = 2) = 201
    assert cost("{ members { edges { node { user { email } } } } }") == 201


def test_explicit_null_first_counts_the_page_maximum():
    # members 1 + 100 * (edges 0 + node 1) = 101
    assert cost("{ members(first: null) { edges { node { id } } } }") == 101


def test_first_from_a_variable():
    query = "query Page($n: Int) { members(first: $n) { edges { node { id } } } }"
    assert cost(query, {"n": 7}) == 1 + 7 * 1  # 8
    assert cost(query, {"n": 50}) == 1 + 50 * 1  # 51


def test_first_from_an_unset_variable_counts_the_page_maximum():
    query = "query Page($n: Int) { members(first: $n) { edges { node { id } } } }"
    assert cost(query, {}) == 1 + 100 * 1  # 101
    assert cost(query, None) == 101
    assert cost(query, {"n": None}) == 101


def test_first_from_a_variable_default():
    """BUG: an operation's own default (`$n: Int = 7`) is what GraphQL executes with, but the
    analysis only looks at the request's `variables` and charges the page maximum (201)."""
    query = "query Page($n: Int = 7) { members(first: $n) { edges { node { id } } } }"
    assert cost(query, {}) == 1 + 7 * 1  # 8
    assert cost(query, {"n": 2}) == 1 + 2 * 1  # a given value still wins: 3


@pytest.mark.parametrize("first", [-1000, -1, 101, 10_000])
def test_a_page_size_out_of_range_is_a_bad_request(first):
    """A negative `first` would make a negative cost that *adds* points to the rate bucket; one
    above the page maximum would fail inside the resolver (INTERNAL) after being charged."""
    with pytest.raises(GraphQLError) as refused:
        run(f"{{ members(first: {first}) {{ edges {{ node {{ id }} }} }} }}")
    assert refused.value.extensions["code"] == "BAD_REQUEST"


def test_sibling_connections_add_up():
    # members 1 + 10 * (edge 0 + node 1) = 11; apiKeys 1 + 4 * 1 = 5 → 16
    assert (
        cost(
            "{ members(first: 10) { edges { node { id } } } apiKeys(first: 4) { edges { node { id } } } }"
        )
        == 16
    )


def test_page_info_is_part_of_the_multiplied_selection():
    # members 1 + 10 * (pageInfo 1 + edges (0 + node 1) = 2) = 21
    assert cost("{ members(first: 10) { pageInfo { hasNextPage } edges { node { id } } } }") == 21


def test_first_zero_costs_just_the_connection():
    # members 1 + 0 * 2 = 1
    assert cost("{ members(first: 0) { edges { node { user { email } } } } }") == 1


# --- fragments -----------------------------------------------------------------------------------


def test_named_fragment_counts_where_spread():
    inline = "{ members(first: 10) { edges { node { id user { email } } } } }"
    spread = """
        query { members(first: 10) { edges { node { ...Bits } } } }
        fragment Bits on Member { id user { email } }
    """
    assert cost(inline) == cost(spread) == 21


def test_named_fragment_spread_twice_counts_twice():
    # members 1 + 10 * (edge 0 + node (1 + user 1)) = 21; node(id) 1 + user 1 = 2 → 23
    query = """
        query {
          members(first: 10) { edges { node { ...Bits } } }
          node(id: "TWVtYmVyOjE=") { ...Bits }
        }
        fragment Bits on Member { user { email } }
    """
    assert cost(query) == 23


def test_nested_named_fragments():
    # UserBits: nothing but scalars (0); MemberBits: user 1; members 1 + 4 * (0 + 1 + 1) = 9
    query = """
        query { members(first: 4) { edges { node { ...MemberBits } } } }
        fragment MemberBits on Member { role user { ...UserBits } }
        fragment UserBits on User { email fullName }
    """
    assert cost(query) == 9


def test_inline_fragment_with_type_condition():
    # node (interface) 1 + user 1 = 2
    analysis = run('{ node(id: "TWVtYmVyOjE=") { id ... on Member { user { email } } } }')
    assert analysis.cost == 2
    assert analysis.node_types == {"Member", "User"}


def test_inline_fragment_without_type_condition():
    # me 1 + user 1 = 2
    assert cost("{ me { ... { via user { email } } } }") == 2


def test_fragment_inside_a_connection_is_multiplied():
    # members 1 + 10 * (edge 0 + node 1 + user 1) = 21
    assert (
        cost("{ members(first: 10) { edges { ... on MemberEdge { node { user { email } } } } } }")
        == 21
    )


# --- introspection -------------------------------------------------------------------------------


def test_schema_marks_introspection():
    analysis = run("{ __schema { types { name } } }")
    assert analysis.introspection is True
    assert analysis.cost == 0
    assert analysis.root_fields == set()


def test_type_marks_introspection():
    assert run('{ __type(name: "Member") { name fields { name } } }').introspection is True


def test_introspection_inside_a_fragment_is_seen():
    query = "query { ...Q } fragment Q on Query { __schema { queryType { name } } }"
    assert run(query).introspection is True


def test_plain_query_is_not_introspection():
    assert run("{ me { __typename via } }").introspection is False


# --- root fields, operations, types fetched through node ------------------------------------


def test_root_fields_are_collected():
    analysis = run("{ me { via } members { totalCount } }")
    assert analysis.root_fields == {"Query.me", "Query.members"}
    assert analysis.operation == "query"


def test_aliases_resolve_to_the_field_names():
    analysis = run("{ a: me { via } b: me { role } t: tenant { name } }")
    assert analysis.root_fields == {"Query.me", "Query.tenant"}


def test_root_fields_behind_fragments_are_collected():
    """The permission table is checked against these names: a root field hidden in a fragment
    spread on Query must be found too."""
    query = """
        query { me { via } ...Admin ... on Query { apiKeys { totalCount } } }
        fragment Admin on Query { auditLog(first: 1) { totalCount } }
    """
    assert run(query).root_fields == {"Query.me", "Query.auditLog", "Query.apiKeys"}


def test_nested_fields_are_not_root_fields():
    analysis = run("{ me { user { email } apiKey { name } } }")
    assert analysis.root_fields == {"Query.me"}


def test_mutation_root_fields_and_cost():
    analysis = run(
        'mutation { tokenCreate(email: "a@b.c", password: "x") { token user { email } } }'
    )
    assert analysis.operation == "mutation"
    assert analysis.root_fields == {"Mutation.tokenCreate"}
    # tokenCreate (TokenPayload, a password hash: weight 10) + user 1 = 11
    assert analysis.cost == 11


def test_subscription_operation():
    analysis = run("subscription { serverTime(count: 1) }")
    assert analysis.operation == "subscription"
    assert analysis.root_fields == {"Subscription.serverTime"}
    assert analysis.cost == 0


def test_operation_name_selects_the_operation():
    document = "query A { me { via } } query B { tenant { name } members(first: 2) { totalCount } }"
    assert run(document, operation_name="A").root_fields == {"Query.me"}
    b = run(document, operation_name="B")
    assert b.root_fields == {"Query.tenant", "Query.members"}
    assert b.cost == 2
    assert analyse(schema._schema, parse(document), "C", None) is None


def test_types_reached_through_node_are_collected():
    """`node(id:)` can return any Node type: the object types reached under it are collected
    (the guard checks them against the table's type rules)."""
    analysis = run('{ node(id: "TWVtYmVyOjE=") { id ... on Member { role user { email } } } }')
    assert analysis.node_types == {"Member", "User"}
    assert analysis.root_fields == {"Query.node"}


def test_types_reached_through_node_via_named_fragments():
    query = """
        query { node(id: "QXBpS2V5OjE=") { id ...K } me { apiKey { name } } }
        fragment K on ApiKey { name }
    """
    analysis = run(query)
    assert analysis.node_types == {"ApiKey"}  # me.apiKey is not fetched through `node`
    assert analysis.root_fields == {"Query.node", "Query.me"}


def test_node_behind_a_root_fragment_is_seen():
    query = """
        query { ...Q }
        fragment Q on Query { node(id: "QXVkaXRFbnRyeTox") { ... on AuditEntry { action } } }
    """
    analysis = run(query)
    assert analysis.root_fields == {"Query.node"}
    assert analysis.node_types == {"AuditEntry"}


def test_edge_node_fields_are_not_node_fetches():
    analysis = run("{ members(first: 3) { edges { node { role user { email } } } } }")
    assert analysis.node_types == set()


def test_node_with_only_the_interface_reaches_no_type():
    # node (interface) 1 + 0 = 1
    analysis = run('{ node(id: "TWVtYmVyOjE=") { id __typename } }')
    assert analysis.node_types == set()
    assert analysis.cost == 1


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("{ me { via } }", 1),
        ("{ me { user { email } } tenant { name } }", 3),  # me 1 + user 1, tenant 1
        (
            "{ apiKeys(first: 20) { edges { node { name role } } } }",
            21,
        ),  # 1 + 20 * (edge 0 + node 1)
        ("{ auditLog(first: 25) { edges { cursor node { action } } } }", 26),  # 1 + 25 * 1
        ("{ tenants(first: 2) { edges { node { name domains } } } }", 3),  # 1 + 2 * 1
    ],
)
def test_costs_by_hand(query, expected):
    assert cost(query) == expected


@strawberry.type
class _Tag:
    name: str


@strawberry.type
class _Item:
    tag: _Tag


@strawberry.type
class _TinyQuery:
    @strawberry.field
    def items(self, first: int = 5) -> list[_Item]:
        return []


def test_an_omitted_first_counts_its_default_not_the_page_maximum():
    tiny = strawberry.Schema(query=_TinyQuery)._schema
    assert analyse(tiny, parse("{ items { tag { name } } }"), None, {}).cost == 1 + 5 * 1
    assert analyse(tiny, parse("{ items(first: 2) { tag { name } } }"), None, {}).cost == 1 + 2 * 1


# --- weights (schema/costs.py) -------------------------------------------------------------------


def test_a_weighted_root_field_costs_its_weight():
    # analytics 10 (ROLLUP) + totals (a list of objects) 1 = 11
    query = "{ analytics(query: {metrics: [GROSS_SALES]}) { currency totals { value } } }"
    assert costs.WEIGHTS["Query.analytics"] == 10
    assert cost(query) == 11


def test_a_weighted_field_inside_a_connection_is_multiplied():
    # products 1 + 10 * (node 1 + analytics 5 + revenue 1) = 71
    query = "{ products(first: 10) { edges { node { analytics { revenue { amount } } } } } }"
    assert costs.WEIGHTS["Product.analytics"] == 5
    assert cost(query) == 71


def test_a_weighted_scalar_counts(monkeypatch):
    """A scalar the table weighs (a figure computed on the spot) costs its weight."""
    monkeypatch.setitem(costs.WEIGHTS, "Tenant.name", 4)
    # tenant 1 + name 4 = 5; slug 0
    assert cost("{ tenant { name slug } }") == 5


def test_the_table_overrides_the_default_of_an_object(monkeypatch):
    monkeypatch.setitem(costs.WEIGHTS, "Me.user", 0)
    # me 1 + user 0 = 1
    assert cost("{ me { user { email } } }") == 1


# --- actual cost: the same weights applied to the answer -----------------------------------------


def actual(query: str, data: object) -> int:
    return actual_cost(run(query).charges, data)


MEMBERS_50 = "{ members(first: 50) { totalCount edges { node { id user { email } } } } }"


def test_actual_counts_what_came_back():
    data = {"members": {"totalCount": 2, "edges": [{"node": {"id": "a", "user": {"email": "x"}}}]}}
    # members 1 + one edge (0) * (node 1 + user 1) = 3, against 1 + 50 * 2 = 101 asked for
    assert actual(MEMBERS_50, data) == 3


def test_a_null_answer_costs_nothing():
    assert actual('{ node(id: "TWVtYmVyOjE=") { id } }', {"node": None}) == 0
    assert actual("{ me { via apiKey { name } } }", {"me": {"via": "jwt", "apiKey": None}}) == 1
    assert actual(MEMBERS_50, None) == 0


def test_an_empty_list_costs_its_weight_not_its_selection():
    """Finding nothing was work done: the field's weight stays, its selection counts no item."""
    query = "{ topSellingProducts(first: 10) { product { id } } }"
    # asked for: topSellingProducts 10 + 10 * product 1 = 20
    assert cost(query) == 20
    assert actual(query, {"topSellingProducts": []}) == 10
    assert actual(query, {"topSellingProducts": [{"product": {"id": "p"}}] * 3}) == 13


def test_aliases_are_counted_apart():
    query = "{ a: me { user { email } } b: me { via } }"
    data = {"a": {"user": {"email": "x"}}, "b": {"via": "jwt"}}
    assert cost(query) == actual(query, data) == 3  # a: 1 + 1, b: 1


def test_a_key_selected_twice_is_answered_and_counted_once():
    """Fragments that select the same key merge in the answer: it is counted once (the request
    counted it where each was spread, so the repeat is refunded)."""
    query = """
        query { me { ...A ...B } }
        fragment A on Me { user { email } }
        fragment B on Me { user { fullName } }
    """
    assert cost(query) == 3  # me 1 + user 1 + user 1
    assert actual(query, {"me": {"user": {"email": "x", "fullName": "y"}}}) == 2


def test_a_list_costs_its_weight_once_and_its_selection_per_item():
    query = "{ orders(first: 2) { edges { node { lines { id variant { id } } } } } }"
    line = {"id": "l", "variant": {"id": "v"}}
    data = {"orders": {"edges": [{"node": {"lines": [line, line]}}, {"node": {"lines": []}}]}}
    # orders 1 + node 1 + lines 1 + 2 * variant 1, + node 1 + lines 1 (empty) = 7
    assert actual(query, data) == 7
