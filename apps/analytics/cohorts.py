"""Monthly cohort retention, in the tenant's time zone.

A customer's cohort is the month of their first counted order ever (not cancelled; see
apps.analytics.customers). For the cohorts of the months `first`..`last` (at most MAX_MONTHS),
observed through the end of `last`, each cohort has its size and, for every month offset
0..(last - cohort month):
- customers: members with a counted order in that month (offset 0: all of them);
- retention: customers / size, 4 places;
- revenue: what members spent on the orders they placed in that month (totals less refunds).

A cohort's lifetime value is its members' spend through `last` divided by its size (the
historical CLV of that cohort). Months without first orders are cohorts of size 0, with no
ratios. One SQL query, cached under the tenant's data version.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import TYPE_CHECKING

from django.db import connection

from apps.analytics.cache import cached
from apps.analytics.errors import AnalyticsErrorCode
from apps.analytics.rfm import MIN_AS_OF, ratio
from apps.common.days import day_start, local_today
from apps.common.errors import UserError
from apps.common.money import ZERO, quantize
from apps.common.rules import check_range
from apps.orders.models import Order
from apps.orders.status import COUNTED

if TYPE_CHECKING:
    from tenants.models import Tenant

DEFAULT_MONTHS = 12
MAX_MONTHS = 36


@dataclass(frozen=True)
class CohortMonth:
    offset: int
    month: date
    customers: int
    retention: Decimal | None
    revenue: Decimal


@dataclass(frozen=True)
class Cohort:
    month: date  # its first day
    size: int
    months: list[CohortMonth]
    revenue: Decimal  # the members' spend through the last month observed
    lifetime_value: Decimal | None  # revenue / size


def month_start(day: date) -> date:
    return day.replace(day=1)


def add_months(month: date, count: int) -> date:
    index = month.year * 12 + month.month - 1 + count
    return date(index // 12, index % 12 + 1, 1)


def months_between(first: date, last: date) -> int:
    return (last.year - first.year) * 12 + last.month - first.month


def month_range(tenant: Tenant, first: date | None, last: date | None) -> tuple[date, date]:
    """The first days of the first and last months (any day names its month). Without `last`:
    this month; without `first`: DEFAULT_MONTHS months up to `last`."""
    this_month = month_start(local_today(tenant))
    last = this_month if last is None else month_start(last)
    first = add_months(last, 1 - DEFAULT_MONTHS) if first is None else month_start(first)
    if last > this_month:
        raise UserError(
            "`to` must not be after this month.", field="to", code=AnalyticsErrorCode.BAD_RANGE
        )
    if first < MIN_AS_OF:
        raise UserError(
            f"`from` must not be before {MIN_AS_OF}.",
            field="from",
            code=AnalyticsErrorCode.BAD_RANGE,
        )
    check_range(
        first, last, longest=MAX_MONTHS, length=months_between(first, last) + 1, unit="months"
    )
    return first, last


_COHORTS_SQL = """
WITH activity AS (
    SELECT customer_id,
           date_trunc('month', placed_at AT TIME ZONE %(zone)s)::date AS month,
           SUM(total - refunded_total) AS spent
    FROM {orders}
    WHERE customer_id IS NOT NULL AND status = ANY(%(counted)s) AND placed_at < %(end)s
    GROUP BY 1, 2
), cohorts AS (
    SELECT customer_id, MIN(month) AS cohort FROM activity GROUP BY 1
)
SELECT cohorts.cohort, activity.month, COUNT(*), SUM(activity.spent)
FROM activity JOIN cohorts USING (customer_id)
WHERE cohorts.cohort >= %(first)s
GROUP BY 1, 2
"""


def _compute(tenant: Tenant, first: date, last: date) -> list[Cohort]:
    with connection.cursor() as cursor:
        cursor.execute(
            _COHORTS_SQL.format(orders=connection.ops.quote_name(Order._meta.db_table)),
            {
                "zone": tenant.time_zone,
                "counted": list(COUNTED),
                "first": first,
                "end": day_start(tenant, add_months(last, 1)),
            },
        )
        cells = {
            (cohort, month): (customers, spent)
            for cohort, month, customers, spent in cursor.fetchall()
        }
    cohorts = []
    for index in range(months_between(first, last) + 1):
        cohort = add_months(first, index)
        size = cells.get((cohort, cohort), (0, ZERO))[0]
        months = []
        for offset in range(months_between(cohort, last) + 1):
            month = add_months(cohort, offset)
            customers, spent = cells.get((cohort, month), (0, ZERO))
            months.append(
                CohortMonth(offset, month, customers, ratio(customers, size), quantize(spent))
            )
        revenue = sum((cell.revenue for cell in months), ZERO)
        cohorts.append(
            Cohort(cohort, size, months, revenue, quantize(revenue / size) if size else None)
        )
    return cohorts


def cohort_retention(
    tenant: Tenant, *, first: date | None = None, last: date | None = None
) -> list[Cohort]:
    """The cohorts of the months `first`..`last` (see month_range), oldest first, cached."""
    first, last = month_range(tenant, first, last)
    key = f"{first.isoformat()}|{last.isoformat()}|{tenant.time_zone}"
    return cached("cohorts", key, lambda: _compute(tenant, first, last))
