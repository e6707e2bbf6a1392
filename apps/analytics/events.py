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

How a batch is checked: every event is first decoded (JSON bodies straight from their bytes) or
converted (Python objects: GraphQL, NDJSON lines) into WireEvent, a msgspec Struct whose
annotations carry the rules of shape (fields, types, id bounds, the offset, the properties' keys,
depth and finite numbers); what is left (the type and session patterns, the time window, the
visitor, the properties' size) is checked on whole columns at once. An event that msgspec
refuses is judged by `_check_object`, the rules written out one by one, which names the rule it
broke (and decides alone the few times only `datetime.fromisoformat` reads, such as `+05`
offsets); a property test holds both to the same answers.
msgspec reads `t`/`z` in lower case as RFC 3339 allows, and rounds digits of a second past the
sixth rather than dropping them.

Days are local days in the tenant's time zone. EventDay holds, per day, type and product (null:
events without one), how many events there were; `rebuild_event_days()` recomputes it from the
events when the tenant's time zone changes (apps.analytics.rollups.rebuild calls it)."""

from __future__ import annotations

import io
import json
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from itertools import compress, repeat
from typing import TYPE_CHECKING, Annotated

import msgspec
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
_SESSION_BREAKS = re.compile(r"[\x00-\x1f\x7f\ud800-\udfff]").search  # what _SESSION refuses
_NUL = "\\u0000"

# The compiled schema. Numbers in properties must be finite (the bounds refuse NaN and ±inf).
_Finite = Annotated[float, msgspec.Meta(ge=-1.7976931348623157e308, le=1.7976931348623157e308)]
_Leaf = str | int | _Finite | bool | None
_Properties = Annotated[
    dict[str, _Leaf | dict[str, _Leaf] | list[_Leaf]], msgspec.Meta(max_length=MAX_PROPERTY_KEYS)
]
_Id = Annotated[int, msgspec.Meta(ge=-_BIGINT, le=_BIGINT - 1)]
# msgspec's compact JSON of properties may differ from json's by a few bytes a number (`1e16`,
# `1e+16`): up to half the limit the size cannot decide, past it json's encoding measures.
_SURELY_SMALL = MAX_PROPERTIES_BYTES // 2


class WireEvent(
    msgspec.Struct,
    forbid_unknown_fields=True,
    gc=False,
    rename={
        "session_id": "sessionId",
        "customer_id": "customerId",
        "product_id": "productId",
        "order_id": "orderId",
    },
):
    """An event of the right shape (the REST names)."""

    type: str
    time: Annotated[datetime, msgspec.Meta(tz=True)]
    session_id: str | None = None
    customer_id: _Id | None = None
    product_id: _Id | None = None
    order_id: _Id | None = None
    properties: _Properties | None = None


_decode_events = msgspec.json.Decoder(list[WireEvent]).decode
_decode_raws = msgspec.json.Decoder(list[msgspec.Raw]).decode
_decode_event = msgspec.json.Decoder(WireEvent).decode
_decode_any = msgspec.json.Decoder().decode
_encode_fast = msgspec.json.Encoder().encode
_decode_strings = msgspec.json.Decoder(list[str]).decode


class NotAnArray(ValueError):
    """The JSON body is not an array."""


@dataclass(frozen=True)
class Shaped:
    """A JSON array whose every event decoded into WireEvent: event i is reported as index i."""

    events: list[WireEvent]

    def __len__(self) -> int:
        return len(self.events)


Batch = Shaped | Sequence[tuple[int, object]]


def decode_array(body: bytes) -> Batch:
    """A request body holding a JSON array of events, parsed once by msgspec. When every event has
    the right shape: Shaped. Otherwise (index, event) pairs: a WireEvent for each that has it, and
    the parsed JSON of each that has not, for the rules to name what it breaks. Raises NotAnArray;
    json's JSONDecodeError or UnicodeDecodeError (they say where) for a body that is not JSON;
    RecursionError for one nested too deeply to read.
    A body msgspec refuses as JSON but json reads (NaN, Infinity, lone surrogates) is judged event
    by event, as json parsed it."""
    try:
        return Shaped(_decode_events(body))
    except msgspec.ValidationError:
        pass  # not every event has the shape (or the body is no array): take them one by one
    except msgspec.DecodeError:
        return _json_array(body)
    try:
        raws = _decode_raws(body)
    except msgspec.ValidationError:
        raise NotAnArray from None
    except msgspec.DecodeError:  # past the first event msgspec refused: Infinity, …
        return _json_array(body)
    return [(index, decode_event(raw)) for index, raw in enumerate(raws)]


def _json_array(body: bytes) -> list[tuple[int, object]]:
    parsed = json.loads(body)  # raises where it breaks; else NaN, Infinity, lone surrogates, …
    if type(parsed) is not list:
        raise NotAnArray
    return list(enumerate(parsed))


def decode_event(raw: bytes | msgspec.Raw) -> object:
    """One event's JSON: a WireEvent, else the parsed JSON (json's reading where msgspec refuses
    it), else raises json.JSONDecodeError or UnicodeDecodeError."""
    try:
        return _decode_event(raw)
    except msgspec.ValidationError:
        pass
    except msgspec.DecodeError:
        return json.loads(bytes(raw))
    try:
        return _decode_any(raw)
    except msgspec.DecodeError:  # numbers out of msgspec's range
        return json.loads(bytes(raw))


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


_WHY_TYPE = "type must be a lowercase identifier: a letter, then up to 63 of a-z 0-9 _ ."
_WHY_FUTURE = "time is more than 5 minutes ahead of the server's clock."
_WHY_OLD = f"time is more than {MAX_AGE.days} days ago."
_WHY_SESSION = "sessionId must be 1 to 128 printable characters."
_WHY_NOBODY = "Give a sessionId or a customerId: who did it."
_WHY_NUL = "properties must not contain NUL characters."

# An event that passed the rules that need no database: (index, type, time, session, customer,
# product, order, properties as COPY text).
_Row = tuple[int, str, datetime, str, int | None, int | None, int | None, str]


@dataclass
class _Columns:
    """The events that passed the rules that need no database, one list per column."""

    index: Sequence[int]
    kind: Sequence[str]
    moment: Sequence[datetime]
    session: Sequence[str]
    customer: Sequence[int | None]
    product: Sequence[int | None]
    order: Sequence[int | None]
    properties: Sequence[str]  # JSON, escaped for COPY

    @classmethod
    def of_rows(cls, rows: list[_Row]) -> _Columns:
        if not rows:
            return cls([], [], [], [], [], [], [], [])
        return cls(*map(list, zip(*rows, strict=True)))

    def rows(self) -> Iterable[_Row]:
        return zip(
            self.index,
            self.kind,
            self.moment,
            self.session,
            self.customer,
            self.product,
            self.order,
            self.properties,
            strict=True,
        )


def _shaped(events: list[WireEvent], earliest: datetime, latest: datetime) -> _Columns | None:
    """The rules left after decoding, checked a column at a time (a few C-level passes, no
    Python per event beyond reading its fields): the columns when every event passes, else None
    (the caller then checks event by event to say which broke what)."""
    kinds = [e.type for e in events]
    if not all(map(_TYPE, set(kinds))):
        return None
    moments = [e.time for e in events]
    if events and (min(moments) < earliest or max(moments) > latest):
        return None
    sessions = [e.session_id or "" for e in events]
    if _SESSION_BREAKS("".join(sessions)) or max(map(len, sessions), default=0) > 128:
        return None
    customers = [e.customer_id for e in events]
    if "" in sessions and any(
        c is None and not s for c, s in zip(customers, sessions, strict=True)
    ):
        return None
    encoded = [b"{}" if not e.properties else _encode_fast(e.properties) for e in events]
    if max(map(len, encoded), default=0) > _SURELY_SMALL:
        return None
    texts = b"\n".join(encoded).decode()  # msgspec escapes newlines inside JSON strings
    if _NUL in texts:
        return None
    return _Columns(
        index=range(len(events)),
        kind=kinds,
        moment=moments,
        session=sessions,
        customer=customers,
        product=[e.product_id for e in events],
        order=[e.order_id for e in events],
        properties=_escape(texts).split("\n") if events else [],
    )


def _check_wire(
    index: int, event: WireEvent, earliest: datetime, latest: datetime
) -> _Row | Rejection:
    """The rules left after decoding, for one event, in the order _check_object applies them."""
    if not _TYPE(event.type):
        return Rejection(index, "INVALID_TYPE", _WHY_TYPE)
    moment = event.time
    if moment > latest:
        return Rejection(index, "TIME_IN_FUTURE", _WHY_FUTURE)
    if moment < earliest:
        return Rejection(index, "TIME_TOO_OLD", _WHY_OLD)
    session = event.session_id or ""
    if session and not _SESSION(session):
        return Rejection(index, "INVALID_SESSION", _WHY_SESSION)
    if event.customer_id is None and not session:
        return Rejection(index, "NO_VISITOR", _WHY_NOBODY)
    properties = event.properties
    text = "{}"
    if properties:
        encoded = _encode_fast(properties)
        if len(encoded) > _SURELY_SMALL:
            checked, why = _properties(properties)  # json's size decides
            if checked is None:
                return Rejection(index, "INVALID_PROPERTIES", why)
            text = checked
        else:
            text = encoded.decode()
            if _NUL in text:
                return Rejection(index, "INVALID_PROPERTIES", _WHY_NUL)
            text = _escape(text)
    return (
        index,
        event.type,
        moment,
        session,
        event.customer_id,
        event.product_id,
        event.order_id,
        text,
    )


def _check_object(
    index: int, item: object, earliest: datetime, latest: datetime
) -> _Row | Rejection:
    """Every rule, written out, for an event msgspec refused (or could not be given): the
    rejection that names the first rule it breaks, or the row when it breaks none (times that
    only `datetime.fromisoformat` reads)."""
    if type(item) is not dict:
        if isinstance(item, Unreadable):
            return Rejection(index, "MALFORMED", item.message)
        return Rejection(index, "NOT_AN_OBJECT", "An event is a JSON object.")
    if not item.keys() <= FIELDS:
        unknown = ", ".join(sorted(map(str, item.keys() - FIELDS)))
        return Rejection(index, "UNKNOWN_FIELD", f"Unknown field(s): {unknown}.")
    kind = item.get("type")
    if type(kind) is not str or not _TYPE(kind):
        return Rejection(index, "INVALID_TYPE", _WHY_TYPE)
    moment = item.get("time")
    if type(moment) is str:
        try:
            moment = datetime.fromisoformat(moment)
        except ValueError:
            return Rejection(
                index, "INVALID_TIME", "time must be an ISO-8601 date and time with an offset."
            )
    elif not isinstance(moment, datetime):
        return Rejection(
            index, "INVALID_TIME", "time is required: an ISO-8601 date and time with an offset."
        )
    if moment.tzinfo is None or moment.utcoffset() is None:
        return Rejection(index, "INVALID_TIME", "time needs an offset (Z or ±hh:mm).")
    if moment > latest:
        return Rejection(index, "TIME_IN_FUTURE", _WHY_FUTURE)
    if moment < earliest:
        return Rejection(index, "TIME_TOO_OLD", _WHY_OLD)
    session = item.get("sessionId")
    if session is None:
        session = ""
    elif type(session) is not str or (session and not _SESSION(session)):
        return Rejection(index, "INVALID_SESSION", _WHY_SESSION)
    ids: list[int | None] = []
    for name, _ in _ID_KINDS:
        value = item.get(name)
        if value is not None and (type(value) is not int or not -_BIGINT <= value < _BIGINT):
            return Rejection(index, "INVALID_ID", f"{name} must be an integer id.")
        ids.append(value)
    if ids[0] is None and not session:
        return Rejection(index, "NO_VISITOR", _WHY_NOBODY)
    properties = item.get("properties")
    text = "{}"
    if properties is not None and properties != {}:
        checked, why = _properties(properties)
        if checked is None:
            return Rejection(index, "INVALID_PROPERTIES", why)
        text = checked
    # msgspec writes offsets to the minute: an offset with seconds (+01:30:15) goes in as UTC.
    return (index, kind, moment.astimezone(UTC), session, ids[0], ids[1], ids[2], text)


def _one_by_one(items: Iterable[tuple[int, object]], earliest: datetime, latest: datetime):
    rows: list[_Row] = []
    rejections: list[Rejection] = []
    for index, item in items:
        if type(item) is dict:  # Python objects (GraphQL, callers): the same compiled rules
            try:
                item = msgspec.convert(item, WireEvent)
            except msgspec.ValidationError:
                pass
            else:
                item.time = item.time.astimezone(UTC)  # any tzinfo: offsets to the minute
        if type(item) is WireEvent:
            checked = _check_wire(index, item, earliest, latest)
        else:
            checked = _check_object(index, item, earliest, latest)
        if type(checked) is Rejection:
            rejections.append(checked)
        else:
            rows.append(checked)  # type: ignore[arg-type]
    return _Columns.of_rows(rows), rejections


def _validate(events: Batch | Iterable[tuple[int, object]], now: datetime):
    """The events that pass the rules that need no database, as columns, and the rejections."""
    earliest, latest = now - MAX_AGE, now + FUTURE_SKEW
    if isinstance(events, Shaped):
        columns = _shaped(events.events, earliest, latest)
        if columns is not None:
            return columns, []
        return _one_by_one(enumerate(events.events), earliest, latest)
    return _one_by_one(events, earliest, latest)


def _existing(wanted: tuple[set[int], set[int], set[int]]) -> list[set[int]]:
    """Which of the ids exist in this tenant: one query per kind that has any."""
    found = []
    with connection.cursor() as cursor:
        for ids, (_, model) in zip(wanted, _ID_KINDS, strict=True):
            if ids:
                cursor.execute(
                    f"SELECT id FROM {model._meta.db_table} WHERE id = ANY(%s::bigint[])",
                    [_array(ids)],
                )
                found.append({row[0] for row in cursor.fetchall()})
            else:
                found.append(set())
    return found


def _known(columns: _Columns, rejections: list[Rejection]) -> _Columns:
    """The events whose ids all exist in this tenant (one query per kind for the batch); the
    others join `rejections`."""
    id_columns = (columns.customer, columns.product, columns.order)
    wanted = tuple({*ids} - {None} for ids in id_columns)
    found = _existing(wanted)  # type: ignore[arg-type]
    if all(w <= f for w, f in zip(wanted, found, strict=True)):
        return columns
    keep = []
    for index, customer, product, order in zip(columns.index, *id_columns, strict=True):
        for name, value, known in zip(
            ("customer", "product", "order"), (customer, product, order), found, strict=True
        ):
            if value is not None and value not in known:
                rejections.append(_unknown(index, name, value))
                keep.append(False)
                break
        else:
            keep.append(True)
    return _Columns.of_rows(list(compress(columns.rows(), keep)))


def ingest(
    *,
    tenant: Tenant,
    events: Batch | Iterable[tuple[int, object]],
    now: datetime | None = None,
) -> Outcome:
    """Validate `events` (Shaped from decode_array, or (index it is reported under, the event)
    pairs) and store those that pass, with their EventDay counts, in one transaction. The caller
    bounds the batch."""
    now = now or timezone.now()
    columns, rejections = _validate(events, now)
    columns = _known(columns, rejections)
    count = len(columns.kind)
    if count:
        seconds = [int(moment.timestamp()) for moment in columns.moment]
        kinds, sessions, products = columns.kind, columns.session, columns.product
        quarters = Counter(
            zip([second // QUARTER for second in seconds], kinds, products, strict=True)
        )
        visits = list(zip(seconds, sessions, columns.customer, strict=True))
        # msgspec writes all the times as ISO 8601 in one call (datetime.isoformat is ~1 µs each).
        times = _decode_strings(_encode_fast(columns.moment))
        if "\\" in "".join(sessions):
            sessions = [_escape(session) for session in sessions]
        text = "\n".join(
            map(
                "\t".join,
                zip(
                    kinds,
                    times,
                    sessions,
                    _cells(columns.customer),
                    _cells(products),
                    _cells(columns.order),
                    columns.properties,
                    repeat(now.isoformat(), count),
                    strict=True,
                ),
            )
        )
        hooks.events_stored.send(
            tenant=tenant, visits=visits, now=now
        )  # before _write queues its bump
        _write(text + "\n", quarters, tenant.time_zone)
    rejections.sort(key=lambda rejection: rejection.index)
    return Outcome(accepted=count, rejections=rejections)


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


def _array(values: Iterable[object]) -> str:
    """A PostgreSQL array literal of ints (None: NULL) or of quoted names: one string to send and
    parse, where a list is adapted as ARRAY[…] with one constant each (~60 ms to build and as
    long to plan for 10,000 quarter hours)."""
    return "{" + ",".join(["NULL" if value is None else str(value) for value in values]) + "}"


def _cells(values: Iterable[int | None]) -> list[str]:
    return ["\\N" if value is None else str(value) for value in values]


@transaction.atomic
def _write(text: str, quarters: Counter[tuple[int, str, int | None]], tenant_zone: str) -> None:
    """COPY the rows, then add their counts to EventDay. The local day of each quarter hour is
    taken in SQL, in the zone of the events' Rollup row as this transaction sees it after the
    COPY: a concurrent `rebuild_event_days` (new zone) either waits for this transaction, or
    this one waits for it and then reads the new zone, so no batch is counted in a stale zone."""
    columns = "type, time, session_id, customer_id, product_id, order_id, properties, received"
    quarter, kind, product = zip(*quarters, strict=True) if quarters else ((), (), ())
    with connection.cursor() as cursor:
        cursor.copy_expert(f"COPY {Event._meta.db_table} ({columns}) FROM STDIN", io.StringIO(text))
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
                _array(quarter),
                _array(f'"{name}"' for name in kind),  # "null" is a type, NULL is not
                _array(product),
                _array(quarters.values()),
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
