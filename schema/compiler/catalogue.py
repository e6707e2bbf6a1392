"""What the selection compiler knows: for each type it serves, how each field is read in SQL.

Fields that are a model column or relation and have no resolver of their own (strawberry-django
reads them straight from the row) are derived from the strawberry-django type itself, so a column
added to a type is known at once. Fields with a resolver are known only when listed in RESOLVED
below, next to what their resolver does; any other field is unknown, and a selection that asks for
one is served by the resolver path (schema/compiler/extension.py). Listing a field here is a
promise that the SQL gives byte for byte what its resolver gives: tests/schema/test_compiler.py
holds each entry to it, for every role.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache

from django.db import models
from strawberry import Schema

from apps.customers.privacy import masked_email, masked_phone
from schema.catalog.types import ProductStatusEnum
from schema.orders import OrderStatusEnum
from schema.payments import PaymentStatusEnum, ProviderEnum


@dataclass(frozen=True)
class Column:
    """A column served as stored; `form` says how its value is written in JSON."""

    column: str
    form: str = "plain"  # plain (numbers, text, booleans, JSON, arrays) | datetime | date | decimal


@dataclass(frozen=True)
class EnumColumn:
    """A text column served as a GraphQL enum: the member's name; `blank_is_null`: '' is null."""

    column: str
    names: tuple[tuple[str, str], ...]  # (stored value, GraphQL name)
    blank_is_null: bool = False


@dataclass(frozen=True)
class Contact:
    """A contact detail: in full for roles that see contacts, else `mask`ed (in Python)."""

    column: str
    mask: Callable[[str], str]


@dataclass(frozen=True)
class MoneyColumn:
    """`Money { amount currency }` of an amount column. The currency is the row's own column
    (`own`), the currency of the order the row belongs to (`of_order`: SQL naming that order's
    id, `{row}` standing for the row's alias), or the tenant's (neither)."""

    column: str  # or SQL computing the amount from the row, `{row}` standing for its alias
    own: str | None = None
    of_order: str | None = None


_LINES_ORDER = '{row}."order_id"'
_REFUND_LINES_ORDER = (
    '(SELECT r."order_id" FROM "orders_refund" r WHERE r."id" = {row}."refund_id")'
)


@dataclass(frozen=True)
class Relation:
    """Another compiled type: one row (`column` is this row's foreign key) or a list (`column` is
    the child's foreign key to this row), in the child model's own ordering."""

    target: str
    column: str
    many: bool
    model: type[models.Model]


@dataclass(frozen=True)
class Expression:
    """A value SQL computes from the row: `sql` with `{row}` standing for the row's alias."""

    sql: str


class ImageUrl:
    """`ProductImage.url(size)`: the rendition's (or the original's) absolute URL, made in Python
    from the image's name and renditions, as the resolver makes it."""


class RenditionSizes:
    """`ProductImage.renditionSizes`: the renditions' sizes, ascending."""


class NodeId:
    """A Node's `id`: the pk in SQL, minted into a tenant-bound global id in Python."""


NODE_ID = NodeId()
Spec = (
    Column
    | EnumColumn
    | Contact
    | MoneyColumn
    | Relation
    | NodeId
    | Expression
    | ImageUrl
    | RenditionSizes
)


def _names(enum_type: type[enum.Enum]) -> tuple[tuple[str, str], ...]:
    return tuple((str(member.value), member.name) for member in enum_type)


# Fields with a resolver of their own, as their resolvers compute them (schema/orders.py,
# schema/customers.py, schema/catalog/types.py, schema/payments.py).
RESOLVED: dict[str, Spec] = {
    "Order.status": EnumColumn("status", _names(OrderStatusEnum)),
    "Order.email": Contact("email", masked_email),
    **{
        f"Order.{name}": MoneyColumn(column, own="currency")
        for name, column in (
            ("subtotal", "subtotal"),
            ("discountTotal", "discount_total"),
            ("taxTotal", "tax_total"),
            ("shippingTotal", "shipping_total"),
            ("total", "total"),
            ("refundedTotal", "refunded_total"),
        )
    },
    "OrderLine.unitPrice": MoneyColumn("unit_price", of_order=_LINES_ORDER),
    "OrderLine.total": MoneyColumn("total", of_order=_LINES_ORDER),
    "Refund.amount": MoneyColumn("amount", of_order=_LINES_ORDER),
    "RefundLine.amount": MoneyColumn("amount", of_order=_REFUND_LINES_ORDER),
    "OrderEvent.fromStatus": EnumColumn("from_status", _names(OrderStatusEnum), blank_is_null=True),
    "OrderEvent.toStatus": EnumColumn("to_status", _names(OrderStatusEnum), blank_is_null=True),
    "Customer.email": Contact("email", masked_email),
    "Customer.phone": Contact("phone", masked_phone),
    "Customer.totalSpent": MoneyColumn("total_spent"),
    # apps.customers.selectors.average_order_value: quantize(total / orders), half up, or None
    "Customer.averageOrderValue": MoneyColumn(
        'CASE WHEN {row}."orders_count" > 0 '
        'THEN round({row}."total_spent" / {row}."orders_count", 2) END'
    ),
    "Product.status": EnumColumn("status", _names(ProductStatusEnum)),
    "ProductImage.url": ImageUrl(),
    "ProductImage.renditionSizes": RenditionSizes(),
    "Variant.isLowStock": Expression('({row}."stock" <= {row}."low_stock_threshold")'),
    "Variant.price": MoneyColumn("price"),
    "Variant.compareAtPrice": MoneyColumn("compare_at_price"),
    "Variant.costPrice": MoneyColumn("cost_price"),
    "Payment.provider": EnumColumn("provider", _names(ProviderEnum)),
    "Payment.status": EnumColumn("status", _names(PaymentStatusEnum)),
    "Payment.amount": MoneyColumn("amount", own="currency"),
    "Payment.amountRefunded": MoneyColumn("amount_refunded", own="currency"),
}

# The types the compiler serves (rows of these models, no `get_queryset` of their own).
TYPES = (
    "Order",
    "OrderLine",
    "OrderEvent",
    "Refund",
    "RefundLine",
    "Customer",
    "Product",
    "Variant",
    "ProductImage",
    "Category",
    "Payment",
)

_FORMS = {
    models.DateTimeField: "datetime",
    models.DateField: "date",
    models.DecimalField: "decimal",
}


@dataclass(frozen=True)
class Table:
    name: str  # the GraphQL type
    model: type[models.Model]
    fields: dict[str, Spec]  # by GraphQL field name


@cache
def tables(schema: Schema) -> dict[str, Table]:
    """Every compiled type's table, read once from the schema."""
    found: dict[str, Table] = {}
    models_of = {}
    for name in TYPES:
        definition = schema.get_type_by_name(name)
        models_of[name] = definition.origin.__strawberry_django_definition__.model  # type: ignore[union-attr]
    by_model = {model: name for name, model in models_of.items()}
    for name in TYPES:
        definition = schema.get_type_by_name(name)
        model = models_of[name]
        fields: dict[str, Spec] = {}
        for field in definition.fields:  # type: ignore[union-attr]
            graphql_name = schema.config.name_converter.get_graphql_name(field)
            if graphql_name == "id":
                fields["id"] = NODE_ID
            elif f"{name}.{graphql_name}" in RESOLVED:
                fields[graphql_name] = RESOLVED[f"{name}.{graphql_name}"]
            elif field.base_resolver is None and not field.arguments:
                spec = _derived(model, getattr(field, "django_name", None), by_model)
                if spec is not None:
                    fields[graphql_name] = spec
        found[name] = Table(name, model, fields)
    return found


def _derived(
    model: type[models.Model], django_name: str | None, by_model: dict[type[models.Model], str]
) -> Spec | None:
    if not django_name:
        return None
    try:
        field = model._meta.get_field(django_name)
    except LookupError:
        return None
    related = getattr(field, "related_model", None)
    if related is not None:
        target = by_model.get(related)
        if target is None:
            return None
        if isinstance(field, models.ForeignKey):
            return Relation(target, field.column, many=False, model=related)
        if (
            isinstance(field, models.ManyToOneRel)
            and not isinstance(field, models.OneToOneRel)  # one row or none: not a list
            and field.field.column
        ):
            return Relation(target, field.field.column, many=True, model=related)
        return None
    if not isinstance(field, models.Field) or not field.concrete or field.column is None:
        return None
    form = next((form for kind, form in _FORMS.items() if isinstance(field, kind)), "plain")
    return Column(field.column, form)
