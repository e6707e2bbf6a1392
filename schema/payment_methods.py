"""A customer's saved payment methods, kept at Stripe on the customer's Stripe Customer: listed,
attached, detached and made the default (apps.payments.methods)."""

from __future__ import annotations

from collections.abc import Callable

import strawberry
from strawberry.types import Info

from apps.common.errors import NotFound
from apps.common.errors import UserError as ServiceError
from apps.payments import methods
from schema.context import principal
from schema.errors import ApiError, PaymentError, payload_or_errors
from schema.ids import pk_of


@strawberry.type(
    name="PaymentMethod", description="A payment method saved at Stripe (card details for cards)."
)
class PaymentMethodType:
    id: str = strawberry.field(description="Stripe's id (pm_…).")
    type: str = strawberry.field(description="Stripe's type: card, sepa_debit, …")
    is_default: bool = strawberry.field(
        description="The customer's default (invoice_settings at Stripe)."
    )
    brand: str | None = None
    last4: str | None = None
    exp_month: int | None = None
    exp_year: int | None = None

    @classmethod
    def of(cls, saved: methods.SavedMethod) -> PaymentMethodType:
        return cls(
            id=saved.id,
            type=saved.type,
            is_default=saved.is_default,
            brand=saved.brand,
            last4=saved.last4,
            exp_month=saved.exp_month,
            exp_year=saved.exp_year,
        )


@strawberry.type
class PaymentMethodPayload:
    payment_method: PaymentMethodType | None = None
    user_errors: list[PaymentError] = strawberry.field(default_factory=list)


def _payload(
    change: Callable[..., methods.SavedMethod],
    info: Info,
    customer: strawberry.ID,
    payment_method: str,
) -> PaymentMethodPayload:
    return payload_or_errors(
        lambda: PaymentMethodPayload(
            payment_method=PaymentMethodType.of(
                change(
                    actor=principal(info),
                    customer_id=pk_of(customer, "Customer", info),
                    payment_method=payment_method,
                )
            )
        ),
        lambda errors: PaymentMethodPayload(user_errors=errors),
        PaymentError,
    )


@strawberry.type
class Query:
    @strawberry.field(
        description="The customer's saved card payment methods at Stripe, the default marked."
    )
    def payment_methods(self, info: Info, customer: strawberry.ID) -> list[PaymentMethodType]:
        try:
            saved = methods.list_methods(customer_id=pk_of(customer, "Customer", info))
        except NotFound as exc:
            raise ApiError(exc.message, code="NOT_FOUND") from exc
        except ServiceError as exc:
            raise ApiError(exc.message, code="BAD_REQUEST", reason=exc.code) from exc
        return [PaymentMethodType.of(method) for method in saved]


@strawberry.type
class Mutation:
    @strawberry.mutation(
        description="Attach a payment method (pm_…) to the customer; its Stripe Customer is "
        "created on first use. A method of another customer is refused."
    )
    def payment_method_attach(
        self, info: Info, customer: strawberry.ID, payment_method: str
    ) -> PaymentMethodPayload:
        return _payload(methods.attach, info, customer, payment_method)

    @strawberry.mutation(description="Detach one of the customer's payment methods.")
    def payment_method_detach(
        self, info: Info, customer: strawberry.ID, payment_method: str
    ) -> PaymentMethodPayload:
        return _payload(methods.detach, info, customer, payment_method)

    @strawberry.mutation(description="Make one of the customer's payment methods its default.")
    def payment_method_set_default(
        self, info: Info, customer: strawberry.ID, payment_method: str
    ) -> PaymentMethodPayload:
        return _payload(methods.set_default, info, customer, payment_method)


__all__ = ["Mutation", "Query"]
