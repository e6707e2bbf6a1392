"""`analyticsOverview`: a dashboard's first paint in one query (apps.analytics.overview), and
`Tenant.analyticsSummary`, the same KPIs for the tenant's members, or for platform staff on the
platform host through `tenant(id)`."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import TYPE_CHECKING

import strawberry
from strawberry.types import Info
from strawberry_django.optimizer import optimize

from apps.accounts.models import Role
from apps.analytics import overview as overviews
from apps.analytics.metrics import METRICS
from apps.analytics.query import Granularity, Result
from apps.customers import selectors as customer_selectors
from apps.orders import selectors as order_selectors
from schema.analytics import (
    AnalyticsGranularity,
    AnalyticsMetric,
    AnalyticsRow,
    AnalyticsSeries,
    MetricKind,
    result_of,
)
from schema.context import principal, tenant
from schema.customer_segments import CustomerSegment
from schema.customers import CustomerType, FromDate, ToDate
from schema.errors import bad_request, forbidden, read_or_bad_request
from schema.orders import OrderType
from schema.scalars import Money, money
from schema.types import as_type, as_types

if TYPE_CHECKING:
    from tenants.models import Tenant

MAX_LATEST = 50
ANALYTICS_ROLES = frozenset({Role.OWNER, Role.ADMIN, Role.STAFF, Role.ANALYST})


@strawberry.type(
    description="A KPI card: the range's figure, the previous period's, and the change."
)
class Kpi:
    metric: AnalyticsMetric
    label: str
    kind: MetricKind
    value: Decimal | None
    previous: Decimal | None
    change: Decimal | None = strawberry.field(
        description="(value - previous) / previous, 0 to 1 = 0 to 100%; null "
        "when previous is zero or null."
    )


def _kpis(result: Result) -> list[Kpi]:
    previous = result.previous or {}
    return [
        Kpi(
            metric=AnalyticsMetric(name),
            label=METRICS[name].label,
            kind=METRICS[name].kind,
            value=_decimal(result.totals.get(name)),
            previous=_decimal(previous.get(name)),
            change=result.change.get(name),
        )
        for name in result.query.metrics
    ]


def _decimal(value) -> Decimal | None:
    return None if value is None else Decimal(value)


@strawberry.type
class TopCustomer:
    customer: CustomerType
    spent: Money = strawberry.field(
        description="Totals less refunds of their orders placed in the range."
    )
    orders_count: int


@strawberry.type
class AnalyticsOverview:
    from_: date = strawberry.field(name="from")
    to: date
    granularity: AnalyticsGranularity
    currency: str
    time_zone: str
    kpis: list[Kpi] = strawberry.field(
        description="Gross and net sales, orders, average order value, units, "
        "refunds, new customers, returning customer rate."
    )
    sales: AnalyticsSeries = strawberry.field(
        description="Net sales, gross sales and orders by bucket."
    )
    top_products: list[AnalyticsRow] = strawberry.field(
        description="By revenue (line totals), with units."
    )
    top_customers: list[TopCustomer] = strawberry.field(
        description="By what they spent on orders of the range."
    )
    segments: list[CustomerSegment] = strawberry.field(
        description="The RFM segment mix as of the range's last day."
    )

    @strawberry.field(description=f"The newest orders (1 to {MAX_LATEST}), whatever the range.")
    def latest_orders(self, info: Info, first: int = 10) -> list[OrderType]:
        if not 1 <= first <= MAX_LATEST:
            raise bad_request(f"`first` must be 1 to {MAX_LATEST}.")
        return list(as_types(OrderType, optimize(order_selectors.recent_orders(), info)[:first]))


@strawberry.type(description="A tenant's KPIs over a range of its days (default the last 30).")
class TenantAnalyticsSummary:
    from_: date = strawberry.field(name="from")
    to: date
    currency: str
    time_zone: str
    kpis: list[Kpi]


def analytics_summary(
    info: Info, of_tenant: Tenant, first: date | None, last: date | None
) -> TenantAnalyticsSummary:
    """`Tenant.analyticsSummary`: members with analytics roles on their own host; platform staff
    on the platform host (the root fields that reach a Tenant there are staff-only)."""
    caller = principal(info)
    if caller.tenant is None and not caller.is_platform_staff:
        raise forbidden("Platform staff only.")
    if caller.tenant is not None and (
        caller.role not in ANALYTICS_ROLES or caller.tenant.pk != of_tenant.pk
    ):
        raise forbidden(f"Your role ({caller.role}) may not read analytics.")
    result = read_or_bad_request(
        lambda: overviews.tenant_summary(of_tenant, first=first, last=last)
    )
    return TenantAnalyticsSummary(
        from_=result.query.range.first,
        to=result.query.range.last,
        currency=result.currency,
        time_zone=result.time_zone,
        kpis=_kpis(result),
    )


@strawberry.type
class Query:
    @strawberry.field(
        description="KPIs with the previous period, the sales series, top products and customers, "
        "the segment mix and the latest orders, for a range of days in the tenant's time zone "
        "(default the 30 days ending today)."
    )
    def analytics_overview(
        self,
        info: Info,
        from_: FromDate = None,
        to: ToDate = None,
        granularity: AnalyticsGranularity = Granularity.DAY,
        top: int = 5,
    ) -> AnalyticsOverview:
        current = tenant(info)
        if not 1 <= top <= overviews.MAX_TOP:
            raise bad_request(f"`top` must be 1 to {overviews.MAX_TOP}.")
        found = read_or_bad_request(
            lambda: overviews.overview(
                current, first=from_, last=to, granularity=Granularity(granularity.value), top=top
            )
        )
        # At most MAX_TOP customers, in one query; their nested fields are read as asked.
        customers = customer_selectors.customers_with_ids(
            [row.customer_id for row in found.top_customers]
        ).in_bulk()
        table = found.segments
        return AnalyticsOverview(
            from_=found.range.first,
            to=found.range.last,
            granularity=granularity,
            currency=current.currency,
            time_zone=current.time_zone,
            kpis=_kpis(found.kpis),
            sales=result_of(found.sales).series,
            top_products=result_of(found.top_products).rows,
            top_customers=[
                TopCustomer(
                    customer=as_type(CustomerType, customers[row.customer_id]),
                    spent=money(row.spent, current.currency),
                    orders_count=row.orders,
                )
                for row in found.top_customers
                if row.customer_id in customers
            ],
            segments=[
                CustomerSegment.of(summary, table.segment_ids(summary.segment), current.currency)
                for summary in table.summaries()
            ],
        )


__all__ = ["Query", "TenantAnalyticsSummary", "analytics_summary"]
