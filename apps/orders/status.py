"""The order status machine: every allowed transition, and what causes it, in one table.

    pending ─► paid ─► fulfilled ─► delivered          (orderUpdateStatus)
    pending, paid ─► cancelled                         (orderCancel)
    paid, fulfilled, delivered, partially_refunded
        ─► partially_refunded | refunded               (refundCreate: refunded once nothing is left)

A refund decides between `partially_refunded` and `refunded` by the money refunded, so those two
are never set by hand; `cancelled` and `refunded` are final.
"""

from __future__ import annotations

from decimal import Decimal
from enum import Enum

from apps.common.errors import UserError
from apps.orders.errors import OrderErrorCode
from apps.orders.models import OrderStatus

PENDING, PAID, FULFILLED, DELIVERED = (
    OrderStatus.PENDING,
    OrderStatus.PAID,
    OrderStatus.FULFILLED,
    OrderStatus.DELIVERED,
)
CANCELLED, PARTIALLY_REFUNDED, REFUNDED = (
    OrderStatus.CANCELLED,
    OrderStatus.PARTIALLY_REFUNDED,
    OrderStatus.REFUNDED,
)


# The orders that count in every figure (sales, customers' statistics, analytics): all but the
# cancelled ones; a pending order counts as placed.
COUNTED = tuple(status for status in OrderStatus.values if status != CANCELLED)


class Cause(Enum):
    UPDATE = "orderUpdateStatus"
    CANCEL = "orderCancel"
    REFUND = "refundCreate"


REFUNDABLE = frozenset({PAID, FULFILLED, DELIVERED, PARTIALLY_REFUNDED})

TRANSITIONS: dict[tuple[str, str], Cause] = {
    (PENDING, PAID): Cause.UPDATE,
    (PAID, FULFILLED): Cause.UPDATE,
    (FULFILLED, DELIVERED): Cause.UPDATE,
    (PENDING, CANCELLED): Cause.CANCEL,
    (PAID, CANCELLED): Cause.CANCEL,
    **{(source, PARTIALLY_REFUNDED): Cause.REFUND for source in REFUNDABLE},
    **{(source, REFUNDED): Cause.REFUND for source in REFUNDABLE},
}

# The timestamp a status stamps on the order when it is reached.
STAMPS: dict[str, str] = {
    PAID: "paid_at",
    FULFILLED: "fulfilled_at",
    DELIVERED: "delivered_at",
    CANCELLED: "cancelled_at",
}


def allowed(current: str, target: str, cause: Cause) -> bool:
    return TRANSITIONS.get((current, target)) is cause


def check(current: str, target: str, cause: Cause, *, field: str = "status") -> None:
    """Raise a userError (ILLEGAL_TRANSITION) unless `cause` may move an order from `current`
    to `target`; the message names the mutation that does it when it is another one."""
    if allowed(current, target, cause):
        return
    other = TRANSITIONS.get((current, target))
    hint = f" Use {other.value}." if other is not None else ""
    raise UserError(
        f"An order cannot go from {current} to {target}.{hint}",
        field=field,
        code=OrderErrorCode.ILLEGAL_TRANSITION,
    )


def after_refund(*, total: Decimal, refunded_total: Decimal) -> OrderStatus:
    """The status an order has once `refunded_total` of its `total` has been refunded."""
    return REFUNDED if refunded_total >= total else PARTIALLY_REFUNDED
