"""Property tests of the order state machine and refund arithmetic: random orders go through
random sequences of status changes, cancellations and refunds (by lines, by amount, both), and
after every step the figures hold: nothing negative, refunds never above what was paid, the
status says what the refunds say, stock and customer statistics add up, money is Decimal to
the cent, and a refused step changes nothing."""

from __future__ import annotations

from decimal import ROUND_DOWN, Decimal

from django.db import transaction
from django_tenants.utils import tenant_context
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from apps.catalog.models import Variant
from apps.common.errors import UserError
from apps.common.money import CENT
from apps.customers.models import Customer
from apps.orders import services
from apps.orders.models import Order, OrderLine, Refund, RefundLine
from tests.apps.orders import shop

STATUSES = [
    "pending",
    "paid",
    "fulfilled",
    "delivered",
    "cancelled",
    "partially_refunded",
    "refunded",
]
BY_UPDATE = {("pending", "paid"), ("paid", "fulfilled"), ("fulfilled", "delivered")}
CANCELLABLE = {"pending", "paid"}
REFUNDABLE = {"paid", "fulfilled", "delivered", "partially_refunded"}
STOCK = 50

cents = st.integers(min_value=0, max_value=50_000).map(lambda n: Decimal(n) / 100)
line_picks = st.lists(st.tuples(st.integers(0, 2), st.integers(0, 6)), min_size=1, max_size=3)
NEXT = {"pending": "paid", "paid": "fulfilled", "fulfilled": "delivered"}
steps = st.lists(
    st.one_of(
        st.tuples(st.just("update"), st.sampled_from(STATUSES)),
        st.just(("update", "next")),  # the next status along, so that orders get somewhere
        st.tuples(st.just("cancel"), st.booleans()),
        st.tuples(st.just("refund_lines"), line_picks, st.booleans()),
        st.tuples(st.just("refund_lines"), line_picks, st.booleans()),
        st.tuples(
            st.just("refund_amount"), st.integers(-100, 60_000).map(lambda n: Decimal(n) / 100)
        ),
        st.just(("refund_amount", "rest")),  # exactly what is left
        st.just(("refund_lines", "rest", False)),  # every unit not refunded yet
        st.tuples(st.just("refund_both"), line_picks, cents),
    ),
    max_size=12,
)
orders = st.fixed_dictionaries(
    {
        "lines": st.lists(st.tuples(cents, st.integers(1, 5)), min_size=1, max_size=3),
        "discount_share": st.integers(0, 100),  # percent of the subtotal
        "tax_rate": st.integers(0, 2500).map(lambda n: Decimal(n) / 100),
        "shipping": cents,
    }
)


def _is_money(value) -> bool:
    return isinstance(value, Decimal) and value.is_finite() and value == value.quantize(CENT)


def _state(order: Order) -> tuple:
    order.refresh_from_db()
    return (
        order.status,
        order.refunded_total,
        tuple(OrderLine.objects.filter(order=order).values_list("refunded_quantity", flat=True)),
        Refund.objects.filter(order=order).count(),
        tuple(Variant.objects.order_by("pk").values_list("stock", flat=True)),
        tuple(
            Customer.objects.filter(pk=order.customer_id)
            .values_list("orders_count", "total_spent")
            .get()
        ),
    )


def _check(order: Order, variants: list[Variant], restocked: dict[int, int]) -> None:
    order.refresh_from_db()
    money = [
        order.subtotal,
        order.discount_total,
        order.tax_total,
        order.shipping_total,
        order.total,
        order.refunded_total,
    ]
    assert all(_is_money(value) and value >= 0 for value in money)
    assert (
        order.total
        == order.subtotal - order.discount_total + order.tax_total + order.shipping_total
    )
    assert order.refunded_total <= order.total
    refunds = list(Refund.objects.filter(order=order))
    assert all(_is_money(refund.amount) and refund.amount > 0 for refund in refunds)
    assert sum((refund.amount for refund in refunds), Decimal("0.00")) == order.refunded_total
    for refund in refunds:
        parts = list(RefundLine.objects.filter(refund=refund).values_list("amount", flat=True))
        assert not parts or sum(parts) == refund.amount
        assert all(_is_money(part) and part >= 0 for part in parts)
    for line in OrderLine.objects.filter(order=order):
        refunded = sum(
            RefundLine.objects.filter(order_line=line).values_list("quantity", flat=True)
        )
        assert line.refunded_quantity == refunded <= line.quantity
    # the status says what the refunds say
    if order.status == "refunded":
        assert order.refunded_total == order.total
    elif order.status == "partially_refunded":
        assert 0 < order.refunded_total < order.total
    elif order.status == "cancelled":
        assert order.refunded_total in (0, order.total)
    else:
        assert order.refunded_total == 0
    # stock: what was sold left, what was restocked came back, never below zero
    sold = {line.variant_id: line.quantity for line in OrderLine.objects.filter(order=order)}
    for variant in variants:
        stock = Variant.objects.get(pk=variant.pk).stock
        assert stock == STOCK - sold.get(variant.pk, 0) + restocked.get(variant.pk, 0) >= 0
    # the customer: counted unless cancelled, spent what is left of the total
    customer = Customer.objects.get(pk=order.customer_id)
    if order.status == "cancelled":
        assert (customer.orders_count, customer.total_spent) == (0, 0)
    else:
        assert (customer.orders_count, customer.total_spent) == (
            1,
            order.total - order.refunded_total,
        )


def _apply(order: Order, step: tuple, restocked: dict[int, int]) -> None:
    """Run one step; check that it was allowed exactly when the specification allows it and,
    when refused, that it changed nothing."""
    kind, *args = step
    lines = list(OrderLine.objects.filter(order=order))
    before = _state(order)
    status = before[0]
    if args == ["next"]:
        args = [NEXT.get(status, "paid")]
    if args[0] == "rest":
        rest = [(i, line.quantity - line.refunded_quantity) for i, line in enumerate(lines)]
        args[0] = (
            order.total - before[1] if kind == "refund_amount" else [(i, n) for i, n in rest if n]
        )
    try:
        if kind == "update":
            services.update_status(actor=None, order_id=order.pk, status=args[0])
            assert (status, args[0]) in BY_UPDATE
        elif kind == "cancel":
            services.cancel_order(actor=None, order_id=order.pk, restock=args[0])
            assert status in CANCELLABLE
            if args[0]:
                for line in lines:
                    restocked[line.variant_id] = restocked.get(line.variant_id, 0) + line.quantity
        else:
            picks = args[0] if kind != "refund_amount" else []
            requests = [services.RefundLineRequest(lines[i % len(lines)].pk, n) for i, n in picks]
            restock = kind == "refund_lines" and args[1]
            amount = None if kind == "refund_lines" else args[-1]
            refund = services.create_refund(
                actor=None, order_id=order.pk, lines=requests, amount=amount, restock=restock
            )
            assert status in REFUNDABLE and _is_money(refund.amount)
            assert refund.amount <= order.total - before[1]  # never more than was left
            if restock:
                for line in lines:
                    back = sum(n for i, n in picks if lines[i % len(lines)].pk == line.pk)
                    restocked[line.variant_id] = restocked.get(line.variant_id, 0) + back
        event(f"{kind}: done")
    except UserError as error:
        event(f"{kind}: refused {error.code}")
        assert _state(order) == before
        if kind == "update":
            assert (status, args[0]) not in BY_UPDATE
        elif kind == "cancel":
            assert status not in CANCELLABLE


@settings(
    deadline=None, max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(order_spec=orders, paid_first=st.booleans(), plan=steps)
def test_orders_stay_consistent_through_any_sequence_of_changes(
    alpha, order_spec, paid_first, plan
):
    with tenant_context(alpha.tenant), transaction.atomic():
        variants = [shop.variant(str(price), stock=STOCK) for price, _ in order_spec["lines"]]
        subtotal = sum(price * quantity for price, quantity in order_spec["lines"])
        discount = (subtotal * order_spec["discount_share"] / 100).quantize(
            CENT, rounding=ROUND_DOWN
        )
        order = shop.place(
            alpha,
            [(v, q) for v, (_, q) in zip(variants, order_spec["lines"], strict=True)],
            discount=discount,
            tax_rate=order_spec["tax_rate"],
            shipping=order_spec["shipping"],
        )
        restocked: dict[int, int] = {}
        _check(order, variants, restocked)
        for step in [("update", "paid")] * paid_first + plan:
            _apply(order, step, restocked)
            _check(order, variants, restocked)
        event(f"ended {order.status}")
        transaction.set_rollback(True)  # examples do not pile up


@settings(max_examples=300)
@given(amount=cents, weights=st.lists(cents, min_size=1, max_size=6))
def test_allocation_is_exact_to_the_cent_and_never_negative(amount, weights):
    shares = services.allocate(amount, weights)
    assert sum(shares) == amount and all(_is_money(share) and share >= 0 for share in shares)
    whole = sum(weights) or len(weights)
    for share, weight in zip(shares, weights if sum(weights) else [1] * len(weights), strict=True):
        assert abs(share - amount * weight / whole) < CENT
