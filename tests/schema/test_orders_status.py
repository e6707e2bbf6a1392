"""The order status machine through the API: every legal and illegal status change, cancelling
(stock released, paid orders refunded), refunds by lines and by amount, never more than paid."""

import itertools
from decimal import Decimal

import pytest
from django_tenants.utils import tenant_context

from apps.audit.models import AuditEntry
from apps.catalog.models import Variant
from apps.customers.models import Customer
from apps.orders.models import Order, OrderEvent, OrderLine, Refund
from tests.apps.orders import shop
from tests.apps.orders.shop import staff
from tests.conftest import gid, token_for

STATUSES = [
    "pending",
    "paid",
    "fulfilled",
    "delivered",
    "cancelled",
    "partially_refunded",
    "refunded",
]
# The specification, written out independently of apps.orders.status.
BY_UPDATE = {("pending", "paid"), ("paid", "fulfilled"), ("fulfilled", "delivered")}
CANCELLABLE = {"pending", "paid"}
REFUNDABLE = {"paid", "fulfilled", "delivered", "partially_refunded"}

ORDER = "id number status total { amount } refundedTotal { amount } paidAt fulfilledAt deliveredAt cancelledAt"
UPDATE = f"""mutation($id: ID!, $status: OrderStatus!) {{ orderUpdateStatus(id: $id, status: $status) {{
  order {{ {ORDER} }} userErrors {{ field message code }} }} }}"""
CANCEL = f"""mutation($id: ID!, $restock: Boolean) {{ orderCancel(id: $id, restock: $restock) {{
  order {{ {ORDER} refunds {{ amount {{ amount }} lines {{ quantity orderLine {{ sku }} }} }} }}
  userErrors {{ field message code }} }} }}"""
REFUND = f"""mutation($input: RefundCreateInput!) {{ refundCreate(input: $input) {{
  refund {{ id amount {{ amount currency }} reason restock lines {{ quantity amount {{ amount
  }} orderLine {{ sku }} }} }}
  order {{ {ORDER} lines {{ sku refundedQuantity }} }}
  userErrors {{ field message code }} }} }}"""


@pytest.fixture
def order(alpha):
    """A pending order: 2 x A at 10.00 and 1 x B at 30.00, discount 5.00, tax 10%, shipping 7.00:
    subtotal 50.00, tax 4.50, total 56.50; its goods (49.50) split 19.80 / 29.70 over the lines."""
    with tenant_context(alpha.tenant):
        a, b = shop.variant("10.00", stock=5), shop.variant("30.00", stock=5)
        placed = shop.place(
            alpha,
            [(a, 2), (b, 1)],
            email="refunds@example.com",
            discount="5.00",
            tax_rate="10",
            shipping="7.00",
        )
    assert placed.total == Decimal("56.50")
    return placed


def _status(fixture, order, status):
    with tenant_context(fixture.tenant):
        Order.objects.filter(pk=order.pk).update(status=status)


def _stock(fixture, *skus) -> list[int]:
    with tenant_context(fixture.tenant):
        return [Variant.objects.get(sku=sku).stock for sku in skus]


def _customer(fixture) -> tuple[int, str]:
    with tenant_context(fixture.tenant):
        customer = Customer.objects.get(email="refunds@example.com")
        return customer.orders_count, str(customer.total_spent)


def _lines(fixture, order) -> list[OrderLine]:
    with tenant_context(fixture.tenant):
        return list(Order.objects.get(pk=order.pk).lines.all())


def _refund(gql, fixture, refunded, token=None, **data):
    data = {"order": gid(fixture, "Order", refunded.pk), **data}
    response = gql.post(REFUND, {"input": data}, host=fixture.host, token=token or staff(fixture))
    assert response.errors == [], response.body
    return response.data["refundCreate"]


@pytest.mark.parametrize(("source", "target"), list(itertools.product(STATUSES, STATUSES)))
def test_every_status_change_by_update_is_allowed_or_refused_as_specified(
    gql, alpha, order, source, target
):
    _status(alpha, order, source)
    response = gql.post(
        UPDATE,
        {"id": gid(alpha, "Order", order.pk), "status": target.upper()},
        host=alpha.host,
        token=staff(alpha),
    )
    payload = response.data["orderUpdateStatus"]
    with tenant_context(alpha.tenant):
        stored = Order.objects.get(pk=order.pk)
        events = list(OrderEvent.objects.filter(order=stored, type="status_changed"))
        audited = AuditEntry.objects.filter(
            action="order.update_status", object_id=str(order.pk)
        ).count()
    if (source, target) in BY_UPDATE:
        assert payload["userErrors"] == []
        assert payload["order"]["status"] == target.upper() == stored.status.upper()
        stamp = {"paid": "paidAt", "fulfilled": "fulfilledAt", "delivered": "deliveredAt"}[target]
        assert payload["order"][stamp] is not None
        assert [(e.from_status, e.to_status, e.actor_email) for e in events] == [
            (source, target, alpha.email("staff"))
        ]
        assert audited == 1
    else:
        assert payload["order"] is None
        assert [(e["field"], e["code"]) for e in payload["userErrors"]] == [
            ("status", "ILLEGAL_TRANSITION")
        ]
        assert stored.status == source and events == [] and audited == 0


def test_status_moves_one_step_at_a_time_and_names_the_right_mutation(gql, alpha, order):
    jump = gql.post(
        UPDATE,
        {"id": gid(alpha, "Order", order.pk), "status": "DELIVERED"},
        host=alpha.host,
        token=staff(alpha),
    )
    assert jump.data["orderUpdateStatus"]["userErrors"][0]["code"] == "ILLEGAL_TRANSITION"
    cancel = gql.post(
        UPDATE,
        {"id": gid(alpha, "Order", order.pk), "status": "CANCELLED"},
        host=alpha.host,
        token=staff(alpha),
    )
    assert "Use orderCancel" in cancel.data["orderUpdateStatus"]["userErrors"][0]["message"]
    _status(alpha, order, "paid")
    refund = gql.post(
        UPDATE,
        {"id": gid(alpha, "Order", order.pk), "status": "REFUNDED"},
        host=alpha.host,
        token=staff(alpha),
    )
    assert "Use refundCreate" in refund.data["orderUpdateStatus"]["userErrors"][0]["message"]


def test_an_unknown_order_is_not_found(gql, alpha):
    response = gql.post(
        UPDATE,
        {"id": gid(alpha, "Order", 999999), "status": "PAID"},
        host=alpha.host,
        token=staff(alpha),
    )
    assert response.data["orderUpdateStatus"]["userErrors"] == [
        {"field": "id", "message": "No such order.", "code": "NOT_FOUND"}
    ]


# --- cancelling -----------------------------------------------------------------------------------


@pytest.mark.parametrize("source", STATUSES)
def test_only_pending_and_paid_orders_can_be_cancelled(gql, alpha, order, source):
    _status(alpha, order, source)
    response = gql.post(
        CANCEL, {"id": gid(alpha, "Order", order.pk)}, host=alpha.host, token=staff(alpha)
    )
    payload = response.data["orderCancel"]
    if source in CANCELLABLE:
        assert payload["userErrors"] == [] and payload["order"]["status"] == "CANCELLED"
        assert payload["order"]["cancelledAt"] is not None
    else:
        assert [(e["field"], e["code"]) for e in payload["userErrors"]] == [
            ("id", "ILLEGAL_TRANSITION")
        ]
        with tenant_context(alpha.tenant):
            assert Order.objects.get(pk=order.pk).status == source


def test_cancelling_a_pending_order_releases_its_stock_and_uncounts_it(gql, alpha, order):
    skus = [line.sku for line in _lines(alpha, order)]
    assert _stock(alpha, *skus) == [3, 4] and _customer(alpha) == (1, "56.50")
    payload = gql.post(
        CANCEL, {"id": gid(alpha, "Order", order.pk)}, host=alpha.host, token=staff(alpha)
    ).data["orderCancel"]
    assert (
        payload["order"]["refunds"] == [] and payload["order"]["refundedTotal"]["amount"] == "0.00"
    )
    assert _stock(alpha, *skus) == [5, 5]
    assert _customer(alpha) == (0, "0.00")
    with tenant_context(alpha.tenant):
        assert OrderEvent.objects.filter(
            order_id=order.pk, type="cancelled", to_status="cancelled"
        ).exists()
        assert AuditEntry.objects.filter(action="order.cancel", object_id=str(order.pk)).exists()
    again = gql.post(
        CANCEL, {"id": gid(alpha, "Order", order.pk)}, host=alpha.host, token=staff(alpha)
    ).data["orderCancel"]
    assert again["userErrors"][0]["code"] == "ILLEGAL_TRANSITION" and _stock(alpha, *skus) == [5, 5]


def test_cancelling_a_paid_order_refunds_it_in_full_and_may_keep_the_stock(gql, alpha, order):
    skus = [line.sku for line in _lines(alpha, order)]
    _status(alpha, order, "paid")
    payload = gql.post(
        CANCEL,
        {"id": gid(alpha, "Order", order.pk), "restock": False},
        host=alpha.host,
        token=staff(alpha),
    ).data["orderCancel"]
    assert payload["userErrors"] == []
    assert payload["order"]["refundedTotal"]["amount"] == "56.50"
    assert payload["order"]["refunds"] == [
        {
            "amount": {"amount": "56.50"},
            "lines": [
                {"quantity": 2, "orderLine": {"sku": skus[0]}},
                {"quantity": 1, "orderLine": {"sku": skus[1]}},
            ],
        }
    ]
    assert _stock(alpha, *skus) == [3, 4]  # restock: false
    assert _customer(alpha) == (0, "0.00")


# --- refunds --------------------------------------------------------------------------------------


@pytest.mark.parametrize("source", STATUSES)
def test_only_paid_fulfilled_delivered_and_partially_refunded_orders_are_refunded(
    gql, alpha, order, source
):
    _status(alpha, order, source)
    payload = _refund(gql, alpha, order, amount="1.00")
    if source in REFUNDABLE:
        assert payload["userErrors"] == [] and payload["order"]["status"] == "PARTIALLY_REFUNDED"
    else:
        assert [(e["field"], e["code"]) for e in payload["userErrors"]] == [
            ("order", "NOT_REFUNDABLE")
        ]
        with tenant_context(alpha.tenant):
            assert not Refund.objects.filter(order_id=order.pk).exists()


def test_refunds_by_lines_then_amount_until_nothing_is_left(gql, alpha, order):
    first, second = _lines(alpha, order)
    _status(alpha, order, "delivered")
    # one of the two units of the first line: half its share of 19.80
    one = _refund(
        gql,
        alpha,
        order,
        lines=[{"line": gid(alpha, "OrderLine", first.pk), "quantity": 1}],
        reason="too small",
        restock=True,
    )
    assert one["userErrors"] == []
    assert one["refund"]["amount"] == {"amount": "9.90", "currency": "USD"}
    assert one["refund"]["lines"] == [
        {"quantity": 1, "amount": {"amount": "9.90"}, "orderLine": {"sku": first.sku}}
    ]
    assert (
        one["order"]["status"] == "PARTIALLY_REFUNDED"
        and one["order"]["refundedTotal"]["amount"] == "9.90"
    )
    assert one["order"]["lines"] == [
        {"sku": first.sku, "refundedQuantity": 1},
        {"sku": second.sku, "refundedQuantity": 0},
    ]
    assert _stock(alpha, first.sku, second.sku) == [4, 4]
    assert _customer(alpha) == (1, "46.60")
    # the rest of the goods: 9.90 + 29.70, without restocking
    rest = _refund(
        gql,
        alpha,
        order,
        lines=[
            {"line": gid(alpha, "OrderLine", first.pk), "quantity": 1},
            {"line": gid(alpha, "OrderLine", second.pk), "quantity": 1},
        ],
    )
    assert (
        rest["refund"]["amount"]["amount"] == "39.60"
        and rest["order"]["status"] == "PARTIALLY_REFUNDED"
    )
    assert _stock(alpha, first.sku, second.sku) == [4, 4]
    # every unit is back: more units are refused; the shipping is left, as an amount
    more = _refund(
        gql, alpha, order, lines=[{"line": gid(alpha, "OrderLine", first.pk), "quantity": 1}]
    )
    assert [(e["field"], e["code"]) for e in more["userErrors"]] == [
        ("lines.0.quantity", "OVER_REFUND")
    ]
    too_much = _refund(gql, alpha, order, amount="7.01")
    assert [(e["field"], e["code"]) for e in too_much["userErrors"]] == [("amount", "OVER_REFUND")]
    shipping = _refund(gql, alpha, order, amount="7.00", reason="shipping")
    assert (
        shipping["order"]["status"] == "REFUNDED"
        and shipping["order"]["refundedTotal"]["amount"] == "56.50"
    )
    assert _customer(alpha) == (1, "0.00")  # a refunded order still counts; it spent nothing
    after = _refund(gql, alpha, order, amount="0.01")
    assert after["userErrors"][0]["code"] == "NOT_REFUNDABLE"
    with tenant_context(alpha.tenant):
        assert Refund.objects.filter(order_id=order.pk).count() == 3
        assert AuditEntry.objects.filter(action="refund.create").count() == 3
        assert list(
            OrderEvent.objects.filter(order_id=order.pk, type="refunded").values_list(
                "to_status", flat=True
            )
        ) == ["partially_refunded", "partially_refunded", "refunded"]


def test_lines_refunded_for_a_given_amount(gql, alpha, order):
    first, second = _lines(alpha, order)
    _status(alpha, order, "paid")
    payload = _refund(
        gql,
        alpha,
        order,
        amount="20.00",
        restock=True,
        lines=[
            {"line": gid(alpha, "OrderLine", first.pk), "quantity": 2},
            {"line": gid(alpha, "OrderLine", second.pk), "quantity": 1},
        ],
    )
    assert payload["refund"]["amount"]["amount"] == "20.00"
    # the amount is split over the lines by their worth (19.80 : 29.70)
    assert [line["amount"]["amount"] for line in payload["refund"]["lines"]] == ["8.00", "12.00"]
    assert _stock(alpha, first.sku, second.sku) == [5, 5]


REFUND_ERRORS = {
    "nothing": ({}, "lines", "INVALID"),
    "restock without lines": ({"amount": "1.00", "restock": True}, "restock", "INVALID"),
    "zero quantity": ({"lines": [{"line": "FIRST", "quantity": 0}]}, "lines.0.quantity", "INVALID"),
    "more units than sold": (
        {"lines": [{"line": "FIRST", "quantity": 3}]},
        "lines.0.quantity",
        "OVER_REFUND",
    ),
    "more than paid": ({"amount": "56.51"}, "amount", "OVER_REFUND"),
    "zero amount": ({"amount": "0"}, "amount", "NOTHING_TO_REFUND"),
    "negative amount": ({"amount": "-5"}, "amount", "NEGATIVE"),
    "three decimals": ({"amount": "1.001"}, "amount", "TOO_PRECISE"),
    "line of another order": (
        {"lines": [{"line": "OTHER", "quantity": 1}]},
        "lines.0.line",
        "NOT_FOUND",
    ),
    "unknown order": ({"order": "UNKNOWN", "amount": "1.00"}, "order", "NOT_FOUND"),
    "long reason": ({"amount": "1.00", "reason": "x" * 201}, "reason", "TOO_LONG"),
}


@pytest.mark.parametrize("case", REFUND_ERRORS, ids=list(REFUND_ERRORS))
def test_bad_refunds_are_user_errors_and_write_nothing(gql, alpha, order, case):
    first, _ = _lines(alpha, order)
    with tenant_context(alpha.tenant):
        other = shop.place(
            alpha, [(Variant.objects.get(sku=first.sku), 1)], email="other@example.com"
        )
        other_line = other.lines.get()
    _status(alpha, order, "paid")
    changes, field, code = REFUND_ERRORS[case]
    names = {
        "FIRST": gid(alpha, "OrderLine", first.pk),
        "OTHER": gid(alpha, "OrderLine", other_line.pk),
    }
    if "order" in changes:
        changes = {**changes, "order": gid(alpha, "Order", 999999)}
    if "lines" in changes:
        changes = {
            **changes,
            "lines": [{**line, "line": names[line["line"]]} for line in changes["lines"]],
        }
    stock_before, customer_before = _stock(alpha, first.sku), _customer(alpha)
    payload = _refund(gql, alpha, order, **changes)
    assert payload["refund"] is None
    assert [(e["field"], e["code"]) for e in payload["userErrors"]] == [(field, code)], payload
    with tenant_context(alpha.tenant):
        stored = Order.objects.get(pk=order.pk)
        assert (stored.status, stored.refunded_total) == ("paid", Decimal("0.00"))
        assert (
            not Refund.objects.exists()
            and not AuditEntry.objects.filter(action="refund.create").exists()
        )
        assert not OrderLine.objects.filter(refunded_quantity__gt=0).exists()
    assert (_stock(alpha, first.sku), _customer(alpha)) == (stock_before, customer_before)


@pytest.mark.parametrize("role", ["viewer", "analyst"])
def test_readers_cannot_change_orders(gql, alpha, order, role):
    token = token_for(alpha.email(role), alpha.tenant)
    _status(alpha, order, "paid")
    for query, variables in [
        (UPDATE, {"id": gid(alpha, "Order", order.pk), "status": "FULFILLED"}),
        (CANCEL, {"id": gid(alpha, "Order", order.pk)}),
        (REFUND, {"input": {"order": gid(alpha, "Order", order.pk), "amount": "1.00"}}),
    ]:
        response = gql.post(query, variables, host=alpha.host, token=token)
        assert response.codes == ["FORBIDDEN"] and response.data is None
    with tenant_context(alpha.tenant):
        stored = Order.objects.get(pk=order.pk)
        assert (stored.status, stored.refunded_total) == ("paid", Decimal("0.00"))


def test_staff_move_cancel_and_refund(gql, alpha, order):
    token = token_for(alpha.email("staff"), alpha.tenant)
    paid = gql.post(
        UPDATE,
        {"id": gid(alpha, "Order", order.pk), "status": "PAID"},
        host=alpha.host,
        token=token,
    )
    assert paid.data["orderUpdateStatus"]["order"]["status"] == "PAID"
    refunded = _refund(gql, alpha, order, token=token, amount="6.50")
    assert refunded["order"]["refundedTotal"]["amount"] == "6.50"
    with tenant_context(alpha.tenant):
        actions = set(
            AuditEntry.objects.filter(actor_email=alpha.email("staff")).values_list(
                "action", flat=True
            )
        )
    assert {"order.create", "order.update_status", "refund.create"} <= actions
