"""Writes for orders: placing them (stock reserved atomically), moving them through the status
machine (apps.orders.status), cancelling and refunding them. Each is one transaction that also
writes an OrderEvent and an audit entry, and ends by sending its hook (apps.orders.hooks): the
analytics rollups follow in the transaction, the live bus after the commit.

Customer statistics (`apps.customers.services.record_order`) follow in the same transaction:
placing an order counts it and adds its total to the customer's spend; a refund takes its amount
off the spend (the order still counts); cancelling un-counts the order and takes off what is
left of its total. So `orders_count` is the orders placed and not cancelled, and `total_spent`
what they come to net of refunds.

Locks are always taken in one order, so that writers never deadlock: the order row, variants by
id, the order-number counter, the customer row (a customer created from an email is inserted
before any of these, and only another order for the same new email waits on it).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_DOWN, Decimal
from typing import TYPE_CHECKING

from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from apps.audit import services as audit
from apps.catalog.models import Product, Variant
from apps.common.actors import Actor
from apps.common.errors import NotFound, UserError
from apps.common.money import CENT, ZERO, quantize
from apps.common.rules import MAX_MONEY, money
from apps.customers import services as customers
from apps.customers.models import Customer
from apps.orders import hooks
from apps.orders import status as machine
from apps.orders.errors import OrderErrorCode
from apps.orders.models import Order, OrderCounter, OrderEvent, OrderLine, Refund, RefundLine

if TYPE_CHECKING:
    from tenants.models import Tenant

MAX_LINES = 100
MAX_QUANTITY = 10_000
MAX_NOTE = 5_000
MAX_REASON = 200  # Refund.reason
MAX_REQUEST_KEY = 255  # Refund.request_key
HUNDRED = Decimal(100)


@dataclass(frozen=True)
class LineRequest:
    variant_id: int
    quantity: int


@dataclass(frozen=True)
class RefundLineRequest:
    line_id: int
    quantity: int


# --- input checks ---------------------------------------------------------------------------------


def _tax_rate(value: Decimal | None) -> Decimal:
    if value is None:
        return ZERO
    if not value.is_finite() or not ZERO <= value <= HUNDRED:
        raise UserError(
            "The tax rate is a percentage from 0 to 100.",
            field="taxRate",
            code=OrderErrorCode.INVALID,
        )
    return value


def _quantities(requests: Sequence, key: str, field: str, noun: str) -> dict[int, int]:
    """{id: quantity} from requests, in the order given, with repeats of one id added up."""
    if not requests:
        raise UserError(f"Add at least one {noun}.", field=field, code=OrderErrorCode.INVALID)
    if len(requests) > MAX_LINES:
        raise UserError(f"At most {MAX_LINES} {noun}s.", field=field, code=OrderErrorCode.INVALID)
    merged: dict[int, int] = {}
    for index, request in enumerate(requests):
        if not 0 < request.quantity <= MAX_QUANTITY:
            raise UserError(
                f"The quantity must be 1 to {MAX_QUANTITY}.",
                field=f"{field}.{index}.quantity",
                code=OrderErrorCode.INVALID,
            )
        object_id = getattr(request, key)
        merged[object_id] = merged.get(object_id, 0) + request.quantity
        if merged[object_id] > MAX_QUANTITY:
            raise UserError(
                f"The quantity must be 1 to {MAX_QUANTITY}.",
                field=f"{field}.{index}.quantity",
                code=OrderErrorCode.INVALID,
            )
    return merged


def _index_of(requests: Sequence, key: str, object_id: int) -> int:
    return next(i for i, request in enumerate(requests) if getattr(request, key) == object_id)


def actor_label(actor: Actor) -> str:
    """How records name who did something: the user's email, or the API key's prefix."""
    user = getattr(actor, "user", actor)
    email = getattr(user, "email", "")
    if email:
        return email
    api_key = getattr(actor, "api_key", None)
    return f"API key {api_key.prefix}" if api_key is not None else ""


# --- money ----------------------------------------------------------------------------------------


def allocate(amount: Decimal, weights: Sequence[Decimal]) -> list[Decimal]:
    """Split `amount` in proportion to `weights` (evenly when they are all zero), to the cent,
    summing to exactly `amount`: largest remainders get the leftover cents, so no share is
    negative or off by more than a cent."""
    if not sum(weights):
        weights = [Decimal(1)] * len(weights)
    whole = sum(weights)
    exact = [amount * weight / whole for weight in weights]
    shares = [part.quantize(CENT, rounding=ROUND_DOWN) for part in exact]
    leftover = int((amount - sum(shares)) / CENT)
    by_remainder = sorted(range(len(exact)), key=lambda i: (shares[i] - exact[i], i))
    for index in by_remainder[:leftover]:
        shares[index] += CENT
    return shares


def line_shares(
    *, total: Decimal, shipping: Decimal, line_totals: Sequence[Decimal]
) -> list[Decimal]:
    """What each line's goods came to in an order's total: the total without shipping, split
    over the lines by their value (discount and tax fall on lines in proportion)."""
    return allocate(total - shipping, list(line_totals))


def units_worth(share: Decimal, *, quantity: int, refunded: int, units: int) -> Decimal:
    """What refunding `units` more units of a line is worth, given the line's `share` of the
    order's total, its `quantity` and the units `refunded` already: the difference of two points
    on the share, so that refunding every unit, in any steps, comes to the share exactly. The
    one rule for refunds (here) and for the demo data (apps.provisioning.seeding)."""

    def worth(count: int) -> Decimal:
        return share if count == quantity else quantize(share * count / quantity)

    return worth(refunded + units) - worth(refunded)


def _line_shares(order: Order, lines: Sequence[OrderLine]) -> dict[int, Decimal]:
    shares = line_shares(
        total=order.total, shipping=order.shipping_total, line_totals=[line.total for line in lines]
    )
    return dict(zip([line.pk for line in lines], shares, strict=True))


# --- stock ----------------------------------------------------------------------------------------


def _reserve(
    variants: dict[int, Variant], quantities: dict[int, int], requests: Sequence[LineRequest]
) -> None:
    """Take the units off stock, variant by variant in id order (one lock order for every
    writer, so no deadlocks); the conditional UPDATE is what makes overselling impossible."""
    for variant_id in sorted(quantities):
        wanted = quantities[variant_id]
        taken = Variant.objects.filter(pk=variant_id, stock__gte=wanted).update(
            stock=F("stock") - wanted
        )
        if not taken:
            left = (
                Variant.objects.filter(pk=variant_id).values_list("stock", flat=True).first() or 0
            )
            raise UserError(
                f"Not enough stock for {variants[variant_id].sku}: {wanted} wanted, {left} left.",
                field=f"lines.{_index_of(requests, 'variant_id', variant_id)}.quantity",
                code=OrderErrorCode.INSUFFICIENT_STOCK,
            )


def _restock(units: Iterable[tuple[int | None, int]]) -> None:
    """Put (variant id, units) back on stock, in variant id order; lines whose variant was
    deleted since are skipped."""
    back: dict[int, int] = {}
    for variant_id, quantity in units:
        if variant_id is not None and quantity:
            back[variant_id] = back.get(variant_id, 0) + quantity
    for variant_id in sorted(back):
        Variant.objects.filter(pk=variant_id).update(stock=F("stock") + back[variant_id])


# --- placing orders --------------------------------------------------------------------------------


def _next_number() -> int:
    """The next order number. The counter row stays locked until the order's transaction ends,
    and a rolled-back order gives its number back: numbers are sequential without gaps."""
    table = connection.ops.quote_name(OrderCounter._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (id, last) VALUES (1, 1) "
            f"ON CONFLICT (id) DO UPDATE SET last = {table}.last + 1 RETURNING last"
        )
        return cursor.fetchone()[0]


def _customer(*, actor: Actor, customer_id: int | None, email: str | None) -> Customer:
    """The order's customer: an existing one by id, or by email, which creates the customer
    when this email has never ordered before (guest checkout)."""
    if (customer_id is None) == (not email):
        raise UserError(
            "Give either a customer or an email.", field="customer", code=OrderErrorCode.INVALID
        )
    if customer_id is not None:
        customer = Customer.objects.filter(pk=customer_id).first()
        if customer is None:
            raise NotFound("No such customer.", field="customer")
        return customer
    email = customers.clean_email(email)
    customer = Customer.objects.filter(email=email).first()
    if customer is None:
        try:
            customer = customers.create_customer(actor=actor, email=email)
        except UserError as error:
            if error.code != "DUPLICATE":
                raise
            customer = Customer.objects.get(email=email)  # a concurrent order created it first
    return customer


@transaction.atomic
def create_order(
    *,
    actor: Actor,
    tenant: Tenant,
    lines: Sequence[LineRequest],
    customer_id: int | None = None,
    email: str | None = None,
    discount: Decimal | None = None,
    shipping: Decimal | None = None,
    tax_rate: Decimal | None = None,
    note: str = "",
    placed_at: datetime | None = None,
) -> Order:
    """Place an order in the tenant's currency: reserve the stock, snapshot what is sold, number
    the order. `tax_rate` is a percentage of the subtotal after the discount; shipping is not
    taxed. `placed_at` (default now) is for orders imported from an earlier system. Anything
    wrong raises a UserError and nothing is kept."""
    if placed_at is not None and (timezone.is_naive(placed_at) or placed_at > timezone.now()):
        raise UserError(
            "An order's time is a past, timezone-aware time.",
            field="placedAt",
            code=OrderErrorCode.INVALID,
        )
    quantities = _quantities(lines, "variant_id", "lines", "line")
    discount, shipping, rate = (
        money(discount, field="discount") or ZERO,
        money(shipping, field="shipping") or ZERO,
        _tax_rate(tax_rate),
    )
    if len(note) > MAX_NOTE:
        raise UserError(
            f"Keep the note under {MAX_NOTE} characters.",
            field="note",
            code=OrderErrorCode.TOO_LONG,
        )

    variants = Variant.objects.select_related("product").in_bulk(list(quantities))
    for index, request in enumerate(lines):
        variant = variants.get(request.variant_id)
        if variant is None:
            raise NotFound("No such variant.", field=f"lines.{index}.variant")
        if variant.product.status != Product.Status.ACTIVE:
            raise UserError(
                f"{variant.product.name} is not for sale ({variant.product.status}).",
                field=f"lines.{index}.variant",
                code=OrderErrorCode.NOT_FOR_SALE,
            )
    snapshot = [
        OrderLine(
            variant=variant,
            product_id=variant.product_id,
            product_name=variant.product.name,
            variant_name=variant.name,
            sku=variant.sku,
            unit_price=variant.price,
            quantity=quantity,
            total=quantize(variant.price * quantity),
        )
        for variant, quantity in ((variants[pk], quantity) for pk, quantity in quantities.items())
    ]
    subtotal = sum((line.total for line in snapshot), ZERO)
    if discount > subtotal:
        raise UserError(
            f"The discount cannot be more than the subtotal ({subtotal}).",
            field="discount",
            code=OrderErrorCode.INVALID,
        )
    tax = quantize((subtotal - discount) * rate / HUNDRED)
    total = subtotal - discount + tax + shipping
    if total > MAX_MONEY:
        raise UserError(
            "This order's total is too large.", field="lines", code=OrderErrorCode.TOO_LARGE
        )

    customer = _customer(actor=actor, customer_id=customer_id, email=email)
    _reserve(variants, quantities, lines)
    order = Order.objects.create(
        number=_next_number(),
        customer_id=customer.pk,  # not the instance: its statistics change below, in SQL
        email=customer.email,
        currency=tenant.currency,
        subtotal=subtotal,
        discount_total=discount,
        tax_total=tax,
        shipping_total=shipping,
        total=total,
        note=note,
        placed_at=placed_at or timezone.now(),
    )
    for line in snapshot:
        line.order = order
    OrderLine.objects.bulk_create(snapshot)
    _event(order, actor, "placed", to_status=order.status, total=str(total), lines=len(snapshot))
    audit.record(
        actor=actor,
        action="order.create",
        obj=order,
        changes={
            "number": order.number,
            "total": str(total),
            "lines": [{"sku": line.sku, "quantity": line.quantity} for line in snapshot],
        },
    )
    customers.record_order(
        customer_id=customer.pk, counted=1, spent=total, placed_at=order.placed_at
    )
    hooks.order_placed.send(order=order)
    return order


# --- status changes, cancellation, refunds ---------------------------------------------------------


def _locked(order_id: int, *, field: str = "id") -> Order:
    order = Order.objects.select_for_update().filter(pk=order_id).first()
    if order is None:
        raise NotFound("No such order.", field=field)
    return order


def _event(
    order: Order, actor: Actor, kind: str, *, from_status: str = "", to_status: str = "", **data
) -> None:
    OrderEvent.objects.create(
        order=order,
        type=kind,
        from_status=from_status,
        to_status=to_status,
        data=data,
        actor_email=actor_label(actor),
    )


def _move(order: Order, target: str, cause: machine.Cause, *, field: str = "status") -> str:
    """Check and apply a transition (with its timestamp) on the locked order; returns the
    status it left. The caller saves the order."""
    machine.check(order.status, target, cause, field=field)
    before, order.status = order.status, target
    if target in machine.STAMPS:
        setattr(order, machine.STAMPS[target], timezone.now())
    return before


@transaction.atomic
def update_status(*, actor: Actor, order_id: int, status: str) -> Order:
    """Move an order along pending → paid → fulfilled → delivered (one step at a time)."""
    order = _locked(order_id)
    before = _move(order, status, machine.Cause.UPDATE)
    order.save()
    _event(order, actor, "status_changed", from_status=before, to_status=status)
    audit.record(
        actor=actor, action="order.update_status", obj=order, changes={"status": [before, status]}
    )
    hooks.order_status_changed.send(order=order, before=before)
    return order


def _values(order: Order, lines: Sequence[OrderLine], units: dict[OrderLine, int]) -> list[Decimal]:
    """What refunding `units` of the order's `lines` is worth, line by line."""
    shares = _line_shares(order, lines)
    return [
        units_worth(
            shares[line.pk], quantity=line.quantity, refunded=line.refunded_quantity, units=quantity
        )
        for line, quantity in units.items()
    ]


def _refund(
    order: Order,
    actor: Actor,
    *,
    lines: Sequence[OrderLine],
    units: dict[OrderLine, int],
    amount: Decimal,
    reason: str,
    restock: bool,
    request_key: str = "",
) -> Refund:
    """Record a refund of `amount` (and of `units` of the order's `lines`) on the locked order
    and take it off the customer's spend. The caller has checked the figures and moves the
    status."""
    refund = Refund.objects.create(
        order=order,
        amount=amount,
        reason=reason,
        restock=restock,
        actor_email=actor_label(actor),
        request_key=request_key,
    )
    if units:
        parts = allocate(amount, _values(order, lines, units))
        RefundLine.objects.bulk_create(
            RefundLine(refund=refund, order_line=line, quantity=quantity, amount=part)
            for (line, quantity), part in zip(units.items(), parts, strict=True)
        )
        for line, quantity in units.items():
            line.refunded_quantity += quantity
        OrderLine.objects.bulk_update(list(units), ["refunded_quantity"])
        if restock:
            _restock((line.variant_id, quantity) for line, quantity in units.items())
    order.refunded_total += amount
    if order.customer_id is not None:
        customers.record_order(
            customer_id=order.customer_id, counted=0, spent=-amount, placed_at=None
        )
    return refund


@transaction.atomic
def cancel_order(*, actor: Actor, order_id: int, restock: bool = True, reason: str = "") -> Order:
    """Cancel a pending or paid order. A paid order is refunded in full (a Refund of its total
    for all its lines); `restock` puts its units back on stock."""
    if len(reason) > MAX_REASON:
        raise UserError(
            f"Keep the reason under {MAX_REASON} characters.",
            field="reason",
            code=OrderErrorCode.TOO_LONG,
        )
    order = _locked(order_id)
    before = _move(order, machine.CANCELLED, machine.Cause.CANCEL, field="id")
    lines = list(order.lines.all())
    if before == machine.PAID and order.total > 0:
        _refund(
            order,
            actor,
            lines=lines,
            units={line: line.quantity for line in lines},
            amount=order.total,
            reason=reason or "order cancelled",
            restock=restock,
        )
    elif restock:
        _restock((line.variant_id, line.quantity) for line in lines)
    order.save()
    _event(
        order,
        actor,
        "cancelled",
        from_status=before,
        to_status=order.status,
        restock=restock,
        refunded=str(order.refunded_total),
        reason=reason,
    )
    audit.record(
        actor=actor,
        action="order.cancel",
        obj=order,
        changes={
            "status": [before, order.status],
            "restock": restock,
            "refunded": str(order.refunded_total),
        },
    )
    if order.customer_id is not None:
        customers.record_order(
            customer_id=order.customer_id,
            counted=-1,
            spent=-(order.total - order.refunded_total),
            placed_at=None,
        )
    hooks.order_cancelled.send(order=order, before=before)
    return order


def checked_request_key(value: str | None) -> str:
    """A caller's key for a refund request, checked (empty: none)."""
    value = (value or "").strip()
    if len(value) > MAX_REQUEST_KEY:
        raise UserError(
            f"Keep the request key under {MAX_REQUEST_KEY} characters.",
            field="requestKey",
            code=OrderErrorCode.TOO_LONG,
        )
    return value


def refund_for_key(order: Order, key: str) -> Refund | None:
    """The refund a request with `key` made on the (locked) order already: a retried request.
    Call it after locking the order, so a concurrent first request has committed or not."""
    if not key:
        return None
    done = Refund.objects.filter(request_key=key).first()
    if done is not None and done.order_id != order.pk:
        raise UserError(
            "This request key was used for another order's refund.",
            field="requestKey",
            code=OrderErrorCode.KEY_REUSED,
        )
    return done


@transaction.atomic
def create_refund(
    *,
    actor: Actor,
    order_id: int,
    lines: Sequence[RefundLineRequest] = (),
    amount: Decimal | None = None,
    reason: str = "",
    restock: bool = False,
    request_key: str = "",
) -> Refund:
    """Refund units of lines (worth their share of the order's total, discount and tax
    included), or an amount (shipping, goodwill), or units for a given amount. Never more than
    is left of what was paid; the order becomes partially refunded, or refunded when nothing is
    left. `restock` puts the refunded units back on stock. A retried request with the same
    `request_key` gets the refund the first one made and changes nothing."""
    key = checked_request_key(request_key)
    if not lines and amount is None:
        raise UserError(
            "Give the lines to refund, an amount, or both.",
            field="lines",
            code=OrderErrorCode.INVALID,
        )
    wanted = _quantities(lines, "line_id", "lines", "line") if lines else {}
    if restock and not wanted:
        raise UserError(
            "Restocking needs the lines whose units come back.",
            field="restock",
            code=OrderErrorCode.INVALID,
        )
    if amount is not None:
        amount = money(amount, field="amount") or ZERO
    if len(reason) > MAX_REASON:
        raise UserError(
            f"Keep the reason under {MAX_REASON} characters.",
            field="reason",
            code=OrderErrorCode.TOO_LONG,
        )

    order = _locked(order_id, field="order")
    if (done := refund_for_key(order, key)) is not None:
        return done
    if order.status not in machine.REFUNDABLE:
        raise UserError(
            f"A {order.status} order cannot be refunded.",
            field="order",
            code=OrderErrorCode.NOT_REFUNDABLE,
        )
    order_lines = {line.pk: line for line in order.lines.all()}
    units: dict[OrderLine, int] = {}
    for line_id, quantity in wanted.items():
        index = _index_of(lines, "line_id", line_id)
        line = order_lines.get(line_id)
        if line is None:
            raise NotFound("No such line on this order.", field=f"lines.{index}.line")
        if quantity > line.quantity - line.refunded_quantity:
            raise UserError(
                f"Only {line.quantity - line.refunded_quantity} of {line.sku} can still be refunded.",
                field=f"lines.{index}.quantity",
                code=OrderErrorCode.OVER_REFUND,
            )
        units[line] = quantity
    if amount is None:
        amount = sum(_values(order, list(order_lines.values()), units), ZERO)
    left = order.total - order.refunded_total
    if amount <= 0:
        raise UserError(
            "This refund comes to nothing.", field="amount", code=OrderErrorCode.NOTHING_TO_REFUND
        )
    if amount > left:
        raise UserError(
            f"This refund ({amount}) is more than is left to refund ({left}).",
            field="amount",
            code=OrderErrorCode.OVER_REFUND,
        )

    refund = _refund(
        order,
        actor,
        lines=list(order_lines.values()),
        units=units,
        amount=amount,
        reason=reason,
        restock=restock,
        request_key=key,
    )
    before = _move(
        order,
        machine.after_refund(total=order.total, refunded_total=order.refunded_total),
        machine.Cause.REFUND,
    )
    order.save()
    _event(
        order,
        actor,
        "refunded",
        from_status=before,
        to_status=order.status,
        refund=refund.pk,
        amount=str(amount),
        restock=restock,
        lines={str(line.pk): n for line, n in units.items()},
    )
    audit.record(
        actor=actor,
        action="refund.create",
        obj=refund,
        changes={
            "order": order.number,
            "amount": str(amount),
            "restock": restock,
            "lines": {line.sku: n for line, n in units.items()},
            "status": [before, order.status],
        },
    )
    hooks.refund_made.send(refund=refund)
    return refund
