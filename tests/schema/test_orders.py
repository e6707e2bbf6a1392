"""Placing orders through the API: totals, stock, snapshots, numbers, customers, bad input that
writes nothing, and who may do it."""

from decimal import Decimal

import pytest
from django_tenants.utils import tenant_context

from apps.audit.models import AuditEntry
from apps.catalog.models import Product, Variant
from apps.customers.models import Customer
from apps.orders.models import Order, OrderCounter, OrderLine
from tests.apps.orders import shop
from tests.apps.orders.shop import staff
from tests.conftest import gid, token_for

CREATE = """mutation($input: OrderCreateInput!) { orderCreate(input: $input) {
  order { id number status email currency
    subtotal { amount currency } discountTotal { amount } taxTotal { amount } shippingTotal { amount }
    total { amount currency } refundedTotal { amount }
    customer { id email ordersCount totalSpent { amount } }
    lines { id sku productName variantName quantity refundedQuantity unitPrice { amount } total { amount } }
    events { type fromStatus toStatus actorEmail } }
  userErrors { field message code } } }"""


def create(gql, fixture, token=None, **data):
    response = gql.post(CREATE, {"input": data}, host=fixture.host, token=token or staff(fixture))
    assert response.errors == [], response.body
    return response.data["orderCreate"]


@pytest.fixture
def stock(alpha):
    """Two variants: A at 19.99 (10 in stock) and B at 5.00 (3 in stock)."""
    with tenant_context(alpha.tenant):
        a = shop.variant("19.99", stock=10, name="Wool Hat")
        b = shop.variant("5.00", stock=3, name="Sticker")
    return a, b


def _counts(fixture) -> tuple:
    with tenant_context(fixture.tenant):
        return (
            Order.objects.count(),
            OrderLine.objects.count(),
            Customer.objects.count(),
            AuditEntry.objects.count(),
            OrderCounter.objects.get(pk=1).last,
            sorted(Variant.objects.values_list("pk", "stock")),
        )


def test_an_order_reserves_stock_snapshots_lines_and_counts_for_its_customer(gql, alpha, stock):
    a, b = stock
    before = _counts(alpha)[4]
    payload = create(
        gql,
        alpha,
        email="Ann@Example.com",
        lines=[
            {"variant": gid(alpha, "Variant", a.pk), "quantity": 2},
            {"variant": gid(alpha, "Variant", b.pk), "quantity": 3},
        ],
        discount="4.98",
        shipping="5",
        taxRate="20",
        note="gift wrap",
    )
    assert payload["userErrors"] == []
    order = payload["order"]
    # subtotal 2 x 19.99 + 3 x 5.00 = 54.98; less 4.98 = 50.00; tax 20% = 10.00; shipping 5.00
    assert order["subtotal"] == {"amount": "54.98", "currency": "USD"}
    assert (
        order["discountTotal"]["amount"],
        order["taxTotal"]["amount"],
        order["shippingTotal"]["amount"],
    ) == ("4.98", "10.00", "5.00")
    assert order["total"] == {"amount": "65.00", "currency": "USD"}
    assert order["refundedTotal"]["amount"] == "0.00"
    assert (order["number"], order["status"], order["email"], order["currency"]) == (
        before + 1,
        "PENDING",
        "ann@example.com",
        "USD",
    )
    assert [
        (
            line["sku"],
            line["productName"],
            line["quantity"],
            line["unitPrice"]["amount"],
            line["total"]["amount"],
        )
        for line in order["lines"]
    ] == [(a.sku, "Wool Hat", 2, "19.99", "39.98"), (b.sku, "Sticker", 3, "5.00", "15.00")]
    assert order["customer"]["email"] == "ann@example.com"
    assert (
        order["customer"]["ordersCount"] == 1
        and order["customer"]["totalSpent"]["amount"] == "65.00"
    )
    assert order["events"] == [
        {
            "type": "placed",
            "fromStatus": None,
            "toStatus": "PENDING",
            "actorEmail": alpha.email("staff"),
        }
    ]
    with tenant_context(alpha.tenant):
        assert Variant.objects.get(pk=a.pk).stock == 8 and Variant.objects.get(pk=b.pk).stock == 0
        entry = AuditEntry.objects.get(action="order.create")
        assert entry.actor_email == alpha.email("staff") and entry.changes["total"] == "65.00"
        assert AuditEntry.objects.filter(
            action="customer.create", changes__email="ann@example.com"
        ).exists()
        # the snapshot outlives catalog edits
        Variant.objects.filter(pk=a.pk).update(price=Decimal("99.00"), sku="RENAMED")
        Product.objects.filter(pk=a.product_id).update(name="Renamed")
    again = gql.post(
        "query($id: ID!) { node(id: $id) { ... on Order { lines { sku productName unitPrice { amount } } } } }",
        {"id": order["id"]},
        host=alpha.host,
        token=staff(alpha),
    )
    assert again.data["node"]["lines"][0] == {
        "sku": a.sku,
        "productName": "Wool Hat",
        "unitPrice": {"amount": "19.99"},
    }


def test_an_existing_customer_by_id_and_a_known_email_reuse_the_customer(gql, alpha, stock):
    a, _ = stock
    with tenant_context(alpha.tenant):
        known = Customer.objects.create(email="known@example.com")
    line = [{"variant": gid(alpha, "Variant", a.pk), "quantity": 1}]
    by_id = create(gql, alpha, customer=gid(alpha, "Customer", known.pk), lines=line)
    by_email = create(gql, alpha, email=" KNOWN@example.com ", lines=line)
    assert by_id["userErrors"] == by_email["userErrors"] == []
    assert (
        by_id["order"]["customer"]["id"]
        == by_email["order"]["customer"]["id"]
        == gid(alpha, "Customer", known.pk)
    )
    assert by_email["order"]["customer"]["ordersCount"] == 2
    assert by_email["order"]["customer"]["totalSpent"]["amount"] == "39.98"
    assert by_email["order"]["number"] == by_id["order"]["number"] + 1


def test_repeated_variants_are_one_line(gql, alpha, stock):
    a, _ = stock
    payload = create(
        gql,
        alpha,
        email="x@example.com",
        lines=[
            {"variant": gid(alpha, "Variant", a.pk), "quantity": 1},
            {"variant": gid(alpha, "Variant", a.pk), "quantity": 2},
        ],
    )
    assert [(line["sku"], line["quantity"]) for line in payload["order"]["lines"]] == [(a.sku, 3)]


BAD = {
    "unknown variant": (
        {"lines": [{"variant": "UNKNOWN", "quantity": 1}]},
        "lines.0.variant",
        "NOT_FOUND",
    ),
    "wrong id type": (
        {"lines": [{"variant": "PRODUCT", "quantity": 1}]},
        "lines.0.variant",
        "NOT_FOUND",
    ),
    "zero quantity": ({"lines": [{"variant": "A", "quantity": 0}]}, "lines.0.quantity", "INVALID"),
    "negative quantity": (
        {"lines": [{"variant": "B", "quantity": 1}, {"variant": "A", "quantity": -2}]},
        "lines.1.quantity",
        "INVALID",
    ),
    "huge quantity": (
        {"lines": [{"variant": "A", "quantity": 10_001}]},
        "lines.0.quantity",
        "INVALID",
    ),
    "not enough stock": (
        {"lines": [{"variant": "A", "quantity": 1}, {"variant": "B", "quantity": 4}]},
        "lines.1.quantity",
        "INSUFFICIENT_STOCK",
    ),
    "no lines": ({"lines": []}, "lines", "INVALID"),
    "discount above subtotal": ({"discount": "20.00"}, "discount", "INVALID"),
    "negative discount": ({"discount": "-1"}, "discount", "NEGATIVE"),
    "three decimals": ({"shipping": "1.005"}, "shipping", "TOO_PRECISE"),
    "not a number": ({"shipping": "NaN"}, "shipping", "INVALID"),
    "too large": ({"shipping": "10000000000"}, "shipping", "TOO_LARGE"),
    "tax rate above 100": ({"taxRate": "150"}, "taxRate", "INVALID"),
    "no customer or email": ({"email": None}, "customer", "INVALID"),
    "customer and email": ({"customer": "CUSTOMER"}, "customer", "INVALID"),
    "unknown customer": ({"email": None, "customer": "UNKNOWN_CUSTOMER"}, "customer", "NOT_FOUND"),
    "bad email": ({"email": "not-an-email"}, "email", "INVALID"),
    "draft product": (
        {"lines": [{"variant": "DRAFT", "quantity": 1}]},
        "lines.0.variant",
        "NOT_FOR_SALE",
    ),
}


@pytest.mark.parametrize("case", BAD, ids=list(BAD))
def test_bad_input_is_a_user_error_and_writes_nothing(gql, alpha, stock, case):
    a, b = stock
    with tenant_context(alpha.tenant):
        draft = shop.variant("1.00", stock=5)
        Product.objects.filter(pk=draft.product_id).update(status=Product.Status.DRAFT)
    names = {
        "A": gid(alpha, "Variant", a.pk),
        "B": gid(alpha, "Variant", b.pk),
        "DRAFT": gid(alpha, "Variant", draft.pk),
        "UNKNOWN": gid(alpha, "Variant", 999999),
        "PRODUCT": gid(alpha, "Product", a.product_id),
        "CUSTOMER": gid(alpha, "Customer", 1),
        "UNKNOWN_CUSTOMER": gid(alpha, "Customer", 999999),
    }
    changes, field, code = BAD[case]
    data = {"email": "buyer@example.com", "lines": [{"variant": "A", "quantity": 1}], **changes}
    data["lines"] = [
        {**line, "variant": names.get(line["variant"], line["variant"])} for line in data["lines"]
    ]
    if data.get("customer") is not None:
        data["customer"] = names[data["customer"]]
    before = _counts(alpha)
    payload = create(gql, alpha, **data)
    assert payload["order"] is None
    assert [(e["field"], e["code"]) for e in payload["userErrors"]] == [(field, code)], payload
    assert _counts(alpha) == before  # no order, line, customer, audit entry, number or stock change


def test_a_failed_order_gives_its_number_back(gql, alpha, stock):
    a, b = stock
    first = create(
        gql,
        alpha,
        email="n@example.com",
        lines=[{"variant": gid(alpha, "Variant", a.pk), "quantity": 1}],
    )
    failed = create(
        gql,
        alpha,
        email="n@example.com",
        lines=[
            {"variant": gid(alpha, "Variant", a.pk), "quantity": 1},
            {"variant": gid(alpha, "Variant", b.pk), "quantity": 9},
        ],
    )
    assert failed["userErrors"][0]["code"] == "INSUFFICIENT_STOCK"
    assert "9 wanted, 3 left" in failed["userErrors"][0]["message"]
    second = create(
        gql,
        alpha,
        email="n@example.com",
        lines=[{"variant": gid(alpha, "Variant", a.pk), "quantity": 1}],
    )
    assert second["order"]["number"] == first["order"]["number"] + 1
    with tenant_context(alpha.tenant):
        assert Variant.objects.get(pk=a.pk).stock == 8 and Variant.objects.get(pk=b.pk).stock == 3


@pytest.mark.parametrize("role", ["viewer", "analyst"])
def test_readers_cannot_place_orders(gql, alpha, stock, role):
    a, _ = stock
    before = _counts(alpha)
    response = gql.post(
        CREATE,
        {
            "input": {
                "email": "r@example.com",
                "lines": [{"variant": gid(alpha, "Variant", a.pk), "quantity": 1}],
            }
        },
        host=alpha.host,
        token=token_for(alpha.email(role), alpha.tenant),
    )
    assert response.codes == ["FORBIDDEN"] and response.data is None
    assert _counts(alpha) == before


@pytest.mark.parametrize("role", ["owner", "admin", "staff"])
def test_staff_and_above_place_orders(gql, alpha, stock, role):
    a, _ = stock
    payload = create(
        gql,
        alpha,
        token_for(alpha.email(role), alpha.tenant),
        email="s@example.com",
        lines=[{"variant": gid(alpha, "Variant", a.pk), "quantity": 1}],
    )
    assert payload["userErrors"] == [] and payload["order"]["events"][0][
        "actorEmail"
    ] == alpha.email(role)


def test_another_tenants_variant_is_not_found(gql, alpha, beta):
    with tenant_context(beta.tenant):
        elsewhere = shop.variant("1.00", stock=5)
    with tenant_context(alpha.tenant):
        Variant.objects.filter(
            pk=elsewhere.pk
        ).delete()  # the same id may exist in alpha: make sure it does not
    payload = create(
        gql,
        alpha,
        email="x@example.com",
        lines=[{"variant": gid(alpha, "Variant", elsewhere.pk), "quantity": 1}],
    )
    assert payload["userErrors"][0]["code"] == "NOT_FOUND"
    with tenant_context(beta.tenant):
        assert Variant.objects.get(pk=elsewhere.pk).stock == 5
