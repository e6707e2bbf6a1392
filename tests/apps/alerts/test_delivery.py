"""What a firing delivers: a webhook a receiver can verify (a real HTTP server on 127.0.0.1,
checked here with hmac on its own), retried with backoff until it is taken, and given up after
the last attempt; an email through Django's backend (locmem under tests), once."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from decimal import Decimal

from django.core import mail
from django.test import override_settings
from django_tenants.utils import tenant_context

from apps.alerts import delivery, tasks, webhooks
from apps.alerts.models import Notification, WebhookDelivery
from apps.common import crypto
from tests.apps.alerts.helpers import evaluate, make_rule, receiver, today
from tests.conftest import gid
from tests.eager import eager


def _fired(fixture, **values) -> tuple[Notification, str]:
    """A rule that fires at once (today's sales below a threshold above them), evaluated."""
    rule, secret = make_rule(fixture, comparison="below", threshold=today(fixture) + 1, **values)
    assert evaluate(fixture) == 1
    with tenant_context(fixture.tenant):
        return Notification.objects.get(rule=rule), secret


def _delivery(fixture, notification: Notification) -> WebhookDelivery:
    with tenant_context(fixture.tenant):
        return WebhookDelivery.objects.get(notification=notification)


def _deliver(fixture, sent: WebhookDelivery) -> None:
    with tenant_context(fixture.tenant):
        tasks.deliver_webhook.apply(args=(sent.pk,))


def test_a_webhook_carries_a_verifiable_signature(alpha, django_capture_on_commit_callbacks):
    with receiver(200) as hook:
        rule_values = {"channels": ["in_app", "webhook"], "webhook_url": hook.url}
        with (
            eager(),
            django_capture_on_commit_callbacks(execute=True),
        ):  # queued on commit, run in place
            notification, secret = _fired(alpha, **rule_values)
        ((headers, body),) = hook.requests

    assert secret.startswith("whsec_")
    assert (
        headers["X-Shop-Event"] == "alert.fired" and headers["Content-Type"] == "application/json"
    )
    fields = dict(part.split("=", 1) for part in headers["X-Shop-Signature"].split(","))
    expected = hmac.new(
        secret.encode(), f"{fields['t']}.".encode() + body, hashlib.sha256
    ).hexdigest()
    assert hmac.compare_digest(fields["v1"], expected)
    assert abs(int(fields["t"]) - time.time()) < 300
    payload = json.loads(body)
    assert payload["notification"] == gid(alpha, "Notification", notification.pk)
    assert payload["rule"] == gid(alpha, "AlertRule", notification.rule_id)
    assert payload["metric"] == "gross_sales" and Decimal(payload["threshold"]) == today(alpha) + 1
    assert set(payload) == {"rule", "metric", "value", "threshold", "firedAt", "notification"}

    sent = _delivery(alpha, notification)
    assert (sent.status, sent.attempts, sent.last_status_code) == ("delivered", 1, 200)
    assert sent.delivered_at is not None
    assert headers["X-Shop-Delivery"] == gid(
        alpha, "WebhookDelivery", sent.pk
    )  # the same on every attempt
    with tenant_context(alpha.tenant):  # the secret is kept encrypted, never as it is
        assert secret not in notification.rule.webhook_secret
        assert crypto.decrypt(notification.rule.webhook_secret) == secret


def test_a_failing_endpoint_is_retried_until_it_takes_the_webhook(alpha):
    with receiver(500, 503, 200) as hook:
        notification, _ = _fired(alpha, channels=["webhook"], webhook_url=hook.url)
        _deliver(alpha, _delivery(alpha, notification))
        bodies = [body for _, body in hook.requests]
        signatures = [headers["X-Shop-Signature"] for headers, _ in hook.requests]

    sent = _delivery(alpha, notification)
    assert (sent.status, sent.attempts, sent.last_status_code, sent.last_error) == (
        "delivered",
        3,
        200,
        "",
    )
    assert len(bodies) == 3 and len(set(bodies)) == 1  # the same body each time, signed anew
    assert all(signature.startswith("t=") for signature in signatures)
    with tenant_context(alpha.tenant):  # not in the app: the rule asked for the webhook only
        assert Notification.objects.get(pk=notification.pk).in_app is False

    _deliver(alpha, sent)  # a delivered webhook is not sent again (a task run twice)
    assert len(hook.requests) == 3


def test_an_endpoint_that_keeps_failing_is_given_up_after_the_last_attempt(alpha):
    with receiver(500) as hook:
        notification, _ = _fired(alpha, channels=["webhook"], webhook_url=hook.url)
        _deliver(alpha, _delivery(alpha, notification))
        attempts = len(hook.requests)

    sent = _delivery(alpha, notification)
    assert attempts == delivery.WEBHOOK_MAX_RETRIES + 1
    assert (sent.status, sent.attempts, sent.last_status_code, sent.last_error) == (
        "failed",
        attempts,
        500,
        "HTTP 500",
    )
    assert sent.delivered_at is None


def test_an_unreachable_endpoint_records_the_error(alpha):
    with receiver(200) as hook:
        url = hook.url
    notification, _ = _fired(
        alpha, channels=["webhook"], webhook_url=url
    )  # nobody listens there now
    with tenant_context(alpha.tenant):
        sent = delivery.attempt_webhook(_delivery(alpha, notification).pk)
    assert (sent.status, sent.attempts, sent.last_status_code) == ("pending", 1, None)
    assert sent.last_error


def test_a_private_address_is_refused_at_delivery_too(alpha):
    """Allowed when the rule was saved, not any more when it is sent (DNS or settings change)."""
    with receiver(200) as hook:
        notification, _ = _fired(alpha, channels=["webhook"], webhook_url=hook.url)
        with override_settings(ALERT_WEBHOOK_ALLOW_PRIVATE=False), tenant_context(alpha.tenant):
            sent = delivery.attempt_webhook(_delivery(alpha, notification).pk)
        assert hook.requests == []
    assert "private" in sent.last_error and sent.last_status_code is None


def test_a_redirect_is_not_followed(alpha):
    with receiver(302) as hook:
        notification, _ = _fired(alpha, channels=["webhook"], webhook_url=hook.url)
        with tenant_context(alpha.tenant):
            sent = delivery.attempt_webhook(_delivery(alpha, notification).pk)
    assert (sent.status, sent.last_status_code, len(hook.requests)) == ("pending", 302, 1)


def test_the_signature_is_hmac_sha256_of_timestamp_and_body():
    header = webhooks.signature_header("whsec_x", '{"a":1}', timestamp=1700000000)
    assert (
        header
        == "t=1700000000,v1="
        + hmac.new(b"whsec_x", b'1700000000.{"a":1}', hashlib.sha256).hexdigest()
    )


def test_an_email_goes_to_the_rule_addresses_once(alpha, django_capture_on_commit_callbacks):
    mail.outbox.clear()
    with eager(), django_capture_on_commit_callbacks(execute=True):
        notification, _ = _fired(
            alpha, channels=["email"], emails=["Ops@Example.com", "boss@example.com"]
        )
    (message,) = mail.outbox
    assert message.to == ["ops@example.com", "boss@example.com"]
    assert message.subject == notification.title and "Gross sales" in message.body
    with tenant_context(alpha.tenant):
        assert Notification.objects.get(pk=notification.pk).emailed_at is not None
        assert tasks.send_email(notification.pk) is False  # run twice: mailed once
    assert len(mail.outbox) == 1
