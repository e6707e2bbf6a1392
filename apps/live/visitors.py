"""Distinct visitors for live metrics, counted in Redis HyperLogLogs so that a snapshot never
scans events: one HLL per tenant per minute (visitors of the last few minutes) and one per local
day (today's visitors, for conversion). Ingestion adds the visitors of each accepted batch in one
pipeline when it commits (apps.live.receivers), before the analytics version bump of the batch,
so that a snapshot made for the bump sees them; the keys expire on their own.

A visitor is the event's session, else its customer (an event has one or the other). The
counts are HyperLogLog estimates: exact for small numbers, within about 1% beyond."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from apps.common import redis

if TYPE_CHECKING:
    from tenants.models import Tenant

RECENT_MINUTES = 5  # "visitors in the last 5 minutes": this minute and the 4 before it
MINUTE_TTL = 15 * 60
DAY_TTL = 2 * 24 * 3600

Visit = tuple[int, str, int | None]  # (Unix second of the event, session id or "", customer id)


def _minute_key(schema: str, minute: int) -> str:
    return redis.key("live", schema, "visitors", "m", minute)


def _day_key(schema: str, day: date) -> str:
    return redis.key("live", schema, "visitors", "d", day.isoformat())


def since(tenant: Tenant, now: datetime) -> int:
    """The earliest event time (Unix second) worth counting: the start of the tenant's local
    day or the recent window, whichever is earlier. Older events (backfills) count nowhere."""
    zone = ZoneInfo(tenant.time_zone)
    midnight = datetime.combine(now.astimezone(zone).date(), datetime.min.time(), zone)
    return int(min(midnight, now - timedelta(minutes=RECENT_MINUTES)).timestamp())


def add(tenant: Tenant, visits: Sequence[Visit], now: datetime) -> None:
    """Count `visits` now: one pipeline."""
    schema, zone = tenant.schema_name, ZoneInfo(tenant.time_zone)
    recent_from = int(now.timestamp()) - RECENT_MINUTES * 60
    by_key: dict[tuple[str, int], set[str]] = {}
    for second, session, customer in visits:
        who = f"s:{session}" if session else f"c:{customer}"
        by_key.setdefault(
            (_day_key(schema, datetime.fromtimestamp(second, zone).date()), DAY_TTL), set()
        ).add(who)
        if second >= recent_from:
            by_key.setdefault((_minute_key(schema, second // 60), MINUTE_TTL), set()).add(who)
    pipe = redis.client().pipeline(transaction=False)
    for (key, ttl), members in by_key.items():
        pipe.pfadd(key, *members)
        pipe.expire(key, ttl)
    pipe.execute()


def counts(tenant: Tenant, now: datetime) -> tuple[int, int]:
    """(visitors of the last RECENT_MINUTES minutes, visitors of the tenant's local today)."""
    schema, minute = tenant.schema_name, int(now.timestamp()) // 60
    today = now.astimezone(ZoneInfo(tenant.time_zone)).date()
    pipe = redis.client().pipeline(transaction=False)
    pipe.pfcount(*(_minute_key(schema, minute - back) for back in range(RECENT_MINUTES)))
    pipe.pfcount(_day_key(schema, today))
    recent, day = pipe.execute()
    return int(recent), int(day)
