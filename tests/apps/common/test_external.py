"""No call leaves the process while a transaction is open (apps.common.external, DESIGN §12):
a Stripe request, an alert webhook's POST and an alert email are stopped before they leave when
made inside `transaction.atomic`, and go out as usual outside one. The test settings raise, so
every payments and alerts test also checks the rule on the paths it runs; production logs."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import stripe
from django.core import mail
from django.db import transaction
from django_tenants.utils import tenant_context

from apps.alerts import delivery, webhooks
from apps.common.external import CallInTransaction, in_transaction, outside_transactions
from apps.payments import gateway
from tests.apps.alerts.test_delivery import _fired


class _Counting(BaseHTTPRequestHandler):
    seen: list[str] = []

    def do_GET(self) -> None:
        self._answer()

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self._answer()

    def _answer(self) -> None:
        type(self).seen.append(f"{self.command} {self.path}")
        body = b'{"id": "pi_1", "object": "payment_intent", "status": "canceled"}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[tuple[str, list[str]]]:
    """A local HTTP server that answers 200 and lists what reached it."""
    seen: list[str] = []
    handler = type("Handler", (_Counting,), {"seen": seen})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", seen
    finally:
        server.shutdown()
        server.server_close()


def _retrieve_intent(settings, base: str) -> object:
    settings.STRIPE_API_BASE = base
    return gateway.client("sk_test_x").v1.payment_intents.retrieve("pi_1")


def test_a_test_transaction_does_not_count_but_one_of_ours_does(db):
    assert not in_transaction()  # the TestCase's own atomic stands for autocommit
    with transaction.atomic():
        assert in_transaction()
        with transaction.atomic():
            assert in_transaction()
    assert not in_transaction()


def test_a_stripe_request_inside_a_transaction_never_leaves(db, settings, receiver):
    base, seen = receiver
    with pytest.raises(CallInTransaction, match="Stripe GET"), transaction.atomic():
        _retrieve_intent(settings, base)
    assert seen == []

    intent = _retrieve_intent(settings, base)  # the same call outside one goes out
    assert seen == ["GET /v1/payment_intents/pi_1"]
    assert isinstance(intent, stripe.PaymentIntent)


def test_an_alert_webhook_inside_a_transaction_never_leaves(db, receiver):
    base, seen = receiver
    with pytest.raises(CallInTransaction, match="webhook"), transaction.atomic():
        webhooks.post(f"{base}/hook", "{}", secret="s")
    assert seen == []
    assert webhooks.post(f"{base}/hook", "{}", secret="s").ok
    assert seen == ["POST /hook"]


def test_an_alert_email_inside_a_transaction_is_not_sent(alpha):
    notification, _ = _fired(alpha, channels=["email"], emails=["ops@example.com"])
    with tenant_context(alpha.tenant):
        with pytest.raises(CallInTransaction, match="email"), transaction.atomic():
            delivery.send_email(notification.pk, run_id="task-1")
        assert mail.outbox == []
        assert delivery.send_email(notification.pk, run_id="task-2") is True
    assert len(mail.outbox) == 1


def test_in_production_the_call_goes_out_and_an_error_is_logged(db, settings, receiver, caplog):
    base, seen = receiver
    settings.EXTERNAL_CALLS_IN_TRANSACTIONS = "log"
    with caplog.at_level(logging.ERROR, logger="apps.common.external"), transaction.atomic():
        _retrieve_intent(settings, base)
    assert seen == ["GET /v1/payment_intents/pi_1"]
    assert "inside a database transaction" in caplog.text


def test_outside_any_transaction_nothing_is_said(db, settings, caplog):
    settings.EXTERNAL_CALLS_IN_TRANSACTIONS = "log"
    with caplog.at_level(logging.ERROR, logger="apps.common.external"):
        outside_transactions("anything")
    assert caplog.text == ""
