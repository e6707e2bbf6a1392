"""Outgoing webhooks: where they may go, how they are signed, and one POST.

A body is signed as Stripe signs its own: `X-Shop-Signature: t=<unix seconds>,v1=<hex
HMAC-SHA256(secret, "<t>.<body>")>`, so a receiver checks both the body and its age.

Addresses inside the deployment's network (loopback, private, link-local, reserved) are refused
unless ALERT_WEBHOOK_ALLOW_PRIVATE: a tenant must not make our servers call our own services. The
host is resolved when the rule is saved and again before each POST (its DNS may change); a host
with any such address among its answers is refused. A POST resolves the host once (`resolve`),
checks every address, and connects to those addresses only (apps.alerts.pinned), sending the host
name as `Host` and as TLS SNI and verifying the certificate for it: a DNS answer that changes after
the check (DNS rebinding) cannot steer the connection to an address that was not checked.
Redirects are answers, never followed: they could lead anywhere."""

from __future__ import annotations

import hashlib
import hmac
import http.client
import ipaddress
import socket
import ssl
import time
from dataclasses import dataclass
from urllib.parse import SplitResult, urlsplit

from django.conf import settings

from apps.alerts import pinned
from apps.alerts.errors import AlertErrorCode
from apps.common.errors import UserError
from apps.common.external import outside_transactions

TIMEOUT_SECONDS = 5
EVENT = "alert.fired"
SIGNATURE_HEADER = "X-Shop-Signature"
EVENT_HEADER = "X-Shop-Event"
# The same on every attempt of one delivery (apps.alerts.delivery.delivery_key): a worker killed
# after its POST reached the receiver makes the POST again, and the receiver drops the repeat.
DELIVERY_HEADER = "X-Shop-Delivery"
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


def resolve(host: str, port: int) -> list[str]:
    """The addresses `host` has for a TCP connection on `port`, from one lookup, in its order.

    The only place webhooks look a name up, so what is checked is what is connected to."""
    found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(
        dict.fromkeys(str(info[4][0]) for info in found)
    )  # (address, port, …): typed str | int


def _parts(url: str, field: str) -> SplitResult:
    """`url` split if it is an http(s) URL with a host and no credentials; a UserError otherwise."""
    if len(url) > URL_MAX:
        raise UserError(
            f"At most {URL_MAX} characters.", field=field, code=AlertErrorCode.INVALID_URL
        )
    try:
        parts = urlsplit(url)
        _ = parts.port  # a port that is not a number or out of range raises here
    except ValueError as error:
        raise UserError(
            f"Not a URL: {error}.", field=field, code=AlertErrorCode.INVALID_URL
        ) from error
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UserError(
            "Give an http:// or https:// URL with a host.",
            field=field,
            code=AlertErrorCode.INVALID_URL,
        )
    if parts.username or parts.password:
        raise UserError(
            "A webhook URL carries no credentials.", field=field, code=AlertErrorCode.INVALID_URL
        )
    return parts


def _port(parts: SplitResult) -> int:
    return parts.port or (443 if parts.scheme == "https" else 80)


def _addresses(parts: SplitResult, field: str) -> list[str]:
    """The host's addresses from one lookup; a UserError if there are none or (unless private
    addresses are allowed) any of them is private."""
    try:
        found = resolve(parts.hostname or "", _port(parts))
    except (OSError, UnicodeError) as error:  # socket.gaierror is an OSError
        raise UserError(
            f"The host {parts.hostname!r} cannot be resolved.",
            field=field,
            code=AlertErrorCode.INVALID_URL,
        ) from error
    if not settings.ALERT_WEBHOOK_ALLOW_PRIVATE and any(_is_private(address) for address in found):
        raise UserError(
            "Webhooks cannot be sent to private, loopback or reserved addresses.",
            field=field,
            code=AlertErrorCode.PRIVATE_ADDRESS,
        )
    return found


def check_url(url: str, *, field: str = "webhookUrl") -> str:
    """`url`, stripped, if a webhook may be sent there; a UserError otherwise."""
    url = (url or "").strip()
    parts = _parts(url, field)
    if not settings.ALERT_WEBHOOK_ALLOW_PRIVATE:  # when allowed, a host need not resolve yet
        _addresses(parts, field)
    return url


@dataclass(frozen=True)
class Outcome:
    ok: bool
    status_code: int | None
    error: str


def post(
    url: str,
    body: str,
    *,
    secret: str,
    delivery_id: str = "",
    context: ssl.SSLContext | None = None,
) -> Outcome:
    """One signed POST of `body` (JSON), with `delivery_id` in DELIVERY_HEADER if given: its
    outcome, never an exception.

    `context` verifies an https server (by default, against the system's trusted certificates)."""
    outside_transactions("Alert webhook POST")  # its name lookup too
    try:
        parts = _parts((url or "").strip(), "url")
        addresses = _addresses(parts, "url")
    except UserError as error:
        return Outcome(False, None, error.message)
    connection = pinned.connection(
        parts.scheme,
        parts.hostname or "",
        _port(parts),
        addresses,
        timeout=TIMEOUT_SECONDS,
        context=context,
    )
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    try:
        # http.client follows no redirect: a 3xx is an answer like any other failure.
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "shop-analytics-webhooks/1",
            EVENT_HEADER: EVENT,
            SIGNATURE_HEADER: signature_header(secret, body),
        }
        if delivery_id:
            headers[DELIVERY_HEADER] = delivery_id
        connection.request("POST", path, body=body.encode(), headers=headers)
        status = connection.getresponse().status
    except (
        OSError,
        ValueError,
        http.client.HTTPException,
    ) as error:  # refused, timed out, TLS, bad answer
        return Outcome(False, None, str(error)[:500] or type(error).__name__)
    finally:
        connection.close()
    if 200 <= status < 300:
        return Outcome(True, status, "")
    return Outcome(False, status, f"HTTP {status}")
