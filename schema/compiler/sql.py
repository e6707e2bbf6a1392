"""A selection over compiled types as one SQL expression that builds the JSON of an object.

`node_sql` turns the fields a client selected on one object (fragments, aliases and @skip/@include
resolved the way graphql-core resolves them) into `json_build_object(...)`: columns in the form the
resolver path writes them (DateTime as `isoformat()` does, Decimal as text, enums by name), money
as `Money`, relations as correlated subqueries (a list in the child model's ordering). `json` (not
`jsonb`) keeps the selection's key order. What SQL cannot give (global ids, which carry an HMAC,
and masked contact details) comes back raw and is finished in Python by the `Shape` that goes
with the SQL, which also lists the fields the catalogue does not know (SQL writes null for them,
the resolver path answers them). What cannot be compiled at all raises `Unknown`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from django.db import connection
from graphql import FieldNode, GraphQLObjectType, GraphQLSchema
from graphql.execution.collect_fields import collect_sub_fields
from graphql.execution.values import get_argument_values
from graphql.type.definition import get_named_type

from apps.catalog.images import nearest
from apps.catalog.models import ProductImage
from apps.common import global_ids
from schema.compiler.catalogue import (
    Column,
    Contact,
    EnumColumn,
    Expression,
    ImageUrl,
    MoneyColumn,
    NodeId,
    Relation,
    RenditionSizes,
    Spec,
    Table,
)

MAX_KEYS = 50
_IMAGES = ProductImage._meta.get_field("image")  # json_build_object takes at most 100 arguments


class Unknown(Exception):
    """The selection asks for something the compiler does not serve."""


@dataclass
class Shape:
    """What is left to do to the JSON SQL built for one object (or each object of a list).

    `finish`: values Python completes in place (ids, masked contacts). `deferred`: fields the
    compiler does not know, written as null by SQL and answered by the resolver path (their
    field nodes are re-executed there, see schema/compiler/fallback.py). `children`: the same for
    nested objects, with the field nodes that lead to them; only children with something to do
    are kept, so a selection with nothing left is not walked at all."""

    finish: list[tuple[str, Callable[[Any], Any]]] = field(default_factory=list)
    deferred: list[tuple[str, list[FieldNode]]] = field(default_factory=list)
    children: list[tuple[str, list[FieldNode], Shape]] = field(default_factory=list)
    order: list[str] = field(default_factory=list)  # deferred and child keys, as selected

    @property
    def finishes(self) -> bool:
        return bool(self.finish) or any(child.finishes for _, _, child in self.children)

    @property
    def defers(self) -> bool:
        return bool(self.deferred) or any(child.defers for _, _, child in self.children)

    def apply(self, value: Any) -> None:
        if value is None:
            return
        for item in value if isinstance(value, list) else (value,):
            for key, finish in self.finish:
                if item[key] is not None:
                    item[key] = finish(item[key])
            for key, _, child in self.children:
                if child.finishes:
                    child.apply(item[key])


@dataclass
class Compiler:
    """One operation's compilation: the schema, its fragments and coerced variables, the tenant
    (for ids and money), whether the caller sees contacts, and the SQL parameters gathered."""

    schema: GraphQLSchema
    tables: dict[str, Table]
    fragments: dict[str, Any]
    variables: dict[str, Any]
    tenant_schema: str
    currency: str
    sees_contacts: bool
    request: Any
    params: list[Any] = field(default_factory=list)
    aliases: int = 0

    def alias(self) -> str:
        self.aliases += 1
        return f"sc{self.aliases}"

    def node_sql(
        self, type_name: str, alias: str, field_nodes: list[FieldNode]
    ) -> tuple[str, Shape]:
        """`json_build_object(...)` of one row of `type_name` at `alias`, for `field_nodes`'
        selections."""
        table = self.tables.get(type_name)
        if table is None:
            raise Unknown(type_name)
        graphql_type = self.schema.get_type(type_name)
        assert isinstance(graphql_type, GraphQLObjectType)
        selected = collect_sub_fields(
            self.schema, self.fragments, self.variables, graphql_type, field_nodes
        )
        if len(selected) > MAX_KEYS:
            raise Unknown("too many fields")
        parts: list[str] = []
        shape = Shape()
        for key, nodes in selected.items():
            name = nodes[0].name.value
            parts.append(f"'{key}'")
            if name == "__typename":
                parts.append(f"'{type_name}'")
                continue
            spec = table.fields.get(name)
            takes_arguments = isinstance(spec, ImageUrl)
            if spec is None or (any(node.arguments for node in nodes) and not takes_arguments):
                parts.append("NULL")  # the resolver path answers it (a placeholder keeps order)
                shape.deferred.append((key, nodes))
                shape.order.append(key)
                continue
            parts.append(self._value(table, spec, alias, key, nodes, graphql_type, shape))
        return f"json_build_object({', '.join(parts)})", shape

    def _value(
        self,
        table: Table,
        spec: Spec,
        alias: str,
        key: str,
        nodes: list[FieldNode],
        graphql_type: GraphQLObjectType,
        shape: Shape,
    ) -> str:
        if isinstance(spec, NodeId):
            type_name, schema_name = table.name, self.tenant_schema
            shape.finish.append((key, lambda pk: global_ids.encode(type_name, pk, schema_name)))
            return f"{alias}.{_quote(table.model._meta.pk.column)}"
        if isinstance(spec, Column):
            return _formatted(f"{alias}.{_quote(spec.column)}", spec.form)
        if isinstance(spec, EnumColumn):
            return _enum(f"{alias}.{_quote(spec.column)}", spec)
        if isinstance(spec, Contact):
            if not self.sees_contacts:
                shape.finish.append((key, spec.mask))
            return f"{alias}.{_quote(spec.column)}"
        if isinstance(spec, MoneyColumn):
            return self._money(spec, alias, nodes)
        if isinstance(spec, Expression):
            return spec.sql.format(row=alias)
        if isinstance(spec, RenditionSizes):
            return (
                f"(SELECT coalesce(json_agg(size::int ORDER BY size::int), '[]'::json) "
                f'FROM jsonb_object_keys({alias}."renditions") size)'
            )
        if isinstance(spec, ImageUrl):
            size = get_argument_values(graphql_type.fields["url"], nodes[0], self.variables)
            shape.finish.append((key, partial(_image_url, self.request, size.get("size"))))
            return f'json_build_array({alias}."image", {alias}."renditions")'
        assert isinstance(spec, Relation)
        target = get_named_type(graphql_type.fields[nodes[0].name.value].type)
        assert target.name == spec.target
        child = self.alias()
        child_model = spec.model
        child_sql, child_shape = self.node_sql(spec.target, child, nodes)
        if child_shape.finishes or child_shape.defers:
            shape.children.append((key, nodes, child_shape))
            shape.order.append(key)
        source = f"{_quote(child_model._meta.db_table)} {child}"
        if not spec.many:
            pk = _quote(child_model._meta.pk.column)
            return f"(SELECT {child_sql} FROM {source} WHERE {child}.{pk} = {alias}.{_quote(spec.column)})"
        parent_pk = _quote(table.model._meta.pk.column)
        order = _ordering(child_model, child)
        return (
            f"(SELECT coalesce(json_agg({child_sql}{order}), '[]'::json) FROM {source} "
            f"WHERE {child}.{_quote(spec.column)} = {alias}.{parent_pk})"
        )

    def _money(self, spec: MoneyColumn, alias: str, nodes: list[FieldNode]) -> str:
        money_type = self.schema.get_type("Money")
        assert isinstance(money_type, GraphQLObjectType)
        selected = collect_sub_fields(
            self.schema, self.fragments, self.variables, money_type, nodes
        )
        amount = (
            f"({spec.column.format(row=alias)})"
            if "{row}" in spec.column
            else f"{alias}.{_quote(spec.column)}"
        )
        parts = []
        for key, sub_nodes in selected.items():
            name = sub_nodes[0].name.value
            parts.append(f"'{key}'")
            if name == "__typename":
                parts.append("'Money'")
            elif name == "amount":
                parts.append(f"{amount}::text")
            elif name == "currency":
                parts.append(self._currency(spec, alias))
            else:
                raise Unknown(f"Money.{name}")
        return (
            f"CASE WHEN {amount} IS NULL THEN NULL ELSE json_build_object({', '.join(parts)}) END"
        )

    def _currency(self, spec: MoneyColumn, alias: str) -> str:
        if spec.own is not None:
            return f"{alias}.{_quote(spec.own)}"
        if spec.of_order is not None:
            order = self.alias()
            return (
                f'(SELECT {order}."currency" FROM "orders_order" {order} '
                f'WHERE {order}."id" = {spec.of_order.format(row=alias)})'
            )
        self.params.append(self.currency)
        return "%s::text"


def _image_url(request: Any, size: int | None, stored: list[Any]) -> str:
    """What ProductImageType.url answers, from the image's name and renditions."""
    name, renditions = stored
    url = _IMAGES.storage.url(nearest(renditions, size) or name)
    return request.build_absolute_uri(url) if hasattr(request, "build_absolute_uri") else url


def _quote(name: str) -> str:
    return connection.ops.quote_name(name)


def _formatted(value: str, form: str) -> str:
    if form == "datetime":  # datetime.isoformat() of an aware UTC datetime
        utc = f"({value} AT TIME ZONE 'UTC')"
        return (
            f"CASE WHEN {value} IS NULL THEN NULL ELSE "
            f"to_char({utc}, 'YYYY-MM-DD\"T\"HH24:MI:SS') || "
            f"CASE to_char({utc}, 'US') WHEN '000000' THEN '' ELSE '.' || to_char({utc}, 'US') END "
            f"|| '+00:00' END"
        )
    if form == "date":
        return f"to_char({value}, 'YYYY-MM-DD')"
    if form == "decimal":
        return f"{value}::text"
    return value


def _enum(value: str, spec: EnumColumn) -> str:
    cases = " ".join(
        f"WHEN '{stored}' THEN '{name}'" for stored, name in spec.names if "'" not in stored
    )
    return f"CASE {value} {cases} END"


def _ordering(model: Any, alias: str) -> str:
    terms = []
    for term in model._meta.ordering:
        descending = term.startswith("-")
        column = model._meta.get_field(term.lstrip("-")).column
        terms.append(f"{alias}.{_quote(column)}{' DESC' if descending else ''}")
    return f" ORDER BY {', '.join(terms)}" if terms else ""
