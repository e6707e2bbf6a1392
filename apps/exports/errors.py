"""The exports' userError codes: the common ones and the analytics' (an export's filters hold a
report definition, checked by apps.analytics.definitions, whose errors pass on)."""

from apps.analytics.errors import AnalyticsErrorCode
from apps.common.errors import error_codes

ExportErrorCode = error_codes("Export", include=[AnalyticsErrorCode])
