"""A Celery worker killed with SIGKILL in the middle of a task, main process and pool together
(issue 15, finding 5): after a new worker starts, the task finishes exactly once. The broker hands
the unacknowledged message out again once the visibility timeout has passed (short here: a time
limit of TIME_LIMIT s, a timeout of VISIBILITY s); the task's own rules make the second run finish
what the first left. Each test stops the first run at a known call (tests.faults.worker_app's
FAULT_HOLD) or while the webhook receiver holds the request, so the kill lands mid-task every
time, and asserts on rows and files, never on logs.

The worker has a Redis of its own as its broker (no other test's worker takes these messages, and
none of these is left for another test) and the test database; the data lives in a throwaway
tenant, committed, because the worker reads it on its own connections."""

from __future__ import annotations

import csv
import io
import json
import threading
from collections.abc import Iterator
from datetime import date
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.core.files.base import ContentFile
from django.utils import timezone

from apps.alerts import delivery
from apps.alerts import tasks as alert_tasks
from apps.alerts.models import AlertRule, Notification, WebhookDelivery
from apps.analytics.query import DateRange
from apps.catalog import tasks as catalog_tasks
from apps.catalog.models import Product, ProductImage
from apps.customers.models import Customer
from apps.exports import files
from apps.exports import tasks as export_tasks
from apps.exports.models import Export, ExportStatus
from apps.payments import crypto
from config.celery import app
from tests.apps.catalog.factories import image_bytes
from tests.committed import run_committed, throwaway_tenant
from tests.faults.processes import CeleryWorkerProcess, RedisProcess, wait_for

SLUG = "faults-kill"
TIME_LIMIT, VISIBILITY = 10, 12  # seconds; the redelivery comes VISIBILITY s after the delivery
DEADLINE = 45  # any one wait: a redelivery, with a loaded machine's slack
ROWS = 3000  # customers in the export
HOLD_AT_ROW = 1500


@pytest.fixture(scope="module")
def shop(tenants, django_db_blocker):
    with throwaway_tenant(django_db_blocker, SLUG, "Kill") as tenant:
        yield tenant


@pytest.fixture(scope="module")
def broker(tmp_path_factory):
    redis = RedisProcess(tmp_path_factory.mktemp("faults-kill-redis"))
    redis.start()
    try:
        yield redis
    finally:
        redis.kill()


@pytest.fixture
def worker(shop, broker, tmp_path, db) -> Iterator[CeleryWorkerProcess]:
    database = settings.DATABASES["default"]
    auth = database["USER"] + (f":{database['PASSWORD']}" if database.get("PASSWORD") else "")
    env = {
        "DJANGO_SETTINGS_MODULE": "config.settings_test",
        "DATABASE_URL": f"postgres://{auth}@{database['HOST'] or '127.0.0.1'}:{database['PORT'] or 5432}/{database['NAME']}",
        "CELERY_TASK_TIME_LIMIT": str(TIME_LIMIT),
        "CELERY_VISIBILITY_TIMEOUT": str(VISIBILITY),
        "CELERY_RESTORE_INTERVAL": "1",
        "CELERY_RESTORE_LOCK_SECONDS": "5",
    }
    process = CeleryWorkerProcess(broker.url, env, log=tmp_path / "worker.log")
    try:
        yield process
    finally:
        process.kill()


def _send(worker: CeleryWorkerProcess, task: Any, *args: Any) -> None:
    """Queue `task` in the throwaway tenant's schema on the worker's broker."""
    with app.connection_for_write(worker.broker_url) as broker_connection:
        task.apply_async(args, headers={"_schema_name": SLUG.replace("-", "_")}, connection=broker_connection)


# --- an export ---------------------------------------------------------------------------------

def _export_row(shop, export_id: int) -> Export:
    return run_committed(shop, lambda: Export.objects.get(pk=export_id))


def test_an_export_killed_mid_write_is_written_once_after_a_new_worker_starts(shop, worker, tmp_path):
    def make() -> int:
        Customer.objects.bulk_create(Customer(email=f"c{n:05}@example.com") for n in range(ROWS))
        return Export.objects.create(kind="customers", format="csv").pk

    export_id = run_committed(shop, make)
    schema = shop.schema_name
    partials = Path(settings.EXPORT_PARTIAL_ROOT) / schema
    stored = Path(files.storage().path(schema))
    marker = tmp_path / "held"
    worker.start(hold=f"apps.exports.services:_Progress.__call__@{HOLD_AT_ROW}", hold_marker=marker)
    _send(worker, export_tasks.run_export, export_id)
    wait_for(marker.exists, DEADLINE, "the export to be half written")

    held = _export_row(shop, export_id)
    assert (held.status, held.rows_total, held.restarts) == (ExportStatus.RUNNING, ROWS, 0)
    assert [path.name for path in partials.iterdir()] == [f"{export_id}.csv.part"]
    worker.kill()
    assert worker.pending() == 1  # the message: unacknowledged, in the broker

    worker.start()
    wait_for(lambda: _export_row(shop, export_id).status in (ExportStatus.DONE, ExportStatus.FAILED), DEADLINE,
             "the export to finish after the redelivery")
    worker.wait_idle(DEADLINE)

    done = _export_row(shop, export_id)
    assert (done.status, done.rows_done, done.rows_total, done.restarts) == (ExportStatus.DONE, ROWS, ROWS, 1)
    assert done.file == files.name_for(schema, export_id, "csv")
    assert sorted(path.name for path in stored.iterdir()) == [done.file.split("/")[1]]  # one file
    assert list(partials.iterdir()) == []  # the killed run's partial file replaced, then moved
    rows = list(csv.DictReader(io.StringIO((stored / done.file.split("/")[1]).read_text(), newline="")))
    assert sorted(row["email"] for row in rows) == [f"c{n:05}@example.com" for n in range(ROWS)]


# --- a product image's renditions --------------------------------------------------------------

def test_renditions_killed_after_the_first_file_are_written_once_after_a_new_worker_starts(shop, worker, tmp_path):
    def make() -> tuple[int, str]:
        product = Product.objects.create(name="Kill", slug="kill")
        image = ProductImage(product=product, width=1600, height=800)
        image.image.save("kill.jpg", ContentFile(image_bytes("JPEG", (1600, 800), "orange")), save=False)
        image.save()
        return image.pk, image.image.path

    image_id, original = run_committed(shop, make)
    folder, stem = Path(original).parent, Path(original).stem
    marker = tmp_path / "held"
    # Before the second rendition's file: the first is written, the row not yet updated.
    worker.start(hold="apps.catalog.services:ContentFile@2", hold_marker=marker)
    _send(worker, catalog_tasks.make_renditions, image_id)
    wait_for(marker.exists, DEADLINE, "the renditions to be half written")

    assert sorted(path.name for path in folder.iterdir()) == sorted([f"{stem}.jpg", f"{stem}-160.webp"])
    assert run_committed(shop, lambda: ProductImage.objects.get(pk=image_id).renditions) == {}
    worker.kill()

    worker.start()
    wait_for(lambda: run_committed(shop, lambda: ProductImage.objects.get(pk=image_id).renditions), DEADLINE,
             "the renditions to be recorded after the redelivery")
    worker.wait_idle(DEADLINE)

    renditions = run_committed(shop, lambda: ProductImage.objects.get(pk=image_id).renditions)
    relative = Path(original).relative_to(Path(settings.MEDIA_ROOT) / shop.schema_name).parent
    assert renditions == {str(size): f"{relative}/{stem}-{size}.webp" for size in (160, 640, 1280)}
    assert sorted(path.name for path in folder.iterdir()) == sorted(
        [f"{stem}.jpg"] + [f"{stem}-{size}.webp" for size in (160, 640, 1280)])  # each once, no copies


# --- an alert's webhook ------------------------------------------------------------------------

class _HoldingReceiver:
    """A webhook receiver on 127.0.0.1 that records every POST and answers none of them until
    `release()`: while it holds one, the worker that sent it is mid-delivery."""

    def __init__(self) -> None:
        self.requests: list[tuple[dict[str, str], bytes]] = []
        self.received, self.released = threading.Event(), threading.Event()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                outer.requests.append((dict(self.headers), body))
                outer.received.set()
                outer.released.wait(DEADLINE)
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def release(self) -> None:
        self.released.set()

    def close(self) -> None:
        self.release()
        self.server.shutdown()
        self.server.server_close()


def test_a_webhook_killed_mid_delivery_is_delivered_once_after_a_new_worker_starts(shop, worker, monkeypatch):
    receiver = _HoldingReceiver()
    monkeypatch.setattr(delivery, "_queue", lambda task, object_id: None)  # sent below, to the worker's broker

    def fire() -> int:
        rule = AlertRule.objects.create(name="Kill", metric="gross_sales", comparison="above", window_days=1,
                                        threshold=Decimal("1"), channels=["webhook"], webhook_url=receiver.url,
                                        webhook_secret=crypto.encrypt("kill-secret"))
        today = date.today()
        delivery.fire(rule, value=Decimal("5"), range=DateRange(today, today), now=timezone.now())
        return WebhookDelivery.objects.get(rule=rule).pk

    try:
        delivery_id = run_committed(shop, fire)
        worker.start()
        _send(worker, alert_tasks.deliver_webhook, delivery_id)
        assert receiver.received.wait(DEADLINE), "the webhook never arrived"
        worker.kill()  # the receiver has the request; the worker never hears its answer
        receiver.release()

        worker.start()
        wait_for(lambda: run_committed(shop, lambda: WebhookDelivery.objects.get(pk=delivery_id).status)
                 != WebhookDelivery.Status.PENDING, DEADLINE, "the delivery to end after the redelivery")
        worker.wait_idle(DEADLINE)
    finally:
        receiver.close()

    sent = run_committed(shop, lambda: WebhookDelivery.objects.get(pk=delivery_id))
    assert sent.status == WebhookDelivery.Status.DELIVERED
    assert run_committed(shop, lambda: (Notification.objects.count(), WebhookDelivery.objects.count())) == (1, 1)
    # At least once, as a kill after the send must be: each POST carries the same delivery id and
    # body, so the receiver keeps one notification.
    assert len(receiver.requests) == 2
    assert {headers[delivery.DELIVERY_HEADER] for headers, _ in receiver.requests} == {
        delivery.delivery_id(SLUG.replace("-", "_"), delivery_id)}
    assert len({body for _, body in receiver.requests}) == 1
    assert json.loads(receiver.requests[0][1])["notification"]
