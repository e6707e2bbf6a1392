"""Outgoing webhooks: where they may go, how they are signed, and one POST.

A body is signed as Stripe signs its own: `X-Shop-Signature: t=<unix seconds>,v1=<hex
HMAC-SHA256(secret, "<t>.<body>")>`, so a receiver checks both the body and its age.

Addresses inside the deployment's network (loopback, private, link-local, reserved) are refused
unless ALERT_WEBHOOK_ALLOW_PRIVATE: a tenant must not make our servers call our own services. The
host is resolved when the rule is saved and again before each POST (its DNS may change)."""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import socket
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from urllib.parse import urlsplit

from django.conf import settings

from apps.alerts.errors import AlertErrorCode
from apps.common.errors import UserError

TIMEOUT_SECONDS = 5
EVENT = "alert.fired"
SIGNATURE_HEADER = "X-Shop-Signature"
EVENT_HEADER = "X-Shop-Event"
URL_MAX = 500


def signature(secret: str, timestamp: int, body: str) -> str:
    """The hex HMAC-SHA256 of "<timestamp>.<body>" under `secret`."""
    return hmac.new(secret.encode(), f"{timestamp}.{body}".encode(), hashlib.sha256).hexdigest()


def signature_header(secret: str, body: str, *, timestamp: int | None = None) -> str:
    stamp = int(time.time()) if timestamp is None else timestamp
    return f"t={stamp},v1={signature(secret, stamp, body)}"


def _is_private(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%")[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return not ip.is_global or ip.is_multicast


def check_url(url: str, *, field: str = "webhookUrl") -> str:
    """`url`, stripped, if a webhook may be sent there; a UserError otherwise."""
    url = (url or "").strip()
    if len(url) > URL_MAX:
        raise UserError(f"At most {URL_MAX} characters.", field=field, code=AlertErrorCode.INVALID_URL)
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as error:
        raise UserError(f"Not a URL: {error}.", field=field, code=AlertErrorCode.INVALID_URL) from error
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UserError("Give an http:// or https:// URL with a host.", field=field, code=AlertErrorCode.INVALID_URL)
    if parts.username or parts.password:
        raise UserError("A webhook URL carries no credentials.", field=field, code=AlertErrorCode.INVALID_URL)
    if not settings.ALERT_WEBHOOK_ALLOW_PRIVATE:
        try:
            found = socket.getaddrinfo(parts.hostname, port or 443, type=socket.SOCK_STREAM)
        except (socket.gaierror, UnicodeError) as error:
            raise UserError(f"The host {parts.hostname!r} cannot be resolved.", field=field,
                            code=AlertErrorCode.INVALID_URL) from error
        if any(_is_private(info[4][0]) for info in found):
            raise UserError("Webhooks cannot be sent to private, loopback or reserved addresses.", field=field,
                            code=AlertErrorCode.PRIVATE_ADDRESS)
    return url


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """A redirect is an answer (a failed attempt), never followed: it could lead anywhere."""

    def redirect_request(self, *args, **kwargs) -> None:
        return None


_opener = urllib.request.build_opener(_NoRedirects)


@dataclass(frozen=True)
class Outcome:
    ok: bool
    status_code: int | None
    error: str


def post(url: str, body: str, *, secret: str) -> Outcome:
    """One signed POST of `body` (JSON): its outcome, never an exception."""
    try:
        check_url(url, field="url")
    except UserError as error:
        return Outcome(False, None, error.message)
    request = urllib.request.Request(url, data=body.encode(), method="POST", headers={
        "Content-Type": "application/json",
        "User-Agent": "shop-analytics-webhooks/1",
        EVENT_HEADER: EVENT,
        SIGNATURE_HEADER: signature_header(secret, body),
    })
    try:
        with _opener.open(request, timeout=TIMEOUT_SECONDS) as response:
            return Outcome(200 <= response.status < 300, response.status, "")
    except urllib.error.HTTPError as error:
        return Outcome(False, error.code, f"HTTP {error.code}")
    except (OSError, ValueError) as error:  # refused, timed out, TLS, a bad redirect
        return Outcome(False, None, str(error)[:500] or type(error).__name__)
