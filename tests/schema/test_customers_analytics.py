"""`customer.analytics` and `customerAnalyticsSummary`, to the cent, over orders inserted
straight into the tables, with ranges of days in the tenant's time zone."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal

import pytest
from django.utils import timezone
from django_tenants.utils import tenant_context

from tenants.models import Tenant
from tests.apps.customers import factories as make
from tests.conftest import gid, token_for

ANALYTICS = """query($id: ID!) { node(id: $id) { ... on Customer {
  analytics {
    ordersCount lifetimeValue { amount currency } averageOrderValue { amount } firstOrderAt lastOrderAt
    meanDaysBetweenOrders ordersPerMonth
    byRevenue: favouriteCategories(first: 5) { categoryId name slug units revenue { amount } }
    byUnits: favouriteCategories(by: UNITS, first: 1) { name units }
  }
} } }"""


@pytest.fixture
def ann(alpha):
    with tenant_context(alpha.tenant):
        shoes, hats, bags = make.category("Shoes"), make.category("Hats"), make.category("Bags")
        boot, hat, bag = (
            make.product("Boot", shoes),
            make.product("Hat", hats),
            make.product("Bag", bags),
        )
        mystery = make.product("Mystery", None)
        ann = make.customer("ann@x.test")
        make.order(
            ann,
            "120.00",
            datetime(2025, 11, 15, 10, tzinfo=UTC),
            lines=[(boot, 2, "100.00", 0), (hat, 1, "20.00", 0)],
        )
        # one of three hats refunded: 2 units kept, worth 2/3 of 33.33
        make.order(
            ann,
            "33.33",
            datetime(2026, 1, 14, 10, tzinfo=UTC),
            refunded="11.11",
            lines=[(hat, 3, "33.33", 1)],
        )
        make.order(
            ann,
            "10.01",
            datetime(2026, 1, 29, 10, tzinfo=UTC),
            status="pending",
            lines=[(mystery, 1, "10.01", 0)],
        )  # counts, but has no category
        make.order(
            ann,
            "60.00",
            datetime(2026, 3, 15, 10, tzinfo=UTC),
            status="cancelled",
            lines=[(bag, 1, "60.00", 0)],
        )
        ann.category_ids = {"Shoes": shoes.pk, "Hats": hats.pk}
    return ann


def test_customer_analytics_to_the_cent(gql, alpha, ann):
    token = token_for(alpha.email("analyst"), alpha.tenant)
    response = gql.post(
        ANALYTICS, {"id": gid(alpha, "Customer", ann.pk)}, host=alpha.host, token=token
    )
    assert response.errors == [], response.body
    figures = response.data["node"]["analytics"]
    assert figures["ordersCount"] == 3  # the cancelled order is left out
    assert figures["lifetimeValue"] == {
        "amount": "152.23",
        "currency": "USD",
    }  # 120.00 + 33.33 - 11.11 + 10.01
    assert figures["averageOrderValue"] == {"amount": "50.74"}  # 152.23 / 3 = 50.7433…
    assert datetime.fromisoformat(figures["firstOrderAt"]) == datetime(2025, 11, 15, 10, tzinfo=UTC)
    assert datetime.fromisoformat(figures["lastOrderAt"]) == datetime(2026, 1, 29, 10, tzinfo=UTC)
    assert figures["meanDaysBetweenOrders"] == "37.50"  # 75 days / 2 gaps
    months = (
        Decimal((timezone.now() - datetime(2025, 11, 15, 10, tzinfo=UTC)).total_seconds())
        / 86400
        / Decimal("30.436875")
    )
    expected = (3 / max(months, Decimal(1))).quantize(Decimal("0.01"), ROUND_HALF_UP)
    assert abs(Decimal(figures["ordersPerMonth"]) - expected) <= Decimal("0.01")
    assert figures["byRevenue"] == [
        {
            "categoryId": gid(alpha, "Category", ann.category_ids["Shoes"]),
            "name": "Shoes",
            "slug": "shoes",
            "units": 2,
            "revenue": {"amount": "100.00"},
        },
        {
            "categoryId": gid(alpha, "Category", ann.category_ids["Hats"]),
            "name": "Hats",
            "slug": "hats",
            "units": 3,
            "revenue": {"amount": "42.22"},
        },  # 20.00 + 22.22
    ]
    assert figures["byUnits"] == [{"name": "Hats", "units": 3}]


def test_analytics_of_customers_with_none_or_one_order(gql, alpha):
    with tenant_context(alpha.tenant):
        nobody = make.customer("none@x.test")
        once = make.customer("once@x.test")
        make.order(once, "19.99", timezone.now())
    token = token_for(alpha.email("staff"), alpha.tenant)
    empty = gql.post(
        ANALYTICS, {"id": gid(alpha, "Customer", nobody.pk)}, host=alpha.host, token=token
    ).data
    assert empty["node"]["analytics"] == {
        "ordersCount": 0,
        "lifetimeValue": {"amount": "0.00", "currency": "USD"},
        "averageOrderValue": None,
        "firstOrderAt": None,
        "lastOrderAt": None,
        "meanDaysBetweenOrders": None,
        "ordersPerMonth": None,
        "byRevenue": [],
        "byUnits": [],
    }
    single = gql.post(
        ANALYTICS, {"id": gid(alpha, "Customer", once.pk)}, host=alpha.host, token=token
    ).data
    figures = single["node"]["analytics"]
    assert figures["averageOrderValue"] == {"amount": "19.99"}
    assert figures["meanDaysBetweenOrders"] is None
    assert figures["ordersPerMonth"] == "1.00"  # counted over at least one month


def test_viewers_do_not_get_customer_analytics(gql, alpha, ann):
    query = "query($id: ID!) { node(id: $id) { ... on Customer { ordersCount analytics { ordersCount } } } }"
    token = token_for(alpha.email("viewer"), alpha.tenant)
    response = gql.post(query, {"id": gid(alpha, "Customer", ann.pk)}, host=alpha.host, token=token)
    assert response.codes == ["FORBIDDEN"]
    assert response.data == {"node": {"ordersCount": 3, "analytics": None}}


SUMMARY = """query($from: Date, $to: Date) { customerAnalyticsSummary(from: $from, to: $to) {
  from to customersCount newCustomersCount customersWithOrders newBuyers returningBuyers
  revenue { amount currency } buyersToDate averageLifetimeValue { amount }
} }"""


@pytest.fixture
def january(alpha, ann):
    """Around January 2026, seen from Berlin (UTC+1): orders and sign-ups near both edges."""

    def at(*args) -> datetime:
        return datetime(*args, tzinfo=UTC)

    with tenant_context(alpha.tenant):
        from apps.customers.models import Customer

        Customer.objects.filter(pk=ann.pk).update(created=at(2025, 10, 1))
        dan = make.customer(
            "dan@x.test", created=at(2025, 12, 31, 23, 10)
        )  # 1 January, 00:10 in Berlin
        eve = make.customer(
            "eve@x.test", created=at(2025, 12, 31, 22)
        )  # 31 December, 23:00 in Berlin
        fay = make.customer("fay@x.test", created=at(2026, 1, 15))
        gus = make.customer("gus@x.test", created=at(2026, 1, 20))
        make.customer("hal@x.test", created=at(2026, 2, 1))  # 1 February, 01:00 in Berlin
        make.order(dan, "40.00", at(2025, 12, 31, 23, 30))  # 1 January, 00:30 in Berlin
        make.order(eve, "70.00", at(2025, 12, 31, 22, 30))  # 31 December in Berlin
        make.order(eve, "5.00", at(2026, 1, 31, 23, 30))  # 1 February, 00:30 in Berlin
        make.order(fay, "80.00", at(2026, 1, 16), status="cancelled")
        make.order(gus, "99.00", at(2025, 12, 1), status="cancelled")
        make.order(gus, "15.50", at(2026, 1, 20))
        make.order(None, "1000.00", at(2026, 1, 10))  # a guest
    return alpha


def test_summary_of_a_month_in_the_tenants_time_zone(gql, january):
    Tenant.objects.filter(pk=january.tenant.pk).update(time_zone="Europe/Berlin")
    token = token_for(january.email("analyst"), january.tenant)
    response = gql.post(
        SUMMARY, {"from": "2026-01-01", "to": "2026-01-31"}, host=january.host, token=token
    )
    assert response.errors == [], response.body
    assert response.data["customerAnalyticsSummary"] == {
        "from": "2026-01-01",
        "to": "2026-01-31",
        "customersCount": 5,  # all but hal, created after the range
        "newCustomersCount": 3,  # dan, fay, gus
        "customersWithOrders": 3,  # ann, dan, gus (fay's order was cancelled; eve's fall outside)
        "newBuyers": 2,  # dan, gus (gus's earlier order was cancelled)
        "returningBuyers": 1,  # ann
        "revenue": {
            "amount": "87.73",
            "currency": "USD",
        },  # ann 22.22 + 10.01, dan 40.00, gus 15.50
        "buyersToDate": 4,  # ann, dan, eve, gus
        "averageLifetimeValue": {
            "amount": "69.43"
        },  # (152.23 + 40.00 + 70.00 + 15.50) / 4 = 69.4325
    }


def test_the_same_month_in_utc_has_other_buyers(gql, january):
    token = token_for(january.email("owner"), january.tenant)
    response = gql.post(
        SUMMARY, {"from": "2026-01-01", "to": "2026-01-31"}, host=january.host, token=token
    )
    summary = response.data["customerAnalyticsSummary"]
    # dan ordered on 31 December, eve on 31 January (UTC)
    assert (summary["customersWithOrders"], summary["newBuyers"], summary["returningBuyers"]) == (
        3,
        1,
        2,
    )
    assert summary["revenue"]["amount"] == "52.73"  # ann 32.23, eve 5.00, gus 15.50
    assert summary["newCustomersCount"] == 2  # dan signed up on 31 December in UTC


def test_summary_defaults_to_the_last_30_days(gql, alpha):
    with tenant_context(alpha.tenant):
        make.order(make.customer("now@x.test"), "12.34", timezone.now())
    token = token_for(alpha.email("owner"), alpha.tenant)
    summary = gql.post(SUMMARY, host=alpha.host, token=token).data["customerAnalyticsSummary"]
    today = timezone.localdate(timezone.now(), UTC)
    assert summary["to"] == today.isoformat()
    assert (
        datetime.fromisoformat(summary["to"]) - datetime.fromisoformat(summary["from"])
    ).days == 29
    assert summary["newBuyers"] == 1 and summary["revenue"]["amount"] == "12.34"
    empty = gql.post(
        SUMMARY, {"from": "2001-01-01", "to": "2001-01-02"}, host=alpha.host, token=token
    ).data
    assert empty["customerAnalyticsSummary"]["averageLifetimeValue"] is None
    assert empty["customerAnalyticsSummary"]["revenue"]["amount"] == "0.00"
