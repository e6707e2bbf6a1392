"""What each kind of export may be filtered by: JSON checked against a whitelist of keys and
values (nothing a user writes reaches SQL) and stored normalised; errors name `filters.<key>`.

    ORDERS     {"placed": {"from": "2026-01-01", "to": "2026-03-31"}, "statuses": ["paid", "pending"]}
    CUSTOMERS  {"tags": ["vip"], "acceptsMarketing": true}
    PRODUCTS   {"statuses": ["active"]}
    EVENTS     {"time": {"from": "2026-03-01", "to": "2026-03-07"}, "types": ["page_viewed"]}
    REPORT     {"report": "<Report global id>"} or {"definition": {...}}, and optionally "range"
               (a saved report's definition is copied when the export is asked for)

Days are the tenant's local days, both ends included."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime, time, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from apps.analytics import definitions, reports
from apps.catalog.models import Product
from apps.common import global_ids
from apps.common.errors import UserError
from apps.common.rules import check_range
from apps.exports.errors import ExportErrorCode
from apps.exports.models import ExportKind
from apps.orders.models import OrderStatus

if TYPE_CHECKING:
    from tenants.models import Tenant

MAX_VALUES = 50  # statuses, tags, event types


def _bad(message: str, field: str, code: StrEnum = ExportErrorCode.INVALID) -> UserError:
    return UserError(message, field=f"filters.{field}" if field else "filters", code=code)


def _keys(value: Any, allowed: frozenset[str], kind: str) -> Mapping[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise _bad("`filters` is a JSON object.", "")
    if unknown := sorted(set(value) - allowed):
        raise _bad(
            f"Unknown filter {unknown[0]!r} for a {kind} export; filters are "
            f"{', '.join(sorted(allowed)) or 'none'}.",
            unknown[0],
            ExportErrorCode.UNKNOWN_KEY,
        )
    return value


def _days(value: Any, field: str) -> dict[str, str] | None:
    if value is None:
        return None
    if not isinstance(value, Mapping) or set(value) != {"from", "to"}:
        raise _bad(f'`{field}` is {{"from": day, "to": day}}.', field, ExportErrorCode.BAD_RANGE)
    days: dict[str, date] = {}
    for end in ("from", "to"):
        text = value[end]
        try:
            day = date.fromisoformat(text) if isinstance(text, str) and len(text) == 10 else None
        except ValueError:
            day = None
        if day is None:
            raise _bad(
                f"`{end}` must be a day written YYYY-MM-DD.",
                f"{field}.{end}",
                ExportErrorCode.BAD_RANGE,
            )
        days[end] = day
    check_range(days["from"], days["to"], field=f"filters.{field}")
    return {end: day.isoformat() for end, day in days.items()}


def _strings(
    value: Any, field: str, allowed: frozenset[str] | None = None, *, lower: bool = False
) -> list[str]:
    if value is None:
        return []
    if (
        not isinstance(value, list)
        or len(value) > MAX_VALUES
        or not all(isinstance(item, str) and 0 < len(item) <= 64 for item in value)
    ):
        raise _bad(f"`{field}` is a list of at most {MAX_VALUES} names.", field)
    names = sorted({item.lower() if lower else item for item in value})
    if allowed is not None and (unknown := [name for name in names if name not in allowed]):
        raise _bad(f"{unknown[0]!r} is not one of: {', '.join(sorted(allowed))}.", field)
    return names


def _report(value: Mapping[str, Any], tenant: Tenant) -> dict[str, Any]:
    if ("report" in value) == ("definition" in value):
        raise _bad(
            "Give either `report` (a report's id) or `definition`.",
            "report",
            ExportErrorCode.REQUIRED,
        )
    if "report" in value:
        pk = global_ids.pk_in(value["report"], "Report", tenant.schema_name)
        if pk is None:
            raise _bad(
                f"{value['report']!r} is not the id of a report.",
                "report",
                ExportErrorCode.NOT_FOUND,
            )
        saved = reports.reports().filter(pk=pk).first()
        if saved is None:
            raise _bad("No such report.", "report", ExportErrorCode.NOT_FOUND)
        stored = {"report": pk, "name": saved.name, "definition": saved.definition}
    else:
        try:
            definition = definitions.normalise(value["definition"], tenant=tenant)
        except UserError as exc:
            raise UserError(exc.message, field=f"filters.{exc.field}", code=exc.code) from exc
        stored = {"report": None, "name": "Report", "definition": definition}
    if value.get("range") is not None:
        try:
            stored["range"] = definitions.check_range(value["range"])
        except UserError as exc:
            raise _bad(exc.message, "range", exc.code) from exc
    definitions.query(
        stored["definition"], tenant=tenant, range=stored.get("range")
    )  # runnable now
    return stored


ORDER_STATUSES = frozenset(OrderStatus.values)
PRODUCT_STATUSES = frozenset(Product.Status.values)
KEYS = {
    ExportKind.ORDERS: frozenset({"placed", "statuses"}),
    ExportKind.CUSTOMERS: frozenset({"tags", "acceptsMarketing"}),
    ExportKind.PRODUCTS: frozenset({"statuses"}),
    ExportKind.EVENTS: frozenset({"time", "types"}),
    ExportKind.REPORT: frozenset({"report", "definition", "range"}),
}


def normalise(kind: str, value: Any, *, tenant: Tenant) -> dict[str, Any]:
    """`value` checked for an export of `kind`, in its stored form; a UserError otherwise."""
    given = _keys(value, KEYS[ExportKind(kind)], kind)
    if kind == ExportKind.ORDERS:
        return {
            "placed": _days(given.get("placed"), "placed"),
            "statuses": _strings(given.get("statuses"), "statuses", ORDER_STATUSES, lower=True),
        }
    if kind == ExportKind.CUSTOMERS:
        marketing = given.get("acceptsMarketing")
        if marketing is not None and not isinstance(marketing, bool):
            raise _bad("`acceptsMarketing` is true or false.", "acceptsMarketing")
        return {
            "tags": _strings(given.get("tags"), "tags", lower=True),
            "acceptsMarketing": marketing,
        }
    if kind == ExportKind.PRODUCTS:
        return {
            "statuses": _strings(given.get("statuses"), "statuses", PRODUCT_STATUSES, lower=True)
        }
    if kind == ExportKind.EVENTS:
        return {
            "time": _days(given.get("time"), "time"),
            "types": _strings(given.get("types"), "types"),
        }
    return _report(given, tenant)


def span(days: Mapping[str, str] | None, zone: str) -> tuple[datetime, datetime] | None:
    """Stored days as [start, end) instants: midnight of `from` to the midnight after `to`, in `zone`."""
    if days is None:
        return None
    tz = ZoneInfo(zone)
    first, last = date.fromisoformat(days["from"]), date.fromisoformat(days["to"])
    return (
        datetime.combine(first, time(), tzinfo=tz),
        datetime.combine(last + timedelta(days=1), time(), tzinfo=tz),
    )
