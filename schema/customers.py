"""Customers: the Customer type (with its kept order statistics, notes and analytics), the
customer lists, the customer analytics summary, and create/update/delete/note mutations.

Contact details (email, phone, street address, notes) are shown in full to the roles that work
with customers (schema.permissions.CUSTOMER_CONTACTS); viewers and analysts see them redacted.
The analytics types are in schema/customer_analytics.py."""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable
from datetime import date, datetime
from typing import TYPE_CHECKING, Annotated, Any, cast

import strawberry
import strawberry_django
from strawberry import relay
from strawberry.types import Info
from strawberry_django.relay import DjangoListConnection

from apps.analytics import customers as customer_figures
from apps.customers import selectors, services
from apps.customers.models import Customer, CustomerNote
from apps.customers.privacy import masked_email, masked_phone
from schema import permissions
from schema.context import principal, tenant
from schema.customer_analytics import CustomerAnalytics, CustomerAnalyticsSummary
from schema.errors import CustomerError, payload_or_errors, read_or_bad_request
from schema.ids import TenantNode, pk_of
from schema.scalars import Money, money
from schema.types import as_type, as_types

if TYPE_CHECKING:
    from django_stubs_ext import WithAnnotations

    from schema.customer_segments import CustomerRfm


def sees_contacts(info: Info) -> bool:
    """Whether the caller sees customers' contact details in full (else redacted)."""
    return permissions.check(permissions.CUSTOMER_CONTACTS, principal(info), "contacts") is None


def contact_email(info: Info, email: str) -> str:
    """A customer's email as the caller may see it (for other types that show one, e.g. Order)."""
    return email if sees_contacts(info) else masked_email(email)


def _analytics_refused(info: Info):
    return permissions.check(permissions.CUSTOMER_ANALYTICS, principal(info), "Customer.analytics")


def _currency(info: Info) -> str:
    return tenant(info).currency


# --- types ---------------------------------------------------------------------------------------


@strawberry.type
class Address:
    line1: str | None = strawberry.field(description="Null for roles that see contacts redacted.")
    line2: str | None
    city: str
    region: str
    postal_code: str | None = strawberry.field(
        description="Null for roles that see contacts redacted."
    )
    country: str = strawberry.field(description="ISO 3166-1 alpha-2 code.")

    @classmethod
    def of(cls, address: dict[str, str], *, full: bool) -> Address:
        return cls(
            line1=address.get("line1", "") if full else None,
            line2=address.get("line2", "") if full else None,
            city=address.get("city", ""),
            region=address.get("region", ""),
            postal_code=address.get("postal_code", "") if full else None,
            country=address.get("country", ""),
        )


@strawberry_django.type(CustomerNote, name="CustomerNote")
class CustomerNoteType(TenantNode):
    body: str
    author_email: str = strawberry_django.field(description="The member (or API key) who wrote it.")
    created: datetime


@strawberry_django.type(Customer, name="Customer")
class CustomerType(TenantNode):
    first_name: str
    last_name: str
    tags: list[str]
    accepts_marketing: bool
    marketing_consent_at: datetime | None = strawberry_django.field(
        description="When marketing consent was last given; null while it is not."
    )
    orders_count: int
    first_order_at: datetime | None
    last_order_at: datetime | None
    created: datetime

    @strawberry_django.field(
        only=["email"], description="Redacted (a***@domain) for viewers and analysts."
    )
    def email(self, root: Customer, info: Info) -> str:
        return contact_email(info, root.email)

    @strawberry_django.field(
        only=["phone"], description="E.164; redacted for viewers and analysts."
    )
    def phone(self, root: Customer, info: Info) -> str:
        return root.phone if sees_contacts(info) else masked_phone(root.phone)

    @strawberry_django.field(only=["addresses"])
    def addresses(self, root: Customer, info: Info) -> list[Address]:
        full = sees_contacts(info)
        return [Address.of(address, full=full) for address in root.addresses]

    @strawberry_django.field(
        only=["total_spent"], description="Order totals less refunds, cancelled orders left out."
    )
    def total_spent(self, root: Customer, info: Info) -> Money:
        return money(root.total_spent, _currency(info))

    @strawberry_django.field(
        only=["total_spent", "orders_count"], description="totalSpent / ordersCount."
    )
    def average_order_value(self, root: Customer, info: Info) -> Money | None:
        average = selectors.average_order_value(root)
        return money(average, _currency(info))

    @strawberry_django.field(
        prefetch_related=["notes"], description="Newest first; empty for viewers and analysts."
    )
    def notes(self, root: Customer, info: Info) -> list[CustomerNoteType]:
        return list(as_types(CustomerNoteType, root.notes.all())) if sees_contacts(info) else []

    @strawberry_django.field(
        prefetch_related=[
            lambda info: customer_figures.analytics_prefetch(
                empty=_analytics_refused(info) is not None
            )
        ],
        description="Not for viewers (null with a FORBIDDEN error).",
    )
    def analytics(self, root: Customer, info: Info) -> CustomerAnalytics | None:
        if (refused := _analytics_refused(info)) is not None:
            raise refused
        return CustomerAnalytics.of(customer_figures.customer_analytics(root), _currency(info))

    @strawberry_django.field(
        only=["id"],
        description="RFM scores and segment as of today; null without an order. "
        "Not for viewers (null with a FORBIDDEN error).",
    )
    def rfm(
        self, root: Customer, info: Info
    ) -> Annotated[CustomerRfm, strawberry.lazy("schema.customer_segments")] | None:
        if (refused := _analytics_refused(info)) is not None:
            raise refused
        from schema.customer_segments import customer_rfm

        return customer_rfm(info, root.pk)


@strawberry.type(name="TopCustomerEdge", description="A customer and what they spent in the range.")
class TopCustomerEdge(relay.Edge[CustomerType]):
    @strawberry.field(description="Order totals less refunds, of the orders placed in the range.")
    def spent(self, info: Info) -> Money:
        return money(self._ranked_customer().period_spent, _currency(info))

    @strawberry.field(description="Orders placed in the range (cancelled ones left out).")
    def orders_count(self) -> int:
        return self._ranked_customer().period_orders

    def _ranked_customer(self) -> WithAnnotations[Customer, customer_figures.PeriodFigures]:
        """The node as top_customers made it: a Customer row with the range's figures, which
        mypy cannot see on CustomerType (as_type the other way round)."""
        return cast("WithAnnotations[Customer, customer_figures.PeriodFigures]", self.node)


@strawberry.type(name="TopCustomerConnection")
class TopCustomerConnection(DjangoListConnection[CustomerType]):
    # A narrower list than the base's is how strawberry gives a connection its own edge type;
    # mypy refuses to narrow a mutable attribute (list is invariant).
    edges: list[TopCustomerEdge] = strawberry.field(  # type: ignore[assignment]
        description="Contains the nodes in this connection"
    )


# --- inputs --------------------------------------------------------------------------------------


@strawberry.enum(name="CustomerSortField")
class CustomerSortFieldEnum(enum.Enum):
    CREATED = selectors.CustomerSort.CREATED.value
    TOTAL_SPENT = selectors.CustomerSort.TOTAL_SPENT.value
    LAST_ORDER_AT = selectors.CustomerSort.LAST_ORDER_AT.value


@strawberry.input
class CustomerSort:
    field: CustomerSortFieldEnum = CustomerSortFieldEnum.CREATED
    descending: bool = True


@strawberry.input
class CustomerFilter:
    search: str | None = strawberry.field(
        default=None,
        description="Words found in the name, or the email for roles that see contacts.",
    )
    tag: str | None = None
    accepts_marketing: bool | None = None
    created_from: date | None = strawberry.field(
        default=None, description="A day in the tenant's time zone."
    )
    created_to: date | None = strawberry.field(
        default=None, description="A day in the tenant's time zone, included."
    )


@strawberry.input
class AddressInput:
    line1: str
    city: str
    country: str = strawberry.field(description="ISO 3166-1 alpha-2 code, such as DE or US.")
    line2: str = ""
    region: str = ""
    postal_code: str = ""


@strawberry.input
class CustomerCreateInput:
    email: str
    first_name: str = ""
    last_name: str = ""
    phone: str = strawberry.field(
        default="", description="International form: +, country code, number."
    )
    addresses: list[AddressInput] = strawberry.field(default_factory=list)
    tags: list[str] = strawberry.field(default_factory=list)
    accepts_marketing: bool = False


@strawberry.input
class CustomerUpdateInput:
    email: str | None = strawberry.UNSET
    first_name: str | None = strawberry.UNSET
    last_name: str | None = strawberry.UNSET
    phone: str | None = strawberry.UNSET
    addresses: list[AddressInput] | None = strawberry.field(
        default=strawberry.UNSET, description="Replaces all addresses."
    )
    tags: list[str] | None = strawberry.field(
        default=strawberry.UNSET, description="Replaces all tags."
    )
    accepts_marketing: bool | None = strawberry.UNSET


def _fields(data: Any) -> dict[str, Any]:
    """The given fields of an input, addresses as plain dicts (as the services take them)."""
    values = {name: value for name, value in vars(data).items() if value is not strawberry.UNSET}
    if values.get("addresses") is not None:
        values["addresses"] = [vars(address) for address in values["addresses"]]
    return values


@strawberry.type
class CustomerPayload:
    customer: CustomerType | None = None
    user_errors: list[CustomerError] = strawberry.field(default_factory=list)


@strawberry.type
class CustomerDeletePayload:
    deleted_id: strawberry.ID | None = None
    user_errors: list[CustomerError] = strawberry.field(default_factory=list)


@strawberry.type
class CustomerNotePayload:
    note: CustomerNoteType | None = None
    user_errors: list[CustomerError] = strawberry.field(default_factory=list)


def _customer_payload(make: Callable[[], Customer]) -> CustomerPayload:
    return payload_or_errors(
        lambda: CustomerPayload(customer=as_type(CustomerType, make())),
        lambda e: CustomerPayload(user_errors=e),
        CustomerError,
    )


CustomerConnection = DjangoListConnection[CustomerType]
FromDate = Annotated[
    date | None, strawberry.argument(name="from", description="First day (tenant's time zone).")
]
ToDate = Annotated[
    date | None, strawberry.argument(description="Last day, included; default today.")
]


@strawberry.type
class Query:
    @strawberry_django.connection(CustomerConnection)
    def customers(
        self, info: Info, filter: CustomerFilter | None = None, sort: CustomerSort | None = None
    ) -> Iterable[Customer]:
        filter = filter or CustomerFilter()
        sort = sort or CustomerSort()
        return read_or_bad_request(
            lambda: selectors.customers(
                tenant=tenant(info),
                search=filter.search,
                tag=filter.tag,
                accepts_marketing=filter.accepts_marketing,
                created_from=filter.created_from,
                created_to=filter.created_to,
                sort=selectors.CustomerSort(sort.field.value),
                descending=sort.descending,
                search_contacts=sees_contacts(info),
            )
        )

    @strawberry_django.connection(
        CustomerConnection,
        description="Customers whose total spent reaches the tenant's vip_threshold setting (default 1000), "
        "biggest spenders first.",
    )
    def vip_customers(self, info: Info) -> Iterable[Customer]:
        return selectors.vip_customers(tenant=tenant(info))

    @strawberry_django.connection(
        CustomerConnection,
        description="Customers created in the last `days` days (periods of 24 hours up to now), newest first.",
    )
    def new_customers(self, days: int = 30) -> Iterable[Customer]:
        return read_or_bad_request(lambda: selectors.new_customers(days=days))

    @strawberry_django.connection(
        CustomerConnection,
        description="Customers who have ordered, but not in the last `days` days (periods of 24 hours), most recently "
        "lapsed first; with includeNeverOrdered, after them the customers older than that who never ordered.",
    )
    def inactive_customers(
        self, days: int = 90, include_never_ordered: bool = False
    ) -> Iterable[Customer]:
        return read_or_bad_request(
            lambda: selectors.inactive_customers(
                days=days, include_never_ordered=include_never_ordered
            )
        )

    @strawberry_django.connection(
        TopCustomerConnection,
        description="Customers by what they spent on orders placed from `from` to `to` (days in the tenant's "
        "time zone; default the last 30 days), biggest first.",
    )
    def top_customers(
        self, info: Info, from_: FromDate = None, to: ToDate = None
    ) -> Iterable[Customer]:
        return read_or_bad_request(
            lambda: customer_figures.top_customers_in_range(
                tenant=tenant(info), first=from_, last=to
            )
        )

    @strawberry.field(
        description="Customer figures for the days `from` to `to` (default the last 30 days)."
    )
    def customer_analytics_summary(
        self, info: Info, from_: FromDate = None, to: ToDate = None
    ) -> CustomerAnalyticsSummary:
        figures = read_or_bad_request(
            lambda: customer_figures.analytics_summary(tenant=tenant(info), first=from_, last=to)
        )
        return CustomerAnalyticsSummary.of(figures, currency=_currency(info))


@strawberry.type
class Mutation:
    @strawberry.mutation
    def customer_create(self, info: Info, input: CustomerCreateInput) -> CustomerPayload:
        return _customer_payload(
            lambda: services.create_customer(actor=principal(info), **_fields(input))
        )

    @strawberry.mutation
    def customer_update(
        self, info: Info, id: strawberry.ID, input: CustomerUpdateInput
    ) -> CustomerPayload:
        return _customer_payload(
            lambda: services.update_customer(
                actor=principal(info),
                customer_id=pk_of(id, "Customer", info),
                changes=_fields(input),
            )
        )

    @strawberry.mutation(description="Refused (HAS_ORDERS) while the customer has orders.")
    def customer_delete(self, info: Info, id: strawberry.ID) -> CustomerDeletePayload:
        def make() -> CustomerDeletePayload:
            services.delete_customer(actor=principal(info), customer_id=pk_of(id, "Customer", info))
            return CustomerDeletePayload(deleted_id=id)

        return payload_or_errors(
            make, lambda errors: CustomerDeletePayload(user_errors=errors), CustomerError
        )

    @strawberry.mutation
    def customer_note_add(
        self, info: Info, customer_id: strawberry.ID, body: str
    ) -> CustomerNotePayload:
        return payload_or_errors(
            lambda: CustomerNotePayload(
                note=as_type(
                    CustomerNoteType,
                    services.add_note(
                        actor=principal(info),
                        customer_id=pk_of(customer_id, "Customer", info),
                        body=body,
                    ),
                )
            ),
            lambda errors: CustomerNotePayload(user_errors=errors),
            CustomerError,
        )


__all__ = [
    "CustomerNoteType",
    "CustomerType",
    "FromDate",
    "Mutation",
    "Query",
    "ToDate",
    "contact_email",
    "sees_contacts",
]
