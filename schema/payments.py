"""Payments: the shop's payment settings (Stripe keys; secrets write-only), Stripe payment
intents and back-office confirmation, manual payments marked paid by staff, and the payments
list, and the Stripe refunds behind the orders' `refundCreate` (apps.payments.refunds).
Stripe's webhook is a plain Django view (apps.payments.views), not GraphQL."""

from __future__ import annotations

import enum
from collections.abc import Iterable
from datetime import datetime

import strawberry
import strawberry_django
from strawberry.types import Info
from strawberry_django.relay import DjangoListConnection

from apps.payments import selectors, services
from apps.payments.models import (
    Payment,
    PaymentSettings,
    PaymentStatus,
    Provider,
    StripeRefund,
    StripeRefundStatus,
)
from schema.context import principal
from schema.errors import PaymentError, payload_or_errors
from schema.ids import TenantNode, pk_of, pk_or_none
from schema.orders import OrderType, RefundType
from schema.scalars import Money, money
from schema.types import as_type


@strawberry.enum(name="PaymentProvider")
class ProviderEnum(enum.Enum):
    STRIPE = Provider.STRIPE.value
    MANUAL = Provider.MANUAL.value


@strawberry.enum(name="PaymentStatus")
class PaymentStatusEnum(enum.Enum):
    PENDING = PaymentStatus.PENDING.value
    FAILED = PaymentStatus.FAILED.value
    CANCELED = PaymentStatus.CANCELED.value
    SUCCEEDED = PaymentStatus.SUCCEEDED.value


@strawberry.enum(name="StripeRefundStatus")
class StripeRefundStatusEnum(enum.Enum):
    REQUESTED = strawberry.enum_value(
        StripeRefundStatus.REQUESTED.value,
        description=(
            "Recorded, and not yet known to be made at Stripe (Stripe could not be reached, or the request "
            "was cut off): it is made by a retry with the same requestKey or within minutes by the reconciler."
        ),
    )
    PENDING = StripeRefundStatus.PENDING.value
    REQUIRES_ACTION = StripeRefundStatus.REQUIRES_ACTION.value
    SUCCEEDED = StripeRefundStatus.SUCCEEDED.value
    FAILED = StripeRefundStatus.FAILED.value
    CANCELED = StripeRefundStatus.CANCELED.value


@strawberry_django.type(StripeRefund, name="StripeRefund")
class StripeRefundType:
    stripe_id: str = strawberry_django.field(
        description="The Stripe refund id (re_…); empty while REQUESTED."
    )
    failure_reason: str
    from_dashboard: bool = strawberry_django.field(
        description="Made in the Stripe dashboard, not through this API."
    )
    # RefundType's money reads its order's currency: fetched with the refund.
    order_refund: RefundType | None = strawberry_django.field(
        description="The order refund it carries out.", select_related=["order_refund__order"]
    )
    created: datetime
    updated: datetime

    @strawberry_django.field(only=["status"])
    def status(self, root: StripeRefund) -> StripeRefundStatusEnum:
        return StripeRefundStatusEnum(root.status)

    @strawberry_django.field(only=["amount", "currency"])
    def amount(self, root: StripeRefund) -> Money:
        return money(root.amount, root.currency)


@strawberry.type(
    name="PaymentSettings", description="Secrets are write-only: only whether they are set shows."
)
class PaymentSettingsType:
    stripe_enabled: bool
    manual_enabled: bool
    stripe_publishable_key: str
    stripe_secret_key_set: bool
    stripe_webhook_secret_set: bool

    @strawberry.field(description="The providers switched on.")
    def providers(self) -> list[ProviderEnum]:
        return [
            p
            for p, on in (
                (ProviderEnum.STRIPE, self.stripe_enabled),
                (ProviderEnum.MANUAL, self.manual_enabled),
            )
            if on
        ]

    @classmethod
    def of(cls, row: PaymentSettings) -> PaymentSettingsType:
        return cls(
            stripe_enabled=row.stripe_enabled,
            manual_enabled=row.manual_enabled,
            stripe_publishable_key=row.stripe_publishable_key,
            stripe_secret_key_set=bool(row.stripe_secret_key_encrypted),
            stripe_webhook_secret_set=bool(row.stripe_webhook_secret_encrypted),
        )


@strawberry_django.type(Payment, name="Payment")
class PaymentType(TenantNode):
    order: OrderType
    stripe_id: str = strawberry_django.field(
        description="The Stripe PaymentIntent id (empty for manual payments, and for a Stripe "
        "attempt until Stripe has made its intent)."
    )
    failure_code: str
    failure_message: str
    attempt: int
    dispute_id: str = strawberry_django.field(
        description="The Stripe dispute (dp_…), when the payment is disputed."
    )
    dispute_reason: str
    disputed_at: datetime | None
    stripe_refunds: list[StripeRefundType] = strawberry_django.field(description="Oldest first.")
    created: datetime
    updated: datetime

    @strawberry_django.field(only=["provider"])
    def provider(self, root: Payment) -> ProviderEnum:
        return ProviderEnum(root.provider)

    @strawberry_django.field(only=["status"])
    def status(self, root: Payment) -> PaymentStatusEnum:
        return PaymentStatusEnum(root.status)

    @strawberry_django.field(only=["amount", "currency"])
    def amount(self, root: Payment) -> Money:
        return money(root.amount, root.currency)

    @strawberry_django.field(only=["amount_refunded", "currency"])
    def amount_refunded(self, root: Payment) -> Money:
        return money(root.amount_refunded, root.currency)


@strawberry.input
class PaymentSettingsInput:
    stripe_enabled: bool | None = None
    manual_enabled: bool | None = strawberry.field(
        default=None, description="Cash on delivery, bank transfer."
    )
    stripe_publishable_key: str | None = strawberry.field(
        default=None, description="pk_…; empty clears it."
    )
    stripe_secret_key: str | None = strawberry.field(
        default=None, description="sk_… or rk_…; write-only; empty clears it."
    )
    stripe_webhook_secret: str | None = strawberry.field(
        default=None, description="whsec_…; write-only; empty clears it."
    )


@strawberry.input
class PaymentFilter:
    order: strawberry.ID | None = None
    status: list[PaymentStatusEnum] | None = None


@strawberry.type
class PaymentSettingsPayload:
    payment_settings: PaymentSettingsType | None = None
    user_errors: list[PaymentError] = strawberry.field(default_factory=list)


@strawberry.type
class PaymentPayload:
    payment: PaymentType | None = None
    order: OrderType | None = None
    user_errors: list[PaymentError] = strawberry.field(default_factory=list)


@strawberry.type
class PaymentIntentPayload:
    payment: PaymentType | None = None
    client_secret: str | None = strawberry.field(
        default=None, description="For Stripe.js on the buyer's side; not stored here."
    )
    user_errors: list[PaymentError] = strawberry.field(default_factory=list)


def _payment_payload(make) -> PaymentPayload:
    def done() -> PaymentPayload:
        payment = make()
        return PaymentPayload(payment=payment, order=payment.order)

    return payload_or_errors(done, lambda errors: PaymentPayload(user_errors=errors), PaymentError)


@strawberry.type
class Query:
    @strawberry.field
    def payment_settings(self) -> PaymentSettingsType:
        return PaymentSettingsType.of(selectors.payment_settings())

    @strawberry_django.connection(DjangoListConnection[PaymentType], description="Newest first.")
    def payments(self, info: Info, filter: PaymentFilter | None = None) -> Iterable[Payment]:
        given = filter or PaymentFilter()
        return selectors.payments(
            order_id=pk_or_none(given.order, "Order", info),
            statuses=[status.value for status in given.status or []],
        )


@strawberry.type
class Mutation:
    @strawberry.mutation(
        description="Owner only. Secrets are encrypted at rest and never returned."
    )
    def payment_settings_update(
        self, info: Info, input: PaymentSettingsInput
    ) -> PaymentSettingsPayload:
        return payload_or_errors(
            lambda: PaymentSettingsPayload(
                payment_settings=PaymentSettingsType.of(
                    services.update_settings(
                        actor=principal(info),
                        stripe_enabled=input.stripe_enabled,
                        manual_enabled=input.manual_enabled,
                        stripe_publishable_key=input.stripe_publishable_key,
                        stripe_secret_key=input.stripe_secret_key,
                        stripe_webhook_secret=input.stripe_webhook_secret,
                    )
                )
            ),
            lambda errors: PaymentSettingsPayload(user_errors=errors),
            PaymentError,
        )

    @strawberry.mutation(
        description="A Stripe PaymentIntent for a pending order's total; an open attempt is "
        "handed out again."
    )
    def payment_intent_create(self, info: Info, order: strawberry.ID) -> PaymentIntentPayload:
        def make() -> PaymentIntentPayload:
            payment, client_secret = services.create_intent(
                actor=principal(info), order_id=pk_of(order, "Order", info)
            )
            return PaymentIntentPayload(
                payment=as_type(PaymentType, payment), client_secret=client_secret
            )

        return payload_or_errors(
            make, lambda errors: PaymentIntentPayload(user_errors=errors), PaymentError
        )

    @strawberry.mutation(
        description="Confirm a pending Stripe payment with a payment method (pm_…)."
    )
    def payment_confirm(
        self, info: Info, payment: strawberry.ID, payment_method: str
    ) -> PaymentPayload:
        return _payment_payload(
            lambda: services.confirm_payment(
                actor=principal(info),
                payment_id=pk_of(payment, "Payment", info),
                payment_method=payment_method,
            )
        )

    @strawberry.mutation(
        description="Record a manual payment (cash, bank transfer) of a pending order: it is paid."
    )
    def payment_mark_paid(self, info: Info, order: strawberry.ID) -> PaymentPayload:
        return _payment_payload(
            lambda: services.mark_paid(actor=principal(info), order_id=pk_of(order, "Order", info))
        )


__all__ = ["Mutation", "PaymentType", "Query"]
