"""The vocabulary of the metrics engine: what can be asked (an AnalyticsQuery of whitelisted
metrics by one dimension over a range of days) and what comes back (a Result with rows, totals,
the previous period and chart-ready series). The overview, widgets, reports, exports and live
metrics all ask through apps.analytics.engine.run(tenant, query); nothing else reads the
rollups.

A range is whole days in the tenant's time zone, both ends included. Weeks start on Monday
(ISO); a week or month bucket is labelled by its first day and clipped to the range."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from enum import StrEnum

from apps.common.rules import check_day, check_range

MIN_DAY, MAX_DAY = date(2000, 1, 1), date(2999, 12, 31)


class Granularity(StrEnum):
    DAY = "day"
    WEEK = "week"
    MONTH = "month"


# The longest range each granularity may span (days): a daily series over ten years is refused.
MAX_RANGE_DAYS = {Granularity.DAY: 731, Granularity.WEEK: 3660, Granularity.MONTH: 3660}


class Dimension(StrEnum):
    TIME = "time"  # buckets of the query's granularity
    PRODUCT = "product"
    CATEGORY = "category"


class Kind(StrEnum):
    MONEY = "money"  # Decimal, two places, the tenant's currency
    COUNT = "count"  # int
    RATIO = "ratio"  # Decimal 0..1, four places; None with nothing to divide by


@dataclass(frozen=True)
class DateRange:
    first: date
    last: date

    @property
    def days(self) -> int:
        return (self.last - self.first).days + 1

    def previous(self) -> DateRange:
        """The period of the same length just before this one."""
        return DateRange(self.first - timedelta(days=self.days), self.first - timedelta(days=1))

    def check(self, granularity: Granularity) -> DateRange:
        for name, day in (("from", self.first), ("to", self.last)):
            check_day(day, field=name, earliest=MIN_DAY, latest=MAX_DAY)
        check_range(
            self.first,
            self.last,
            longest=MAX_RANGE_DAYS[granularity],
            hint=f" by {granularity.value}; use a coarser granularity",
        )
        return self


@dataclass(frozen=True)
class Filters:
    product_ids: tuple[int, ...] = ()
    category_ids: tuple[int, ...] = ()  # a category includes its subcategories

    def key(self) -> str:
        return f"p{','.join(map(str, sorted(self.product_ids)))};c{','.join(map(str, sorted(self.category_ids)))}"


@dataclass(frozen=True)
class AnalyticsQuery:
    metrics: tuple[str, ...]  # names from apps.analytics.metrics.METRICS
    range: DateRange
    dimension: Dimension | None = None  # None: totals only (a KPI)
    granularity: Granularity = Granularity.DAY
    filters: Filters = Filters()
    compare: bool = False  # also the previous period of the same length
    limit: int | None = None  # product and category dimensions: the top `limit` by the first metric

    def key(self) -> str:
        """A stable text naming this query, for the cache."""
        return "|".join(
            (
                ",".join(self.metrics),
                f"{self.range.first}:{self.range.last}",
                self.dimension.value if self.dimension else "-",
                self.granularity.value,
                self.filters.key(),
                "c" if self.compare else "-",
                str(self.limit or ""),
            )
        )


Value = Decimal | int | None


@dataclass(frozen=True)
class Row:
    key: str  # the bucket's first day (ISO), the product or category id ("" for none)
    label: str  # what a chart writes: "2026-03-02", "Mar 2026", a product's name
    values: dict[str, Value]


@dataclass(frozen=True)
class Dataset:
    metric: str
    label: str
    data: list[Value]


@dataclass(frozen=True)
class Series:
    """Chart-ready: one label per bucket or item, one dataset per metric (Chart.js' shape)."""

    labels: list[str]
    datasets: list[Dataset]


@dataclass(frozen=True)
class Result:
    query: AnalyticsQuery
    currency: str
    time_zone: str
    rows: list[Row]  # every bucket of the range for TIME (zeros included); the top items otherwise
    totals: dict[str, Value]
    previous: dict[str, Value] | None = None  # totals of the previous period, when asked
    change: dict[str, Decimal | None] = field(
        default_factory=dict
    )  # (now - before) / before, 4 places

    @property
    def series(self) -> Series:
        from apps.analytics.metrics import METRICS

        return Series(
            labels=[row.label for row in self.rows],
            datasets=[
                Dataset(
                    metric=name,
                    label=METRICS[name].label,
                    data=[row.values.get(name) for row in self.rows],
                )
                for name in self.query.metrics
            ],
        )
