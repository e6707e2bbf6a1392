"""Event ingestion: validate a batch, write what passes with COPY together with its daily counts
(EventDay), and say for each event that did not pass which rule it broke. One bad event never
holds back the others.

An event (the REST names; GraphQL's EventInput names the ids `customer`, `product`, `order`):

    type        required; a lowercase identifier `^[a-z][a-z0-9_.]{0,63}$`. The standard types are
                STANDARD_TYPES (the funnels' default steps and the metrics engine read them), but
                any identifier is accepted.
    time        required; ISO-8601 with an offset (`2026-03-01T12:00:00Z`, `…+01:00`): a time
                without one is refused. At most FUTURE_SKEW (5 minutes) ahead of the server's
                clock and at most MAX_AGE (400 days) old.
    sessionId   the anonymous visitor or session, 1 to 128 printable characters ("" = none).
    customerId  ids of this tenant's rows (REST: integers; GraphQL: global ids); each must exist
    productId   when the batch arrives (checked with one query per kind for the whole batch).
    orderId     A `purchased` event is only an event: no order is created from it.
    properties  a JSON object of at most 50 keys, at most 4 KB as JSON (UTF-8), nested at most
                two deep: `{"a": {"b": 1}}` and `{"a": [1, 2]}` pass, `{"a": {"b": {"c": 1}}}` and
                `{"a": [[1]]}` do not.

A session id or a customer id is required: someone did it.

Days are local days in the tenant's time zone. EventDay holds, per day, type and product (null:
events without one), how many events there were; `rebuild_event_days()` recomputes it from the
events when the tenant's time zone changes (apps.analytics.rollups.rebuild calls it)."""

from __future__ import annotations

import io
import json
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from django.db import transaction
from django.utils import timezone

from apps.analytics import cache, hooks
from apps.analytics.errors import AnalyticsErrorCode
from apps.analytics.models import Event, EventDay, Rollup
from apps.audit.services import record
from apps.catalog.models import Product
from apps.common.actors import Actor
from apps.common.errors import UserError
from apps.customers.models import Customer
from apps.orders.models import Order
from tenants.db import connection

if TYPE_CHECKING:
    from tenants.models import Tenant

STANDARD_TYPES = ("page_viewed", "product_viewed", "added_to_cart", "checkout_started", "purchased")
FUTURE_SKEW = timedelta(minutes=5)
MAX_AGE = timedelta(days=400)
MAX_PROPERTY_KEYS = 50
MAX_PROPERTIES_BYTES = 4096
GRAPHQL_MAX_EVENTS = 500
REST_MAX_EVENTS = 10_000
ROLLUP_NAME = "events"  # its Rollup row: the time zone EventDay's days are in
# A batch is counted by quarter hour in Python (every zone's offset is a multiple of 15 minutes,
# so a quarter hour lies within one local day) and the quarters turned into local days in SQL.
QUARTER = 15 * 60

TYPE_PATTERN = re.compile(r"[a-z][a-z0-9_.]{0,63}")
# Printable: no control characters (COPY's text format, logs) and no lone surrogates (not UTF-8).
_SESSION = re.compile(r"[^\x00-\x1f\x7f\ud800-\udfff]{1,128}").fullmatch
_TYPE = TYPE_PATTERN.fullmatch
FIELDS = frozenset(
    {"type", "time", "sessionId", "customerId", "productId", "orderId", "properties"}
)
_ID_KINDS = (("customerId", Customer), ("productId", Product), ("orderId", Order))
_BIGINT = 2**63
_encode = json.JSONEncoder(ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode


@dataclass(frozen=True)
class Unreadable:
    """An item that could not even be parsed (an NDJSON line that is not JSON): rejected as such."""

    message: str


@dataclass(frozen=True)
class Rejection:
    index: int
    code: str
    message: str


@dataclass
class Outcome:
    accepted: int = 0
    rejections: list[Rejection] = field(default_factory=list)  # by index

    @property
    def rejected(self) -> int:
        return len(self.rejections)


def _escape(text: str) -> str:
    """COPY text format: only backslashes need escaping in what the rules let through."""
    return text.replace("\\", "\\\\") if "\\" in text else text


def _properties(value: object) -> tuple[str | None, str]:
    """(JSON text for COPY, "") when `value` passes the rules, else (None, why not)."""
    if type(value) is not dict:
        return None, "properties must be a JSON object."
    if len(value) > MAX_PROPERTY_KEYS:
        return None, f"properties has {len(value)} keys; at most {MAX_PROPERTY_KEYS}."
    for inner in value.values():
        kind = type(inner)
        if kind is dict or kind is list:
            for leaf in inner.values() if kind is dict else inner:
                if type(leaf) is dict or type(leaf) is list:
                    return None, "properties may nest at most two levels deep."
    try:
        text = _encode(value)
        size = len(text.encode())
    except (ValueError, TypeError, UnicodeEncodeError):
        return None, "properties must be plain JSON (no NaN or Infinity, valid UTF-8)."
    if size > MAX_PROPERTIES_BYTES:
        return None, f"properties is {size} bytes as JSON; at most {MAX_PROPERTIES_BYTES}."
    if "\\u0000" in text:  # PostgreSQL's jsonb cannot hold NUL
        return None, "properties must not contain NUL characters."
    return _escape(text), ""


def _validate(items: Iterable[tuple[int, object]], now: datetime):
    """One pass over the batch: the rows that pass the rules that need no database (index, type,
    ISO time, session, customer, product, order, properties JSON, Unix second), the
    rejections, and the ids to look up."""
    earliest, latest = now - MAX_AGE, now + FUTURE_SKEW
    fromisoformat = datetime.fromisoformat
    rows: list[tuple] = []
    rejections: list[Rejection] = []
    reject = rejections.append
    wanted: tuple[set[int], set[int], set[int]] = (set(), set(), set())
    for index, item in items:
        if type(item) is not dict:
            if isinstance(item, Unreadable):
                reject(Rejection(index, "MALFORMED", item.message))
            else:
                reject(Rejection(index, "NOT_AN_OBJECT", "An event is a JSON object."))
            continue
        if not item.keys() <= FIELDS:
            unknown = ", ".join(sorted(map(str, item.keys() - FIELDS)))
            reject(Rejection(index, "UNKNOWN_FIELD", f"Unknown field(s): {unknown}."))
            continue
        kind = item.get("type")
        if type(kind) is not str or not _TYPE(kind):
            reject(
                Rejection(
                    index,
                    "INVALID_TYPE",
                    "type must be a lowercase identifier: a letter, then up to 63 of a-z 0-9 _ .",
                )
            )
            continue
        moment = item.get("time")
        if type(moment) is str:
            try:
                moment = fromisoformat(moment)
            except ValueError:
                reject(
                    Rejection(
                        index,
                        "INVALID_TIME",
                        "time must be an ISO-8601 date and time with an offset.",
                    )
                )
                continue
        elif not isinstance(moment, datetime):
            reject(
                Rejection(
                    index,
                    "INVALID_TIME",
                    "time is required: an ISO-8601 date and time with an offset.",
                )
            )
            continue
        if moment.tzinfo is None or moment.utcoffset() is None:
            reject(Rejection(index, "INVALID_TIME", "time needs an offset (Z or ±hh:mm)."))
            continue
        if moment > latest:
            reject(
                Rejection(
                    index,
                    "TIME_IN_FUTURE",
                    "time is more than 5 minutes ahead of the server's clock.",
                )
            )
            continue
        if moment < earliest:
            reject(Rejection(index, "TIME_TOO_OLD", f"time is more than {MAX_AGE.days} days ago."))
            continue
        session = item.get("sessionId")
        if session is None:
            session = ""
        elif type(session) is not str or (session and not _SESSION(session)):
            reject(
                Rejection(
                    index, "INVALID_SESSION", "sessionId must be 1 to 128 printable characters."
                )
            )
            continue
        ids = []
        for position, (name, _) in enumerate(_ID_KINDS):
            value = item.get(name)
            if value is not None:
                if type(value) is not int or not -_BIGINT <= value < _BIGINT:
                    reject(Rejection(index, "INVALID_ID", f"{name} must be an integer id."))
                    break
                wanted[position].add(value)
            ids.append(value)
        else:
            if ids[0] is None and not session:
                reject(
                    Rejection(index, "NO_VISITOR", "Give a sessionId or a customerId: who did it.")
                )
                continue
            properties = item.get("properties")
            if properties is None or properties == {}:
                text: str | None = "{}"
            else:
                text, why = _properties(properties)
                if text is None:
                    reject(Rejection(index, "INVALID_PROPERTIES", why))
                    continue
            rows.append(
                (
                    index,
                    kind,
                    moment.isoformat(),
                    session,
                    ids[0],
                    ids[1],
                    ids[2],
                    text,
                    int(moment.timestamp()),
                )
            )
    return rows, rejections, wanted


def _existing(wanted: tuple[set[int], set[int], set[int]]) -> list[set[int]]:
    """Which of the ids exist in this tenant: one query per kind that has any."""
    found = []
    with connection.cursor() as cursor:
        for ids, (_, model) in zip(wanted, _ID_KINDS, strict=True):
            if ids:
                cursor.execute(
                    f"SELECT id FROM {model._meta.db_table} WHERE id = ANY(%s)", [list(ids)]
                )
                found.append({row[0] for row in cursor.fetchall()})
            else:
                found.append(set())
    return found


def ingest(
    *, tenant: Tenant, events: Iterable[tuple[int, object]], now: datetime | None = None
) -> Outcome:
    """Validate `events` ((index it is reported under, the event) pairs) and store those that
    pass, with their EventDay counts, in one transaction. The caller bounds the batch."""
    now = now or timezone.now()
    rows, rejections, wanted = _validate(events, now)
    customers, products, orders = _existing(wanted)
    received = now.isoformat()
    lines: list[str] = []
    quarters: Counter[tuple[int, str, int | None]] = Counter()
    visits: list[tuple[int, str, int | None]] = []
    for index, kind, moment, session, customer, product, order, properties, second in rows:
        if customer is not None and customer not in customers:
            rejections.append(_unknown(index, "customer", customer))
            continue
        if product is not None and product not in products:
            rejections.append(_unknown(index, "product", product))
            continue
        if order is not None and order not in orders:
            rejections.append(_unknown(index, "order", order))
            continue
        lines.append(
            f"{kind}\t{moment}\t{_escape(session)}\t{_cell(customer)}\t{_cell(product)}\t{_cell(order)}\t"
            f"{properties}\t{received}\n"
        )
        quarters[(second // QUARTER, kind, product)] += 1
        visits.append((second, session, customer))
    if lines:
        hooks.events_stored.send(
            tenant=tenant, visits=visits, now=now
        )  # before _write queues its bump
        _write(lines, quarters, tenant.time_zone)
    rejections.sort(key=lambda rejection: rejection.index)
    return Outcome(accepted=len(lines), rejections=rejections)


@transaction.atomic
def track(*, actor: Actor, tenant: Tenant, events: list[dict[str, object]]) -> Outcome:
    """`eventsTrack`: at most GRAPHQL_MAX_EVENTS, ingested, and one audit entry for the call (the
    counts: events are data, not changes to audit one by one)."""
    if len(events) > GRAPHQL_MAX_EVENTS:
        raise UserError(
            f"{len(events)} events; at most {GRAPHQL_MAX_EVENTS} a call (send more to POST /api/events).",
            field="events",
            code=AnalyticsErrorCode.TOO_MANY_EVENTS,
        )
    outcome = ingest(tenant=tenant, events=enumerate(events))
    record(
        actor=actor,
        action="events.track",
        obj=tenant,
        changes={"accepted": outcome.accepted, "rejected": outcome.rejected},
    )
    return outcome


def _unknown(index: int, name: str, value: int) -> Rejection:
    return Rejection(index, f"UNKNOWN_{name.upper()}", f"There is no {name} {value} in this shop.")


def _cell(value: int | None) -> str:
    return "\\N" if value is None else str(value)


@transaction.atomic
def _write(
    lines: list[str], quarters: Counter[tuple[int, str, int | None]], tenant_zone: str
) -> None:
    """COPY the rows, then add their counts to EventDay. The local day of each quarter hour is
    taken in SQL, in the zone of the events' Rollup row as this transaction sees it after the
    COPY: a concurrent `rebuild_event_days` (new zone) either waits for this transaction, or
    this one waits for it and then reads the new zone, so no batch is counted in a stale zone."""
    columns = "type, time, session_id, customer_id, product_id, order_id, properties, received"
    keys = list(quarters)
    with connection.cursor() as cursor:
        cursor.copy_expert(
            f"COPY {Event._meta.db_table} ({columns}) FROM STDIN", io.StringIO("".join(lines))
        )
        cursor.execute(
            f"""INSERT INTO {EventDay._meta.db_table} AS d (day, type, product_id, events)
                SELECT (to_timestamp(u.quarter * {QUARTER}) AT TIME ZONE z.zone)::date, u.type, u.product,
                       sum(u.events)::bigint
                  FROM unnest(%s::bigint[], %s::varchar[], %s::bigint[], %s::bigint[])
                       AS u(quarter, type, product, events),
                       (SELECT coalesce((SELECT time_zone FROM {Rollup._meta.db_table} WHERE name = %s), %s)
                               AS zone) AS z
                 GROUP BY 1, 2, 3
                 ORDER BY 1, 2, 3  -- one lock order: concurrent batches never deadlock
                ON CONFLICT (day, type, product_id) DO UPDATE SET events = d.events + EXCLUDED.events""",
            [
                [k[0] for k in keys],
                [k[1] for k in keys],
                [k[2] for k in keys],
                [quarters[k] for k in keys],
                ROLLUP_NAME,
                tenant_zone,
            ],
        )
    cache.bump_on_commit()


@transaction.atomic
def rebuild_event_days(*, time_zone: str | None = None) -> None:
    """Recompute EventDay from the events in `time_zone` (default: the tenant's), and record it
    as the zone of the events' days. Ingestion waits meanwhile (a SHARE lock on the events)."""
    with (
        connection.cursor() as cursor
    ):  # applies the tenant context: connection.tenant is this tenant
        zone = time_zone or connection.tenant.time_zone
        cursor.execute(f"LOCK TABLE {Event._meta.db_table} IN SHARE MODE")
        cursor.execute(f"DELETE FROM {EventDay._meta.db_table}")
        cursor.execute(
            f"""INSERT INTO {EventDay._meta.db_table} (day, type, product_id, events)
                SELECT (time AT TIME ZONE %s)::date, type, product_id, count(*)
                  FROM {Event._meta.db_table} GROUP BY 1, 2, 3""",
            [zone],
        )
    Rollup.objects.update_or_create(
        name=ROLLUP_NAME, defaults={"time_zone": zone, "rebuilt": timezone.now()}
    )
    cache.bump_on_commit()
