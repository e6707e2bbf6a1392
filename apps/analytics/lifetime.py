"""Customer lifetime value (CLV) as of a day in the tenant's time zone, over counted orders
(not cancelled) and what was spent on them (totals less refunds), as apps.analytics.customers
defines them.

- historical CLV = what all customers spent on all their orders up to `as_of` / customers with
  at least one such order;
- predictive CLV = average order value x purchase frequency x expected lifespan, where, over
  the last year (the 365 days ending with `as_of`):
  - average order value = spent in the year / orders in the year;
  - purchase frequency = orders in the year / customers who ordered in the year (per year);
  - retention = the share of the customers who ordered in the year before that who ordered
    again in the last year; churn = 1 - retention; expected lifespan = 1 / churn years, at most
    MAX_LIFESPAN_YEARS (also when no one churned);
  so predictive CLV = spent in the year / customers who ordered in it x lifespan, rounded once,
  at the end. It is null without orders in the last year or customers in the year before.

Revenue, not margin: cost prices exist only on variants, are optional and are today's prices
(order lines keep no cost), so a margin over past orders would be a guess; a caller who knows
its margin multiplies by it.

One SQL query, cached under the tenant's data version."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import TYPE_CHECKING

from django.db import connection

from apps.analytics.cache import cached
from apps.analytics.rfm import TWO_PLACES, check_as_of, ratio
from apps.common.days import day_start
from apps.common.money import quantize
from apps.orders.models import Order
from apps.orders.status import COUNTED

if TYPE_CHECKING:
    from tenants.models import Tenant

MAX_LIFESPAN_YEARS = Decimal(10)
YEAR_DAYS = 365


@dataclass(frozen=True)
class LifetimeValue:
    as_of: date
    customers: int  # customers with a counted order up to as_of
    revenue: Decimal  # what they spent on those orders
    historical: Decimal | None  # revenue / customers
    year_customers: int  # customers who ordered in the last year
    year_orders: int
    year_revenue: Decimal
    average_order_value: Decimal | None  # over the last year
    purchase_frequency: Decimal | None  # orders per customer per year, 2 places
    retention_rate: Decimal | None  # 4 places; None without customers in the year before
    expected_lifespan_years: Decimal | None  # 2 places
    predictive: Decimal | None


_LIFETIME_SQL = """
WITH buyers AS (
    SELECT customer_id,
           SUM(total - refunded_total) AS spent,
           COUNT(*) FILTER (WHERE placed_at >= %(year)s) AS year_orders,
           COALESCE(SUM(total - refunded_total) FILTER (WHERE placed_at >= %(year)s), 0) AS year_spent,
           BOOL_OR(placed_at >= %(prior)s AND placed_at < %(year)s) AS in_prior
    FROM {orders}
    WHERE customer_id IS NOT NULL AND status = ANY(%(counted)s) AND placed_at < %(end)s
    GROUP BY customer_id
)
SELECT COUNT(*),
       COALESCE(SUM(spent), 0),
       COUNT(*) FILTER (WHERE year_orders > 0),
       COALESCE(SUM(year_orders), 0),
       COALESCE(SUM(year_spent), 0),
       COUNT(*) FILTER (WHERE in_prior),
       COUNT(*) FILTER (WHERE in_prior AND year_orders > 0)
FROM buyers
"""


def _compute(tenant: Tenant, as_of: date) -> LifetimeValue:
    year_first = as_of - timedelta(days=YEAR_DAYS - 1)
    with connection.cursor() as cursor:
        cursor.execute(
            _LIFETIME_SQL.format(orders=connection.ops.quote_name(Order._meta.db_table)),
            {
                "counted": list(COUNTED),
                "end": day_start(tenant, as_of + timedelta(days=1)),
                "year": day_start(tenant, year_first),
                "prior": day_start(tenant, year_first - timedelta(days=YEAR_DAYS)),
            },
        )
        customers, revenue, year_customers, year_orders, year_revenue, prior, retained = (
            cursor.fetchone()
        )
    retention = ratio(retained, prior)
    lifespan = None
    if prior:
        churn = 1 - Decimal(retained) / prior
        lifespan = MAX_LIFESPAN_YEARS if churn == 0 else min(1 / churn, MAX_LIFESPAN_YEARS)
    predictive = None
    if lifespan is not None and year_customers:
        predictive = quantize(year_revenue / year_customers * lifespan)
    return LifetimeValue(
        as_of=as_of,
        customers=customers,
        revenue=quantize(revenue),
        historical=quantize(revenue / customers) if customers else None,
        year_customers=year_customers,
        year_orders=year_orders,
        year_revenue=quantize(year_revenue),
        average_order_value=quantize(year_revenue / year_orders) if year_orders else None,
        purchase_frequency=(Decimal(year_orders) / year_customers).quantize(
            TWO_PLACES, ROUND_HALF_UP
        )
        if year_customers
        else None,
        retention_rate=retention,
        expected_lifespan_years=None
        if lifespan is None
        else lifespan.quantize(TWO_PLACES, ROUND_HALF_UP),
        predictive=predictive,
    )


def lifetime_value(tenant: Tenant, as_of: date | None = None) -> LifetimeValue:
    """CLV as of `as_of` (default today; see apps.analytics.rfm.check_as_of), cached."""
    as_of = check_as_of(tenant, as_of)
    return cached(
        "lifetime", f"{as_of.isoformat()}|{tenant.time_zone}", lambda: _compute(tenant, as_of)
    )
