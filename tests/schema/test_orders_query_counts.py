"""Order lists with their usual nesting (lines with product images, customer; refunds and
events) run the same SQL for a page of 10 orders and of 100, from compiled SQL and on the resolver
path (which still serves WebSocket operations and the fields the compiler does not know)."""

from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django_tenants.utils import tenant_context

from apps.catalog.models import ProductImage
from apps.orders import services
from tests.apps.orders import shop
from tests.conftest import token_for

ORDERS = """query($first: Int!) { orders(first: $first) { totalCount edges { node {
  id number status total { amount currency } customer { email ordersCount }
  lines { sku quantity unitPrice { amount currency } product { name images { url altText } } variant { sku stock } }
} } } }"""

HISTORY = """query($first: Int!) { recentOrders(first: $first) { edges { node {
  number refunds { amount { amount } lines { quantity amount { amount } orderLine { sku total { amount } } } }
  events { type fromStatus toStatus }
} } } }"""


def _orders(count: int, fixture, *, refunded: bool = False) -> None:
    with tenant_context(fixture.tenant):
        variants = [shop.variant("12.50", stock=1000) for _ in range(3)]
        for index, variant in enumerate(variants):
            ProductImage.objects.create(
                product=variant.product, image=f"products/{index}.jpg", alt_text=f"photo {index}"
            )
        for index in range(count):
            order = shop.place(
                fixture,
                [(variants[index % 3], 1), (variants[(index + 1) % 3], 2)],
                email=f"buyer{index % 7}@example.com",
            )
            if refunded:
                services.update_status(actor=None, order_id=order.pk, status="paid")
                line = order.lines.first()
                services.create_refund(
                    actor=None, order_id=order.pk, lines=[services.RefundLineRequest(line.pk, 1)]
                )
                services.create_refund(actor=None, order_id=order.pk, amount=Decimal("1.00"))


def _run(gql, fixture, query: str, first: int) -> tuple[int, int, dict]:
    """(all statements, statements on order and catalog tables, data)."""
    token = token_for(fixture.email("viewer"), fixture.tenant)
    with CaptureQueriesContext(connection) as captured:
        response = gql.post(query, {"first": first}, host=fixture.host, token=token)
    assert response.errors == [], response.body
    sql = [query["sql"] for query in captured.captured_queries]
    commerce = [s for s in sql if '"orders_' in s or '"catalog_' in s or '"customers_' in s]
    return len(sql), len(commerce), response.data


@pytest.mark.parametrize(
    ("compiler", "statements"),
    [
        # orders with their customer (one JOIN), lines with their variant and product, images
        (False, 3),
        # the selection compiler (schema/compiler): the page as JSON from one statement
        (True, 1),
    ],
    ids=["resolver path", "compiled"],
)
def test_order_page_with_lines_images_and_customer_costs_the_same_for_10_or_100(
    gql, alpha, settings, compiler, statements
):
    settings.GRAPHQL_COMPILER = compiler
    _orders(10, alpha)
    few, few_commerce, data = _run(gql, alpha, ORDERS, 10)
    assert len(data["orders"]["edges"]) == 10
    _orders(90, alpha)
    many, many_commerce, data = _run(gql, alpha, ORDERS, 100)
    assert len(data["orders"]["edges"]) == 100
    line = data["orders"]["edges"][0]["node"]["lines"][0]
    assert line["unitPrice"] == {"amount": "12.50", "currency": "USD"}
    assert line["product"]["images"][0]["altText"].startswith("photo")
    assert many == few > 0
    assert many_commerce == few_commerce == statements


def test_order_history_with_refunds_and_events_costs_the_same_for_10_or_100(gql, alpha):
    # (refunds are not compiled: the compiler serves events, refunds come from the resolver path
    # in the same snapshot, each in statements that do not grow with the page)
    _orders(10, alpha, refunded=True)
    few, _, data = _run(gql, alpha, HISTORY, 10)
    refunds = data["recentOrders"]["edges"][0]["node"]["refunds"]
    assert [r["amount"]["amount"] for r in refunds] == ["12.50", "1.00"]
    _orders(90, alpha, refunded=True)
    many, _, data = _run(gql, alpha, HISTORY, 100)
    assert len(data["recentOrders"]["edges"]) == 100
    assert many == few > 0
