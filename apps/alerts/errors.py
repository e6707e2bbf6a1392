"""The alerts' userError codes: the common ones, the analytics' (a rule watches a metric, checked
by apps.analytics.metrics, whose errors pass on) and their own."""

from apps.analytics.errors import AnalyticsErrorCode
from apps.common.errors import error_codes

AlertErrorCode = error_codes(
    "Alert",
    "INVALID_EMAIL",
    "INVALID_URL",
    "PRIVATE_ADDRESS",  # a webhook to a private, loopback or reserved address
    include=[AnalyticsErrorCode],
)
