"""Exports: asked for by members who see analytics (`create_export`, audited), written by a Celery
task in the tenant's schema (`run_export`: rows from a server-side cursor straight into a file,
progress in the row and on the live bus topic `exports`), removed when they expire
(`expire_exports`, run per tenant by beat). A run killed mid-way is started over by the next
run of its message (`run_export`); exports whose message was lost are queued again by
`reconcile_exports`, run per tenant by beat."""

from __future__ import annotations

import io
import logging
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q, TextChoices
from django.utils import timezone

from apps.accounts.models import Role
from apps.audit import services as audit
from apps.common import runs
from apps.common.actors import Actor
from apps.common.errors import PermissionDenied, UserError
from apps.common.outages import OUTAGES, after_commit, without_redis
from apps.common.retry import is_retryable
from apps.exports import files, sources, writers
from apps.exports import filters as export_filters
from apps.exports.errors import ExportErrorCode
from apps.exports.models import FINISHED, Export, ExportFormat, ExportKind, ExportStatus, JsonLayout
from apps.live import bus
from tenants.db import connection, create_connection

if TYPE_CHECKING:
    from tenants.models import Tenant

log = logging.getLogger(__name__)

EXPORTERS = frozenset({Role.OWNER, Role.ADMIN, Role.STAFF, Role.ANALYST})
# Who sees customers' contact details in full; the others get them masked, as the API shows them
# (schema.permissions.CUSTOMER_CONTACTS).
SEES_CONTACTS = frozenset({Role.OWNER, Role.ADMIN, Role.STAFF})
PROGRESS_EVERY = 10_000  # rows between progress reports
EXTENSIONS: dict[tuple[str, str], str] = {
    (ExportFormat.CSV, JsonLayout.ARRAY): "csv",
    (ExportFormat.XLSX, JsonLayout.ARRAY): "xlsx",
    (ExportFormat.JSON, JsonLayout.ARRAY): "json",
    (ExportFormat.JSON, JsonLayout.NDJSON): "ndjson",
}
CONTENT_TYPES = {
    "csv": "text/csv; charset=utf-8",
    "json": "application/json",
    "ndjson": "application/x-ndjson",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}


def _choice(value: str, choices: type[TextChoices], field: str) -> str:
    if value not in choices.values:
        raise UserError(
            f"`{field}` must be one of: {', '.join(choices.values)}.",
            field=field,
            code=ExportErrorCode.INVALID,
        )
    return value


@transaction.atomic
def create_export(
    *,
    actor: Actor,
    tenant: Tenant,
    kind: str,
    format: str,
    filters: Any = None,
    layout: str = JsonLayout.ARRAY,
) -> Export:
    role = getattr(actor, "role", None)
    if role not in EXPORTERS:
        raise PermissionDenied("Exporting needs the analyst role or above.")
    kind, format = _choice(kind, ExportKind, "kind"), _choice(format, ExportFormat, "format")
    layout = _choice(layout, JsonLayout, "layout")
    if format != ExportFormat.JSON and layout != JsonLayout.ARRAY:
        raise UserError(
            "`layout` applies to JSON exports only.", field="layout", code=ExportErrorCode.INVALID
        )
    stored = export_filters.normalise(kind, filters, tenant=tenant)
    user = getattr(actor, "user", None)
    export = Export.objects.create(
        kind=kind,
        format=format,
        layout=layout,
        filters=stored,
        redact_contacts=role not in SEES_CONTACTS,
        requested_by_id=getattr(user, "pk", None),
    )
    audit.record(
        actor=actor,
        action="export.create",
        obj=export,
        changes={"kind": kind, "format": format, "layout": layout, "filters": stored},
    )
    _queue_on_commit(export.pk)
    return export


def _queue(export_id: int, schema: str) -> None:
    from apps.exports.tasks import run_export

    # The schema goes with the task: tenant-schemas-celery runs it there.
    run_export.apply_async((export_id,), headers={"_schema_name": schema})


def _queue_on_commit(export_id: int) -> None:
    """Sent after commit; if the broker is down then, the reconciler sends it later."""
    schema = connection.schema_name
    after_commit(lambda: _queue(export_id, schema))


def extension(export: Export) -> str:
    return EXTENSIONS[(export.format, export.layout)]


def content_type(export: Export) -> str:
    return CONTENT_TYPES[extension(export)]


# --- the task's work -------------------------------------------------------------------------------


class _Progress:
    """Rows written so far: every PROGRESS_EVERY rows an UPDATE of the export row on a connection of
    its own (the rows are read in a transaction on the main one, and the count must be visible
    before it ends), then a message on the live bus."""

    def __init__(self, export: Export, tenant: Tenant):
        self.export, self.schema = export, tenant.schema_name
        self.total: int | None = None
        self.side = create_connection()
        self.side.set_tenant(tenant)

    def start(self, total: int) -> None:
        self.total = total
        self._report(0, rows_total=total)

    def __call__(self, rows: int) -> None:
        if rows % PROGRESS_EVERY == 0:
            self._report(rows)

    def _report(self, rows: int, **more: Any) -> None:
        columns = {"rows_done": rows, **more}
        assignments = ", ".join(f"{name} = %s" for name in columns)
        with self.side.cursor() as cursor:
            cursor.execute(
                f"UPDATE {Export._meta.db_table} SET {assignments} WHERE id = %s",
                [*columns.values(), self.export.pk],
            )
        publish(self.schema, self.export.pk, ExportStatus.RUNNING, rows, self.total)

    def close(self) -> None:
        self.side.close()


def publish(schema: str, export_id: int, status: str, rows: int, total: int | None) -> None:
    """Progress on the live bus; while Redis is away it is skipped (the export row keeps the
    count), so a Redis outage never stops an export being written (bench/faults.py found them
    failed)."""
    without_redis(
        lambda: bus.publish(
            schema, "exports", {"export": export_id, "status": status, "rows": rows, "total": total}
        ),
        None,
        "export progress not published",
    )


def _write(
    export: Export,
    source: sources.Source,
    out: Any,
    progress: Callable[[int], None],
    scratch: Path,
) -> None:
    rows = source.rows()
    if export.format == ExportFormat.XLSX:
        scratch.mkdir(exist_ok=True)
        writers.write_xlsx(
            out, source.columns, rows, progress, chart=source.chart, tmpdir=str(scratch)
        )
        return
    text = io.TextIOWrapper(out, encoding="utf-8", newline="")
    if export.format == ExportFormat.CSV:
        writers.write_csv(text, source.columns, rows, progress)
    else:
        writers.write_json(
            text, source.columns, rows, progress, ndjson=export.layout == JsonLayout.NDJSON
        )
    text.flush()
    text.detach()  # the file stays open for the storage to take


def _finish(export: Export, schema: str, **fields: Any) -> None:
    fields["finished"] = timezone.now()
    Export.objects.filter(pk=export.pk).update(**fields)
    export.refresh_from_db()
    publish(schema, export.pk, export.status, export.rows_done, export.rows_total)


def _claim(export_id: int, run_id: str) -> Export | None:
    """The export, marked RUNNING for this run; None if it is not this run's to write: missing,
    finished, or running in a run that may be alive (apps.common.runs: a dead one's export is
    taken over, and started over)."""
    now = timezone.now()
    fields = {
        "status": ExportStatus.RUNNING,
        "started_at": now,
        "run_id": run_id,
        "rows_done": 0,
        "rows_total": None,
        "error": "",
    }
    with transaction.atomic():
        export = Export.objects.select_for_update().filter(pk=export_id).first()
        if export is None or export.status in FINISHED:
            return None
        if export.status == ExportStatus.RUNNING:
            if not runs.holder_is_dead(
                started_at=export.started_at, holder=export.run_id, run_id=run_id, now=now
            ):
                return None
            fields["restarts"] = export.restarts + 1
        Export.objects.filter(pk=export_id).update(**fields)
        export.refresh_from_db()
    return export


def run_export(*, export_id: int, run_id: str = "") -> str:
    """Write the file of one export; its status after. Runs again safely, however the last run
    ended: a finished export is left alone, one running elsewhere too, and one whose run died
    (the worker killed mid-write) starts over from the first row into the same file name, its
    partial file replaced. `run_id` names this run (the Celery task's id; empty when called
    directly). An outage (database or Redis) puts the export back in the queue and raises, for
    the task's retry; other errors fail it."""
    export = _claim(export_id, run_id)
    if export is None:
        found = Export.objects.filter(pk=export_id).values_list("status", flat=True).first()
        return found or "missing"
    tenant, schema = connection.tenant, connection.schema_name
    name, partial = (
        files.name_for(schema, export.pk, extension(export)),
        files.partial_path(schema, export.pk, extension(export)),
    )
    if export.restarts > settings.EXPORT_MAX_RESTARTS:
        files.discard_partial(partial)
        _finish(export, schema, status=ExportStatus.FAILED, error=GAVE_UP)
        return ExportStatus.FAILED
    progress = _Progress(export, tenant)
    written = {"rows": 0}

    def count(rows: int) -> None:
        written["rows"] = rows
        progress(rows)

    try:
        # The server-side cursor lives as long as this transaction.
        with transaction.atomic(), files.writing(name, partial) as out:
            source = sources.source(export, tenant)
            progress.start(source.count())
            _write(export, source, out, count, files.scratch_for(partial))
    except UserError as exc:  # a report's definition the engine no longer takes
        _finish(export, schema, status=ExportStatus.FAILED, error=exc.message)
        return ExportStatus.FAILED
    except Exception as error:
        if is_retryable(error):
            _requeue_after_outage(export, run_id)
            raise
        log.exception("export %s failed", export.pk)
        _finish(
            export, schema, status=ExportStatus.FAILED, error="The export could not be written."
        )
        files.delete(name)
        raise
    finally:
        progress.close()
    now = timezone.now()
    _finish(
        export,
        schema,
        status=ExportStatus.DONE,
        rows_done=written["rows"],
        rows_total=written["rows"],
        file=name,
        size=files.storage().size(name),
        expires_at=now + timedelta(seconds=settings.EXPORT_TTL),
        file_name=f"{export.kind}-{export.created:%Y%m%d-%H%M%S}.{extension(export)}",
    )
    return ExportStatus.DONE


GAVE_UP = "The export was interrupted too often to be written; ask for it again."


def _requeue_after_outage(export: Export, run_id: str) -> None:
    """Back to QUEUED for the task's retry, if the database answers (if not, the retry finds the
    export running under its own id, and takes it over)."""
    try:
        Export.objects.filter(pk=export.pk, status=ExportStatus.RUNNING, run_id=run_id).update(
            status=ExportStatus.QUEUED, queued_at=timezone.now()
        )
    except OUTAGES as error:
        log.warning("export %s left running for its retry: %s", export.pk, error)


def reconcile_exports(*, now: Any = None) -> dict[str, int]:
    """Finish what lost messages left (run per tenant by beat): how many exports were queued
    again, how many of them had a dead run, and how many failed.

    - QUEUED for longer than EXPORT_REQUEUE_AFTER: its message was lost (sent while the broker
      was down, or the broker restarted without it); queued again.
    - RUNNING, started longer ago than the visibility timeout and a restore interval: its run
      died (every run ends within the time limit) and the broker had no message to hand out
      again (it would have by now); marked QUEUED and queued again, or FAILED once it restarted
      EXPORT_MAX_RESTARTS times.

    A message queued again that finds its export taken by a live run does nothing (`_claim`), so
    a message that was only late costs a no-op."""
    now = now or timezone.now()
    late = now - timedelta(seconds=settings.EXPORT_REQUEUE_AFTER)
    dead = now - timedelta(
        seconds=settings.CELERY_VISIBILITY_TIMEOUT
        + settings.CELERY_BROKER_TRANSPORT_OPTIONS["unacked_restore_interval"]
    )
    schema, done = connection.schema_name, {"queued": 0, "restarted": 0, "failed": 0}
    # A RUNNING export without started_at was left by a run from before runs were claimed: dead.
    for export in Export.objects.filter(
        Q(started_at__lt=dead) | Q(started_at__isnull=True), status=ExportStatus.RUNNING
    ):
        running = Export.objects.filter(
            pk=export.pk, status=ExportStatus.RUNNING, started_at=export.started_at
        )
        if export.restarts >= settings.EXPORT_MAX_RESTARTS:
            if running.update(status=ExportStatus.FAILED, error=GAVE_UP, finished=now):
                files.discard_partial(files.partial_path(schema, export.pk, extension(export)))
                done["failed"] += 1
            continue
        # QUEUED and due, so it is queued below and the new message's run claims it at once.
        done["restarted"] += running.update(
            status=ExportStatus.QUEUED, queued_at=late, restarts=F("restarts") + 1
        )
    for export_id in Export.objects.filter(
        status=ExportStatus.QUEUED, queued_at__lte=late
    ).values_list("pk", flat=True):
        _queue(export_id, schema)  # sent first: if the broker is down, the next look tries again
        Export.objects.filter(pk=export_id, status=ExportStatus.QUEUED).update(queued_at=now)
        done["queued"] += 1
    return done


def expire_exports(*, now: Any = None) -> int:
    """Delete the files of the exports past their time and mark them expired; how many."""
    now = now or timezone.now()
    expired = 0
    for export in Export.objects.filter(status=ExportStatus.DONE, expires_at__lte=now).only(
        "pk", "file"
    ):
        files.delete(export.file)
        expired += Export.objects.filter(pk=export.pk, status=ExportStatus.DONE).update(
            status=ExportStatus.EXPIRED, file="", size=None
        )
    return expired
