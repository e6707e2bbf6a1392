"""Live metrics: one snapshot of a tenant's day so far. `liveMetrics` (coalesced, apps.live.hub)
and `realTimeMetrics` both show what `snapshot()` makes.

Revenue, orders and average order value are the engine's gross_sales, orders and
average_order_value for the tenant's local today (from the SalesDay rollup, cached under the
data version); visitors come from the HyperLogLogs of apps.live.visitors. The snapshot carries
the data version read before its figures, so its figures are at least that recent."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, cast
from zoneinfo import ZoneInfo

from django.utils import timezone

from apps.analytics import cache, engine
from apps.analytics.metrics import ratio
from apps.analytics.query import AnalyticsQuery, DateRange
from apps.live import visitors

if TYPE_CHECKING:
    from tenants.models import Tenant

METRICS = ("gross_sales", "orders", "average_order_value")


@dataclass(frozen=True)
class Snapshot:
    at: datetime
    day: date
    currency: str
    revenue: Decimal
    orders: int
    average_order_value: Decimal | None
    visitors: int  # distinct visitors with an event in the last visitors.RECENT_MINUTES minutes
    conversion: Decimal | None  # today's orders over today's distinct visitors, 4 places
    version: int  # the tenant's analytics data version the figures are at least as recent as

    def figures(self) -> tuple:
        """What a subscriber sees change (not when it was made, nor the version)."""
        return (self.day, self.revenue, self.orders, self.visitors, self.conversion)


def snapshot(tenant: Tenant, *, now: datetime | None = None) -> Snapshot:
    """The tenant's live metrics now (the connection is in its schema): one cached engine
    answer and two PFCOUNTs."""
    now = now or timezone.now()
    version = cache.version(tenant.schema_name)
    day = now.astimezone(ZoneInfo(tenant.time_zone)).date()
    totals = engine.run(tenant, AnalyticsQuery(metrics=METRICS, range=DateRange(day, day))).totals
    recent, today = visitors.counts(tenant, now)
    # The engine types every metric's value alike; these are money, a count and money or None.
    orders = cast(int, totals["orders"])
    return Snapshot(
        at=now,
        day=day,
        currency=tenant.currency,
        revenue=cast(Decimal, totals["gross_sales"]),
        orders=orders,
        average_order_value=cast(Decimal | None, totals["average_order_value"]),
        visitors=recent,
        conversion=ratio(orders, today),
        version=version,
    )
