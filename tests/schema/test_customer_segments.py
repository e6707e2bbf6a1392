"""customerSegments, cohortRetention and customerLifetimeValue through the API: the hand-worked
shop of tests/apps/analytics/rfm_shop, the segment's customers connection (pages, redaction,
query counts), the cache, tenant isolation, roles and bad input."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from django_tenants.utils import tenant_context

from apps.analytics import cache
from apps.customers.models import Customer, CustomerNote
from apps.orders import services as order_services
from apps.orders.models import Order
from tests.apps.analytics import rfm_shop
from tests.apps.customers import factories as make
from tests.apps.orders import shop as order_shop
from tests.conftest import gid, token_for

SEGMENTS = """query($asOf: Date, $n: Int, $after: String) { customerSegments(asOf: $asOf) {
  asOf customersCount
  segments { segment customersCount customersShare revenue { amount currency } revenueShare
    averageRecencyDays averageFrequency averageMonetary { amount }
    customers(first: $n, after: $after) { totalCount pageInfo { hasNextPage endCursor }
      edges { node { id firstName email ordersCount } } } }
} }"""
COHORTS = """query($from: Date, $to: Date) { cohortRetention(from: $from, to: $to) { from to
  cohorts { month size revenue { amount } lifetimeValue { amount }
    months { offset month customersCount retention revenue { amount } } } } }"""
LIFETIME = """query($asOf: Date) { customerLifetimeValue(asOf: $asOf) { asOf customersCount revenue { amount }
  historical { amount } yearCustomersCount yearOrdersCount yearRevenue { amount } averageOrderValue { amount }
  purchaseFrequency retentionRate expectedLifespanYears predictive { amount currency } } }"""
AS_OF = {"asOf": "2026-03-31"}


def token(fixture, role: str = "analyst") -> str:
    return token_for(fixture.email(role), fixture.tenant)


@pytest.fixture
def shop(alpha, beta):
    rfm_shop.fresh_cache(alpha, beta)
    return rfm_shop.build(alpha)


def _segments(response) -> dict[str, dict]:
    assert response.errors == [], response.body
    return {s["segment"]: s for s in response.data["customerSegments"]["segments"]}


def test_segments_by_hand(gql, alpha, shop):
    response = gql.post(SEGMENTS, {**AS_OF, "n": 5}, host=alpha.host, token=token(alpha))
    segments = _segments(response)
    assert response.data["customerSegments"]["asOf"] == "2026-03-31"
    assert response.data["customerSegments"]["customersCount"] == 10
    assert list(segments) == [
        "CHAMPIONS",
        "LOYAL",
        "POTENTIAL_LOYALISTS",
        "NEW",
        "PROMISING",
        "NEED_ATTENTION",
        "AT_RISK",
        "CANT_LOSE",
        "HIBERNATING",
        "LOST",
    ]
    loyal = segments["LOYAL"]
    assert {key: value for key, value in loyal.items() if key != "customers"} == {
        "segment": "LOYAL",
        "customersCount": 2,
        "customersShare": "0.2000",
        "revenue": {"amount": "2100.00", "currency": "USD"},
        "revenueShare": "0.4375",
        "averageRecencyDays": "32.50",
        "averageFrequency": "4.00",
        "averageMonetary": {"amount": "1050.00"},
    }
    # biggest spender first; analysts see contact details redacted
    assert [(e["node"]["firstName"], e["node"]["email"]) for e in loyal["customers"]["edges"]] == [
        ("C4", "c***@rfm.test"),
        ("C6", "c***@rfm.test"),
    ]
    members = {
        name: [e["node"]["firstName"] for e in s["customers"]["edges"]]
        for name, s in segments.items()
    }
    assert members == {
        "CHAMPIONS": ["C1"],
        "LOYAL": ["C4", "C6"],
        "POTENTIAL_LOYALISTS": ["C3"],
        "NEW": ["C2"],
        "PROMISING": [],
        "NEED_ATTENTION": ["C5"],
        "AT_RISK": ["C9"],
        "CANT_LOSE": ["C7"],
        "HIBERNATING": ["C8"],
        "LOST": ["C10"],
    }
    assert (
        segments["PROMISING"]["averageMonetary"] is None
        and segments["LOST"]["revenueShare"] == "0.0000"
    )


def test_two_customers_who_both_ordered_today_are_segmented_alike_and_not_lost(gql, alpha):
    """A new shop: two customers, one order each today for the same amount. Nothing tells them
    apart, so they are scored alike, in the middle (need attention), not one a champion and the
    other lost by their ids."""
    rfm_shop.fresh_cache(alpha)
    with tenant_context(alpha.tenant):
        for name in ("ann", "bob"):
            make.order(
                make.customer(f"{name}@today.test", first_name=name), "25.00", timezone.now()
            )
    response = gql.post(SEGMENTS, {"n": 5}, host=alpha.host, token=token(alpha))
    segments = _segments(response)
    members = {
        name: sorted(e["node"]["firstName"] for e in s["customers"]["edges"])
        for name, s in segments.items()
        if s["customersCount"]
    }
    assert members == {"NEED_ATTENTION": ["ann", "bob"]}
    overview = gql.post(
        "{ analyticsOverview { segments { segment customersCount } } }",
        host=alpha.host,
        token=token(alpha),
    )
    assert overview.errors == [], overview.body
    mix = {
        s["segment"]: s["customersCount"] for s in overview.data["analyticsOverview"]["segments"]
    }
    assert mix["NEED_ATTENTION"] == 2 and mix["LOST"] == mix["CHAMPIONS"] == 0


def test_staff_see_the_members_contacts(gql, alpha, shop):
    response = gql.post(SEGMENTS, {**AS_OF, "n": 1}, host=alpha.host, token=token(alpha, "staff"))
    assert (
        _segments(response)["CHAMPIONS"]["customers"]["edges"][0]["node"]["email"] == "c1@rfm.test"
    )


def test_the_customers_connection_pages(gql, alpha, shop):
    first = _segments(gql.post(SEGMENTS, {**AS_OF, "n": 1}, host=alpha.host, token=token(alpha)))[
        "LOYAL"
    ]
    page = first["customers"]
    assert page["totalCount"] == 2 and page["pageInfo"]["hasNextPage"] is True
    assert [e["node"]["firstName"] for e in page["edges"]] == ["C4"]
    after = {**AS_OF, "n": 1, "after": page["pageInfo"]["endCursor"]}
    second = _segments(gql.post(SEGMENTS, after, host=alpha.host, token=token(alpha)))["LOYAL"][
        "customers"
    ]
    assert [e["node"]["firstName"] for e in second["edges"]] == ["C6"]
    assert second["pageInfo"]["hasNextPage"] is False


@pytest.fixture
def crowd(alpha):
    """300 customers with notes and 1 to 5 orders over the last 60 days."""
    rfm_shop.fresh_cache(alpha)
    now = timezone.now()
    with tenant_context(alpha.tenant):
        customers = Customer.objects.bulk_create(
            Customer(email=f"c{i:03}@crowd.test") for i in range(300)
        )
        CustomerNote.objects.bulk_create(
            CustomerNote(customer=c, body="hi", author_email="x") for c in customers
        )
        Order.objects.bulk_create(
            Order(
                number=50_000 + 10 * index + n,
                customer=customer,
                currency="USD",
                status="paid",
                total=Decimal(index % 97 + n),
                placed_at=now - timedelta(days=(index * 7 + n) % 60, hours=1),
            )
            for index, customer in enumerate(customers)
            for n in range(index % 5 + 1)
        )
    return alpha


NESTED = """query($n: Int!) { customerSegments { segments { customersCount
  customers(first: $n) { totalCount edges { node { email notes { body } analytics { ordersCount } } } } } } }"""


def test_a_page_of_100_costs_as_many_queries_as_a_page_of_2(gql, crowd):
    gql.post(
        NESTED, {"n": 1}, host=crowd.host, token=token(crowd, "owner")
    )  # the RFM table: one query, cached
    counts, sizes = [], []
    for n in (2, 100):
        with CaptureQueriesContext(connection) as captured:
            response = gql.post(NESTED, {"n": n}, host=crowd.host, token=token(crowd, "owner"))
        assert response.errors == [], response.body
        counts.append(len(captured.captured_queries))
        segments = response.data["customerSegments"]["segments"]
        sizes.append(sum(len(s["customers"]["edges"]) for s in segments))
        assert all(len(e["node"]["notes"]) == 1 for s in segments for e in s["customers"]["edges"])
    assert sizes[1] > 5 * sizes[0] and sizes[1] > 100  # some segments fill a page of 100
    assert counts[0] == counts[1], counts


def test_a_new_order_changes_the_next_answer(
    gql, alpha, beta, shop, django_capture_on_commit_callbacks
):
    tenant, ids = shop
    before = gql.post(SEGMENTS, {"n": 1}, host=alpha.host, token=token(alpha)).data[
        "customerSegments"
    ]
    with tenant_context(tenant), django_capture_on_commit_callbacks(execute=True):
        order_services.create_order(
            actor=order_shop.actor(alpha),
            tenant=tenant,
            customer_id=ids["c12"],
            lines=[order_services.LineRequest(order_shop.variant("9.00").pk, 1)],
        )
    beta_version = cache.version(beta.tenant.schema_name)
    after = gql.post(SEGMENTS, {"n": 1}, host=alpha.host, token=token(alpha)).data[
        "customerSegments"
    ]
    assert after["customersCount"] == before["customersCount"] + 1
    assert (
        cache.version(beta.tenant.schema_name) == beta_version
    )  # another tenant's cache is untouched


def test_tenants_never_see_each_others_customers(gql, alpha, beta, shop):
    with tenant_context(beta.tenant):
        outsider = make.customer("outsider@beta.test", first_name="OUTSIDER")
        make.order(outsider, "5000.00", datetime(2026, 3, 30, 12, tzinfo=UTC))
    alpha_segments = _segments(
        gql.post(SEGMENTS, {**AS_OF, "n": 100}, host=alpha.host, token=token(alpha))
    )
    names = [
        e["node"]["firstName"] for s in alpha_segments.values() for e in s["customers"]["edges"]
    ]
    assert len(names) == 10 and "OUTSIDER" not in names
    beta_answer = gql.post(SEGMENTS, {**AS_OF, "n": 100}, host=beta.host, token=token(beta)).data[
        "customerSegments"
    ]
    assert beta_answer["customersCount"] == 1
    assert [
        e["node"]["firstName"] for s in beta_answer["segments"] for e in s["customers"]["edges"]
    ] == ["OUTSIDER"]


def test_cohorts_and_lifetime_value_by_hand(gql, alpha, shop):
    response = gql.post(
        COHORTS, {"from": "2026-01-15", "to": "2026-03-01"}, host=alpha.host, token=token(alpha)
    )
    assert response.errors == [], response.body
    answer = response.data["cohortRetention"]
    assert (answer["from"], answer["to"]) == ("2026-01-01", "2026-03-01")
    assert answer["cohorts"][0] == {
        "month": "2026-01-01",
        "size": 1,
        "revenue": {"amount": "400.00"},
        "lifetimeValue": {"amount": "400.00"},
        "months": [
            {
                "offset": k,
                "month": f"2026-0{k + 1}-01",
                "customersCount": 1,
                "retention": "1.0000",
                "revenue": {"amount": amount},
            }
            for k, amount in enumerate(("100.00", "100.00", "200.00"))
        ],
    }
    assert [(c["size"], c["lifetimeValue"]) for c in answer["cohorts"][1:]] == [
        (1, {"amount": "40.00"}),
        (2, {"amount": "105.00"}),
    ]
    figures = gql.post(LIFETIME, AS_OF, host=alpha.host, token=token(alpha)).data[
        "customerLifetimeValue"
    ]
    assert figures == {
        "asOf": "2026-03-31",
        "customersCount": 10,
        "revenue": {"amount": "4800.00"},
        "historical": {"amount": "480.00"},
        "yearCustomersCount": 9,
        "yearOrdersCount": 22,
        "yearRevenue": {"amount": "4300.00"},
        "averageOrderValue": {"amount": "195.45"},
        "purchaseFrequency": "2.44",
        "retentionRate": "0.5000",
        "expectedLifespanYears": "2.00",
        "predictive": {"amount": "955.56", "currency": "USD"},
    }


@pytest.mark.parametrize(
    ("role", "codes"),
    [("owner", []), ("admin", []), ("staff", []), ("analyst", []), ("viewer", ["FORBIDDEN"])],
)
@pytest.mark.parametrize(
    "query", [SEGMENTS, COHORTS, LIFETIME], ids=["segments", "cohorts", "lifetime"]
)
def test_analysts_and_above_only(gql, alpha, role, codes, query):
    response = gql.post(query, {}, host=alpha.host, token=token(alpha, role))
    assert response.codes == codes
    if codes:
        assert response.data is None


@pytest.mark.parametrize(
    ("query", "variables"),
    [
        (SEGMENTS, {"asOf": "2999-01-01"}),
        (SEGMENTS, {"asOf": "1999-12-31"}),
        (SEGMENTS, {"n": 101}),
        (LIFETIME, {"asOf": "2999-01-01"}),
        (COHORTS, {"from": "2026-03-01", "to": "2026-01-01"}),
        (COHORTS, {"from": "2020-01-01", "to": "2026-01-01"}),
        (COHORTS, {"to": "2999-01-01"}),
    ],
    ids=[
        "future",
        "too-early",
        "page",
        "lifetime-future",
        "inverted",
        "too-many-months",
        "future-month",
    ],
)
def test_bad_input_is_a_bad_request(gql, alpha, query, variables):
    response = gql.post(query, variables, host=alpha.host, token=token(alpha))
    assert response.codes == ["BAD_REQUEST"], response.body


RFM = """query($n: Int) { customers(first: $n) { edges { node { id rfm { recencyDays frequency monetary { amount }
  r f m segment } } } } }"""
TODAY_SEGMENTS = """{ customerSegments { segments { segment customers(first: 100) { edges { node { id } } } } } }"""


def test_each_customers_rfm_is_its_segment_today(gql, alpha, shop):
    _, ids = shop
    analyst = token(alpha)
    listed = gql.post(RFM, {"n": 100}, host=alpha.host, token=analyst)
    assert listed.errors == [], listed.body
    by_id = {edge["node"]["id"]: edge["node"]["rfm"] for edge in listed.data["customers"]["edges"]}
    members = {
        edge["node"]["id"]: segment["segment"]
        for segment in gql.post(TODAY_SEGMENTS, host=alpha.host, token=analyst).data[
            "customerSegments"
        ]["segments"]
        for edge in segment["customers"]["edges"]
    }
    assert len(members) == 10 and all(
        by_id[node]["segment"] == segment for node, segment in members.items()
    )
    unscored = [node for node, scores in by_id.items() if scores is None]
    assert len(unscored) == 2  # c11 (only a cancelled order) and c12 (no order)
    c4 = by_id[gid(alpha, "Customer", ids["c4"])]
    assert (c4["frequency"], c4["monetary"]["amount"], c4["f"], c4["m"]) == (5, "1500.00", 5, 5)


def _cache_reads(fixture) -> int:
    with tenant_context(fixture.tenant):
        stats = cache.stats()
    return stats["hits"] + stats["misses"]


def test_rfm_reads_the_table_once_per_page(gql, alpha, shop):
    gql.post(RFM, {"n": 1}, host=alpha.host, token=token(alpha))  # the table is computed and cached
    counts = []
    for n in (2, 12):
        before = _cache_reads(alpha)
        with CaptureQueriesContext(connection) as queries:
            response = gql.post(RFM, {"n": n}, host=alpha.host, token=token(alpha))
        assert response.errors == [] and len(response.data["customers"]["edges"]) == n
        assert _cache_reads(alpha) - before == 1  # one read of the table for the whole page
        counts.append(len(queries))
    assert counts[0] == counts[1], counts


def test_viewers_get_no_rfm(gql, alpha, shop):
    response = gql.post(RFM, {"n": 1}, host=alpha.host, token=token(alpha, "viewer"))
    assert (
        response.codes == ["FORBIDDEN"]
        and response.data["customers"]["edges"][0]["node"]["rfm"] is None
    )
