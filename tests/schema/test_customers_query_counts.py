"""Customer lists run the same number of SQL queries for a page of 10 and of 100 (N+1 is a bug),
with their usual nesting: statistics, notes, and analytics (orders, lines, categories)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django_tenants.utils import tenant_context

from apps.customers.models import Customer, CustomerNote
from apps.orders.models import Order, OrderLine
from tests.apps.customers import factories as make
from tests.conftest import token_for

PAGE = (
    "query($n: Int!) { customers(first: $n) { edges { node { email ordersCount totalSpent "
    "{ amount } notes { body } } } } }"
)
WITH_ANALYTICS = """query($n: Int!) { customers(first: $n) { totalCount edges { node {
  email notes { body authorEmail }
  analytics { lifetimeValue { amount } ordersPerMonth favouriteCategories(first: 3) { name units } }
} } } }"""
TOP = """query($n: Int!) { topCustomers(first: $n, from: "2026-01-01", to: "2026-01-31") {
  totalCount edges { spent { amount } ordersCount node { email notes { body } } }
} }"""
LISTS = """query($n: Int!) {
  vipCustomers(first: $n) { edges { node { email notes { body } } } }
  newCustomers(first: $n, days: 3650) { edges { node { email notes { body } } } }
  inactiveCustomers(first: $n, days: 1) { edges { node { email notes { body } } } }
}"""


@pytest.fixture
def crowd(alpha):
    """100 customers, each with two notes and two January orders of two categorised lines."""
    with tenant_context(alpha.tenant):
        products = [make.product(f"P{i}", make.category(f"C{i}")) for i in range(3)]
        customers = Customer.objects.bulk_create(
            Customer(
                email=f"c{i:03}@crowd.test",
                orders_count=2,
                total_spent=Decimal("2000.00"),
                last_order_at=datetime(2026, 1, 20, tzinfo=UTC),
            )
            for i in range(100)
        )
        CustomerNote.objects.bulk_create(
            CustomerNote(customer=customer, body=f"note {n}", author_email="staff@alpha.test")
            for customer in customers
            for n in range(2)
        )
        orders = Order.objects.bulk_create(
            Order(
                number=10_000 + 2 * index + n,
                customer=customer,
                currency="USD",
                total=Decimal("1000.00"),
                placed_at=datetime(2026, 1, 10, tzinfo=UTC) + timedelta(days=n),
            )
            for index, customer in enumerate(customers)
            for n in range(2)
        )
        OrderLine.objects.bulk_create(
            OrderLine(
                order=order,
                product=products[(order.number + k) % 3],
                product_name="p",
                sku=f"S{order.number}-{k}",
                unit_price=Decimal("500.00"),
                quantity=1,
                total=Decimal("500.00"),
            )
            for order in orders
            for k in range(2)
        )
    return alpha


def _count(gql, fixture, query, n, role="owner") -> tuple[int, dict]:
    token = token_for(fixture.email(role), fixture.tenant)
    with CaptureQueriesContext(connection) as captured:
        response = gql.post(query, {"n": n}, host=fixture.host, token=token)
    assert response.errors == [], response.body
    return len(captured.captured_queries), response.data


@pytest.mark.parametrize(
    "query", [PAGE, WITH_ANALYTICS, TOP, LISTS], ids=["page", "analytics", "top", "lists"]
)
def test_a_page_of_100_costs_as_many_queries_as_a_page_of_10(gql, crowd, query):
    few, small = _count(gql, crowd, query, 10)
    many, large = _count(gql, crowd, query, 100)
    root = next(iter(large))
    assert len(small[root]["edges"]) == 10 and len(large[root]["edges"]) == 100
    assert all(len(edge["node"]["notes"]) == 2 for edge in large[root]["edges"])
    assert many == few, (few, many)


def test_the_page_reads_what_it_shows(gql, crowd):
    queries, data = _count(gql, crowd, WITH_ANALYTICS, 100)
    node = data["customers"]["edges"][0]["node"]
    assert node["analytics"]["lifetimeValue"] == {"amount": "2000.00"}
    assert sum(share["units"] for share in node["analytics"]["favouriteCategories"]) == 4
    # request bookkeeping + customers, count, notes, orders, lines with their categories
    print("customers page with analytics:", queries, "queries")


def test_viewers_pages_do_not_read_orders_for_analytics_they_cannot_see(gql, crowd):
    staff, _ = _count(
        gql,
        crowd,
        PAGE.replace("notes { body }", "notes { body } analytics { ordersCount }"),
        50,
        "staff",
    )
    viewer_token = token_for(crowd.email("viewer"), crowd.tenant)
    with CaptureQueriesContext(connection) as captured:
        gql.post(
            PAGE.replace("notes { body }", "analytics { ordersCount }"),
            {"n": 50},
            host=crowd.host,
            token=viewer_token,
        )
    assert not any('"orders_order"' in query["sql"] for query in captured.captured_queries)
    assert len(captured.captured_queries) < staff
