"""The weight table (schema/costs.py) and what it does to `extensions.cost` through the HTTP path:
every root field has a weight and every weight names a real field; expensive fields cost their
weight, connections multiply it, and `actualQueryCost` is the same weights applied to the answer
(never above what was requested). The dashboard's own queries stay under GRAPHQL_MAX_COST."""

from __future__ import annotations

import re
from pathlib import Path

import graphql
import pytest
from django.conf import settings as django_settings
from django_tenants.utils import tenant_context

from schema.costs import WEIGHTS
from schema.extensions.cost import analyse
from tests.apps.orders import shop
from tests.conftest import token_for
from tests.schema.test_permissions import GRAPHQL, ROOT_FIELDS  # Query, Mutation, Subscription

ANALYTICS_RANGE = {"metrics": ["GROSS_SALES"], "from": "2025-06-03", "to": "2025-06-05"}
# scalars only: the whole cost is the field's weight
ANALYTICS = "query($q: AnalyticsQueryInput!) { analytics(query: $q) { currency timeZone } }"


def test_every_root_field_has_a_weight():
    assert [name for name in ROOT_FIELDS if name not in WEIGHTS] == []


def test_the_table_names_only_fields_that_exist():
    def exists(name: str) -> bool:
        type_name, _, field_name = name.partition(".")
        gtype = GRAPHQL.type_map.get(type_name)
        return isinstance(gtype, graphql.GraphQLObjectType) and field_name in gtype.fields

    assert [name for name in WEIGHTS if not exists(name)] == []


def test_weights_are_whole_points_not_below_zero():
    assert [name for name, weight in WEIGHTS.items() if type(weight) is not int or weight < 0] == []


def test_the_expensive_fields_weigh_more_than_an_object():
    expensive = [
        "Query.analytics",
        "Query.reportRun",
        "Mutation.exportCreate",
        "Query.funnel",
        "Query.cohortRetention",
        "Query.customerSegments",
        "Query.customerLifetimeValue",
        "Query.topCustomers",
        "Query.topSellingProducts",
        "Query.paymentAnalytics",
        "Query.analyticsOverview",
        "Query.realTimeMetrics",
        "Product.analytics",
        "Widget.data",
    ]
    assert [name for name in expensive if WEIGHTS[name] <= WEIGHTS["Query.me"]] == []


# --- through HTTP --------------------------------------------------------------------------------


@pytest.fixture
def post(gql, alpha):
    """POST as alpha's analyst (who may read analytics)."""
    token = token_for(alpha.email("analyst"), alpha.tenant)

    def _post(query: str, variables: dict | None = None):
        return gql.post(query, variables, host=alpha.host, token=token)

    return _post


def cost_of(response) -> dict:
    return response.body["extensions"]["cost"]


def test_analytics_costs_its_weight_and_more_than_me(post, settings):
    settings.GRAPHQL_RESTORE_RATE = 0.01  # no point comes back between the two requests
    analytics = post(ANALYTICS, {"q": ANALYTICS_RANGE})
    assert analytics.errors == [], analytics.body
    me = post("{ me { via } }")
    assert me.errors == []
    weight = WEIGHTS["Query.analytics"]
    assert cost_of(analytics)["requestedQueryCost"] == weight
    assert cost_of(analytics)["actualQueryCost"] == weight  # it answered: all of it used
    assert cost_of(me)["requestedQueryCost"] == WEIGHTS["Query.me"] == 1
    assert weight > cost_of(me)["requestedQueryCost"]
    # the bucket is down by both
    left = cost_of(me)["throttleStatus"]["currentlyAvailable"]
    assert left == settings.GRAPHQL_BUCKET_SIZE - weight - 1


def test_analytics_that_failed_is_refunded(post):
    """A weighted field that answered nothing (here: a range ending before it starts, refused by
    the engine) keeps none of its weight."""
    backwards = {**ANALYTICS_RANGE, "from": "2025-06-05", "to": "2025-06-03"}
    response = post(ANALYTICS, {"q": backwards})
    assert response.codes == ["BAD_REQUEST"], response.body
    assert response.data is None
    cost = cost_of(response)
    assert (cost["requestedQueryCost"], cost["actualQueryCost"]) == (WEIGHTS["Query.analytics"], 0)


def test_a_connection_multiplies_the_weight_of_what_it_selects(post, alpha):
    with tenant_context(alpha.tenant):
        for _ in range(2):
            shop.variant()
    query = """{ products(first: 5) { edges { node { id analytics { unitsSold revenue { amount } } } } } }"""
    response = post(query)
    assert response.errors == [], response.body
    assert len(response.data["products"]["edges"]) == 2
    # each product: the object 1 + its analytics (weighted) + revenue 1
    per_product = 1 + WEIGHTS["Product.analytics"] + 1
    cost = cost_of(response)
    assert cost["requestedQueryCost"] == 1 + 5 * per_product  # products 1 + first * selection
    assert cost["actualQueryCost"] == 1 + 2 * per_product  # the two products that came back
    # and the same selection with `first: 10` costs twice the selection
    doubled = post(query.replace("first: 5", "first: 10"))
    assert cost_of(doubled)["requestedQueryCost"] == 1 + 10 * per_product


def test_actual_never_exceeds_requested(post, alpha):
    """A list without `first` is charged as one item: an order with three lines brings more than
    was asked for, and the guard keeps no more than it charged."""
    with tenant_context(alpha.tenant):
        lines = [(shop.variant(), 1) for _ in range(3)]
        shop.place(alpha, lines, email="three@example.com")
    query = "{ orders(first: 1) { edges { node { lines { variant { id } } } } } }"
    response = post(query)
    assert response.errors == [], response.body
    assert len(response.data["orders"]["edges"][0]["node"]["lines"]) == 3
    cost = cost_of(response)
    # orders 1 + 1 * (node 1 + lines 1 + variant 1) = 4; the answer holds 1 + 1 + 1 + 3 * 1 = 6
    assert cost["requestedQueryCost"] == 4
    assert cost["actualQueryCost"] == 4


# --- the dashboard's own queries -----------------------------------------------------------------

DASHBOARD_JS = (
    Path(__file__).resolve().parents[2] / "static" / "dashboard" / "dashboard.js"
).read_text()


def _js_text(start: str, end: str) -> str:
    """The single-quoted string literals of dashboard.js from `start` to `end`, joined."""
    chunk = DASHBOARD_JS[DASHBOARD_JS.index(start) :]
    return "".join(re.findall(r"'([^']*)'", chunk[: chunk.index(end)]))


LIVE_FIELDS = _js_text("function LIVE_FIELDS", "\n  }")
DASHBOARD = {
    "OVERVIEW": _js_text("var OVERVIEW =", ";") + LIVE_FIELDS,
    "LIVE": _js_text("var LIVE =", ";") + LIVE_FIELDS,
    "ORDERS": _js_text("var ORDERS =", ";"),
}


@pytest.mark.parametrize("name", sorted(DASHBOARD))
def test_the_dashboards_operations_stay_under_the_maximum(name):
    document = graphql.parse(DASHBOARD[name])
    assert graphql.validate(GRAPHQL, document) == []
    analysis = analyse(GRAPHQL, document, None, {})
    assert analysis is not None
    # well under: a page that paints at the maximum would refuse a slightly larger dashboard
    assert analysis.cost <= django_settings.GRAPHQL_MAX_COST // 4, analysis.cost


def test_the_dashboards_first_paint_is_admitted(post):
    response = post(DASHBOARD["OVERVIEW"])
    assert response.errors == [], response.body
    cost = cost_of(response)
    assert 0 < cost["actualQueryCost"] <= cost["requestedQueryCost"]
