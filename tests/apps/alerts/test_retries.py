"""Alert deliveries under the one retry policy (apps.common.retry): an email whose mail server
cannot be reached (Django's SMTP backend pointed at a closed port) is retried after the policy's
backoff, and sent once the server is back (the locmem backend of the tests)."""

from __future__ import annotations

from django.core import mail
from django_tenants.utils import tenant_context

from apps.alerts import tasks
from apps.alerts.models import Notification
from apps.common import retry
from tests.apps.alerts.test_delivery import _fired
from tests.apps.payments.fixtures import _free_port
from tests.retries import retries_of


def test_an_unreachable_mail_server_is_retried_after_the_policys_backoff(alpha, settings):
    notification, _ = _fired(
        alpha, channels=["email"], emails=["ops@example.com"]
    )  # queued on a commit never reached
    mail.outbox.clear()
    locmem = settings.EMAIL_BACKEND
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = "127.0.0.1", _free_port(), 5
    settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False

    def server_back() -> None:
        settings.EMAIL_BACKEND = locmem

    with retries_of(tasks.send_email, then=server_back) as asked, tenant_context(alpha.tenant):
        assert tasks.send_email.apply(args=(notification.pk,)).get() is True
    (first,) = asked
    assert isinstance(first.exc, ConnectionRefusedError) and 0 <= first.when <= retry.ceiling(0)
    assert [message.to for message in mail.outbox] == [["ops@example.com"]]
    with tenant_context(alpha.tenant):
        assert Notification.objects.get(pk=notification.pk).emailed_at is not None
