"""Alert rules and notifications (apps.alerts): rules watch a metric of the analytics engine and
fire into notifications (in the app, by email, by signed webhook). Owners, admins and analysts
manage rules; every role that sees analytics reads them and the notifications, marks
notifications read (for the whole tenant) and subscribes to new ones."""

from __future__ import annotations

import enum
from collections.abc import AsyncGenerator, Callable, Iterable
from datetime import datetime
from decimal import Decimal
from typing import Any

import strawberry
import strawberry_django
from channels.db import database_sync_to_async
from strawberry.scalars import JSON
from strawberry.types import Info
from strawberry_django.relay import DjangoListConnection

from apps.alerts import selectors, services
from apps.alerts.errors import AlertErrorCode
from apps.alerts.models import AlertRule, Channel, Comparison, Notification
from apps.common.errors import UserError as ServiceUserError
from apps.live import bus
from schema.context import principal, tenant
from schema.errors import AlertError, payload_or_errors
from schema.ids import TenantNode, pk_of
from schema.live import subscription_slot
from schema.types import as_type


@strawberry.enum(
    name="AlertComparison",
    description="ABOVE: value > threshold; BELOW: value < threshold; "
    "PERCENT_CHANGE: the change vs the previous window of the same length, in percent, signed: a "
    "positive threshold fires on a rise of at least that much, a negative one on a fall.",
)
class ComparisonEnum(enum.Enum):
    ABOVE = Comparison.ABOVE.value
    BELOW = Comparison.BELOW.value
    PERCENT_CHANGE = Comparison.PERCENT_CHANGE.value


@strawberry.enum(name="AlertChannel")
class ChannelEnum(enum.Enum):
    IN_APP = Channel.IN_APP.value
    EMAIL = Channel.EMAIL.value
    WEBHOOK = Channel.WEBHOOK.value


@strawberry.enum(name="AlertState")
class StateEnum(enum.Enum):
    CLEAR = AlertRule.State.CLEAR.value
    FIRING = AlertRule.State.FIRING.value


@strawberry_django.type(AlertRule, name="AlertRule")
class AlertRuleType(TenantNode):
    name: str
    metric: str = strawberry_django.field(description="A metric of `analytics`, in total.")
    window_days: int = strawberry_django.field(
        description="Whole days in the tenant's time zone ending today (1: today so far)."
    )
    threshold: Decimal
    cooldown_minutes: int = strawberry_django.field(description="It never fires twice within this.")
    emails: list[str]
    webhook_url: str = strawberry_django.field(
        description='Signed: X-Shop-Signature: t=<unix>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>.'
    )
    active: bool
    last_value: Decimal | None = strawberry_django.field(
        description="What the last evaluation saw (a change in percent for PERCENT_CHANGE)."
    )
    last_evaluated_at: datetime | None
    last_fired_at: datetime | None
    created: datetime
    updated: datetime

    @strawberry_django.field(only=["comparison"])
    def comparison(self, root: AlertRule) -> ComparisonEnum:
        return ComparisonEnum(root.comparison)

    @strawberry_django.field(only=["channels"])
    def channels(self, root: AlertRule) -> list[ChannelEnum]:
        return [ChannelEnum(channel) for channel in root.channels]

    @strawberry_django.field(only=["state"])
    def state(self, root: AlertRule) -> StateEnum:
        return StateEnum(root.state)


@strawberry_django.type(Notification, name="Notification")
class NotificationType(TenantNode):
    title: str
    body: str
    data: JSON = strawberry_django.field(
        description="rule, metric, comparison, value, threshold, windowDays, "
        "from, to (values as decimal strings)."
    )
    created: datetime
    read_at: datetime | None = strawberry_django.field(
        description="Shared by the tenant's members."
    )
    rule: AlertRuleType | None = strawberry_django.field(
        description="Null once the rule is deleted."
    )


@strawberry.input
class AlertRuleInput:
    name: str
    metric: str
    comparison: ComparisonEnum
    window_days: int = strawberry.field(default=1, description="1 to 365.")
    threshold: Decimal
    cooldown_minutes: int = strawberry.field(default=60, description="1 to 43200.")
    channels: list[ChannelEnum] = strawberry.field(default_factory=lambda: [ChannelEnum.IN_APP])
    emails: list[str] = strawberry.field(default_factory=list)
    webhook_url: str = ""
    active: bool = True


@strawberry.input
class AlertRuleUpdateInput:
    name: str | None = strawberry.UNSET
    metric: str | None = strawberry.UNSET
    comparison: ComparisonEnum | None = strawberry.UNSET
    window_days: int | None = strawberry.UNSET
    threshold: Decimal | None = strawberry.UNSET
    cooldown_minutes: int | None = strawberry.UNSET
    channels: list[ChannelEnum] | None = strawberry.UNSET
    emails: list[str] | None = strawberry.UNSET
    webhook_url: str | None = strawberry.UNSET
    active: bool | None = strawberry.UNSET


def _values(data: Any) -> dict[str, Any]:
    """The input's given fields, enums as their values (null for a required field: refused)."""
    values = {}
    for name, value in vars(data).items():
        if value is strawberry.UNSET:
            continue
        if isinstance(value, enum.Enum):
            value = value.value
        elif isinstance(value, list):
            value = [item.value if isinstance(item, enum.Enum) else item for item in value]
        values[name] = value
    if unset := [name for name, value in values.items() if value is None]:
        raise ServiceUserError(
            f"{unset[0]} cannot be null.",
            field=services.FIELDS[unset[0]],
            code=AlertErrorCode.REQUIRED,
        )
    return values


@strawberry.type
class AlertRulePayload:
    alert_rule: AlertRuleType | None = None
    webhook_secret: str | None = strawberry.field(
        default=None,
        description="On creation only: the secret that signs this rule's webhooks, shown once.",
    )
    user_errors: list[AlertError] = strawberry.field(default_factory=list)


@strawberry.type
class AlertRuleDeletePayload:
    deleted_id: strawberry.ID | None = None
    user_errors: list[AlertError] = strawberry.field(default_factory=list)


@strawberry.type
class NotificationMarkReadPayload:
    marked: int = strawberry.field(default=0, description="How many were unread.")
    user_errors: list[AlertError] = strawberry.field(default_factory=list)


def _payload(make: Callable[[], AlertRulePayload]) -> AlertRulePayload:
    return payload_or_errors(make, lambda errors: AlertRulePayload(user_errors=errors), AlertError)


@strawberry.type
class Query:
    @strawberry_django.connection(DjangoListConnection[AlertRuleType], description="By name.")
    def alert_rules(self) -> Iterable[AlertRule]:
        return selectors.rules()

    @strawberry_django.connection(
        DjangoListConnection[NotificationType],
        description="Newest first; `unread`: only those not read (true) or read (false).",
    )
    def notifications(self, unread: bool | None = None) -> Iterable[Notification]:
        return selectors.notifications(unread=unread)


@strawberry.type
class Mutation:
    @strawberry.mutation
    def alert_rule_create(self, info: Info, input: AlertRuleInput) -> AlertRulePayload:
        def make() -> AlertRulePayload:
            rule, secret = services.create_rule(actor=principal(info), values=_values(input))
            return AlertRulePayload(alert_rule=as_type(AlertRuleType, rule), webhook_secret=secret)

        return _payload(make)

    @strawberry.mutation
    def alert_rule_update(
        self, info: Info, id: strawberry.ID, input: AlertRuleUpdateInput
    ) -> AlertRulePayload:
        return _payload(
            lambda: AlertRulePayload(
                alert_rule=as_type(
                    AlertRuleType,
                    services.update_rule(
                        actor=principal(info),
                        rule_id=pk_of(id, "AlertRule", info),
                        values=_values(input),
                    ),
                )
            )
        )

    @strawberry.mutation(description="Its notifications stay.")
    def alert_rule_delete(self, info: Info, id: strawberry.ID) -> AlertRuleDeletePayload:
        def make() -> AlertRuleDeletePayload:
            services.delete_rule(actor=principal(info), rule_id=pk_of(id, "AlertRule", info))
            return AlertRuleDeletePayload(deleted_id=id)

        return payload_or_errors(
            make, lambda errors: AlertRuleDeletePayload(user_errors=errors), AlertError
        )

    @strawberry.mutation(
        description=f"Marks notifications read for the whole tenant: `ids` (at most "
        f"{services.MARK_READ_MAX}) or `all: true`."
    )
    def notification_mark_read(
        self, info: Info, ids: list[strawberry.ID] | None = None, all: bool = False
    ) -> NotificationMarkReadPayload:
        pks = None if ids is None else [pk_of(each, "Notification", info) for each in ids]
        return payload_or_errors(
            lambda: NotificationMarkReadPayload(
                marked=services.mark_read(actor=principal(info), ids=pks, everything=all)
            ),
            lambda errors: NotificationMarkReadPayload(user_errors=errors),
            AlertError,
        )


@strawberry.type
class Subscription:
    @strawberry.subscription(
        description="The tenant's new in-app notifications, as they are written (one of the "
        "connection's and the tenant's subscription slots, apps.live.limits)."
    )
    async def notifications(self, info: Info) -> AsyncGenerator[NotificationType, None]:
        schema_name = tenant(info).schema_name
        async with (
            subscription_slot(info),
            bus.listen(info.context.request, schema_name, "notifications") as messages,
        ):
            async for payload in messages:
                found = await database_sync_to_async(selectors.notification)(
                    payload["notification"]
                )
                if found is not None:
                    yield found


__all__ = ["AlertRuleType", "Mutation", "NotificationType", "Query", "Subscription"]
