"""Days in a tenant's time zone: what every range of days in the API means. A day is a local
day of the tenant; a range of days runs from midnight at the start of the first to midnight
after the last, there (aware instants, so DST days have 23 or 25 hours)."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from django.utils import timezone

if TYPE_CHECKING:
    from tenants.models import Tenant


def local_today(tenant: Tenant) -> date:
    return timezone.localdate(timezone.now(), ZoneInfo(tenant.time_zone))


def day_start(tenant: Tenant, day: date) -> datetime:
    """Midnight at the start of `day` in the tenant's time zone (aware)."""
    return datetime.combine(day, time.min, tzinfo=ZoneInfo(tenant.time_zone))


def day_bounds(tenant: Tenant, first: date, last: date) -> tuple[datetime, datetime]:
    """The instants that bound the days `first` to `last` (both included): [start, end)."""
    return day_start(tenant, first), day_start(tenant, last + timedelta(days=1))
