"""Global ids at the API's edge, all through apps.common.global_ids: every Node's `id` is minted
in the tenant the request is for, and every id a client sends is read back only in that tenant.

strawberry's own `relay.GlobalID` (base64 of "Type:pk") is not used for input or output: it names
no tenant, and parsing it raised on malformed text (INTERNAL). Arguments take a plain `ID` and
resolvers turn it into a database id with `pk_of`; an id that is not one of this tenant's objects
of that type becomes -1, which no row has, so each field answers as it does for a missing object.
"""

from __future__ import annotations

import inspect
from typing import Any

import strawberry
from strawberry import relay
from strawberry.types import Info

from apps.common import global_ids

NOT_FOUND_PK = -1  # the pk of an id that names nothing here: no row has it


def minted_in(info: Info) -> str:
    """The schema ids are minted in and read back in: the request's tenant, or the platform."""
    return getattr(info.context.tenant, "schema_name", "public")


def global_id(info: Info, type_name: str, pk: int) -> strawberry.ID:
    """The id of a `type_name` row, for ids shown outside a Node's own `id` field."""
    return strawberry.ID(global_ids.encode(type_name, pk, minted_in(info)))


def pk_of(value: str, type_name: str, info: Info) -> int:
    """The database id an id of `type_name` names in this tenant; NOT_FOUND_PK for anything else
    (another tenant's id, another type's, a tampered or malformed one)."""
    pk = global_ids.pk_in(value, type_name, minted_in(info))
    return NOT_FOUND_PK if pk is None else pk


def pk_or_none(value: str | None, type_name: str, info: Info) -> int | None:
    """An optional id: None (not given) stays None; any text, "" included, is read by `pk_of`."""
    return None if value is None else pk_of(value, type_name, info)


@strawberry.type(name="TenantNode")  # a base only: the schema shows its subclasses, never it
class TenantNode(relay.Node):
    """A Relay Node (our types are all Django models) whose id names the tenant it was read in."""

    @strawberry.field(
        name="id", description="The object's id: opaque, and valid in this tenant only."
    )
    @classmethod
    def _id(cls, root: Any, info: Info) -> strawberry.ID:
        type_name = info.path.typename
        assert type_name is not None  # graphql-core names it on the path of every field
        return global_id(info, type_name, root.pk)


def node(info: Info, id: str) -> Any:
    """The object `id` names in this tenant (through its type's queryset, so a type's own rules on
    what the caller sees hold), or None; possibly awaitable, as strawberry-django resolves."""
    found = global_ids.decode(id, minted_in(info))
    if found is None:
        return None
    definition = info.schema.get_type_by_name(found[0])
    origin = getattr(definition, "origin", None)
    if not (isinstance(origin, type) and issubclass(origin, TenantNode)):
        return None
    resolved = origin.resolve_node(str(found[1]), info=info, required=False)
    if inspect.isawaitable(resolved):

        async def cast_when_done() -> Any:
            return strawberry.cast(origin, await resolved)

        return cast_when_done()
    return strawberry.cast(origin, resolved)
