"""Reading orders: the filtered and sorted list, the watched lists (recent, pending, high value),
order figures, fetching by global id, contact redaction and tenant isolation."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django_tenants.utils import tenant_context

from apps.orders import services
from apps.orders.models import Order
from tests.apps.orders import shop
from tests.conftest import gid, token_for

LIST = """query($filter: OrderFilter, $sort: OrderSort, $first: Int) {
  orders(filter: $filter, sort: $sort, first: $first) { totalCount edges { node { number } } } }"""


def _at(order: Order, when: datetime, **fields) -> None:
    Order.objects.filter(pk=order.pk).update(placed_at=when, **fields)


@pytest.fixture
def orders(alpha):
    """Five orders placed a day apart from 2026-03-01 10:00 UTC: totals 10, 20, 600, 40, 50;
    the third is ann's and paid, the fourth cancelled, the rest pending (bob's)."""
    with tenant_context(alpha.tenant):
        cheap, dear = shop.variant("10.00", stock=100), shop.variant("600.00", stock=100)
        made = []
        for index, (variant, quantity) in enumerate(
            [(cheap, 1), (cheap, 2), (dear, 1), (cheap, 4), (cheap, 5)]
        ):
            email = "ann@example.com" if index == 2 else "bob@example.com"
            order = shop.place(alpha, [(variant, quantity)], email=email)
            _at(order, datetime(2026, 3, 1 + index, 10, tzinfo=UTC))
            made.append(order)
        services.update_status(actor=None, order_id=made[2].pk, status="paid")
        services.cancel_order(actor=None, order_id=made[3].pk)
    return made


def _numbers(gql, fixture, role="viewer", **variables) -> list[int]:
    response = gql.post(
        LIST, variables, host=fixture.host, token=token_for(fixture.email(role), fixture.tenant)
    )
    assert response.errors == [], response.body
    return [edge["node"]["number"] for edge in response.data["orders"]["edges"]]


def test_orders_are_filtered_and_sorted(gql, alpha, orders):
    n = [order.number for order in orders]
    assert _numbers(gql, alpha) == n[::-1]  # newest first
    assert _numbers(gql, alpha, sort={"field": "PLACED", "descending": False}) == n
    assert _numbers(gql, alpha, sort={"field": "TOTAL", "descending": True}) == [
        n[2],
        n[4],
        n[3],
        n[1],
        n[0],
    ]
    assert _numbers(gql, alpha, sort={"field": "TOTAL", "descending": False}, first=2) == [
        n[0],
        n[1],
    ]
    assert _numbers(gql, alpha, filter={"status": ["PAID", "CANCELLED"]}) == [n[3], n[2]]
    ann = orders[2].customer_id
    assert _numbers(gql, alpha, filter={"customer": gid(alpha, "Customer", ann)}) == [n[2]]
    assert _numbers(
        gql,
        alpha,
        filter={"placedFrom": "2026-03-02T10:00:00+00:00", "placedTo": "2026-03-04T10:00:00+00:00"},
    ) == [n[2], n[1]]
    assert _numbers(gql, alpha, filter={"totalMin": "20", "totalMax": "50.00"}) == [
        n[4],
        n[3],
        n[1],
    ]
    assert _numbers(gql, alpha, filter={"search": f"#{n[1]}"}) == [n[1]]
    assert _numbers(gql, alpha, filter={"search": str(n[3])}) == [n[3]]
    assert _numbers(gql, alpha, filter={"search": "xyz"}) == []


def test_searching_by_email_is_for_roles_that_see_contacts(gql, alpha, orders):
    assert _numbers(gql, alpha, "staff", filter={"search": "ANN@"}) == [orders[2].number]
    assert _numbers(gql, alpha, "viewer", filter={"search": "ann@"}) == []
    assert _numbers(gql, alpha, "analyst", filter={"search": "ann@"}) == []


def test_order_emails_are_redacted_for_viewers_and_analysts(gql, alpha, orders):
    query = "query($id: ID!) { node(id: $id) { ... on Order { email customer { email } } } }"
    variables = {"id": gid(alpha, "Order", orders[2].pk)}
    for role, email in [
        ("staff", "ann@example.com"),
        ("viewer", "a***@example.com"),
        ("analyst", "a***@example.com"),
    ]:
        response = gql.post(
            query, variables, host=alpha.host, token=token_for(alpha.email(role), alpha.tenant)
        )
        assert response.data["node"] == {"email": email, "customer": {"email": email}}, role


def test_recent_and_pending_orders(gql, alpha, orders):
    token = token_for(alpha.email("viewer"), alpha.tenant)
    response = gql.post(
        """{ recentOrders(first: 2) { totalCount edges { node { number } } }
                             pendingOrders(first: 10) { totalCount edges { node { number status } } } }""",
        host=alpha.host,
        token=token,
    )
    n = [order.number for order in orders]
    assert response.data["recentOrders"]["totalCount"] == 5
    assert [e["node"]["number"] for e in response.data["recentOrders"]["edges"]] == [n[4], n[3]]
    pending = response.data["pendingOrders"]
    assert [e["node"]["number"] for e in pending["edges"]] == [
        n[0],
        n[1],
        n[4],
    ]  # longest waiting first
    assert {e["node"]["status"] for e in pending["edges"]} == {"PENDING"}


def test_high_value_orders_follow_the_tenant_setting(gql, alpha, orders):
    query = "{ highValueOrders(first: 10) { edges { node { number total { amount } } } } }"
    token = token_for(alpha.email("viewer"), alpha.tenant)
    default = gql.post(query, host=alpha.host, token=token).data["highValueOrders"]["edges"]
    assert [e["node"]["number"] for e in default] == [orders[2].number]  # 500.00 by default
    settings = dict(alpha.tenant.settings)
    try:
        alpha.tenant.settings = {**settings, "high_value_order_threshold": "40"}
        alpha.tenant.save(update_fields=["settings"])
        lowered = gql.post(query, host=alpha.host, token=token).data["highValueOrders"]["edges"]
    finally:
        alpha.tenant.settings = settings
    # 40.00 and up, the cancelled order (40.00) left out
    assert [e["node"]["number"] for e in lowered] == [orders[4].number, orders[2].number]


ANALYTICS = """query($from: Date, $to: Date) { orderAnalytics(from: $from, to: $to) {
  from to ordersCount byStatus { status count } averageOrderValue { amount currency } fulfilledCount
  averageFulfilmentHours } }"""


def test_order_analytics_counts_statuses_values_and_fulfilment_time(gql, alpha, orders):
    with tenant_context(alpha.tenant):
        services.update_status(actor=None, order_id=orders[2].pk, status="fulfilled")
        placed = datetime(2026, 3, 3, 10, tzinfo=UTC)
        Order.objects.filter(pk=orders[2].pk).update(fulfilled_at=placed + timedelta(hours=30))
        services.update_status(actor=None, order_id=orders[0].pk, status="paid")
        services.update_status(actor=None, order_id=orders[0].pk, status="fulfilled")
        Order.objects.filter(pk=orders[0].pk).update(
            fulfilled_at=datetime(2026, 3, 1, 16, tzinfo=UTC)
        )
    token = token_for(alpha.email("analyst"), alpha.tenant)
    response = gql.post(
        ANALYTICS, {"from": "2026-03-01", "to": "2026-03-04"}, host=alpha.host, token=token
    )
    figures = response.data["orderAnalytics"]
    assert (figures["from"], figures["to"], figures["ordersCount"]) == (
        "2026-03-01",
        "2026-03-04",
        4,
    )
    counts = {row["status"]: row["count"] for row in figures["byStatus"]}
    assert counts == {
        "PENDING": 1,
        "PAID": 0,
        "FULFILLED": 2,
        "DELIVERED": 0,
        "CANCELLED": 1,
        "PARTIALLY_REFUNDED": 0,
        "REFUNDED": 0,
    }
    # not cancelled: 10 + 20 + 600 → 210.00
    assert figures["averageOrderValue"] == {"amount": "210.00", "currency": "USD"}
    assert (
        figures["fulfilledCount"] == 2 and figures["averageFulfilmentHours"] == 18.0
    )  # (6 + 30) / 2


def test_order_analytics_days_are_the_tenants_days(gql, alpha, orders):
    original = alpha.tenant.time_zone
    try:
        alpha.tenant.time_zone = (
            "Pacific/Kiritimati"  # UTC+14: 2026-03-01 10:00 UTC is March 2 there
        )
        alpha.tenant.save(update_fields=["time_zone"])
        token = token_for(alpha.email("owner"), alpha.tenant)
        response = gql.post(
            ANALYTICS, {"from": "2026-03-01", "to": "2026-03-01"}, host=alpha.host, token=token
        )
        assert response.data["orderAnalytics"]["ordersCount"] == 0
        response = gql.post(
            ANALYTICS, {"from": "2026-03-02", "to": "2026-03-02"}, host=alpha.host, token=token
        )
        assert response.data["orderAnalytics"]["ordersCount"] == 1
    finally:
        alpha.tenant.time_zone = original


def test_order_analytics_defaults_and_refusals(gql, alpha, orders):
    analyst = token_for(alpha.email("analyst"), alpha.tenant)
    recent = gql.post(ANALYTICS, host=alpha.host, token=analyst).data["orderAnalytics"]
    assert recent["ordersCount"] == 0 and recent["averageOrderValue"] is None
    assert recent["averageFulfilmentHours"] is None
    assert (
        datetime.fromisoformat(recent["to"]) - datetime.fromisoformat(recent["from"])
    ).days == 29
    backwards = gql.post(
        ANALYTICS, {"from": "2026-03-05", "to": "2026-03-01"}, host=alpha.host, token=analyst
    )
    assert backwards.codes == ["BAD_REQUEST"]
    viewer = gql.post(
        ANALYTICS, host=alpha.host, token=token_for(alpha.email("viewer"), alpha.tenant)
    )
    assert viewer.codes == ["FORBIDDEN"]


def test_orders_lines_and_refunds_are_nodes_of_their_tenant_only(gql, alpha, beta, orders):
    with tenant_context(alpha.tenant):
        line = orders[2].lines.get()
        refund = services.create_refund(actor=None, order_id=orders[2].pk, amount=Decimal("5.00"))
    fields = """__typename
      ... on Order { number status refundedTotal { amount } }
      ... on OrderLine { sku total { amount currency } }
      ... on Refund { amount { amount } order { number } }"""
    query = (
        f"query($a: ID!, $b: ID!, $c: ID!) {{ a: node(id: $a) {{ {fields} }} b: node(id: $b) {{ {fields} }} "
        f"c: node(id: $c) {{ {fields} }} }}"
    )
    ids = [
        gid(alpha, "Order", orders[2].pk),
        gid(alpha, "OrderLine", line.pk),
        gid(alpha, "Refund", refund.pk),
    ]
    variables = dict(zip("abc", ids, strict=True))
    mine = gql.post(
        query, variables, host=alpha.host, token=token_for(alpha.email("viewer"), alpha.tenant)
    )
    assert mine.errors == [], mine.body
    assert list(mine.data.values()) == [
        {
            "__typename": "Order",
            "number": orders[2].number,
            "status": "PARTIALLY_REFUNDED",
            "refundedTotal": {"amount": "5.00"},
        },
        {
            "__typename": "OrderLine",
            "sku": line.sku,
            "total": {"amount": "600.00", "currency": "USD"},
        },
        {
            "__typename": "Refund",
            "amount": {"amount": "5.00"},
            "order": {"number": orders[2].number},
        },
    ]
    with tenant_context(beta.tenant):
        assert not Order.objects.filter(pk=orders[2].pk).exists()
    single = "query($id: ID!) { node(id: $id) { ... on Order { number } } }"
    theirs = gql.post(
        single, {"id": ids[0]}, host=beta.host, token=token_for(beta.email("owner"), beta.tenant)
    )
    assert theirs.data == {"node": None}
    listed = gql.post(
        "{ orders(first: 10) { totalCount } }",
        host=beta.host,
        token=token_for(beta.email("owner"), beta.tenant),
    )
    assert listed.data["orders"]["totalCount"] == 0


@pytest.mark.parametrize("bound", ["NaN", "Infinity", "-Infinity"])
def test_total_bounds_must_be_numbers(gql, alpha, bound):
    token = token_for(alpha.email("viewer"), alpha.tenant)
    response = gql.post(
        "query($v: Decimal) { orders(first: 5, filter: {totalMax: $v}) { totalCount } }",
        {"v": bound},
        host=alpha.host,
        token=token,
    )
    assert response.codes == ["BAD_REQUEST"]


def test_a_page_holds_at_most_100_orders(gql, alpha, orders):
    token = token_for(alpha.email("viewer"), alpha.tenant)
    response = gql.post(
        "{ orders(first: 101) { edges { node { number } } } }", host=alpha.host, token=token
    )
    assert response.errors and response.data is None
