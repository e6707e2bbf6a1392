"""Product lists from order data: lowStockProducts, topSellingProducts, categoriesSummary and
product.analytics (bucketed by day in the tenant's time zone), with their roles and bad input."""

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django_tenants.utils import tenant_context

from apps.analytics import rollups
from apps.catalog.models import Variant
from apps.orders.models import Order, OrderLine, Refund, RefundLine
from tenants.models import Tenant
from tests.apps.catalog import factories
from tests.conftest import gid, token_for

RANGE = {"from": "2026-03-10", "to": "2026-03-12"}
TOP = """query($by: ProductSalesRanking!, $from: Date, $to: Date, $first: Int!) {
  topSellingProducts(by: $by, from: $from, to: $to, first: $first) {
    product { name category { name } variants { sku } images { altText } } unitsSold revenue {
    amount currency } ordersCount } }"""
SUMMARY = """query($from: Date, $to: Date) { categoriesSummary(from: $from, to: $to) {
  category { name parent { name } } productsCount stock stockValue { amount } unitsSold revenue { amount } } }"""
ANALYTICS = """query($id: ID!, $from: Date, $to: Date) { node(id: $id) { ... on Product { name
  analytics(from: $from, to: $to) { from to unitsSold revenue { amount } ordersCount refundedUnits refunds { amount }
    netRevenue { amount } days { date unitsSold revenue { amount } refundedUnits refunds { amount } } } } } }"""
LOW = (
    "{ lowStockProducts(first: 20) { totalCount edges { node { sku stock lowStockThreshold "
    "isLowStock product { name } } } } }"
)


def _at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


class Shop:
    """A small catalog and its orders, in a tenant on New York time."""

    def __init__(self, fixture):
        self.fixture = fixture
        Tenant.objects.filter(pk=fixture.tenant.pk).update(time_zone="America/New_York")
        shoes = factories.category(fixture, "Shoes")
        hats = factories.category(fixture, "Hats")
        factories.category(fixture, "Summer", parent=hats)  # no products: zeros
        self.boot = factories.product(
            fixture,
            "Boot",
            category=shoes,
            variants=[{"sku": "BOOT", "price": 50, "cost_price": Decimal(20), "stock": 10}],
        )
        self.lace = factories.product(
            fixture, "Lace", category=shoes, variants=[{"sku": "LACE", "price": 10, "stock": 2}]
        )
        self.cap = factories.product(
            fixture,
            "Cap",
            category=hats,
            variants=[
                {
                    "sku": "CAP",
                    "price": 30,
                    "cost_price": Decimal(12),
                    "stock": 0,
                    "low_stock_threshold": 0,
                }
            ],
        )
        factories.product(
            fixture,
            "Old hat",
            category=hats,
            status="archived",
            variants=[{"sku": "OLDHAT", "price": 8, "stock": 1, "low_stock_threshold": 3}],
        )
        self.card = factories.product(
            fixture,
            "Card",
            variants=[{"sku": "CARD", "price": 5, "cost_price": Decimal(1), "stock": 7}],
        )
        self.number = 0
        paid = self.order("2026-03-10T15:00", "paid", [(self.boot, 2), (self.lace, 5)])
        self.order(
            "2026-03-11T03:00", "delivered", [(self.boot, 1)]
        )  # 23:00 on the 10th in New York
        self.order("2026-03-10T16:00", "cancelled", [(self.boot, 10)])  # never counts
        self.order("2026-03-12T20:00", "paid", [(self.cap, 3), (self.card, 1)])
        self.order("2026-02-01T12:00", "paid", [(self.lace, 100)])  # before the range
        self.order(
            "2026-03-13T04:30", "paid", [(self.boot, 7)]
        )  # 00:30 on the 13th in New York: after it
        self.refund(paid, self.boot, 1, "2026-03-12T10:00")
        with tenant_context(
            fixture.tenant
        ):  # rows written behind the services' back, as an import would
            rollups.rebuild(time_zone="America/New_York")

    def order(self, placed: str, status: str, lines) -> Order:
        self.number += 1
        with tenant_context(self.fixture.tenant):
            total = sum((p.variants.get().price * qty for p, qty in lines), Decimal(0))
            order = Order.objects.create(
                number=self.number,
                status=status,
                currency="USD",
                subtotal=total,
                total=total,
                placed_at=_at(placed),
            )
            for product, qty in lines:
                variant = product.variants.get()
                OrderLine.objects.create(
                    order=order,
                    product=product,
                    variant=variant,
                    product_name=product.name,
                    sku=variant.sku,
                    unit_price=variant.price,
                    quantity=qty,
                    total=variant.price * qty,
                )
            return order

    def refund(self, order: Order, product, qty: int, created: str) -> None:
        with tenant_context(self.fixture.tenant):
            line = order.lines.get(product=product)
            amount = line.unit_price * qty
            refund = Refund.objects.create(order=order, amount=amount, created=_at(created))
            RefundLine.objects.create(refund=refund, order_line=line, quantity=qty, amount=amount)
            OrderLine.objects.filter(pk=line.pk).update(refunded_quantity=qty)
            Order.objects.filter(pk=order.pk).update(
                refunded_total=amount, status="partially_refunded"
            )


@pytest.fixture
def shop(alpha):
    return Shop(alpha)


@pytest.fixture
def analyst(alpha):
    return token_for(alpha.email("analyst"), alpha.tenant)


def _data(response):
    assert response.errors == [], response.body
    return response.data


def test_top_selling_by_units_and_by_revenue(gql, alpha, analyst, shop):
    by_units = _data(
        gql.post(TOP, {"by": "UNITS", "first": 10, **RANGE}, host=alpha.host, token=analyst)
    )
    assert [
        (r["product"]["name"], r["unitsSold"], r["revenue"]["amount"], r["ordersCount"])
        for r in by_units["topSellingProducts"]
    ] == [
        ("Lace", 5, "50.00", 1),
        ("Boot", 3, "150.00", 2),
        ("Cap", 3, "90.00", 1),
        ("Card", 1, "5.00", 1),
    ]
    first = by_units["topSellingProducts"][1]
    assert first["product"]["category"] == {"name": "Shoes"} and first["product"]["variants"] == [
        {"sku": "BOOT"}
    ]
    assert first["revenue"]["currency"] == alpha.tenant.currency
    by_revenue = _data(
        gql.post(TOP, {"by": "REVENUE", "first": 2, **RANGE}, host=alpha.host, token=analyst)
    )
    assert [r["product"]["name"] for r in by_revenue["topSellingProducts"]] == ["Boot", "Cap"]


def test_top_selling_costs_the_same_queries_for_2_or_4_products(gql, alpha, analyst, shop):
    def count(first):
        with CaptureQueriesContext(connection) as captured:
            rows = _data(
                gql.post(
                    TOP, {"by": "UNITS", "first": first, **RANGE}, host=alpha.host, token=analyst
                )
            )
        return len(captured.captured_queries), len(rows["topSellingProducts"])

    assert count(2)[0] == count(4)[0]
    assert count(4)[1] == 4


def test_categories_summary(gql, alpha, analyst, shop):
    rows = _data(gql.post(SUMMARY, RANGE, host=alpha.host, token=analyst))["categoriesSummary"]
    figures = {
        (r["category"] or {}).get("name"): (
            r["productsCount"],
            r["stock"],
            r["stockValue"]["amount"],
            r["unitsSold"],
            r["revenue"]["amount"],
        )
        for r in rows
    }
    assert figures == {
        "Shoes": (2, 12, "220.00", 8, "200.00"),  # 10 x cost 20 + 2 x price 10 (no cost)
        "Hats": (2, 1, "8.00", 3, "90.00"),  # the archived hat's stock counts
        "Summer": (0, 0, "0.00", 0, "0.00"),
        None: (1, 7, "7.00", 1, "5.00"),  # products without a category
    }
    assert next(r for r in rows if (r["category"] or {}).get("name") == "Summer")["category"][
        "parent"
    ] == {"name": "Hats"}


def test_product_analytics_in_the_tenants_time_zone(gql, alpha, analyst, shop):
    data = _data(
        gql.post(
            ANALYTICS,
            {"id": gid(alpha, "Product", shop.boot.pk), **RANGE},
            host=alpha.host,
            token=analyst,
        )
    )
    figures = data["node"]["analytics"]
    assert (figures["from"], figures["to"]) == ("2026-03-10", "2026-03-12")
    assert (figures["unitsSold"], figures["revenue"]["amount"], figures["ordersCount"]) == (
        3,
        "150.00",
        2,
    )
    assert (
        figures["refundedUnits"],
        figures["refunds"]["amount"],
        figures["netRevenue"]["amount"],
    ) == (1, "50.00", "100.00")
    assert [
        (
            d["date"],
            d["unitsSold"],
            d["revenue"]["amount"],
            d["refundedUnits"],
            d["refunds"]["amount"],
        )
        for d in figures["days"]
    ] == [
        (
            "2026-03-10",
            3,
            "150.00",
            0,
            "0.00",
        ),  # the order at 03:00 UTC on the 11th is New York's 10th
        ("2026-03-11", 0, "0.00", 0, "0.00"),
        ("2026-03-12", 0, "0.00", 1, "50.00"),
    ]


def test_product_analytics_defaults_to_the_last_30_days(gql, alpha, analyst, shop):
    data = _data(
        gql.post(
            ANALYTICS, {"id": gid(alpha, "Product", shop.boot.pk)}, host=alpha.host, token=analyst
        )
    )
    assert len(data["node"]["analytics"]["days"]) == 30


def test_low_stock_products(gql, alpha, shop):
    viewer = token_for(alpha.email("viewer"), alpha.tenant)  # stock is on every product page anyway
    data = _data(gql.post(LOW, host=alpha.host, token=viewer))["lowStockProducts"]
    assert [
        (e["node"]["sku"], e["node"]["stock"], e["node"]["product"]["name"]) for e in data["edges"]
    ] == [("CAP", 0, "Cap"), ("LACE", 2, "Lace")]  # the archived hat is left out
    assert data["totalCount"] == 2 and all(e["node"]["isLowStock"] for e in data["edges"])
    with tenant_context(alpha.tenant):
        Variant.objects.filter(sku="BOOT").update(stock=5)  # at the threshold counts
    assert (
        _data(gql.post(LOW, host=alpha.host, token=viewer))["lowStockProducts"]["totalCount"] == 3
    )


@pytest.mark.parametrize("role", ["viewer"])
def test_viewers_see_no_sales_figures(gql, alpha, shop, role):
    token = token_for(alpha.email(role), alpha.tenant)
    for query, variables in [(TOP, {"by": "UNITS", "first": 5}), (SUMMARY, {})]:
        response = gql.post(query, variables, host=alpha.host, token=token)
        assert response.codes == ["FORBIDDEN"] and response.data is None
    nested = gql.post(
        ANALYTICS, {"id": gid(alpha, "Product", shop.boot.pk)}, host=alpha.host, token=token
    )
    assert nested.codes == ["FORBIDDEN"] and nested.data == {"node": None}
    plain = gql.post(
        "query($id: ID!) { node(id: $id) { ... on Product { name } } }",
        {"id": gid(alpha, "Product", shop.boot.pk)},
        host=alpha.host,
        token=token,
    )
    assert plain.data == {"node": {"name": "Boot"}}


@pytest.mark.parametrize("role", ["analyst", "staff", "admin", "owner"])
def test_analysts_and_above_read_sales_figures(gql, alpha, shop, role):
    token = token_for(alpha.email(role), alpha.tenant)
    assert _data(gql.post(SUMMARY, RANGE, host=alpha.host, token=token))["categoriesSummary"]
    assert _data(
        gql.post(
            ANALYTICS,
            {"id": gid(alpha, "Product", shop.boot.pk), **RANGE},
            host=alpha.host,
            token=token,
        )
    )


@pytest.mark.parametrize(
    "variables",
    [
        {"from": "2026-03-12", "to": "2026-03-10"},
        {"from": "2020-01-01", "to": "2026-03-10"},
        {"first": 0},
        {"first": 101},
    ],
)
def test_bad_ranges_and_sizes_are_bad_requests(gql, alpha, analyst, variables):
    response = gql.post(
        TOP, {"by": "UNITS", "first": 10, **variables}, host=alpha.host, token=analyst
    )
    assert response.codes == ["BAD_REQUEST"], response.body


def test_another_tenants_orders_never_count(gql, alpha, beta, shop):
    beta_analyst = token_for(beta.email("analyst"), beta.tenant)
    assert _data(
        gql.post(TOP, {"by": "UNITS", "first": 10, **RANGE}, host=beta.host, token=beta_analyst)
    ) == {"topSellingProducts": []}


def test_low_stock_and_summary_cost_the_same_queries_however_many_rows(gql, alpha, analyst, shop):
    def count(query, variables=None):
        with CaptureQueriesContext(connection) as captured:
            _data(gql.post(query, variables, host=alpha.host, token=analyst))
        return len(captured.captured_queries)

    few = (count(LOW), count(SUMMARY, RANGE))
    for n in range(10):
        parent = factories.category(alpha, f"Extra {n}")
        factories.category(alpha, f"Extra child {n}", parent=parent)
        factories.product(
            alpha,
            f"Low {n}",
            category=parent,
            variants=[{"sku": f"LOW-{n}", "price": 1, "stock": 0}],
        )
    assert (count(LOW), count(SUMMARY, RANGE)) == few
