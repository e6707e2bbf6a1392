"""Live data over graphql-transport-ws: `liveMetrics` (today's figures, coalesced per tenant by
apps.live.hub), `orderEvents` (orders as they are placed, paid, refunded...), and
`realTimeMetrics`, the same snapshot without a socket.

Every subscription resolver holds a slot while it streams (`async with subscription_slot(info):`),
so the per-connection and per-tenant limits of apps.live.limits apply to all of them."""

from __future__ import annotations

import enum
from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import asynccontextmanager
from datetime import date, datetime
from decimal import Decimal

import strawberry
from channels.db import database_sync_to_async
from strawberry.types import Info
from strawberry_django.optimizer import optimize

from apps.live import bus, hub, limits
from apps.live.snapshot import Snapshot, snapshot
from apps.orders import selectors as order_selectors
from apps.orders.models import Order
from schema.context import tenant
from schema.errors import ApiError
from schema.orders import OrderStatusEnum, OrderType
from schema.scalars import Money, money


@asynccontextmanager
async def subscription_slot(info: Info) -> AsyncIterator[None]:
    """Hold one of the connection's and the tenant's subscription slots while streaming; over
    either limit, a THROTTLED error (extensions: reason TOO_MANY_SUBSCRIPTIONS, limit, scope)
    before anything is sent, and the socket stays up."""
    try:
        async with limits.slot(info.context.request, tenant(info).schema_name):
            yield
    except limits.TooManySubscriptions as full:
        raise ApiError(
            str(full),
            code="THROTTLED",
            reason="TOO_MANY_SUBSCRIPTIONS",
            limit=full.limit,
            scope=full.scope,
        ) from full


@strawberry.type(description="The tenant's figures for its local today, as of `at`.")
class LiveMetrics:
    at: datetime
    day: date = strawberry.field(description="Today in the tenant's time zone.")
    revenue: Money = strawberry.field(
        description="Gross sales of today's orders (cancelled ones left out)."
    )
    orders: int = strawberry.field(description="Orders placed today, cancelled ones left out.")
    average_order_value: Money | None = strawberry.field(
        description="Revenue over orders; null without orders."
    )
    visitors: int = strawberry.field(
        description="Distinct visitors (sessions, else customers) with an event in the last 5 minutes."
    )
    conversion: Decimal | None = strawberry.field(
        description="Today's orders over today's distinct visitors, four places; null without visitors."
    )
    version: int = strawberry.field(
        description="The tenant's analytics data version; never goes back."
    )

    @classmethod
    def of(cls, made: Snapshot) -> LiveMetrics:
        return cls(
            at=made.at,
            day=made.day,
            revenue=money(made.revenue, made.currency),
            orders=made.orders,
            average_order_value=money(made.average_order_value, made.currency),
            visitors=made.visitors,
            conversion=made.conversion,
            version=made.version,
        )


@strawberry.enum(name="OrderEventKind")
class OrderEventKind(enum.Enum):
    CREATED = "created"
    PAID = "paid"
    STATUS_CHANGED = "status_changed"
    CANCELLED = "cancelled"
    REFUNDED = "refunded"


def _order(order_id: int, info: Info) -> Order | None:
    return optimize(order_selectors.orders_with_ids([order_id]), info).first()


@strawberry.type(
    name="LiveOrderEvent", description="Something that happened to an order, when it committed."
)
class LiveOrderEvent:
    event: OrderEventKind
    status: OrderStatusEnum = strawberry.field(
        description="The order's status right after the event."
    )
    at: datetime
    order_id: strawberry.Private[int]

    @strawberry.field(
        description="The order as it is now, read with your permissions; null once deleted."
    )
    async def order(self, info: Info) -> OrderType | None:
        return await database_sync_to_async(_order)(self.order_id, info)


@strawberry.type
class Query:
    @strawberry.field(description="What `liveMetrics` shows, now, without a socket.")
    def real_time_metrics(self, info: Info) -> LiveMetrics:
        return LiveMetrics.of(snapshot(tenant(info)))


@strawberry.type
class Subscription:
    @strawberry.subscription(
        description="Today's figures: the current snapshot first, then a new one whenever they "
        "change (at most 4 a second, the last change always delivered)."
    )
    async def live_metrics(self, info: Info) -> AsyncGenerator[LiveMetrics, None]:
        async with subscription_slot(info), hub.updates(tenant(info)) as snapshots:
            async for made in snapshots:
                yield LiveMetrics.of(made)

    @strawberry.subscription(
        description="The tenant's orders as they are created, paid, change status, are "
        "cancelled or refunded (once each write commits)."
    )
    async def order_events(self, info: Info) -> AsyncGenerator[LiveOrderEvent, None]:
        async with (
            subscription_slot(info),
            bus.listen(info.context.request, tenant(info).schema_name, "orders") as messages,
        ):
            async for payload in messages:
                yield LiveOrderEvent(
                    event=OrderEventKind(payload["event"]),
                    status=OrderStatusEnum(payload["status"]),
                    at=datetime.fromisoformat(payload["at"]),
                    order_id=payload["order"],
                )


__all__ = ["LiveMetrics", "LiveOrderEvent", "Query", "Subscription", "subscription_slot"]
