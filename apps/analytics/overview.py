"""The dashboard's first paint in one call (`analyticsOverview`): KPI cards with the previous
period and the change, the sales series, top products, top customers and the segment mix, for a
range of days in the tenant's time zone (default: the 30 days ending today).

Every figure comes from the metrics engine (KPIs, series, top products: rollups, cached) or a
cached selector (top customers, segments), so the overview shows the same numbers as `analytics`,
widgets and reports, and a warm overview asks the database for nothing but the objects it names.
The platform's tenant summary is the KPI part, in the tenant's own schema."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import TYPE_CHECKING

from apps.analytics import engine, rfm
from apps.analytics.cache import cached
from apps.analytics.customers import top_customers
from apps.analytics.query import AnalyticsQuery, DateRange, Dimension, Granularity, Result
from apps.common.days import day_bounds, local_today, range_or_default
from tenants.context import tenant_context

if TYPE_CHECKING:
    from tenants.models import Tenant

KPIS = (
    "gross_sales",
    "net_sales",
    "orders",
    "average_order_value",
    "units",
    "refunds",
    "new_customers",
    "returning_customer_rate",
)
SALES = ("net_sales", "gross_sales", "orders")
TOP_PRODUCTS = ("product_revenue", "product_units")
MAX_TOP = 20


@dataclass(frozen=True)
class TopCustomer:
    customer_id: int
    spent: Decimal  # totals less refunds of their orders placed in the range
    orders: int


@dataclass(frozen=True)
class Overview:
    range: DateRange
    granularity: Granularity
    kpis: Result  # totals, previous and change of KPIS
    sales: Result  # SALES by TIME
    top_products: Result  # TOP_PRODUCTS by PRODUCT
    top_customers: list[TopCustomer]
    segments: rfm.RfmTable  # as of the range's last day (today at the latest)


def date_range(
    tenant: Tenant, first: date | None, last: date | None, granularity: Granularity
) -> DateRange:
    """The days asked for, defaults filled in (range_or_default), checked for `granularity`."""
    return DateRange(*range_or_default(tenant, first, last)).check(granularity)


def kpis(tenant: Tenant, span: DateRange) -> Result:
    return engine.run(tenant, AnalyticsQuery(metrics=KPIS, range=span, compare=True))


def overview(
    tenant: Tenant,
    *,
    first: date | None = None,
    last: date | None = None,
    granularity: Granularity = Granularity.DAY,
    top: int = 5,
) -> Overview:
    span = date_range(tenant, first, last, granularity)
    top = max(1, min(top, MAX_TOP))
    return Overview(
        range=span,
        granularity=granularity,
        kpis=kpis(tenant, span),
        sales=engine.run(
            tenant,
            AnalyticsQuery(
                metrics=SALES, range=span, dimension=Dimension.TIME, granularity=granularity
            ),
        ),
        top_products=engine.run(
            tenant,
            AnalyticsQuery(
                metrics=TOP_PRODUCTS, range=span, dimension=Dimension.PRODUCT, limit=top
            ),
        ),
        top_customers=_top_customers(tenant, span, top),
        segments=rfm.rfm_table(tenant, min(span.last, local_today(tenant))),
    )


def _top_customers(tenant: Tenant, span: DateRange, top: int) -> list[TopCustomer]:
    def compute() -> list[TopCustomer]:
        start, end = day_bounds(tenant, span.first, span.last)
        found = top_customers(start=start, end=end)
        return [
            TopCustomer(customer_id=c.pk, spent=c.period_spent, orders=c.period_orders)
            for c in found[:top]
        ]

    return cached(
        "overview.top_customers", f"{tenant.time_zone}|{span.first}|{span.last}|{top}", compute
    )


def tenant_summary(
    tenant: Tenant, *, first: date | None = None, last: date | None = None
) -> Result:
    """The KPIs of another tenant (the platform host's tenant summary), in that tenant's schema."""
    with tenant_context(tenant):
        return kpis(tenant, date_range(tenant, first, last, Granularity.DAY))
