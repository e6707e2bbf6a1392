"""Dashboard widgets: the tenant's shared dashboard (widgets without a user) and each member's own.
Writes (create, update, delete, reorder) and reads; a widget's figures come from the engine
(apps.analytics.engine.run) like every other analytics answer.

Who: the shared dashboard is kept by owners, admins and analysts; a personal widget by its user
only, and is invisible to everyone else. (Viewers never reach this: schema/permissions.py.)"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from django.db import connection, transaction
from django.db.models import F, Q, QuerySet

from apps.accounts.models import Role
from apps.analytics import definitions, engine
from apps.analytics.errors import AnalyticsErrorCode
from apps.analytics.models import Widget
from apps.analytics.query import Dimension, Result
from apps.audit import services as audit
from apps.common.actors import Actor
from apps.common.errors import NotFound, PermissionDenied, UserError
from apps.common.rules import required_text

if TYPE_CHECKING:
    from tenants.models import Tenant

SHARED_EDITORS = frozenset({Role.OWNER, Role.ADMIN, Role.ANALYST})
MAX_WIDGETS = 50  # per dashboard: the shared one, and each member's own
TITLE_MAX = 120
# The dimensions each kind of widget can draw: a KPI is one total, a line runs over time, a pie
# shares out a whole among products or categories.
DIMENSIONS: dict[str, frozenset[Dimension | None]] = {
    Widget.Kind.KPI: frozenset({None}),
    Widget.Kind.LINE: frozenset({Dimension.TIME}),
    Widget.Kind.BAR: frozenset({Dimension.TIME, Dimension.PRODUCT, Dimension.CATEGORY}),
    Widget.Kind.PIE: frozenset({Dimension.PRODUCT, Dimension.CATEGORY}),
    Widget.Kind.TABLE: frozenset({None, Dimension.TIME, Dimension.PRODUCT, Dimension.CATEGORY}),
}


def _user_id(actor: Actor) -> int | None:
    user = getattr(actor, "user", None)
    return getattr(user, "pk", None)


# --- reads --------------------------------------------------------------------------------------


def visible_to(actor: Actor) -> Q:
    """The widgets `actor` may see: the shared ones and their own."""
    user_id = _user_id(actor)
    return Q(user_id__isnull=True) | (Q(user_id=user_id) if user_id is not None else Q(pk__in=[]))


def visible(actor: Actor) -> QuerySet[Widget]:
    return Widget.objects.filter(visible_to(actor))


def widgets(*, actor: Actor, mine: bool | None = None) -> list[Widget]:
    """The shared dashboard then the caller's own (`mine`: only theirs; false: only the shared),
    each in position order. At most 2 x MAX_WIDGETS."""
    found = visible(actor)
    if mine is not None:
        found = found.filter(user_id__isnull=not mine)
    return list(found.order_by(F("user_id").asc(nulls_first=True), "position", "id"))


def widget_result(widget: Widget, *, tenant: Tenant) -> Result:
    """The widget's figures today, from the engine (cached there)."""
    return engine.run(tenant, definitions.query(widget.definition, tenant=tenant))


# --- writes -------------------------------------------------------------------------------------


def _title(value: Any) -> str:
    return required_text(
        value, field="title", max_length=TITLE_MAX, missing="Give the widget a title."
    )


def _kind(value: Any) -> str:
    if value not in Widget.Kind.values:
        raise UserError(
            f"`kind` is one of {', '.join(Widget.Kind.values)}.",
            field="kind",
            code=AnalyticsErrorCode.INVALID,
        )
    return value


def _definition(kind: str, definition: Any, *, tenant: Tenant) -> dict[str, Any]:
    """A widget's definition: one metric, by a dimension its kind can draw. A KPI compares with
    the previous period unless told not to."""
    if kind == Widget.Kind.KPI and isinstance(definition, Mapping) and "compare" not in definition:
        definition = {**definition, "compare": True}
    stored = definitions.normalise(definition, tenant=tenant, max_metrics=1)
    dimension = Dimension(stored["dimension"]) if stored["dimension"] else None
    if dimension not in DIMENSIONS[kind]:
        allowed = ", ".join(d.value if d else "none" for d in sorted(DIMENSIONS[kind], key=str))
        raise UserError(
            f"A {kind} widget is drawn by dimension {allowed}.",
            field="definition.dimension",
            code=AnalyticsErrorCode.BAD_DIMENSION,
        )
    return stored


def _editable(actor: Actor, widget_id: int) -> Widget:
    """The widget, locked, if `actor` may change it; NotFound for widgets they cannot see."""
    widget = visible(actor).select_for_update().filter(pk=widget_id).first()
    if widget is None:
        raise NotFound("No such widget.")
    _may_edit(actor, shared=widget.user_id is None)
    return widget


def _may_edit(actor: Actor, *, shared: bool) -> None:
    if shared and getattr(actor, "role", None) not in SHARED_EDITORS:
        raise PermissionDenied(
            "Only owners, admins and analysts change the shared dashboard.", field="shared"
        )
    if not shared and _user_id(actor) is None:
        raise PermissionDenied(
            "An API key has no dashboard of its own: make a shared widget.", field="shared"
        )


def _dashboard(actor: Actor, *, shared: bool) -> QuerySet[Widget]:
    """The rows of one dashboard, with the dashboard locked until commit: row locks would not stop
    two creations from both passing the cap or taking one position (new rows are not locked)."""
    user_id = None if shared else _user_id(actor)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_advisory_xact_lock(hashtext(current_schema() || %s))",
            [f":widgets:{user_id or ''}"],
        )
    rows = Widget.objects.select_for_update()
    return rows.filter(user_id__isnull=True) if shared else rows.filter(user_id=user_id)


def _audited(widget: Widget) -> dict[str, Any]:
    return {
        "title": widget.title,
        "kind": widget.kind,
        "definition": widget.definition,
        "shared": widget.user_id is None,
        "position": widget.position,
    }


@transaction.atomic
def create_widget(
    *, actor: Actor, tenant: Tenant, title: str, kind: str, definition: Any, shared: bool = False
) -> Widget:
    """A widget at the end of the shared dashboard or of the caller's own."""
    _may_edit(actor, shared=shared)
    kind = _kind(kind)
    widget = Widget(
        user_id=None if shared else _user_id(actor),
        title=_title(title),
        kind=kind,
        definition=_definition(kind, definition, tenant=tenant),
    )
    positions = list(_dashboard(actor, shared=shared).values_list("position", flat=True))
    if len(positions) >= MAX_WIDGETS:
        raise UserError(
            f"A dashboard holds at most {MAX_WIDGETS} widgets.",
            field="shared",
            code=AnalyticsErrorCode.LIMIT_REACHED,
        )
    widget.position = max(positions, default=-1) + 1
    widget.save()
    audit.record(actor=actor, action="widget.create", obj=widget, changes=_audited(widget))
    return widget


@transaction.atomic
def update_widget(
    *, actor: Actor, tenant: Tenant, widget_id: int, changes: Mapping[str, Any]
) -> Widget:
    """Change title, kind and/or definition (a new kind is checked against the definition)."""
    if unknown := sorted(set(changes) - {"title", "kind", "definition"}):
        raise UserError(
            f"{unknown[0]} cannot be changed.", field=unknown[0], code=AnalyticsErrorCode.INVALID
        )
    widget = _editable(actor, widget_id)
    before = _audited(widget)
    if "title" in changes:
        widget.title = _title(changes["title"])
    if "kind" in changes:
        widget.kind = _kind(changes["kind"])
    if "definition" in changes or "kind" in changes:
        given = changes.get(
            "definition", definitions.public(widget.definition, schema=tenant.schema_name)
        )
        widget.definition = _definition(widget.kind, given, tenant=tenant)
    after = _audited(widget)
    changed = {name: [before[name], after[name]] for name in after if before[name] != after[name]}
    if changed:
        widget.save()
        audit.record(actor=actor, action="widget.update", obj=widget, changes=changed)
    return widget


@transaction.atomic
def delete_widget(*, actor: Actor, widget_id: int) -> None:
    widget = _editable(actor, widget_id)
    audit.record(actor=actor, action="widget.delete", obj=widget, changes=_audited(widget))
    widget.delete()


@transaction.atomic
def reorder_widgets(*, actor: Actor, shared: bool, widget_ids: Sequence[int]) -> list[Widget]:
    """Put a dashboard's widgets in the given order; `widget_ids` names every one of them once."""
    _may_edit(actor, shared=shared)
    found = {
        widget.pk: widget for widget in _dashboard(actor, shared=shared).order_by("position", "id")
    }
    if len(set(widget_ids)) != len(widget_ids) or set(widget_ids) != set(found):
        raise UserError(
            "Name every widget of the dashboard once, in the order wanted.",
            field="widgets",
            code=AnalyticsErrorCode.INVALID,
        )
    moved = []
    for position, pk in enumerate(widget_ids):
        widget = found[pk]
        if widget.position != position:
            audit.record(
                actor=actor,
                action="widget.reorder",
                obj=widget,
                changes={"position": [widget.position, position]},
            )
            widget.position = position
            moved.append(widget)
    Widget.objects.bulk_update(moved, ["position"])
    return [found[pk] for pk in widget_ids]


__all__ = [
    "MAX_WIDGETS",
    "create_widget",
    "delete_widget",
    "reorder_widgets",
    "update_widget",
    "visible",
    "visible_to",
    "widget_result",
    "widgets",
]
