"""The analytics' userError codes: metrics, reports, dashboards, funnels, charts, events (the
common ones come with them; see apps/common/errors.py)."""

from apps.common.errors import error_codes

AnalyticsErrorCode = error_codes(
    "Analytics",
    "UNKNOWN_METRIC",
    "TOO_MANY_METRICS",
    "DUPLICATE_METRIC",
    "UNKNOWN_KEY",  # a key a definition or filter does not have
    "BAD_DIMENSION",
    "BAD_FILTER",
    "BAD_LIMIT",
    "BAD_STEPS",
    "BAD_WINDOW",
    "BAD_SIZE",
    "LIMIT_REACHED",
    "TOO_MANY_EVENTS",
)
