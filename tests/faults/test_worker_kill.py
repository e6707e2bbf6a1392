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
from collections.abc import Callable, Iterator
from datetime import date
from decimal import Decimal
from email import message_from_bytes
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.core.files.base import ContentFile
from django.test import override_settings
from django.utils import timezone

from apps.alerts import delivery, webhooks
from apps.alerts import tasks as alert_tasks
from apps.alerts.models import AlertRule, Notification, WebhookDelivery
from apps.analytics.query import DateRange
from apps.catalog import tasks as catalog_tasks
from apps.catalog.models import Product, ProductImage
from apps.common import crypto
from apps.customers.models import Customer
from apps.exports import files
from apps.exports import tasks as export_tasks
from apps.exports.models import Export, ExportStatus
from config.celery import app
from tests.apps.catalog.factories import image_bytes
from tests.apps.payments.fixtures import localstripe  # noqa: F401 (a fixture)
from tests.committed import run_committed, throwaway_tenant
from tests.faults.processes import CeleryWorkerProcess, RedisProcess, wait_for
from tests.faults.receivers import HoldingSmtpServer, HoldingWebhookReceiver
from tests.servers import database_url

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
def new_worker(shop, broker, tmp_path, db) -> Iterator[Callable[..., CeleryWorkerProcess]]:
    """Makes workers (not started) on the test's broker and database, with a short time limit and
    visibility timeout; each is killed after the test."""
    env = {
        "DJANGO_SETTINGS_MODULE": "config.settings_test",
        "DATABASE_URL": database_url(),
        "CELERY_TASK_TIME_LIMIT": str(TIME_LIMIT),
        "CELERY_VISIBILITY_TIMEOUT": str(VISIBILITY),
        "CELERY_RESTORE_INTERVAL": "1",
        "CELERY_RESTORE_LOCK_SECONDS": "5",
    }
    made: list[CeleryWorkerProcess] = []

    def make(concurrency: int = 1, **more_env: str) -> CeleryWorkerProcess:
        made.append(
            CeleryWorkerProcess(
                broker.url,
                {**env, **more_env},
                concurrency=concurrency,
                log=tmp_path / f"worker-{len(made)}.log",
            )
        )
        return made[-1]

    try:
        yield make
    finally:
        for process in made:
            process.kill()


@pytest.fixture
def worker(new_worker) -> CeleryWorkerProcess:
    return new_worker()


def _send(worker: CeleryWorkerProcess, task: Any, *args: Any) -> None:
    """Queue `task` in the throwaway tenant's schema on the worker's broker."""
    with app.connection_for_write(worker.broker_url) as broker_connection:
        task.apply_async(
            args, headers={"_schema_name": SLUG.replace("-", "_")}, connection=broker_connection
        )


# --- an export ---------------------------------------------------------------------------------


def _export_row(shop, export_id: int) -> Export:
    return run_committed(shop, lambda: Export.objects.get(pk=export_id))


def test_an_export_killed_mid_write_is_written_once_after_a_new_worker_starts(
    shop, worker, tmp_path
):
    def make() -> int:
        # Other tests of this module may have left customers in the shared tenant (the payment
        # return's buyer): the export holds all of them (make test-stress seed 15379).
        Customer.objects.filter(email__startswith="c").filter(
            email__endswith="@example.com"
        ).delete()
        Customer.objects.bulk_create(Customer(email=f"c{n:05}@example.com") for n in range(ROWS))
        return Export.objects.create(kind="customers", format="csv").pk, Customer.objects.count()

    export_id, total = run_committed(shop, make)
    schema = shop.schema_name
    partials = Path(settings.EXPORT_PARTIAL_ROOT) / schema
    stored = Path(files.storage().path(schema))
    marker = tmp_path / "held"
    worker.start(hold=f"apps.exports.services:_Progress.__call__@{HOLD_AT_ROW}", hold_marker=marker)
    _send(worker, export_tasks.run_export, export_id)
    wait_for(marker.exists, DEADLINE, "the export to be half written")

    held = _export_row(shop, export_id)
    assert (held.status, held.rows_total, held.restarts) == (ExportStatus.RUNNING, total, 0)
    (partial,) = partials.iterdir()
    assert partial.name == f"{export_id}.csv.part" and partial.stat().st_size > 0  # half written
    worker.kill()
    assert worker.pending() == 1  # the message: unacknowledged, in the broker

    worker.start()
    wait_for(
        lambda: _export_row(shop, export_id).status in (ExportStatus.DONE, ExportStatus.FAILED),
        DEADLINE,
        "the export to finish after the redelivery",
    )
    worker.wait_idle(DEADLINE)

    done = _export_row(shop, export_id)
    assert (done.status, done.rows_done, done.rows_total, done.restarts) == (
        ExportStatus.DONE,
        total,
        total,
        1,
    )
    assert done.file == files.name_for(schema, export_id, "csv")
    assert sorted(path.name for path in stored.iterdir()) == [done.file.split("/")[1]]  # one file
    assert list(partials.iterdir()) == []  # the killed run's partial file replaced, then moved
    rows = list(
        csv.DictReader(io.StringIO((stored / done.file.split("/")[1]).read_text(), newline=""))
    )
    assert len(rows) == total
    assert [email for email in sorted(row["email"] for row in rows) if email.startswith("c0")] == [
        f"c{n:05}@example.com" for n in range(ROWS)
    ]


# --- a product image's renditions --------------------------------------------------------------


def test_renditions_killed_after_the_first_file_are_written_once_after_a_new_worker_starts(
    shop, worker, tmp_path
):
    def make() -> tuple[int, str]:
        product = Product.objects.create(name="Kill", slug="kill")
        image = ProductImage(product=product, width=1600, height=800)
        image.image.save(
            "kill.jpg", ContentFile(image_bytes("JPEG", (1600, 800), "orange")), save=False
        )
        image.save()
        return image.pk, image.image.path

    image_id, original = run_committed(shop, make)
    folder, stem = Path(original).parent, Path(original).stem
    marker = tmp_path / "held"
    # Before the second rendition's file: the first is written, the row not yet updated.
    worker.start(hold="apps.catalog.image_services:ContentFile@2", hold_marker=marker)
    _send(worker, catalog_tasks.make_renditions, image_id)
    wait_for(marker.exists, DEADLINE, "the renditions to be half written")

    assert sorted(path.name for path in folder.iterdir()) == sorted(
        [f"{stem}.jpg", f"{stem}-160.webp"]
    )
    assert run_committed(shop, lambda: ProductImage.objects.get(pk=image_id).renditions) == {}
    worker.kill()

    worker.start()
    wait_for(
        lambda: run_committed(shop, lambda: ProductImage.objects.get(pk=image_id).renditions),
        DEADLINE,
        "the renditions to be recorded after the redelivery",
    )
    worker.wait_idle(DEADLINE)

    renditions = run_committed(shop, lambda: ProductImage.objects.get(pk=image_id).renditions)
    relative = Path(original).relative_to(Path(settings.MEDIA_ROOT) / shop.schema_name).parent
    assert renditions == {str(size): f"{relative}/{stem}-{size}.webp" for size in (160, 640, 1280)}
    assert sorted(path.name for path in folder.iterdir()) == sorted(
        [f"{stem}.jpg"] + [f"{stem}-{size}.webp" for size in (160, 640, 1280)]
    )  # each once, no copies


# --- an alert's webhook and email --------------------------------------------------------------


def test_an_alert_killed_mid_send_is_delivered_once_after_a_new_worker_starts(
    shop, new_worker, monkeypatch
):
    """The webhook's POST and the email's DATA both reached their receivers, which hold them
    unanswered; the worker (two pool processes, one task each) is killed. The receivers cannot
    tell whether we heard them, and neither can we: the next run sends again, and every copy
    carries the same delivery id (webhook) or Message-ID (email), so each receiver keeps one."""
    hook, smtp = HoldingWebhookReceiver(DEADLINE), HoldingSmtpServer(DEADLINE)
    worker = new_worker(concurrency=2, EMAIL_URL=f"smtp://127.0.0.1:{smtp.port}")
    monkeypatch.setattr(
        delivery, "_queue", lambda task, object_id: None
    )  # sent below, to the worker's broker
    schema = SLUG.replace("-", "_")

    def fire() -> tuple[int, int]:
        rule = AlertRule.objects.create(
            name="Kill",
            metric="gross_sales",
            comparison="above",
            window_days=1,
            threshold=Decimal("1"),
            channels=["webhook", "email"],
            emails=["ops@example.com"],
            webhook_url=hook.url,
            webhook_secret=crypto.encrypt("kill-secret"),
        )
        today = date.today()
        notification = delivery.fire(
            rule, value=Decimal("5"), range=DateRange(today, today), now=timezone.now()
        )
        return notification.pk, WebhookDelivery.objects.get(rule=rule).pk

    def state() -> tuple[str, bool]:
        def read() -> tuple[str, bool]:
            return (
                WebhookDelivery.objects.get(pk=delivery_id).status,
                Notification.objects.get(pk=notification_id).emailed_at is not None,
            )

        return run_committed(shop, read)

    try:
        notification_id, delivery_id = run_committed(shop, fire)
        worker.start()
        _send(worker, alert_tasks.deliver_webhook, delivery_id)
        _send(worker, alert_tasks.send_email, notification_id)
        assert hook.received.wait(DEADLINE) and smtp.received.wait(DEADLINE), "a send never arrived"
        worker.kill()  # both receivers have what was sent; the worker never hears their answers
        hook.release()
        smtp.release()

        worker.start()
        wait_for(
            lambda: state() == (WebhookDelivery.Status.DELIVERED, True),
            DEADLINE,
            "the webhook and the email to be recorded after the redelivery",
        )
        worker.wait_idle(DEADLINE)
    finally:
        hook.close()
        smtp.close()

    assert run_committed(
        shop, lambda: (Notification.objects.count(), WebhookDelivery.objects.count())
    ) == (1, 1)
    # At least once, as a kill after the send must be; one delivery id, one body, one Message-ID.
    assert len(hook.requests) == 2
    assert {headers[webhooks.DELIVERY_HEADER] for headers, _ in hook.requests} == {
        delivery.delivery_key(schema, delivery_id)
    }
    assert len({body for _, body in hook.requests}) == 1
    assert len(smtp.messages) == 2
    assert {message_from_bytes(data)["Message-ID"] for data in smtp.messages} == {
        delivery.message_id(schema, notification_id)
    }


# --- a payment return --------------------------------------------------------------------------


def test_a_payment_return_killed_after_stripe_refunded_is_finished_once_after_a_new_worker_starts(
    shop,
    new_worker,
    tmp_path,
    localstripe,  # noqa: F811 (the fixture)
):
    """Money Stripe took for a cancelled order goes back (apps.payments.cleanup): the worker is
    killed right after Stripe made the refund and before the answer was recorded. The new worker's
    run of the same message finds the refund at Stripe by its metadata instead of making another."""
    import secrets

    import stripe

    from apps.catalog.models import Variant
    from apps.orders import services as orders
    from apps.orders.models import OrderEvent
    from apps.payments import services as payments
    from apps.payments import state
    from apps.payments import tasks as payment_tasks
    from apps.payments.models import Payment, StripeRefund
    from tests.apps.payments.test_refunds import CARD

    actor = state.SystemActor(email="kill-test@example.com")
    secret = f"sk_test_{secrets.token_hex(12)}"

    def make() -> int:
        payments.update_settings(
            actor=actor,
            stripe_enabled=True,
            stripe_publishable_key="pk_test_kill",
            stripe_secret_key=secret,
            stripe_webhook_secret="whsec_kill",
        )
        product = Product.objects.create(name="Paid", slug="paid", status=Product.Status.ACTIVE)
        variant = Variant.objects.create(
            product=product, sku="PAID-1", name="One", price=Decimal("19.99"), stock=5
        )
        order = orders.create_order(
            actor=actor,
            tenant=shop,
            lines=[orders.LineRequest(variant.pk, 3)],
            email="buyer@example.com",
        )
        payment, _ = payments.create_intent(actor=actor, order_id=order.pk)
        api = stripe.StripeClient(secret, base_addresses={"api": localstripe})
        method = api.v1.payment_methods.create(params=CARD)
        api.v1.payment_intents.update(payment.stripe_id, params={"payment_method": method.id})
        assert api.v1.payment_intents.confirm(payment.stripe_id).status == "succeeded"
        orders.cancel_order(actor=actor, order_id=order.pk)  # cancelled as the buyer paid
        Payment.objects.filter(pk=payment.pk).update(
            status="succeeded"
        )  # as the webhook records it,
        state.order_event(
            payment, state.UNEXPECTED, state.CLEAN_UP, payment=payment.pk
        )  # and marks it
        return payment.pk

    with override_settings(STRIPE_API_BASE=localstripe):
        payment_id = run_committed(shop, make)
    payment = run_committed(shop, lambda: Payment.objects.get(pk=payment_id))
    api = stripe.StripeClient(secret, base_addresses={"api": localstripe})

    def at_stripe() -> list:
        return list(api.v1.refunds.list(params={"payment_intent": payment.stripe_id}).data)

    worker = new_worker(STRIPE_API_BASE=localstripe, PAYMENTS_CALL_LEASE_SECONDS="2")
    marker = tmp_path / "held"
    worker.start(hold="apps.payments.refunds:_ask@1:after", hold_marker=marker)  # Stripe answered
    _send(worker, payment_tasks.return_payment, payment_id)
    wait_for(marker.exists, DEADLINE, "Stripe to have made the refund")
    assert [r.amount for r in at_stripe()] == [5997]
    assert run_committed(
        shop, lambda: list(StripeRefund.objects.values_list("status", flat=True))
    ) == ["requested"]
    worker.kill()

    worker.start()
    wait_for(
        lambda: run_committed(shop, lambda: StripeRefund.objects.get().status) == "succeeded",
        DEADLINE,
        "the return to be recorded after the redelivery",
    )
    worker.wait_idle(DEADLINE)

    (made,) = at_stripe()
    row, refunded, returned = run_committed(
        shop,
        lambda: (
            StripeRefund.objects.get(),
            Payment.objects.get(pk=payment_id).amount_refunded,
            OrderEvent.objects.filter(order_id=payment.order_id, type="payment_returned").count(),
        ),
    )
    assert (row.stripe_id, row.amount, row.order_refund_id) == (made.id, Decimal("59.97"), None)
    assert (refunded, returned, made.amount) == (Decimal("59.97"), 1, 5997)
