"""`analytics(query)` over HTTP: figures from the rollups with the previous period, top products
with their objects in constant queries, the cache (a new order changes the next answer, another
tenant's cached answers stay), and clear errors for bad queries; viewers are refused."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django_tenants.utils import tenant_context

from apps.analytics import cache
from apps.orders import services
from tests.apps.orders import shop
from tests.conftest import token_for

QUERY = """query($q: AnalyticsQueryInput!) { analytics(query: $q) {
  rows { key label values { metric kind value } product { name category { name } } category { name } }
  totals { metric value } previous { metric value } change { metric value }
  series { labels datasets { metric label data } } currency timeZone } }"""
STATS = "{ analyticsCacheStats { hits misses version } }"


def _at(day: int, hour: int = 12) -> datetime:
    return datetime(2025, 6, day, hour, tzinfo=UTC)


@pytest.fixture
def fresh(alpha, beta):
    """Cached answers live in Redis, outside the test's transaction: start from new versions."""
    cache.bump(alpha.tenant.schema_name)
    cache.bump(beta.tenant.schema_name)


@pytest.fixture
def analyst(alpha):
    return token_for(alpha.email("analyst"), alpha.tenant)


def _place(fixture, variant, quantity: int, when: datetime, email: str = "a@example.com"):
    with tenant_context(fixture.tenant):
        return services.create_order(
            actor=None,
            tenant=fixture.tenant,
            email=email,
            placed_at=when,
            lines=[services.LineRequest(variant.pk, quantity)],
        )


def _ask(gql, fixture, token, **query):
    response = gql.post(QUERY, {"q": query}, host=fixture.host, token=token)
    assert response.errors == [], response.body
    return response.data["analytics"]


def _values(values):
    return {v["metric"]: v["value"] for v in values}


def test_daily_sales_with_the_previous_period(gql, alpha, analyst, fresh):
    with tenant_context(alpha.tenant):
        variant = shop.variant("10.00", stock=100)
    _place(alpha, variant, 2, _at(1))  # the previous period
    _place(alpha, variant, 3, _at(3))
    _place(alpha, variant, 1, _at(4), email="b@example.com")
    data = _ask(
        gql,
        alpha,
        analyst,
        metrics=[
            "GROSS_SALES",
            "ORDERS",
            "AVERAGE_ORDER_VALUE",
            "NEW_CUSTOMERS",
            "RETURNING_CUSTOMER_RATE",
        ],
        **{"from": "2025-06-03", "to": "2025-06-05"},
        dimension="TIME",
        compare=True,
    )
    assert [row["key"] for row in data["rows"]] == ["2025-06-03", "2025-06-04", "2025-06-05"]
    assert _values(data["rows"][2]["values"]) == {
        "GROSS_SALES": "0.00",
        "ORDERS": "0",
        "AVERAGE_ORDER_VALUE": None,
        "NEW_CUSTOMERS": "0",
        "RETURNING_CUSTOMER_RATE": None,
    }
    assert _values(data["totals"]) == {
        "GROSS_SALES": "40.00",
        "ORDERS": "2",
        "AVERAGE_ORDER_VALUE": "20.00",
        "NEW_CUSTOMERS": "1",
        "RETURNING_CUSTOMER_RATE": "0.5000",
    }
    assert _values(data["previous"])["GROSS_SALES"] == "20.00"
    assert _values(data["change"])["GROSS_SALES"] == "1.0000"
    assert data["series"]["labels"] == ["2025-06-03", "2025-06-04", "2025-06-05"]
    assert data["series"]["datasets"][0] == {
        "metric": "GROSS_SALES",
        "label": "Gross sales",
        "data": ["30.00", "10.00", "0.00"],
    }
    assert (data["currency"], data["timeZone"]) == (alpha.tenant.currency, alpha.tenant.time_zone)


def test_a_new_order_changes_the_next_answer_and_not_another_tenants_cache(
    gql, alpha, beta, analyst, fresh, django_capture_on_commit_callbacks
):
    with tenant_context(alpha.tenant):
        variant = shop.variant("10.00", stock=100)
    query = {"metrics": ["GROSS_SALES"], "from": "2025-06-01", "to": "2025-06-30"}
    beta_token = token_for(beta.email("analyst"), beta.tenant)
    assert _values(_ask(gql, beta, beta_token, **query)["totals"]) == {"GROSS_SALES": "0.00"}
    assert _values(_ask(gql, alpha, analyst, **query)["totals"]) == {"GROSS_SALES": "0.00"}
    with tenant_context(beta.tenant):
        beta_before = cache.stats()
    with django_capture_on_commit_callbacks(execute=True):  # the bump happens on commit
        _place(alpha, variant, 2, _at(10))
    assert _values(_ask(gql, alpha, analyst, **query)["totals"]) == {"GROSS_SALES": "20.00"}
    assert _values(_ask(gql, alpha, analyst, **query)["totals"]) == {
        "GROSS_SALES": "20.00"
    }  # a hit
    assert _values(_ask(gql, beta, beta_token, **query)["totals"]) == {"GROSS_SALES": "0.00"}
    with tenant_context(beta.tenant):
        after = cache.stats()
    assert (after["hits"] - beta_before["hits"], after["misses"] - beta_before["misses"]) == (1, 0)
    owner = token_for(alpha.email("owner"), alpha.tenant)
    stats = gql.post(STATS, host=alpha.host, token=owner).data["analyticsCacheStats"]
    assert stats["hits"] >= 1 and stats["misses"] >= 2


def test_top_products_with_their_objects_in_constant_queries(
    gql, alpha, analyst, fresh, django_capture_on_commit_callbacks
):
    variables = {
        "q": {
            "metrics": ["PRODUCT_UNITS", "PRODUCT_REVENUE"],
            "from": "2025-06-12",
            "to": "2025-06-12",
            "dimension": "PRODUCT",
            "limit": 5,
        }
    }
    counts = []
    for made, count in ((0, 2), (2, 6)):
        with tenant_context(alpha.tenant):
            variants = [shop.variant("5.00", stock=100) for _ in range(made, count)]
        with django_capture_on_commit_callbacks(execute=True):
            for n, variant in enumerate(variants, start=made):
                _place(alpha, variant, n + 1, _at(12), email=f"p{n}@example.com")
        with CaptureQueriesContext(connection) as queries:
            response = gql.post(QUERY, variables, host=alpha.host, token=analyst)
        assert response.errors == [], response.body
        rows = response.data["analytics"]["rows"]
        assert [_values(row["values"])["PRODUCT_UNITS"] for row in rows] == [
            str(n) for n in range(count, 0, -1)
        ][:5]
        assert all(row["product"]["name"] == row["label"] for row in rows)
        counts.append(len(queries))
    assert counts[0] == counts[1], counts


@pytest.mark.parametrize(
    ("query", "reason"),
    [
        ({"metrics": ["GROSS_SALES"], "from": "2025-06-05", "to": "2025-06-01"}, "BAD_RANGE"),
        (
            {
                "metrics": ["GROSS_SALES"],
                "from": "2015-01-01",
                "to": "2024-12-31",
                "dimension": "TIME",
            },
            "BAD_RANGE",
        ),
        (
            {
                "metrics": ["GROSS_SALES"],
                "from": "2025-06-01",
                "to": "2025-06-05",
                "dimension": "PRODUCT",
            },
            "BAD_DIMENSION",
        ),
        (
            {
                "metrics": ["PRODUCT_UNITS"],
                "from": "2025-06-01",
                "to": "2025-06-05",
                "dimension": "PRODUCT",
                "limit": 0,
            },
            "BAD_LIMIT",
        ),
    ],
)
def test_bad_queries_are_clear_errors(gql, alpha, analyst, query, reason):
    response = gql.post(QUERY, {"q": query}, host=alpha.host, token=analyst)
    assert response.codes == ["BAD_REQUEST"]
    assert response.body["errors"][0]["extensions"]["reason"] == reason


def test_an_unknown_metric_is_refused_by_the_schema(gql, alpha, analyst):
    response = gql.post(
        QUERY,
        {"q": {"metrics": ["PROFIT"], "from": "2025-06-01", "to": "2025-06-02"}},
        host=alpha.host,
        token=analyst,
    )
    assert response.codes == ["BAD_REQUEST"] and "PROFIT" in response.body["errors"][0]["message"]


def test_viewers_see_no_analytics(gql, alpha):
    viewer = token_for(alpha.email("viewer"), alpha.tenant)
    response = gql.post(
        QUERY,
        {"q": {"metrics": ["ORDERS"], "from": "2025-06-01", "to": "2025-06-02"}},
        host=alpha.host,
        token=viewer,
    )
    assert response.codes == ["FORBIDDEN"] and response.data is None
