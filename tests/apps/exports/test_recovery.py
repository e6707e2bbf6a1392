"""What a dead run leaves, and how the next run and the reconciler finish it (the kill itself, with
a real worker, is in tests/faults/test_worker_kill.py): a run that comes back starts over into the
same file, a live run is left alone, an outage queues the export again, and beat's reconciler
queues exports whose message was lost."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings
from django.core.files.base import ContentFile
from django.db.utils import OperationalError
from django.utils import timezone
from django_tenants.utils import tenant_context

from apps.customers.models import Customer
from apps.exports import files, services, sources, tasks
from apps.exports.models import Export, ExportStatus
from tenants.models import Tenant
from tests.apps.orders import shop


@pytest.fixture
def sent(monkeypatch) -> list[tuple[int, str]]:
    """The run_export messages sent (export id, schema), instead of sending them."""
    messages: list[tuple[int, str]] = []
    monkeypatch.setattr(
        services, "_queue", lambda export_id, schema: messages.append((export_id, schema))
    )
    return messages


def _customers(count: int = 3) -> None:
    Customer.objects.bulk_create(Customer(email=f"r{n}@example.com") for n in range(count))


def _running(*, run_id: str, started_ago: float, restarts: int = 0) -> Export:
    return Export.objects.create(
        kind="customers",
        format="csv",
        status=ExportStatus.RUNNING,
        run_id=run_id,
        started_at=timezone.now() - timedelta(seconds=started_ago),
        restarts=restarts,
    )


def _paths(schema: str, export: Export) -> tuple[str, Path]:
    return files.name_for(schema, export.pk, "csv"), files.partial_path(schema, export.pk, "csv")


def test_the_same_message_come_back_starts_over_into_the_same_file(alpha):
    """What a worker killed mid-write, or after storing the file, leaves: a partial file and maybe a
    stored one. The run of the redelivered message replaces both: one file, every row, no partial."""
    with tenant_context(alpha.tenant):
        _customers()
        export = _running(run_id="task-1", started_ago=1)
        name, partial = _paths(alpha.tenant.schema_name, export)
        partial.parent.mkdir(parents=True, exist_ok=True)
        partial.write_bytes(b"email\nr0@exa")  # cut mid-row
        files.storage().save(name, ContentFile(b"the killed run's file"))
        assert services.run_export(export_id=export.pk, run_id="task-1") == ExportStatus.DONE
        export.refresh_from_db()
        data = files.storage().open(name).read().decode()
    assert (export.status, export.file, export.rows_done, export.restarts) == (
        ExportStatus.DONE,
        name,
        3,
        1,
    )
    assert data.splitlines()[0].startswith("id,email,") and len(data.splitlines()) == 4
    assert not partial.exists()
    stored = files.storage().listdir(alpha.tenant.schema_name)[1]
    assert [found for found in stored if found.startswith(f"{export.pk}-")] == [name.split("/")[1]]
    files.delete(name)


def test_an_xlsx_run_keeps_its_temporary_files_beside_its_partial_and_the_next_run_clears_them(
    alpha, monkeypatch
):
    """XlsxWriter writes each sheet's rows and each part of the package to named temporary files
    (mkstemp): a worker killed mid-write leaves them. They go to the export's scratch folder,
    which the next run of that export empties and every run removes, never to the system's."""
    import tempfile

    asked: list[str | None] = []
    make = tempfile.mkstemp

    def spied(*args, **kwargs):
        asked.append(kwargs.get("dir"))
        return make(*args, **kwargs)

    monkeypatch.setattr(tempfile, "mkstemp", spied)
    with tenant_context(alpha.tenant):
        _customers()
        export = Export.objects.create(kind="customers", format="xlsx", run_id="task-1")
        partial = files.partial_path(alpha.tenant.schema_name, export.pk, "xlsx")
        scratch = files.scratch_for(partial)
        scratch.mkdir(parents=True, exist_ok=True)
        (scratch / "tmpkilled").write_bytes(b"a killed run's rows")
        assert services.run_export(export_id=export.pk, run_id="task-1") == ExportStatus.DONE
        export.refresh_from_db()
    assert asked and set(asked) == {str(scratch)}
    assert not scratch.exists() and not partial.exists()
    files.delete(export.file)


def test_a_run_that_may_be_alive_is_left_alone(alpha):
    with tenant_context(alpha.tenant):
        export = _running(run_id="task-1", started_ago=settings.CELERY_TASK_TIME_LIMIT - 5)
        assert services.run_export(export_id=export.pk, run_id="task-2") == ExportStatus.RUNNING
        export.refresh_from_db()
    assert (export.status, export.run_id, export.restarts) == (ExportStatus.RUNNING, "task-1", 0)


def test_a_run_older_than_the_time_limit_is_dead_and_taken_over(alpha):
    with tenant_context(alpha.tenant):
        _customers()
        export = _running(run_id="task-1", started_ago=settings.CELERY_TASK_TIME_LIMIT + 5)
        assert services.run_export(export_id=export.pk, run_id="task-2") == ExportStatus.DONE
        export.refresh_from_db()
    assert (export.run_id, export.restarts, export.rows_done) == ("task-2", 1, 3)
    files.delete(export.file)


def test_an_export_restarted_too_often_fails_and_leaves_no_partial(alpha):
    with tenant_context(alpha.tenant):
        export = _running(run_id="task-1", started_ago=1, restarts=settings.EXPORT_MAX_RESTARTS)
        _, partial = _paths(alpha.tenant.schema_name, export)
        partial.parent.mkdir(parents=True, exist_ok=True)
        partial.write_bytes(b"half")
        assert services.run_export(export_id=export.pk, run_id="task-1") == ExportStatus.FAILED
        export.refresh_from_db()
    assert (
        export.status == ExportStatus.FAILED
        and export.error == services.GAVE_UP
        and not partial.exists()
    )


def test_an_outage_queues_the_export_again_for_the_tasks_retry(alpha, monkeypatch):
    def unreachable(*args, **kwargs):
        raise OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr(sources, "source", unreachable)
    with tenant_context(alpha.tenant):
        export = Export.objects.create(kind="customers", format="csv")
        with pytest.raises(OperationalError):
            services.run_export(export_id=export.pk, run_id="task-1")
        export.refresh_from_db()
        _, partial = _paths(alpha.tenant.schema_name, export)
    assert export.status == ExportStatus.QUEUED and not partial.exists()


def test_the_reconciler_queues_lost_messages_and_restarts_dead_runs(alpha, sent):
    now = timezone.now()
    late = now - timedelta(seconds=settings.EXPORT_REQUEUE_AFTER + 1)
    dead_after = (
        settings.CELERY_VISIBILITY_TIMEOUT
        + settings.CELERY_BROKER_TRANSPORT_OPTIONS["unacked_restore_interval"]
    )
    with tenant_context(alpha.tenant):
        lost = Export.objects.create(kind="customers", format="csv", queued_at=late)
        waiting = Export.objects.create(
            kind="customers", format="csv", queued_at=now - timedelta(seconds=5)
        )
        dead = _running(run_id="task-1", started_ago=dead_after + 5)
        alive = _running(run_id="task-2", started_ago=settings.CELERY_TASK_TIME_LIMIT)
        hopeless = _running(
            run_id="task-3", started_ago=dead_after + 5, restarts=settings.EXPORT_MAX_RESTARTS
        )
        legacy = Export.objects.create(
            kind="customers", format="csv", status=ExportStatus.RUNNING
        )  # no claim
        assert services.reconcile_exports(now=now) == {"queued": 3, "restarted": 2, "failed": 1}
        states = {e.pk: (e.status, e.restarts) for e in Export.objects.all()}
        assert services.reconcile_exports(now=now) == {
            "queued": 0,
            "restarted": 0,
            "failed": 0,
        }  # sent once
    assert sorted(sent) == sorted([(lost.pk, "alpha"), (dead.pk, "alpha"), (legacy.pk, "alpha")])
    assert states[lost.pk] == (ExportStatus.QUEUED, 0) and states[dead.pk] == (
        ExportStatus.QUEUED,
        1,
    )
    assert states[waiting.pk] == (ExportStatus.QUEUED, 0) and states[alive.pk] == (
        ExportStatus.RUNNING,
        0,
    )
    assert states[hopeless.pk][0] == ExportStatus.FAILED


def test_an_export_whose_send_failed_after_commit_is_queued_by_the_reconciler(
    alpha, sent, monkeypatch
):
    """The broker down when create_export's commit sent the task: the export waits QUEUED, and the
    reconciler sends it once it is due."""
    with tenant_context(alpha.tenant):
        export = services.create_export(
            actor=shop.actor(alpha, "owner"), tenant=alpha.tenant, kind="customers", format="csv"
        )
        # The on-commit send, dropped (apps.common.outages.after_commit logs it): nothing sent.
        assert sent == [] and services.reconcile_exports() == {
            "queued": 0,
            "restarted": 0,
            "failed": 0,
        }
        later = timezone.now() + timedelta(seconds=settings.EXPORT_REQUEUE_AFTER + 1)
        assert services.reconcile_exports(now=later)["queued"] == 1
    assert sent == [(export.pk, "alpha")]


def test_beat_reconciles_active_tenants_only(alpha, beta, monkeypatch):
    queued: list[str] = []
    monkeypatch.setattr(
        tasks.reconcile_exports,
        "apply_async",
        lambda headers, **kw: queued.append(headers["_schema_name"]),
    )
    Tenant.objects.filter(pk=beta.tenant.pk).update(status=Tenant.Status.SUSPENDED)
    assert tasks.reconcile_all_tenants() == len(queued)
    assert "alpha" in queued and "beta" not in queued
    assert (
        settings.CELERY_BEAT_SCHEDULE["exports.reconcile"]["task"]
        == tasks.reconcile_all_tenants.name
    )


def test_an_export_is_written_while_redis_cannot_take_its_progress(alpha, settings):
    """The progress messages go to the live bus (Redis): while Redis is away they are skipped and
    the export is written all the same (bench/faults.py saw such exports fail)."""
    import socket

    from channels.layers import channel_layers

    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    layers = {"default": {**settings.CHANNEL_LAYERS["default"]}}
    layers["default"]["CONFIG"] = {
        **layers["default"]["CONFIG"],
        "hosts": [{"address": f"redis://127.0.0.1:{port}/0", "socket_timeout": 1}],
    }
    settings.CHANNEL_LAYERS = layers
    channel_layers.backends.clear()
    try:
        with tenant_context(alpha.tenant):
            _customers(5)
            export = Export.objects.create(kind="customers", format="csv")
            assert services.run_export(export_id=export.pk, run_id="task-1") == ExportStatus.DONE
            assert Export.objects.get(pk=export.pk).rows_done == Customer.objects.count()
    finally:
        channel_layers.backends.clear()
