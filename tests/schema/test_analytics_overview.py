"""`analyticsOverview` over HTTP: KPI cards with the previous period, the series, top products and
customers, the segment mix and the latest orders in one query, in constant queries; a new order
changes the next answer while another tenant's cached overview stays; and `tenant(id)
{ analyticsSummary }` for platform staff (and members on their own host)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django_tenants.utils import tenant_context

from apps.analytics import cache
from apps.orders import services
from tests.apps.orders import shop
from tests.conftest import PLATFORM_HOST, gid, token_for

OVERVIEW = """query($from: Date, $to: Date) { analyticsOverview(from: $from, to: $to, top: 3) {
  from to granularity currency timeZone
  kpis { metric label kind value previous change }
  sales { labels datasets { metric data } }
  topProducts { key label values { metric value } product { name } }
  topCustomers { customer { id email } spent { amount currency } ordersCount }
  segments { segment customersCount revenueShare }
  latestOrders(first: 2) { number total { amount } }
} }"""
SUMMARY = """query($id: ID) { tenant(id: $id) { slug analyticsSummary(from: "2025-06-03", to: "2025-06-05") {
  from to currency kpis { metric value previous change } } } }"""


def _at(day: int, hour: int = 12) -> datetime:
    return datetime(2025, 6, day, hour, tzinfo=UTC)


def _place(fixture, variant, quantity: int, day: int, email: str):
    with tenant_context(fixture.tenant):
        return services.create_order(
            actor=None,
            tenant=fixture.tenant,
            email=email,
            placed_at=_at(day),
            lines=[services.LineRequest(variant.pk, quantity)],
        )


@pytest.fixture
def analyst(alpha):
    return token_for(alpha.email("analyst"), alpha.tenant)


@pytest.fixture
def june(alpha, django_capture_on_commit_callbacks):
    """Two products; Ann buys 3 tea (30.00) on the 3rd and 1 mug (25.00) on the 4th, Bob 1 tea
    (10.00) on the 5th; Cid 2 tea (20.00) on the 1st, the period before."""
    with tenant_context(alpha.tenant):
        tea, mug = (
            shop.variant("10.00", stock=100, name="Tea"),
            shop.variant("25.00", stock=100, name="Mug"),
        )
    with django_capture_on_commit_callbacks(execute=True):
        _place(alpha, tea, 2, 1, "cid@example.com")
        _place(alpha, tea, 3, 3, "ann@example.com")
        _place(alpha, mug, 1, 4, "ann@example.com")
        _place(alpha, tea, 1, 5, "bob@example.com")
    return tea, mug


def _kpis(data) -> dict[str, tuple]:
    return {k["metric"]: (k["value"], k["previous"], k["change"]) for k in data["kpis"]}


def test_the_overview_in_one_query(gql, alpha, analyst, june):
    response = gql.post(
        OVERVIEW, {"from": "2025-06-03", "to": "2025-06-05"}, host=alpha.host, token=analyst
    )
    assert response.errors == [], response.body
    data = response.data["analyticsOverview"]
    assert (data["from"], data["to"], data["granularity"], data["currency"]) == (
        "2025-06-03",
        "2025-06-05",
        "DAY",
        alpha.tenant.currency,
    )
    kpis = _kpis(data)
    assert kpis["GROSS_SALES"] == ("65.00", "20.00", "2.2500")
    assert kpis["ORDERS"] == ("3", "1", "2.0000")
    assert kpis["AVERAGE_ORDER_VALUE"] == ("21.67", "20.00", "0.0835")
    assert kpis["NEW_CUSTOMERS"] == ("2", "1", "1.0000")  # Ann and Bob; Cid in the period before
    assert kpis["RETURNING_CUSTOMER_RATE"][0] == "0.3333"  # Ann's second order of three
    assert data["sales"]["labels"] == ["2025-06-03", "2025-06-04", "2025-06-05"]
    assert {d["metric"]: d["data"] for d in data["sales"]["datasets"]}["GROSS_SALES"] == [
        "30.00",
        "25.00",
        "10.00",
    ]
    assert [(row["product"]["name"], row["values"][0]["value"]) for row in data["topProducts"]] == [
        (june[0].product.name, "40.00"),
        (june[1].product.name, "25.00"),
    ]
    assert [
        (c["customer"]["email"], c["spent"]["amount"], c["ordersCount"])
        for c in data["topCustomers"]
    ] == [
        ("a***@example.com", "55.00", 2),
        ("b***@example.com", "10.00", 1),
    ]  # analysts see contacts redacted
    assert sum(s["customersCount"] for s in data["segments"]) == 3 and len(data["segments"]) == 10
    assert [o["total"]["amount"] for o in data["latestOrders"]] == ["10.00", "25.00"]


def test_the_overview_takes_the_same_queries_whatever_the_data(
    gql, alpha, analyst, june, django_capture_on_commit_callbacks
):
    counts = []
    for extra in (0, 4):
        with tenant_context(alpha.tenant):
            variants = [shop.variant("7.00", stock=10) for _ in range(extra)]
        with django_capture_on_commit_callbacks(execute=True):
            for n, variant in enumerate(variants):
                _place(alpha, variant, 1, 4, f"extra{n}@example.com")
        with CaptureQueriesContext(connection) as queries:
            response = gql.post(
                OVERVIEW, {"from": "2025-06-03", "to": "2025-06-05"}, host=alpha.host, token=analyst
            )
        assert response.errors == [], response.body
        counts.append(len(queries))
    assert len(response.data["analyticsOverview"]["topProducts"]) == 3
    assert counts[0] == counts[1], counts


def test_a_new_order_changes_the_next_overview_and_not_another_tenants(
    gql, alpha, beta, analyst, june, django_capture_on_commit_callbacks
):
    variables = {"from": "2025-06-03", "to": "2025-06-05"}
    beta_token = token_for(beta.email("analyst"), beta.tenant)
    before = _kpis(
        gql.post(OVERVIEW, variables, host=alpha.host, token=analyst).data["analyticsOverview"]
    )
    assert (
        _kpis(
            gql.post(OVERVIEW, variables, host=beta.host, token=beta_token).data[
                "analyticsOverview"
            ]
        )["ORDERS"][0]
        == "0"
    )
    with tenant_context(beta.tenant):
        beta_stats = cache.stats()
    with django_capture_on_commit_callbacks(execute=True):
        _place(alpha, june[1], 2, 5, "dee@example.com")
    after = _kpis(
        gql.post(OVERVIEW, variables, host=alpha.host, token=analyst).data["analyticsOverview"]
    )
    assert (before["GROSS_SALES"][0], after["GROSS_SALES"][0]) == ("65.00", "115.00")
    again = gql.post(OVERVIEW, variables, host=beta.host, token=beta_token).data[
        "analyticsOverview"
    ]
    assert _kpis(again)["ORDERS"][0] == "0"
    with tenant_context(beta.tenant):
        stats = cache.stats()
    assert stats["misses"] == beta_stats["misses"]  # beta's answers all came from its cache
    assert stats["hits"] > beta_stats["hits"]


def test_bad_ranges_are_refused_with_a_reason(gql, alpha, analyst):
    inverted = gql.post(
        OVERVIEW, {"from": "2025-06-05", "to": "2025-06-01"}, host=alpha.host, token=analyst
    )
    assert (
        inverted.codes == ["BAD_REQUEST"]
        and inverted.errors[0]["extensions"]["reason"] == "BAD_RANGE"
    )
    too_long = gql.post(
        OVERVIEW, {"from": "2015-01-01", "to": "2025-01-01"}, host=alpha.host, token=analyst
    )
    assert too_long.errors[0]["extensions"]["reason"] == "BAD_RANGE"


def test_platform_staff_read_a_tenants_summary_by_id(gql, alpha, beta, june):
    staff = token_for("staff@platform.test", None)
    response = gql.post(
        SUMMARY, {"id": gid(None, "Tenant", alpha.tenant.pk)}, host=PLATFORM_HOST, token=staff
    )
    assert response.errors == [], response.body
    summary = response.data["tenant"]["analyticsSummary"]
    kpis = {k["metric"]: (k["value"], k["previous"]) for k in summary["kpis"]}
    assert kpis["GROSS_SALES"] == ("65.00", "20.00") and kpis["ORDERS"] == ("3", "1")
    assert (response.data["tenant"]["slug"], summary["currency"]) == (
        "alpha",
        alpha.tenant.currency,
    )
    other = gql.post(
        SUMMARY, {"id": gid(None, "Tenant", beta.tenant.pk)}, host=PLATFORM_HOST, token=staff
    )
    assert {k["metric"]: k["value"] for k in other.data["tenant"]["analyticsSummary"]["kpis"]}[
        "ORDERS"
    ] == "0"
    missing = gql.post(
        SUMMARY, {"id": gid(None, "Tenant", 999_999)}, host=PLATFORM_HOST, token=staff
    )
    assert missing.codes == ["NOT_FOUND"]
    no_id = gql.post(SUMMARY, {}, host=PLATFORM_HOST, token=staff)
    assert no_id.codes == ["BAD_REQUEST"]
    anonymous = gql.post(SUMMARY, {"id": gid(None, "Tenant", alpha.tenant.pk)}, host=PLATFORM_HOST)
    assert anonymous.codes == [
        "UNAUTHENTICATED"
    ]  # members cannot sign in on the platform host at all


def test_members_read_their_own_summary_by_role(gql, alpha, beta, june):
    mine = gql.post(
        SUMMARY, {}, host=alpha.host, token=token_for(alpha.email("analyst"), alpha.tenant)
    )
    assert (
        mine.errors == [] and mine.data["tenant"]["analyticsSummary"]["kpis"][0]["value"] == "65.00"
    )
    viewer = gql.post(
        SUMMARY, {}, host=alpha.host, token=token_for(alpha.email("viewer"), alpha.tenant)
    )
    assert viewer.codes == ["FORBIDDEN"]
    other = gql.post(
        SUMMARY,
        {"id": gid(beta, "Tenant", beta.tenant.pk)},
        host=alpha.host,
        token=token_for(alpha.email("owner"), alpha.tenant),
    )
    assert other.codes == ["NOT_FOUND"]
