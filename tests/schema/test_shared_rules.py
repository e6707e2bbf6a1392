"""The shared rules answer one way wherever they apply, through the API: a range of days with
`from` after `to` is BAD_RANGE from every place that takes one (a userError in mutations; in
queries, which have no userErrors, a top-level BAD_REQUEST with `extensions.reason` BAD_RANGE),
and money given by a user is NEGATIVE, TOO_LARGE or TOO_PRECISE from every place that takes it."""

from __future__ import annotations

import pytest

from apps.common import global_ids
from tests.conftest import token_for

BACKWARDS = 'from: "2025-07-05", to: "2025-06-01"'  # different months too, for the monthly cohorts
BACKWARDS_JSON = '{from: "2025-06-05", to: "2025-06-01"}'

# Every query that takes a range of days.
RANGE_QUERIES = {
    "topSellingProducts": f"{{ topSellingProducts({BACKWARDS}) {{ unitsSold }} }}",
    "categoriesSummary": f"{{ categoriesSummary({BACKWARDS}) {{ __typename }} }}",
    "topCustomers": f"{{ topCustomers({BACKWARDS}) {{ totalCount }} }}",
    "customerAnalyticsSummary": f"{{ customerAnalyticsSummary({BACKWARDS}) {{ __typename }} }}",
    "cohortRetention": f"{{ cohortRetention({BACKWARDS}) {{ __typename }} }}",
    "orderAnalytics": f"{{ orderAnalytics({BACKWARDS}) {{ ordersCount }} }}",
    "paymentAnalytics": f"{{ paymentAnalytics({BACKWARDS}) {{ __typename }} }}",
    "funnel": f"{{ funnel({BACKWARDS}) {{ __typename }} }}",
    "analytics": f"{{ analytics(query: {{metrics: [GROSS_SALES], {BACKWARDS}}}) {{ currency }} }}",
    "analyticsOverview": f"{{ analyticsOverview({BACKWARDS}) {{ __typename }} }}",
    "tenant.analyticsSummary": f"{{ tenant {{ analyticsSummary({BACKWARDS}) {{ __typename }} }} }}",
}

# Every mutation that takes a range of days (inside its JSON filters or report definition), and
# the field it names (a definition's `range` may be a preset, so the whole range is at fault).
RANGE_MUTATIONS = {
    "exportCreate": (
        f"exportCreate(kind: ORDERS, format: CSV, filters: {{placed: {BACKWARDS_JSON}}})",
        "filters.placed.from",
    ),
    "reportCreate": (
        f'reportCreate(input: {{name: "Week", definition: {{metrics: ["orders"], '
        f"range: {BACKWARDS_JSON}}}}})",
        "definition.range",
    ),
    "widgetCreate": (
        f'widgetCreate(input: {{title: "Sales", kind: KPI, definition: {{metrics: ["orders"], '
        f"range: {BACKWARDS_JSON}}}}})",
        "definition.range",
    ),
}


@pytest.fixture
def owner(alpha):
    return token_for(alpha.email("owner"), alpha.tenant)


@pytest.mark.parametrize("place", sorted(RANGE_QUERIES))
def test_a_backwards_range_is_bad_range_in_every_query(gql, alpha, owner, place):
    response = gql.post(RANGE_QUERIES[place], host=alpha.host, token=owner)
    assert response.codes == ["BAD_REQUEST"], response.body
    extensions = response.errors[0]["extensions"]
    assert (extensions["reason"], extensions["field"]) == ("BAD_RANGE", "from"), response.body


@pytest.mark.parametrize("place", sorted(RANGE_MUTATIONS))
def test_a_backwards_range_is_bad_range_in_every_mutation(gql, alpha, owner, place):
    mutation, field = RANGE_MUTATIONS[place]
    response = gql.post(
        f"mutation {{ {mutation} {{ userErrors {{ field code }} }} }}", host=alpha.host, token=owner
    )
    assert response.errors == [], response.body
    assert response.data[place]["userErrors"] == [{"field": field, "code": "BAD_RANGE"}], (
        response.body
    )


def test_every_range_place_is_listed():
    """The lists above are every root field and mutation with a `from` argument or a range in
    its JSON input, so a new one must join them."""
    from schema import schema

    graphql = schema._schema
    with_from = {name for name, field in graphql.query_type.fields.items() if "from" in field.args}
    with_from |= {
        f"tenant.{name}"
        for name, field in graphql.get_type("Tenant").fields.items()
        if "from" in field.args
    }
    assert with_from <= set(RANGE_QUERIES), with_from - set(RANGE_QUERIES)


def _nowhere(type_name: str) -> str:
    """An id of alpha's that names no row."""
    return global_ids.encode(type_name, 999_999, "alpha")


NOWHERE_VARIANT = _nowhere("Variant")
# Every mutation that takes money, with `{}` where the amount goes and the userError field it names.
MONEY_INPUTS = {
    "productCreate price": (
        "productCreate",
        'input: {{name: "Hat", variants: [{{sku: "HAT-1", price: "{}"}}]}}',
        "variants.0.price",
    ),
    "productCreate compareAtPrice": (
        "productCreate",
        'input: {{name: "Hat", variants: [{{sku: "HAT-1", price: "1", compareAtPrice: "{}"}}]}}',
        "variants.0.compareAtPrice",
    ),
    "productCreate costPrice": (
        "productCreate",
        'input: {{name: "Hat", variants: [{{sku: "HAT-1", price: "1", costPrice: "{}"}}]}}',
        "variants.0.costPrice",
    ),
    "orderCreate discount": (
        "orderCreate",
        f'input: {{{{lines: [{{{{variant: "{NOWHERE_VARIANT}", quantity: 1}}}}], '
        'discount: "{}"}}',
        "discount",
    ),
    "orderCreate shipping": (
        "orderCreate",
        f'input: {{{{lines: [{{{{variant: "{NOWHERE_VARIANT}", quantity: 1}}}}], '
        'shipping: "{}"}}',
        "shipping",
    ),
    "refundCreate amount": (
        "refundCreate",
        f'input: {{{{order: "{_nowhere("Order")}", amount: "{{}}"}}}}',
        "amount",
    ),
}


@pytest.mark.parametrize(
    ("amount", "code"),
    [("-1", "NEGATIVE"), ("10000000000.00", "TOO_LARGE"), ("1.234", "TOO_PRECISE")],
)
@pytest.mark.parametrize("place", sorted(MONEY_INPUTS))
def test_money_answers_the_same_code_everywhere(gql, alpha, owner, place, amount, code):
    mutation, arguments, field = MONEY_INPUTS[place]
    response = gql.post(
        f"mutation {{ {mutation}({arguments.format(amount)}) {{ userErrors {{ field code }} }} }}",
        host=alpha.host,
        token=owner,
    )
    assert response.errors == [], response.body
    assert response.data[mutation]["userErrors"] == [{"field": field, "code": code}], response.body
