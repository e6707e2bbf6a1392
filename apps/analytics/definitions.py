"""Saved definitions of widgets and reports: what a user sends (JSON), checked against a whitelist
of keys and values (nothing a user writes reaches SQL), stored normalised, and turned into an
AnalyticsQuery each time it runs.

    {"metrics": ["gross_sales"], "dimension": "time", "granularity": "week",
     "range": "last_30_days",                      # or {"from": "2026-01-01", "to": "2026-03-31"}
                                                   # or {"lastDays": 45}
     "filters": {"productIds": ["<a product's global id>"], "categoryIds": []},
     "compare": true, "limit": 10}

A relative range is resolved when the definition runs, in the tenant's time zone, so a widget
of the last 7 days moves with the calendar; "last N days" end with today. Product and category
filters are global ids (apps.common.global_ids, of the tenant) on the way in and database ids once
stored."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from django.utils import timezone

from apps.analytics import metrics
from apps.analytics.errors import AnalyticsErrorCode
from apps.analytics.query import AnalyticsQuery, DateRange, Dimension, Filters, Granularity
from apps.catalog.models import Category, Product
from apps.common import global_ids
from apps.common.errors import UserError

if TYPE_CHECKING:
    from tenants.models import Tenant

KEYS = frozenset({"metrics", "dimension", "granularity", "range", "filters", "compare", "limit"})
FILTER_KEYS = {"productIds": "product_ids", "categoryIds": "category_ids"}
MAX_FILTER_IDS = 100
MAX_LAST_DAYS = 3660
PRESETS = (
    "today",
    "yesterday",
    "last_7_days",
    "last_30_days",
    "last_90_days",
    "last_365_days",
    "month_to_date",
    "year_to_date",
    "last_month",
)


def _bad(message: str, field: str, code: StrEnum = AnalyticsErrorCode.INVALID) -> UserError:
    return UserError(message, field=f"definition.{field}", code=code)


def _choice(
    value: Any, field: str, allowed: tuple[str, ...], code: StrEnum = AnalyticsErrorCode.INVALID
) -> str:
    if not isinstance(value, str) or value not in allowed:
        raise _bad(f"`{field}` must be one of: {', '.join(allowed)}.", field, code)
    return value


def today_in(tenant: Tenant) -> date:
    return timezone.localdate(timezone=ZoneInfo(tenant.time_zone))


def resolve_range(spec: str | Mapping[str, Any], today: date) -> DateRange:
    """A stored range (preset, {"lastDays": n} or {"from", "to"}) as days, `today` being the
    tenant's."""
    if isinstance(spec, str):
        first_of_month = today.replace(day=1)
        if spec == "today":
            return DateRange(today, today)
        if spec == "yesterday":
            return DateRange(today - timedelta(days=1), today - timedelta(days=1))
        if spec == "month_to_date":
            return DateRange(first_of_month, today)
        if spec == "year_to_date":
            return DateRange(today.replace(month=1, day=1), today)
        if spec == "last_month":
            last = first_of_month - timedelta(days=1)
            return DateRange(last.replace(day=1), last)
        return resolve_range({"lastDays": int(spec.split("_")[1])}, today)
    if "lastDays" in spec:
        return DateRange(today - timedelta(days=spec["lastDays"] - 1), today)
    return DateRange(date.fromisoformat(spec["from"]), date.fromisoformat(spec["to"]))


def _range(value: Any) -> str | dict[str, Any]:
    if isinstance(value, str):
        return _choice(value, "range", PRESETS, AnalyticsErrorCode.BAD_RANGE)
    if not isinstance(value, Mapping):
        raise _bad(
            '`range` is a preset name, {"lastDays": n} or {"from": day, "to": day}.',
            "range",
            AnalyticsErrorCode.BAD_RANGE,
        )
    if set(value) == {"lastDays"}:
        days = value["lastDays"]
        if not isinstance(days, int) or isinstance(days, bool) or not 1 <= days <= MAX_LAST_DAYS:
            raise _bad(
                f"`lastDays` is a whole number of days, 1 to {MAX_LAST_DAYS}.",
                "range.lastDays",
                AnalyticsErrorCode.BAD_RANGE,
            )
        return {"lastDays": days}
    if set(value) == {"from", "to"}:
        days = {}
        for name in ("from", "to"):
            try:
                days[name] = (
                    date.fromisoformat(value[name]).isoformat()
                    if isinstance(value[name], str)
                    else None
                )
            except ValueError:
                days[name] = None
            if days[name] is None or len(value[name]) != 10:
                raise _bad(
                    f"`{name}` must be a day written YYYY-MM-DD.",
                    f"range.{name}",
                    AnalyticsErrorCode.BAD_RANGE,
                )
        return days
    raise _bad(
        '`range` is a preset name, {"lastDays": n} or {"from": day, "to": day}, nothing else.',
        "range",
        AnalyticsErrorCode.BAD_RANGE,
    )


def _ids(value: Any, field: str, model: type[Product] | type[Category], schema: str) -> list[int]:
    """Global ids of `model` (its GraphQL type has the model's name) minted in `schema` as
    database ids, each one found; sorted, without repeats."""
    if not isinstance(value, list) or len(value) > MAX_FILTER_IDS:
        raise _bad(f"`{field}` is a list of at most {MAX_FILTER_IDS} ids.", f"filters.{field}")
    given: dict[int, str] = {}
    for item in value:
        pk = global_ids.pk_in(item, model.__name__, schema)
        if pk is None:
            raise _bad(
                f"{item!r} is not the id of a {model.__name__.lower()}.",
                f"filters.{field}",
                AnalyticsErrorCode.NOT_FOUND,
            )
        given.setdefault(pk, item)
    found = set(model.objects.filter(pk__in=given).values_list("pk", flat=True)) if given else set()
    if missing := given.keys() - found:
        raise _bad(
            f"No {model.__name__.lower()} with id {given[min(missing)]}.",
            f"filters.{field}",
            AnalyticsErrorCode.NOT_FOUND,
        )
    return sorted(given)


def _filters(value: Any, schema: str) -> dict[str, list[int]]:
    if value is None:
        return {"productIds": [], "categoryIds": []}
    if not isinstance(value, Mapping):
        raise _bad("`filters` is an object with productIds and categoryIds.", "filters")
    if unknown := sorted(set(value) - set(FILTER_KEYS)):
        raise _bad(
            f"Unknown filter {unknown[0]!r}; filters are productIds and categoryIds.",
            f"filters.{unknown[0]}",
            AnalyticsErrorCode.UNKNOWN_KEY,
        )
    return {
        "productIds": _ids(value.get("productIds", []), "productIds", Product, schema),
        "categoryIds": _ids(value.get("categoryIds", []), "categoryIds", Category, schema),
    }


def normalise(
    definition: Any, *, tenant: Tenant, max_metrics: int = metrics.MAX_METRICS
) -> dict[str, Any]:
    """`definition` checked and in its stored form (every key present, ids as database ids);
    a UserError (field `definition.<key>`) for anything off the whitelist."""
    if not isinstance(definition, Mapping):
        raise _bad("The definition is a JSON object.", "", AnalyticsErrorCode.INVALID)
    if unknown := sorted(set(definition) - KEYS):
        raise _bad(
            f"Unknown key {unknown[0]!r}; a definition has {', '.join(sorted(KEYS))}.",
            unknown[0],
            AnalyticsErrorCode.UNKNOWN_KEY,
        )
    names = definition.get("metrics")
    if not isinstance(names, list) or not names or not all(isinstance(name, str) for name in names):
        raise _bad(
            "`metrics` is a list of metric names.", "metrics", AnalyticsErrorCode.UNKNOWN_METRIC
        )
    if len(names) > max_metrics:
        raise _bad(
            f"At most {max_metrics} metric{'s' if max_metrics > 1 else ''} here.",
            "metrics",
            AnalyticsErrorCode.TOO_MANY_METRICS,
        )
    dimension = definition.get("dimension")
    if dimension is not None:
        _choice(dimension, "dimension", tuple(Dimension), AnalyticsErrorCode.BAD_DIMENSION)
    compare, limit = definition.get("compare", False), definition.get("limit")
    if not isinstance(compare, bool):
        raise _bad("`compare` is true or false.", "compare")
    if limit is not None and (not isinstance(limit, int) or isinstance(limit, bool)):
        raise _bad("`limit` is a whole number.", "limit", AnalyticsErrorCode.BAD_LIMIT)
    if "range" not in definition:
        raise _bad("Give a `range`.", "range", AnalyticsErrorCode.BAD_RANGE)
    stored = {
        "metrics": list(names),
        "dimension": dimension,
        "granularity": _choice(
            definition.get("granularity", Granularity.DAY.value), "granularity", tuple(Granularity)
        ),
        "range": _range(definition["range"]),
        "filters": _filters(definition.get("filters"), tenant.schema_name),
        "compare": compare,
        "limit": limit,
    }
    query(stored, tenant=tenant)  # what the engine would refuse, refused now
    return stored


def query(
    stored: Mapping[str, Any], *, tenant: Tenant, range: str | Mapping[str, Any] | None = None
) -> AnalyticsQuery:
    """The engine's query for a stored definition today (in the tenant's time zone), checked by
    metrics.check; `range` (stored form) replaces the definition's."""
    try:
        return metrics.check(
            AnalyticsQuery(
                metrics=tuple(stored["metrics"]),
                range=resolve_range(stored["range"] if range is None else range, today_in(tenant)),
                dimension=Dimension(stored["dimension"]) if stored["dimension"] else None,
                granularity=Granularity(stored["granularity"]),
                filters=Filters(
                    product_ids=tuple(stored["filters"]["productIds"]),
                    category_ids=tuple(stored["filters"]["categoryIds"]),
                ),
                compare=stored["compare"],
                limit=stored["limit"],
            )
        )
    except UserError as exc:
        field = {"from": "range", "to": "range"}.get(exc.field or "", exc.field or "")
        raise _bad(exc.message, field, exc.code) from exc


def check_range(value: Any) -> str | dict[str, Any]:
    """A range given apart from a definition (a report run over other days), in stored form."""
    return _range(value)


def public(stored: Mapping[str, Any], *, schema: str) -> dict[str, Any]:
    """A stored definition as the API of tenant `schema` shows it: what `normalise` takes back
    unchanged."""
    filters = stored["filters"]
    return {
        **stored,
        "filters": {
            "productIds": [
                global_ids.encode("Product", pk, schema) for pk in filters["productIds"]
            ],
            "categoryIds": [
                global_ids.encode("Category", pk, schema) for pk in filters["categoryIds"]
            ],
        },
    }
