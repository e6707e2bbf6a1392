"""Writing alert rules and reading notifications: owners, admins and analysts manage rules (the
permission table, schema/permissions.py); every analytics role marks notifications read.

A rule's webhook secret is made here and returned once, at creation (as an API key's); it is
stored encrypted (apps.common.crypto), since signing needs it back."""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterable, Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import transaction
from django.utils import timezone

from apps.alerts import webhooks
from apps.alerts.errors import AlertErrorCode
from apps.alerts.models import AlertRule, Channel, Comparison, Notification
from apps.analytics.metrics import METRICS
from apps.audit import services as audit
from apps.common import crypto
from apps.common.actors import Actor
from apps.common.errors import NotFound, UserError
from apps.common.rules import required_text

NAME_MAX = 120
WINDOW_DAYS_MAX = 365
COOLDOWN_MINUTES_MAX = 30 * 24 * 60
EMAILS_MAX = 10
THRESHOLD_MAX = Decimal("1e12")
MARK_READ_MAX = 100
SECRET_MARK = "whsec"

# Rule fields a caller sets, and the GraphQL name each error names.
FIELDS = {
    "name": "name",
    "metric": "metric",
    "comparison": "comparison",
    "window_days": "windowDays",
    "threshold": "threshold",
    "cooldown_minutes": "cooldownMinutes",
    "channels": "channels",
    "emails": "emails",
    "webhook_url": "webhookUrl",
    "active": "active",
}


def _name(value: Any) -> str:
    return required_text(value, field="name", max_length=NAME_MAX, missing="Give the rule a name.")


def _metric(value: Any) -> str:
    if value not in METRICS:
        raise UserError(
            f"Unknown metric: {value}.", field="metric", code=AlertErrorCode.UNKNOWN_METRIC
        )
    return value


def _comparison(value: Any) -> str:
    if value not in Comparison.values:
        raise UserError(
            f"Comparison is one of {', '.join(Comparison.values)}.",
            field="comparison",
            code=AlertErrorCode.INVALID,
        )
    return value


def _whole(value: Any, field: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise UserError(
            f"A whole number from {low} to {high}.", field=field, code=AlertErrorCode.OUT_OF_RANGE
        )
    return value


def _threshold(value: Any) -> Decimal:
    try:
        number = Decimal(str(value))
    except (InvalidOperation, ValueError) as error:
        raise UserError("Not a number.", field="threshold", code=AlertErrorCode.INVALID) from error
    if not number.is_finite() or abs(number) >= THRESHOLD_MAX:
        raise UserError("Out of range.", field="threshold", code=AlertErrorCode.OUT_OF_RANGE)
    if number != number.quantize(Decimal("0.0001")):
        raise UserError(
            "At most four decimal places.", field="threshold", code=AlertErrorCode.INVALID
        )
    return number


def _channels(value: Any) -> list[str]:
    channels = list(value or [])
    if not channels or set(channels) - set(Channel.values):
        raise UserError(
            f"Channels are some of {', '.join(Channel.values)}.",
            field="channels",
            code=AlertErrorCode.REQUIRED,
        )
    return [channel for channel in Channel.values if channel in channels]


def _emails(value: Any) -> list[str]:
    emails = [email.strip().lower() for email in value or [] if isinstance(email, str)]
    if len(emails) != len(value or []) or len(emails) > EMAILS_MAX:
        raise UserError(
            f"At most {EMAILS_MAX} addresses.", field="emails", code=AlertErrorCode.INVALID
        )
    for email in emails:
        try:
            validate_email(email)
        except ValidationError as error:
            raise UserError(
                f"Not an email address: {email}.", field="emails", code=AlertErrorCode.INVALID_EMAIL
            ) from error
    return list(dict.fromkeys(emails))


def _webhook_url(value: Any) -> str:
    return webhooks.check_url(value) if value else ""


CLEANERS: dict[str, Callable[[Any], Any]] = {
    "name": _name,
    "metric": _metric,
    "comparison": _comparison,
    "window_days": lambda value: _whole(value, "windowDays", 1, WINDOW_DAYS_MAX),
    "threshold": _threshold,
    "cooldown_minutes": lambda value: _whole(value, "cooldownMinutes", 1, COOLDOWN_MINUTES_MAX),
    "channels": _channels,
    "emails": _emails,
    "webhook_url": _webhook_url,
    "active": bool,
}


def _check_together(rule: AlertRule) -> None:
    if rule.comparison == Comparison.PERCENT_CHANGE and rule.threshold == 0:
        raise UserError(
            "A percent change threshold is a rise (> 0) or a fall (< 0).",
            field="threshold",
            code=AlertErrorCode.INVALID,
        )
    if Channel.EMAIL in rule.channels and not rule.emails:
        raise UserError(
            "The email channel needs at least one address.",
            field="emails",
            code=AlertErrorCode.REQUIRED,
        )
    if Channel.WEBHOOK in rule.channels and not rule.webhook_url:
        raise UserError(
            "The webhook channel needs a URL.", field="webhookUrl", code=AlertErrorCode.REQUIRED
        )


def _apply(rule: AlertRule, values: Mapping[str, Any]) -> dict[str, list[Any]]:
    """Set the checked `values` on `rule`; the changes as {field: [before, after]}."""
    if unknown := sorted(set(values) - set(FIELDS)):
        raise UserError(
            f"{unknown[0]} cannot be set.", field=unknown[0], code=AlertErrorCode.INVALID
        )
    changes = {}
    for name, value in values.items():
        clean = CLEANERS[name](value)
        if getattr(rule, name) != clean:
            changes[name] = [getattr(rule, name), clean]
            setattr(rule, name, clean)
    _check_together(rule)
    return changes


def _logged(changes: dict[str, list[Any]]) -> dict[str, Any]:
    return {
        name: [str(v) if isinstance(v, Decimal) else v for v in pair]
        for name, pair in changes.items()
    }


@transaction.atomic
def create_rule(*, actor: Actor, values: Mapping[str, Any]) -> tuple[AlertRule, str]:
    """A new rule and its webhook secret, which is shown this once."""
    missing = [
        FIELDS[name]
        for name in ("name", "metric", "comparison", "window_days", "threshold", "channels")
        if values.get(name) is None
    ]
    if missing:
        raise UserError(
            f"{missing[0]} is required.", field=missing[0], code=AlertErrorCode.REQUIRED
        )
    rule = AlertRule(created_by_id=getattr(getattr(actor, "user", None), "pk", None))
    changes = _apply(rule, values)
    secret = f"{SECRET_MARK}_{secrets.token_urlsafe(32)}"
    rule.webhook_secret = crypto.encrypt(secret)
    rule.save()
    audit.record(
        actor=actor,
        action="alert_rule.create",
        obj=rule,
        changes={name: after for name, (_, after) in _logged(changes).items()},
    )
    return rule, secret


def _locked(rule_id: int) -> AlertRule:
    rule = AlertRule.objects.select_for_update().filter(pk=rule_id).first()
    if rule is None:
        raise NotFound("No such alert rule.")
    return rule


@transaction.atomic
def update_rule(*, actor: Actor, rule_id: int, values: Mapping[str, Any]) -> AlertRule:
    rule = _locked(rule_id)
    changes = _apply(rule, values)
    if changes:
        rule.save()
        audit.record(actor=actor, action="alert_rule.update", obj=rule, changes=_logged(changes))
    return rule


@transaction.atomic
def delete_rule(*, actor: Actor, rule_id: int) -> None:
    """The rule goes; the notifications it wrote stay (without it)."""
    rule = _locked(rule_id)
    audit.record(actor=actor, action="alert_rule.delete", obj=rule, changes={"name": rule.name})
    rule.delete()


@transaction.atomic
def mark_read(*, actor: Actor, ids: Iterable[int] | None = None, everything: bool = False) -> int:
    """Marks the given in-app notifications (at most MARK_READ_MAX), or all of them, read for the
    whole tenant; how many were unread. One audit entry names the newest of them."""
    if everything == (ids is not None):
        raise UserError("Give either `ids` or `all`.", field="ids", code=AlertErrorCode.REQUIRED)
    unread = Notification.objects.filter(in_app=True, read_at__isnull=True)
    if ids is not None:
        ids = list(ids)
        if len(ids) > MARK_READ_MAX:
            raise UserError(
                f"At most {MARK_READ_MAX} ids at once.", field="ids", code=AlertErrorCode.INVALID
            )
        unread = unread.filter(pk__in=ids)
    marked = list(unread.select_for_update().values_list("pk", flat=True))
    if not marked:
        return 0
    Notification.objects.filter(pk__in=marked).update(read_at=timezone.now())
    newest = Notification(pk=max(marked))
    audit.record(
        actor=actor,
        action="notification.mark_read",
        obj=newest,
        changes={"count": len(marked), "all": everything},
    )
    return len(marked)
