"""`userErrors.field` has one style in every mutation: the dotted path of the value at fault,
names as the schema spells them (camelCase), list indexes as numbers (`lines.0.quantity`),
starting at the mutation's `input` argument when it has one (`name`, `variants.0.price`: its
fields, without `input.`) and at the argument otherwise (`id`, `files.1`, `filters.placed.from`).
Bad input of every shape goes through the API; each field must have that form and name a place
in the mutation's arguments."""

from __future__ import annotations

import re

import pytest
from graphql import GraphQLInputObjectType, GraphQLList, GraphQLScalarType, get_nullable_type

from apps.common import global_ids
from schema import schema
from tests.conftest import token_for

GRAPHQL = schema._schema
PATH = re.compile(r"[a-z][A-Za-z0-9]*(\.(\d+|[a-z][A-Za-z0-9]*))*")


def _nowhere(type_name: str) -> str:
    """An id of alpha's that names no row (the rows these mutations look for do not exist)."""
    return global_ids.encode(type_name, 999_999, "alpha")


NOWHERE = _nowhere("Order")

# (mutation, arguments in GraphQL syntax): each answers with at least one user error.
BAD_INPUT = [
    ("tokenCreate", 'email: "nobody@example.com", password: "x"'),
    ("memberAdd", 'email: "not-an-email", role: STAFF'),
    ("memberUpdateRole", f'id: "{_nowhere("Member")}", role: STAFF'),
    ("apiKeyCreate", 'name: "", role: STAFF, scopes: ["nope"]'),
    ("tenantUpdate", 'input: {name: ""}'),
    ("categoryCreate", f'input: {{name: "Hats", parent: "{_nowhere("Category")}"}}'),
    ("productCreate", 'input: {name: ""}'),
    (
        "productCreate",
        'input: {name: "Hat", variants: [{sku: "HAT-1", price: "1.00", compareAtPrice: "-3"}]}',
    ),
    ("productUpdate", f'id: "{_nowhere("Product")}", input: {{name: "x"}}'),
    ("variantCreate", f'product: "{_nowhere("Product")}", input: {{sku: "x", price: "1"}}'),
    ("customerCreate", 'input: {email: "ok@example.com", phone: "abc"}'),
    (
        "customerCreate",
        'input: {email: "ok@example.com", addresses: [{line1: "1 A St", city: "X", country: "DE"}, '
        '{line1: "2 B St", city: "Y", country: "XX"}]}',
    ),
    ("customerNoteAdd", f'customerId: "{_nowhere("Customer")}", body: ""'),
    ("orderCreate", "input: {lines: []}"),
    ("orderCreate", f'input: {{lines: [{{variant: "{_nowhere("Variant")}", quantity: 0}}]}}'),
    ("orderUpdateStatus", f'id: "{NOWHERE}", status: PAID'),
    ("refundCreate", f'input: {{order: "{NOWHERE}", amount: "-1"}}'),
    ("paymentSettingsUpdate", 'input: {stripeSecretKey: "nope"}'),
    ("paymentConfirm", f'payment: "{_nowhere("Payment")}", paymentMethod: "x"'),
    (
        "widgetCreate",
        'input: {title: "Sales", kind: KPI, definition: {metrics: ["orders"], range: "soon"}}',
    ),
    ("widgetsReorder", f'widgets: ["{_nowhere("Widget")}"]'),
    ("reportCreate", 'input: {name: "Week", definition: {metrics: ["nope"], range: "today"}}'),
    (
        "alertRuleCreate",
        'input: {name: "Slow", metric: "orders", comparison: ABOVE, threshold: "1", windowDays: 999}',
    ),
    (
        "exportCreate",
        'kind: ORDERS, format: CSV, filters: {placed: {from: "2026-02-30", to: "2026-03-01"}}',
    ),
]


def _names_a_place(mutation: str, path: str) -> bool:
    """Whether `path` leads from the mutation's arguments (the fields of `input` in its place)
    through input objects and lists to a value; anything under a JSON argument is allowed."""
    arguments = GRAPHQL.mutation_type.fields[mutation].args
    first, *rest = path.split(".")
    if first == "input":  # its fields start the path
        return False
    if first in arguments:
        kind = arguments[first].type
    else:
        input_type = get_nullable_type(arguments["input"].type) if "input" in arguments else None
        if input_type is None or first not in input_type.fields:
            return False
        kind = input_type.fields[first].type
    for part in rest:
        kind = get_nullable_type(kind)
        if isinstance(kind, GraphQLScalarType) and kind.name == "JSON":
            return True
        if isinstance(kind, GraphQLList) and part.isdigit():
            kind = kind.of_type
        elif isinstance(kind, GraphQLInputObjectType) and part in kind.fields:
            kind = kind.fields[part].type
        else:
            return False
    return True


@pytest.mark.parametrize(("mutation", "arguments"), BAD_INPUT)
def test_user_error_fields_are_dotted_paths_into_the_arguments(gql, alpha, mutation, arguments):
    response = gql.post(
        f"mutation {{ {mutation}({arguments}) {{ userErrors {{ field message code }} }} }}",
        host=alpha.host,
        token=token_for(alpha.email("owner"), alpha.tenant),
    )
    assert response.errors == [], response.body
    fields = [error["field"] for error in response.data[mutation]["userErrors"]]
    assert fields and None not in fields, response.body
    for field in fields:
        assert PATH.fullmatch(field) and _names_a_place(mutation, field), (mutation, field)


def test_a_path_names_its_list_index_and_nested_field():
    """The checks above are not vacuous: each style seen in the code, and each path that leads
    nowhere, is told apart."""
    assert _names_a_place("customerCreate", "addresses.1.country")
    assert _names_a_place("productCreate", "variants.0.compareAtPrice")
    assert _names_a_place("exportCreate", "filters.placed.from")
    assert _names_a_place("productUpdate", "id") and _names_a_place("productUpdate", "name")
    assert not PATH.fullmatch("addresses[1].country") and not PATH.fullmatch("Email")
    assert not _names_a_place("customerCreate", "input.email")
    assert not _names_a_place("customerCreate", "addresses.first.country")
    assert not _names_a_place("customerCreate", "first_name")
