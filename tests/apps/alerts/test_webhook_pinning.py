"""A webhook goes to the address that was checked (DNS rebinding cannot redirect it).

The name hooks.rebind.test is answered by a fake DNS that replaces socket.getaddrinfo (the standard
library's resolver, not our code) and may answer differently each time it is asked, as a hostile
DNS server would. The receivers are real servers on 127.0.0.1; https ones present a certificate
made here and trusted through the SSL context the test hands to webhooks.post."""

from __future__ import annotations

import datetime
import hashlib
import hmac
import ipaddress
import socket
import ssl
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from django.test import override_settings
from django_tenants.utils import tenant_context

from apps.alerts import delivery, webhooks
from apps.alerts.models import WebhookDelivery
from apps.common.errors import UserError
from tests.apps.alerts.helpers import evaluate, make_rule, receiver, today

NAME = "hooks.rebind.test"  # .test never resolves for real: only the fake DNS answers it
PUBLIC = (
    "93.184.216.34"  # global; with no network here a connection to it fails at once or times out
)
_real_getaddrinfo = socket.getaddrinfo


class FakeDNS:
    """Answers NAME with each of `answers` in turn (the last from then on; an empty one is "no such
    name"); any other name or IP literal goes to the real resolver (a literal is parsed there, never
    sent to a DNS server)."""

    def __init__(self, *answers: list[str]) -> None:
        self.answers = list(answers)
        self.asked = 0

    def __call__(
        self, host, port, family=0, type=0, proto=0, flags=0
    ):  # getaddrinfo's own parameter names
        if host != NAME:
            return _real_getaddrinfo(host, port, family, type, proto, flags)
        self.asked += 1
        addresses = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if not addresses:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return [
            (socket.AF_INET6, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (address, port, 0, 0))
            if ":" in address
            else (socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (address, port))
            for address in addresses
        ]


@pytest.fixture
def dns(monkeypatch):
    """Install a FakeDNS answering NAME with the given answers in turn."""

    def install(*answers: list[str]) -> FakeDNS:
        fake = FakeDNS(*answers)
        monkeypatch.setattr(socket, "getaddrinfo", fake)
        return fake

    return install


def test_a_rebound_answer_after_the_check_is_never_connected_to(alpha, dns):
    """The check sees a public address, a second lookup would see the receiver on 127.0.0.1."""
    with receiver(200) as hook:
        url = f"http://{NAME}:{hook.port}/hooks/shop"
        # Saved as tests allow private addresses (no lookup then), and fired at once.
        rule, _ = make_rule(
            alpha,
            channels=["webhook"],
            webhook_url=url,
            comparison="below",
            threshold=today(alpha) + 1,
        )
        assert evaluate(alpha) == 1
        fake = dns([PUBLIC], ["127.0.0.1"])
        with override_settings(ALERT_WEBHOOK_ALLOW_PRIVATE=False), tenant_context(alpha.tenant):
            sent = delivery.attempt_webhook(WebhookDelivery.objects.get(rule=rule).pk)
        assert hook.requests == []  # the rebound address was never reached
    assert fake.asked == 1  # one lookup, checked, and that is what was connected to
    assert sent.last_status_code is None and sent.last_error and "private" not in sent.last_error


@pytest.mark.parametrize(
    "private", ["127.0.0.1", "10.0.0.5", "169.254.169.254", "::1", "fd00::1", "::ffff:10.0.0.1"]
)
def test_a_host_with_any_private_address_among_its_answers_is_refused(dns, private):
    dns([PUBLIC, "2606:2800:220:1:248:1893:25c8:1946", private])  # the private one last
    with receiver(200) as hook, override_settings(ALERT_WEBHOOK_ALLOW_PRIVATE=False):
        url = f"http://{NAME}:{hook.port}/hooks/shop"
        with pytest.raises(UserError) as refused:
            webhooks.check_url(url)
        outcome = webhooks.post(url, "{}", secret="whsec_x")
        assert hook.requests == []
    assert refused.value.code == "PRIVATE_ADDRESS"
    assert (outcome.ok, outcome.status_code) == (False, None) and "private" in outcome.error


def test_with_private_addresses_allowed_a_named_host_gets_its_host_header_and_signature(dns):
    fake = dns(["127.0.0.1"], ["127.0.0.2"])  # a second lookup would miss the receiver
    with receiver(200) as hook:
        outcome = webhooks.post(
            f"http://{NAME}:{hook.port}/hooks/shop?x=1", '{"a":1}', secret="whsec_x"
        )
        ((headers, body),) = hook.requests

    assert (outcome.ok, outcome.status_code, outcome.error) == (True, 200, "")
    assert fake.asked == 1
    assert headers["Host"] == f"{NAME}:{hook.port}" and body == b'{"a":1}'
    assert (
        headers["X-Shop-Event"] == "alert.fired" and headers["Content-Type"] == "application/json"
    )
    fields = dict(part.split("=", 1) for part in headers["X-Shop-Signature"].split(","))
    expected = hmac.new(b"whsec_x", f"{fields['t']}.".encode() + body, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(fields["v1"], expected)


def test_an_unresolvable_host_is_an_outcome_not_an_exception(dns):
    dns([])
    outcome = webhooks.post(f"http://{NAME}/hooks/shop", "{}", secret="whsec_x")
    assert (outcome.ok, outcome.status_code) == (
        False,
        None,
    ) and "cannot be resolved" in outcome.error


# --- https ----------------------------------------------------------------------------------------


def _certificate(directory: Path, name: x509.GeneralName) -> tuple[Path, Path]:
    """A self-signed certificate for `name` only, and its key, written as PEM files."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "webhook test")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([name]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = directory / "cert.pem", directory / "key.pem"
    cert_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_file, key_file


def _tls(
    tmp_path: Path, name: x509.GeneralName
) -> tuple[ssl.SSLContext, ssl.SSLContext, list[str | None]]:
    """A server context presenting a certificate for `name` (recording the SNI it is sent) and a
    client context that trusts that certificate alone."""
    cert_file, key_file = _certificate(tmp_path, name)
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(cert_file, key_file)
    names: list[str | None] = []
    server.sni_callback = lambda _socket, server_name, _context: names.append(server_name)
    return server, ssl.create_default_context(cafile=str(cert_file)), names


def test_https_goes_to_the_checked_address_with_the_host_name_for_sni_and_certificate(
    dns, tmp_path
):
    fake = dns(["127.0.0.1"], ["127.0.0.2"])
    server, client, names = _tls(
        tmp_path, x509.DNSName(NAME)
    )  # valid for the name, not for 127.0.0.1
    with receiver(200, tls=server) as hook:
        outcome = webhooks.post(
            f"https://{NAME}:{hook.port}/hooks/shop", "{}", secret="whsec_x", context=client
        )
        ((headers, _),) = hook.requests

    assert (outcome.ok, outcome.status_code, outcome.error) == (True, 200, "")
    assert names == [NAME] and headers["Host"] == f"{NAME}:{hook.port}"
    assert fake.asked == 1


def test_https_refuses_a_certificate_for_the_address_rather_than_the_host_name(dns, tmp_path):
    """Verifying against the connected address would take this certificate; the name must not."""
    dns(["127.0.0.1"])
    server, client, _ = _tls(tmp_path, x509.IPAddress(ipaddress.ip_address("127.0.0.1")))
    with receiver(200, tls=server) as hook:
        outcome = webhooks.post(
            f"https://{NAME}:{hook.port}/hooks/shop", "{}", secret="whsec_x", context=client
        )
        assert hook.requests == []
    assert (outcome.ok, outcome.status_code) == (
        False,
        None,
    ) and "certificate" in outcome.error.lower()
