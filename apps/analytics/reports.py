"""Custom reports: saved definitions (metrics x dimension x filters x range x granularity,
apps.analytics.definitions) that any member who sees analytics can run; kept by whoever saved
them, and by owners and admins. A run asks the engine, like every other analytics answer."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from django.db import transaction
from django.db.models import QuerySet

from apps.accounts.models import Role
from apps.analytics import definitions, engine
from apps.analytics.errors import AnalyticsErrorCode
from apps.analytics.models import Report
from apps.analytics.query import Result
from apps.audit import services as audit
from apps.common.actors import Actor
from apps.common.errors import NotFound, PermissionDenied, UserError
from apps.common.rules import required_text

if TYPE_CHECKING:
    from tenants.models import Tenant

NAME_MAX = 120
KEEPERS = frozenset({Role.OWNER, Role.ADMIN})  # may change anyone's report


def reports() -> QuerySet[Report]:
    return Report.objects.all()


def report_or_none(report_id: int) -> Report | None:
    return Report.objects.filter(pk=report_id).first()


def report(report_id: int) -> Report:
    found = report_or_none(report_id)
    if found is None:
        raise NotFound("No such report.")
    return found


def run(*, tenant: Tenant, definition: Mapping[str, Any], range: Any = None) -> Result:
    """The figures of a stored `definition` today; `range` (as a definition's) replaces its own."""
    override = None if range is None else definitions.check_range(range)
    return engine.run(tenant, definitions.query(definition, tenant=tenant, range=override))


def run_unsaved(*, tenant: Tenant, definition: Any, range: Any = None) -> Result:
    """A definition tried out before it is saved: checked as a saved one would be."""
    return run(
        tenant=tenant, definition=definitions.normalise(definition, tenant=tenant), range=range
    )


def run_report(
    *, tenant: Tenant, report_id: int | None, definition: Any, range: Any = None
) -> tuple[Report | None, Result]:
    """Exactly one of a saved report (`report_id`) and a definition not saved yet, run; with the
    report it was (None for the definition)."""
    if (report_id is None) == (definition is None):
        raise UserError(
            "Give either `id` or `definition`.", field="id", code=AnalyticsErrorCode.REQUIRED
        )
    if report_id is None:
        return None, run_unsaved(tenant=tenant, definition=definition, range=range)
    saved = report(report_id)
    return saved, run(tenant=tenant, definition=saved.definition, range=range)


def _name(value: Any) -> str:
    return required_text(
        value, field="name", max_length=NAME_MAX, missing="Give the report a name."
    )


def _editable(actor: Actor, report_id: int) -> Report:
    found = Report.objects.select_for_update().filter(pk=report_id).first()
    if found is None:
        raise NotFound("No such report.")
    user = getattr(actor, "user", None)
    mine = found.user_id is not None and found.user_id == getattr(user, "pk", None)
    if not mine and getattr(actor, "role", None) not in KEEPERS:
        raise PermissionDenied(
            "Only whoever saved a report, owners and admins change it.", field="id"
        )
    return found


@transaction.atomic
def create_report(*, actor: Actor, tenant: Tenant, name: str, definition: Any) -> Report:
    user = getattr(actor, "user", None)
    saved = Report.objects.create(
        user_id=getattr(user, "pk", None),
        name=_name(name),
        definition=definitions.normalise(definition, tenant=tenant),
    )
    audit.record(
        actor=actor,
        action="report.create",
        obj=saved,
        changes={"name": saved.name, "definition": saved.definition},
    )
    return saved


@transaction.atomic
def update_report(
    *, actor: Actor, tenant: Tenant, report_id: int, changes: Mapping[str, Any]
) -> Report:
    if unknown := sorted(set(changes) - {"name", "definition"}):
        raise UserError(
            f"{unknown[0]} cannot be changed.", field=unknown[0], code=AnalyticsErrorCode.INVALID
        )
    saved = _editable(actor, report_id)
    after = {
        "name": _name(changes["name"]) if "name" in changes else saved.name,
        "definition": definitions.normalise(changes["definition"], tenant=tenant)
        if "definition" in changes
        else saved.definition,
    }
    changed = {
        key: [getattr(saved, key), value]
        for key, value in after.items()
        if getattr(saved, key) != value
    }
    if changed:
        for key, (_, value) in changed.items():
            setattr(saved, key, value)
        saved.save()
        audit.record(actor=actor, action="report.update", obj=saved, changes=changed)
    return saved


@transaction.atomic
def delete_report(*, actor: Actor, report_id: int) -> None:
    saved = _editable(actor, report_id)
    audit.record(actor=actor, action="report.delete", obj=saved, changes={"name": saved.name})
    saved.delete()
