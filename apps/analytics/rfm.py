"""RFM scores and named customer segments, as of a day in the tenant's time zone.

Population: customers with at least one counted order (not cancelled) placed before the end of
`as_of`. Definitions are apps.analytics.customers': an order counts unless cancelled, what a
customer spent on it is `total - refunded_total`, days are the tenant's local days.

- recency: days from the local day of the customer's last counted order to `as_of` (0 = that day);
- frequency: counted orders;
- monetary: what the customer spent on them (exact, in cents while ranking).

Scores 1..5 are quintiles of each measure's rank, with pandas: rank the n customers 1..n on the
measure, cut the ranks into five equal-width bins (edges at 1 + (n - 1)·k/5, k = 0..5, each bin
holding its upper edge, the first its lower one too: what `qcut` does to the ranks 1..n), and
score each customer by the bin of its rank. Higher frequency and monetary score higher; recency
is reversed: the most recent buyers score 5. Customers with equal values share one rank, the
mean of the ranks they span (half the sum of `rank(method="min")` and `"max"`), so equal values
always score alike and a lower customer id never decides a score: a tie that straddles a bin
edge scores where its middle falls. Without ties each score holds n/5 customers (±1) when n ≥ 5,
and with 2 ≤ n < 5 the lowest rank scores 1 and the highest 5. Customers all equal on a measure
(a single customer among them) score 3 on it: the middle, as there is no one to rank them
against. So two customers who both ordered today, once each, are R3 F3 (need attention), neither
champion nor lost; what they spent still ranks them on M.

Segments depend on R and F only, by the widely used R-by-F grid (`GRID` below, R rows, F columns):
Putler's RFM segments, with "about to sleep" (R3, F1-2) folded into need attention and the low
corner split into hibernating (R2) and lost (R1). M is reported, not used to segment.

The table is computed by one SQL aggregate (one row per customer) fed to pandas, and cached
under the tenant's data version (apps.analytics.cache): ids and figures only.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal
from enum import StrEnum
from typing import TYPE_CHECKING

import pandas as pd
from django.db import connection

from apps.analytics.cache import cached
from apps.analytics.errors import AnalyticsErrorCode
from apps.common.days import day_start, local_today
from apps.common.errors import UserError
from apps.common.money import ZERO, quantize
from apps.orders.models import Order
from apps.orders.status import COUNTED

if TYPE_CHECKING:
    from tenants.models import Tenant

MIN_AS_OF = date(2000, 1, 1)
RATIO = Decimal("0.0001")
TWO_PLACES = Decimal("0.01")
SCORES = (1, 2, 3, 4, 5)


class Segment(StrEnum):
    CHAMPIONS = "champions"
    LOYAL = "loyal"
    POTENTIAL_LOYALISTS = "potential_loyalists"
    NEW = "new"
    PROMISING = "promising"
    NEED_ATTENTION = "need_attention"
    AT_RISK = "at_risk"
    CANT_LOSE = "cant_lose"
    HIBERNATING = "hibernating"
    LOST = "lost"


S = Segment
# GRID[r][f - 1]: the segment of every (R, F) cell.
GRID: dict[int, tuple[Segment, ...]] = {
    5: (S.NEW, S.POTENTIAL_LOYALISTS, S.POTENTIAL_LOYALISTS, S.CHAMPIONS, S.CHAMPIONS),
    4: (S.PROMISING, S.POTENTIAL_LOYALISTS, S.POTENTIAL_LOYALISTS, S.LOYAL, S.LOYAL),
    3: (S.NEED_ATTENTION, S.NEED_ATTENTION, S.NEED_ATTENTION, S.LOYAL, S.LOYAL),
    2: (S.HIBERNATING, S.HIBERNATING, S.AT_RISK, S.AT_RISK, S.CANT_LOSE),
    1: (S.LOST, S.LOST, S.AT_RISK, S.AT_RISK, S.CANT_LOSE),
}


def segment_of(r: int, f: int) -> Segment:
    return GRID[r][f - 1]


@dataclass(frozen=True)
class CustomerScores:
    customer_id: int
    recency_days: int
    frequency: int
    monetary: Decimal
    r: int
    f: int
    m: int
    segment: Segment


@dataclass(frozen=True)
class SegmentSummary:
    segment: Segment
    customers: int
    customers_share: Decimal | None  # of all scored customers, 4 places; None with none
    revenue: Decimal  # the members' monetary sum
    revenue_share: Decimal | None  # of all scored customers' revenue; None when that is zero
    average_recency_days: Decimal | None  # 2 places; None for an empty segment
    average_frequency: Decimal | None
    average_monetary: Decimal | None


def ratio(part: Decimal | int, whole: Decimal | int) -> Decimal | None:
    return (Decimal(part) / Decimal(whole)).quantize(RATIO, ROUND_HALF_UP) if whole else None


def _cents(cents) -> Decimal:
    return quantize(Decimal(int(cents)) / 100)


@dataclass(frozen=True)
class RfmTable:
    """Scores of every customer with a counted order as of `as_of`. `frame` is indexed by
    customer id, ordered by monetary (descending) then id, with the columns recency_days,
    frequency, monetary_cents, r, f, m and segment (a Segment value)."""

    as_of: date
    frame: pd.DataFrame

    @property
    def customers(self) -> int:
        return len(self.frame)

    def segment_ids(self, segment: Segment) -> list[int]:
        """The segment's customers, biggest spenders first (ties by id)."""
        return self.frame.index[self.frame["segment"] == segment.value].tolist()

    def scores(self, customer_id: int) -> CustomerScores | None:
        if customer_id not in self.frame.index:
            return None
        row = self.frame.loc[customer_id]
        return CustomerScores(
            customer_id=customer_id,
            recency_days=int(row.recency_days),
            frequency=int(row.frequency),
            monetary=_cents(row.monetary_cents),
            r=int(row.r),
            f=int(row.f),
            m=int(row.m),
            segment=Segment(row.segment),
        )

    def summaries(self) -> list[SegmentSummary]:
        """Every segment, in the order of `Segment`, empty ones included."""
        total_cents = int(self.frame["monetary_cents"].sum())
        grouped = self.frame.groupby("segment", observed=True).agg(
            customers=("frequency", "size"),
            cents=("monetary_cents", "sum"),
            recency=("recency_days", "sum"),
            orders=("frequency", "sum"),
        )
        summaries = []
        for segment in Segment:
            if segment.value not in grouped.index:
                summaries.append(
                    SegmentSummary(
                        segment,
                        0,
                        ratio(0, self.customers),
                        ZERO,
                        ratio(0, total_cents),
                        None,
                        None,
                        None,
                    )
                )
                continue
            row = grouped.loc[segment.value]
            count, cents = int(row.customers), int(row.cents)
            summaries.append(
                SegmentSummary(
                    segment=segment,
                    customers=count,
                    customers_share=ratio(count, self.customers),
                    revenue=_cents(cents),
                    revenue_share=ratio(cents, total_cents),
                    average_recency_days=(Decimal(int(row.recency)) / count).quantize(
                        TWO_PLACES, ROUND_HALF_UP
                    ),
                    average_frequency=(Decimal(int(row.orders)) / count).quantize(
                        TWO_PLACES, ROUND_HALF_UP
                    ),
                    average_monetary=_cents(Decimal(cents) / count),
                )
            )
        return summaries


_RFM_SQL = """
SELECT customer_id,
       %(as_of)s::date - MAX((placed_at AT TIME ZONE %(zone)s)::date) AS recency_days,
       COUNT(*) AS frequency,
       (SUM(total - refunded_total) * 100)::bigint AS monetary_cents
FROM {orders}
WHERE customer_id IS NOT NULL AND status = ANY(%(counted)s) AND placed_at < %(end)s
GROUP BY customer_id
ORDER BY customer_id
"""
COLUMNS = ["customer_id", "recency_days", "frequency", "monetary_cents"]


def check_as_of(tenant: Tenant, as_of: date | None) -> date:
    """`as_of`, default today in the tenant's zone; a day ahead is allowed (a caller whose day
    has begun before the tenant's), nothing later, nothing before MIN_AS_OF."""
    today = local_today(tenant)
    if as_of is None:
        return today
    if as_of > today + timedelta(days=1):
        raise UserError(
            "`asOf` must not be in the future.", field="asOf", code=AnalyticsErrorCode.BAD_RANGE
        )
    if as_of < MIN_AS_OF:
        raise UserError(
            f"`asOf` must not be before {MIN_AS_OF}.",
            field="asOf",
            code=AnalyticsErrorCode.BAD_RANGE,
        )
    return as_of


def _score(values: pd.Series, *, ascending: bool) -> pd.Series:
    """The quintile score of each value's mean rank (see the module). In integers, so a rank on
    a bin edge never lands in the next bin by a rounding error: with the mean rank a = t/2, the
    score is the least k ≥ 1 with a - 1 ≤ k(n - 1)/5, that is ceil(5(t - 2) / (2(n - 1)))."""
    n = len(values)
    if n == 1:
        return pd.Series([3], index=values.index)
    twice_rank = (
        values.rank(method="min", ascending=ascending)
        + values.rank(method="max", ascending=ascending)
    ).astype("int64")
    scores = -(-5 * (twice_rank - 2) // (2 * (n - 1)))
    return scores.clip(lower=1).astype(int)


def score(frame: pd.DataFrame) -> pd.DataFrame:
    """Scores and segments for a frame of COLUMNS sorted by customer id (see the module)."""
    frame = frame.set_index("customer_id")
    if frame.empty:
        return frame.assign(r=[], f=[], m=[], segment=[])
    frame["r"] = _score(frame["recency_days"], ascending=False)
    frame["f"] = _score(frame["frequency"], ascending=True)
    frame["m"] = _score(frame["monetary_cents"], ascending=True)
    frame["segment"] = [segment_of(r, f).value for r, f in zip(frame["r"], frame["f"], strict=True)]
    frame["segment"] = frame["segment"].astype(pd.CategoricalDtype([s.value for s in Segment]))
    frame.index.name = "customer_id"
    return frame.sort_values(
        ["monetary_cents", "customer_id"], ascending=[False, True], kind="stable"
    )


def _compute(tenant: Tenant, as_of: date) -> RfmTable:
    with connection.cursor() as cursor:
        cursor.execute(
            _RFM_SQL.format(orders=connection.ops.quote_name(Order._meta.db_table)),
            {
                "as_of": as_of,
                "zone": tenant.time_zone,
                "counted": list(COUNTED),
                "end": day_start(tenant, as_of + timedelta(days=1)),
            },
        )
        rows = cursor.fetchall()
    frame = pd.DataFrame(rows, columns=COLUMNS).astype("int64")
    return RfmTable(as_of=as_of, frame=score(frame))


def rfm_table(tenant: Tenant, as_of: date | None = None) -> RfmTable:
    """The scores as of `as_of` (default today; see check_as_of), cached."""
    as_of = check_as_of(tenant, as_of)
    return cached("rfm", f"{as_of.isoformat()}|{tenant.time_zone}", lambda: _compute(tenant, as_of))


def segment_mix(tenant: Tenant, as_of: date | None = None) -> list[SegmentSummary]:
    """Counts, revenue and shares per segment (for the analytics overview)."""
    return rfm_table(tenant, as_of).summaries()
