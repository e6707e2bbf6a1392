"""Find, change and save a catalog row: the steps every catalog write shares."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any, TypeVar

from django.db import IntegrityError, transaction
from django.db.models import Model

from apps.audit import services as audit
from apps.catalog.errors import ProductErrorCode
from apps.catalog.models import Category, Product
from apps.common.actors import Actor
from apps.common.errors import NotFound, UserError

Row = TypeVar("Row", bound=Model)
# One changeable field of an update: the attribute it sets and its check, which takes the value
# sent and the row as it is before the update, and returns the value to store.
FieldCheck = tuple[str, Callable[[Any, Any], Any]]


def locked(model: type[Row], pk: int, message: str, *, field: str = "id") -> Row:
    """The row, locked until the transaction ends; NotFound (`message`) when there is none."""
    obj = model._default_manager.select_for_update().filter(pk=pk).first()
    if obj is None:
        raise NotFound(message, field=field)
    return obj


def save_unique(obj: Model, duplicate_field: str, *, message: str) -> None:
    """Save; a unique value taken by a concurrent write since our check is a userError too."""
    try:
        with transaction.atomic():
            obj.save()
    except IntegrityError as exc:
        raise UserError(message, field=duplicate_field, code=ProductErrorCode.DUPLICATE) from exc


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, Category | Product):
        return value.pk
    return value


def apply(obj: Model, values: Mapping[str, Any]) -> dict[str, list[Any]]:
    """Set `values` on `obj`; what changed, as {field: [before, after]} for the audit log."""
    changes = {}
    for name, value in values.items():
        before = getattr(obj, name)
        if before != value:
            changes[name] = [_plain(before), _plain(value)]
            setattr(obj, name, value)
    return changes


def update(
    obj: Model,
    changes: Mapping[str, Any],
    fields: Mapping[str, FieldCheck],
    *,
    actor: Actor,
    action: str,
    unique_field: str,
    taken: str,
    check_row: Callable[[Any], None] | None = None,
) -> dict[str, list[Any]]:
    """Update the locked `obj` with the `changes` that `fields` names, each checked (in the order
    of `fields`) before anything is set, then `check_row` on the row with every value set. Only a
    real change is saved (`taken`: the message for a `unique_field` taken meanwhile) and audited
    as `action`; what changed is returned, as the audit log has it."""
    values = {
        attribute: check(changes[key], obj)
        for key, (attribute, check) in fields.items()
        if key in changes
    }
    diff = apply(obj, values)
    if check_row is not None:
        check_row(obj)
    if diff:
        save_unique(obj, unique_field, message=taken)
        audit.record(actor=actor, action=action, obj=obj, changes=diff)
    return diff
