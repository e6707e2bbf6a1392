"""What the live bus hears of the writes of the apps below it (apps.common.hooks), connected by
LiveConfig.ready(). Every receiver runs after the write's commit: subscribers never hear of a
write that was rolled back."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from django.utils import timezone

from apps.analytics import hooks as analytics_hooks
from apps.live import bus, visitors
from apps.orders import hooks as order_hooks
from apps.orders.models import Order, Refund
from apps.orders.status import PAID

if TYPE_CHECKING:
    from tenants.models import Tenant


def connect() -> None:
    order_hooks.order_placed.connect(order_placed, after_commit=True)
    order_hooks.order_status_changed.connect(order_status_changed, after_commit=True)
    order_hooks.order_cancelled.connect(order_cancelled, after_commit=True)
    order_hooks.refund_made.connect(refund_made, after_commit=True)
    analytics_hooks.events_stored.connect(events_stored, after_commit=True)
    analytics_hooks.figures_changed.connect(figures_changed)  # sent after the commit already


def _publish_order(schema: str, order: Order, event: str) -> None:
    bus.publish(
        schema,
        "orders",
        {
            "event": event,
            "order": order.pk,
            "number": order.number,
            "status": order.status,
            "total": str(order.total),
            "at": timezone.now().isoformat(),
        },
    )


def order_placed(*, schema: str, order: Order) -> None:
    _publish_order(schema, order, "created")


def order_status_changed(*, schema: str, order: Order, before: str) -> None:
    _publish_order(schema, order, "paid" if order.status == PAID else "status_changed")


def order_cancelled(*, schema: str, order: Order, before: str) -> None:
    _publish_order(schema, order, "cancelled")


def refund_made(*, schema: str, refund: Refund) -> None:
    _publish_order(schema, refund.order, "refunded")


def events_stored(
    *, schema: str, tenant: Tenant, visits: list[visitors.Visit], now: datetime
) -> None:
    """Count the visitors of the events recent enough to count anywhere (backfills count nowhere)."""
    recent_from = visitors.since(tenant, now)
    visits = [visit for visit in visits if visit[0] >= recent_from]
    if visits:
        visitors.add(tenant, visits, now)


def figures_changed(*, schema: str, version: int) -> None:
    bus.publish(schema, "metrics", {"version": version})
