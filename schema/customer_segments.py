"""Customer segments (RFM), cohort retention and customer lifetime value: apps.analytics.rfm,
.cohorts and .lifetime, whose docstrings define every figure. A segment's customers are the
Customer type of schema/customers.py (contact details redacted as there), one query a page."""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from datetime import date
from decimal import Decimal
from typing import Annotated, TypeAlias

import strawberry
from strawberry.types import Info
from strawberry_django.optimizer import optimize

from apps.analytics import cohorts, lifetime, rfm
from apps.customers import selectors
from schema.context import tenant
from schema.customers import CustomerConnection
from schema.errors import bad_request, read_or_bad_request
from schema.extensions.cost import PAGE_MAX
from schema.scalars import Money, money

DEFAULT_PAGE = 10


# strawberry.enum() marks the RFM segments themselves and hands them back.
strawberry.enum(
    rfm.Segment,
    name="RfmSegment",
    description="Named RFM segments, by recency and frequency scores (apps/analytics/rfm.py: GRID).",
)
RfmSegment: TypeAlias = rfm.Segment


class _RankedCustomers(Sequence):
    """Customers in the order of `ids`; a slice reads just its customers (one query, shaped by
    the optimizer for what the page selects)."""

    def __init__(self, ids: list[int], info: Info):
        self.ids = ids
        self.info = info

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, index):
        if not isinstance(index, slice):
            raise TypeError("slices only")
        page = self.ids[index]
        if not page:
            return []
        found = {
            customer.pk: customer
            for customer in optimize(selectors.customers_with_ids(page), self.info)
        }
        return [found[pk] for pk in page if pk in found]


@strawberry.type(
    description="One RFM segment. Shares are 0 to 1, four places; null with nothing to divide by."
)
class CustomerSegment:
    segment: RfmSegment
    customers_count: int
    customers_share: Decimal | None = strawberry.field(
        description="Of all customers with an order."
    )
    revenue: Money = strawberry.field(
        description="What the segment's customers spent (totals less refunds)."
    )
    revenue_share: Decimal | None = strawberry.field(
        description="Of what all customers with an order spent."
    )
    average_recency_days: Decimal | None = strawberry.field(
        description="Days since the last order; null if empty."
    )
    average_frequency: Decimal | None = strawberry.field(
        description="Orders per customer; null if empty."
    )
    average_monetary: Money | None = strawberry.field(
        description="Spent per customer; null if empty."
    )
    ids: strawberry.Private[list[int]]

    @strawberry.field(description="The segment's customers, biggest spenders first (then by id).")
    def customers(
        self, info: Info, first: int = DEFAULT_PAGE, after: str | None = None
    ) -> CustomerConnection:
        if not 0 <= first <= PAGE_MAX:
            raise bad_request(f"`first` must be 0 to {PAGE_MAX}.")
        page = CustomerConnection.resolve_connection(
            _RankedCustomers(self.ids, info), info=info, first=first, after=after
        )
        assert not inspect.isawaitable(page)  # awaitable only for an async iterable of nodes
        return page

    @classmethod
    def of(cls, summary: rfm.SegmentSummary, ids: list[int], currency: str) -> CustomerSegment:
        return cls(
            segment=summary.segment,
            customers_count=summary.customers,
            customers_share=summary.customers_share,
            revenue=money(summary.revenue, currency),
            revenue_share=summary.revenue_share,
            average_recency_days=summary.average_recency_days,
            average_frequency=summary.average_frequency,
            average_monetary=money(summary.average_monetary, currency),
            ids=ids,
        )


@strawberry.type(
    description="A customer's RFM scores (1 to 5) and segment as of today (apps/analytics/rfm.py)."
)
class CustomerRfm:
    recency_days: int = strawberry.field(description="Days since the last order (0: today).")
    frequency: int = strawberry.field(description="Orders, cancelled ones left out.")
    monetary: Money = strawberry.field(description="What they spent on them, less refunds.")
    r: int
    f: int
    m: int
    segment: RfmSegment


def customer_rfm(info: Info, customer_id: int) -> CustomerRfm | None:
    """`Customer.rfm`: the tenant's RFM table is read once per operation, whatever the page."""
    current = tenant(info)
    table = info.context.once("rfm", lambda: rfm.rfm_table(current, None))
    scores = table.scores(customer_id)
    if scores is None:
        return None
    return CustomerRfm(
        recency_days=scores.recency_days,
        frequency=scores.frequency,
        monetary=money(scores.monetary, current.currency),
        r=scores.r,
        f=scores.f,
        m=scores.m,
        segment=scores.segment,
    )


@strawberry.type(
    description="Customers with at least one order (not cancelled), scored and segmented by RFM."
)
class CustomerSegments:
    as_of: date
    customers_count: int
    segments: list[CustomerSegment] = strawberry.field(
        description="All ten, empty ones included, best first."
    )


@strawberry.type
class CustomerCohortMonth:
    offset: int = strawberry.field(description="Months after the cohort's month (0: that month).")
    month: date = strawberry.field(description="Its first day.")
    customers_count: int = strawberry.field(description="Members with an order in the month.")
    retention: Decimal | None = strawberry.field(
        description="customersCount / cohort size; null for an empty cohort."
    )
    revenue: Money = strawberry.field(
        description="What members spent on orders placed in the month."
    )


@strawberry.type(description="Customers whose first order (not cancelled) was in one month.")
class CustomerCohort:
    month: date = strawberry.field(description="Its first day.")
    size: int
    months: list[CustomerCohortMonth] = strawberry.field(
        description="Offsets 0 up to the range's last month."
    )
    revenue: Money = strawberry.field(
        description="What members spent up to the end of the range's last month."
    )
    lifetime_value: Money | None = strawberry.field(
        description="revenue / size; null for an empty cohort."
    )


@strawberry.type
class CohortRetention:
    from_: date = strawberry.field(
        name="from", description="First day of the first cohort's month."
    )
    to: date = strawberry.field(
        description="First day of the last month, through which orders are counted."
    )
    cohorts: list[CustomerCohort] = strawberry.field(
        description="Every month of the range, oldest first."
    )


@strawberry.type(
    description="Customer lifetime value over orders that are not cancelled, less refunds; formulas "
    "in apps/analytics/lifetime.py. The year is the 365 days ending with asOf."
)
class CustomerLifetimeValue:
    as_of: date
    customers_count: int = strawberry.field(description="Customers with an order up to asOf.")
    revenue: Money = strawberry.field(description="What they spent.")
    historical: Money | None = strawberry.field(description="revenue / customersCount.")
    year_customers_count: int = strawberry.field(description="Customers who ordered in the year.")
    year_orders_count: int
    year_revenue: Money
    average_order_value: Money | None = strawberry.field(
        description="yearRevenue / yearOrdersCount."
    )
    purchase_frequency: Decimal | None = strawberry.field(
        description="yearOrdersCount / yearCustomersCount."
    )
    retention_rate: Decimal | None = strawberry.field(
        description="Share of the customers of the year before who ordered again in the year; null without them."
    )
    expected_lifespan_years: Decimal | None = strawberry.field(
        description="1 / (1 - retentionRate), at most 10."
    )
    predictive: Money | None = strawberry.field(
        description="averageOrderValue x purchaseFrequency x expectedLifespanYears (revenue, not margin)."
    )


AsOf = Annotated[
    date | None, strawberry.argument(description="A day in the tenant's time zone; default today.")
]
FromMonth = Annotated[
    date | None,
    strawberry.argument(
        name="from",
        description="First cohort month (any day of it); default 11 months before `to`.",
    ),
]
ToMonth = Annotated[
    date | None, strawberry.argument(description="Last month (any day of it); default this month.")
]


@strawberry.type
class Query:
    @strawberry.field(
        description="RFM segments of the customers with orders, as of a day (default today)."
    )
    def customer_segments(self, info: Info, as_of: AsOf = None) -> CustomerSegments:
        current = tenant(info)
        table = read_or_bad_request(lambda: rfm.rfm_table(current, as_of))
        return CustomerSegments(
            as_of=table.as_of,
            customers_count=table.customers,
            segments=[
                CustomerSegment.of(summary, table.segment_ids(summary.segment), current.currency)
                for summary in table.summaries()
            ],
        )

    @strawberry.field(
        description=f"Monthly cohorts by first order, `from` to `to` (at most {cohorts.MAX_MONTHS} "
        "months, default the last 12), with their retention and revenue month by month."
    )
    def cohort_retention(
        self, info: Info, from_: FromMonth = None, to: ToMonth = None
    ) -> CohortRetention:
        current = tenant(info)
        first, last = read_or_bad_request(lambda: cohorts.month_range(current, from_, to))
        currency = current.currency
        return CohortRetention(
            from_=first,
            to=last,
            cohorts=[
                CustomerCohort(
                    month=cohort.month,
                    size=cohort.size,
                    revenue=money(cohort.revenue, currency),
                    lifetime_value=money(cohort.lifetime_value, currency),
                    months=[
                        CustomerCohortMonth(
                            offset=cell.offset,
                            month=cell.month,
                            customers_count=cell.customers,
                            retention=cell.retention,
                            revenue=money(cell.revenue, currency),
                        )
                        for cell in cohort.months
                    ],
                )
                for cohort in cohorts.cohort_retention(current, first=first, last=last)
            ],
        )

    @strawberry.field(
        description="Historical and predictive customer lifetime value as of a day (default today)."
    )
    def customer_lifetime_value(self, info: Info, as_of: AsOf = None) -> CustomerLifetimeValue:
        current = tenant(info)
        figures = read_or_bad_request(lambda: lifetime.lifetime_value(current, as_of))
        currency = current.currency
        return CustomerLifetimeValue(
            as_of=figures.as_of,
            customers_count=figures.customers,
            revenue=money(figures.revenue, currency),
            historical=money(figures.historical, currency),
            year_customers_count=figures.year_customers,
            year_orders_count=figures.year_orders,
            year_revenue=money(figures.year_revenue, currency),
            average_order_value=money(figures.average_order_value, currency),
            purchase_frequency=figures.purchase_frequency,
            retention_rate=figures.retention_rate,
            expected_lifespan_years=figures.expected_lifespan_years,
            predictive=money(figures.predictive, currency),
        )


__all__ = ["Query"]
