"""Days in a tenant's time zone: what every range of days in the API means. A day is a local
day of the tenant; a range of days runs from midnight at the start of the first to midnight
after the last, there (aware instants, so DST days have 23 or 25 hours)."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Protocol
from zoneinfo import ZoneInfo

from django.utils import timezone


class Zoned(Protocol):
    """What these functions need of a tenant (tenants sits above apps.common: DESIGN §2)."""

    time_zone: str


DEFAULT_RANGE_DAYS = 30


def local_today(tenant: Zoned) -> date:
    return timezone.localdate(timezone.now(), ZoneInfo(tenant.time_zone))


def day_start(tenant: Zoned, day: date) -> datetime:
    """Midnight at the start of `day` in the tenant's time zone (aware)."""
    return datetime.combine(day, time.min, tzinfo=ZoneInfo(tenant.time_zone))


def day_bounds(tenant: Zoned, first: date, last: date) -> tuple[datetime, datetime]:
    """The instants that bound the days `first` to `last` (both included): [start, end)."""
    return day_start(tenant, first), day_start(tenant, last + timedelta(days=1))


def range_or_default(tenant: Zoned, first: date | None, last: date | None) -> tuple[date, date]:
    """The days `first` to `last` a read was asked for, its missing ends filled in as the API
    documents them: without `last`, up to today; without `first`, the DEFAULT_RANGE_DAYS days
    ending on `last`. Unchecked: each read checks the range against its own limits."""
    last = last or local_today(tenant)
    return first or last - timedelta(days=DEFAULT_RANGE_DAYS - 1), last
