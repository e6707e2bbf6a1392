"""A Stripe that fails on cue: an HTTP proxy in front of localstripe for the fault tests (issue 15).

localstripe speaks Stripe's API but none of its failures, and it ignores `Idempotency-Key`
entirely, so a retry it receives does the work again where Stripe would replay its first answer.
The proxy adds both, per instance:

- **A fault script** the test sets: `fail_next(n, status=…)` answers the next n matching requests
  with Stripe's error (500 `api_error`, 429 `rate_limit`, …) without forwarding them;
  `time_out_next(n, after_forwarding=…)` keeps them unanswered until the client gives up, either
  before localstripe saw them or after it did the work (the nasty case: the money moved and the
  client never heard). Faults are used up in the order they were scripted; `method` and `path`
  narrow which requests one may take (see `Route`).
- **Stripe's idempotency (API v1)**: the first answer to a POST with an `Idempotency-Key` is saved
  (per secret key, as Stripe keys them per account) and replayed, same status and body, with
  `Idempotent-Replayed: true`, to every later POST with that key and the same endpoint and
  parameters; other parameters get Stripe's 400 `idempotency_error`; a key whose first request is
  still at localstripe gets 409 `idempotency_key_in_use` (the SDK retries 409). As Stripe saves
  a result only once an endpoint began executing, what the proxy answers itself (an injected
  error, a request timed out before forwarding) saves nothing, and neither does a refusal by
  localstripe (400, 401, 403, 404: it cannot tell a validation failure, which Stripe does not
  save, from a later one, so all count as validation). A card error (402) or a 5xx is saved.
- **A record**: `forwarded(method, path)` counts what reached localstripe, `exchanges` lists every
  request with what became of it, and `objects(resource, …)` lists localstripe's objects
  straight from it (neither counted nor faulted).

A threaded `http.server`: one thread per connection, each answer `Connection: close`, so a held
request never blocks another."""

from __future__ import annotations

import http.client
import json
import re
import secrets
import select
import socket
import threading
import urllib.parse
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx

HOLD_LIMIT_SECONDS = 60  # a held request is dropped by then even if its client is still waiting
UPSTREAM_TIMEOUT_SECONDS = 30

# Stripe's own wording and types (docs.stripe.com/error-codes, /rate-limits, /idempotency).
ERRORS: dict[int, dict[str, str]] = {
    429: {
        "type": "invalid_request_error",
        "code": "rate_limit",
        "message": (
            "Too many requests hit the API too quickly. We recommend an exponential backoff of your requests."
        ),
    },
    500: {
        "type": "api_error",
        "message": "An unknown error occurred (injected by the fault proxy).",
    },
    502: {"type": "api_error", "message": "Bad gateway (injected by the fault proxy)."},
    503: {"type": "api_error", "message": "Service unavailable (injected by the fault proxy)."},
}
# Request headers about this hop, not the request: not passed on (the proxy frames its own).
_HOP_HEADERS = frozenset(
    {
        "host",
        "connection",
        "keep-alive",
        "content-length",
        "transfer-encoding",
        "accept-encoding",
        "proxy-connection",
        "te",
        "upgrade",
    }
)
_KEPT_ANSWER_HEADERS = ("Content-Type",)
_NOT_SAVED = frozenset(
    {400, 401, 403, 404}
)  # refused before the endpoint ran (see the module's doc)
_OTHER_PARAMETERS = (
    "Keys for idempotent requests can only be used with the same parameters they were first used "
    "with. Try using a key other than '{key}' if you meant to execute a different request."
)
_IN_USE = (
    "There is currently another in-progress request using this Idempotent Key (that probably means you "
    "submitted twice, and the other request is still going through): {key}. Please try again later."
)


@dataclass(frozen=True)
class Route:
    """Which requests something applies to: `method` (any when None) and `path`, a path whose
    `*` stands for one segment (`/v1/payment_intents/*/cancel`), matching itself and everything
    under it (`/v1/refunds` takes `/v1/refunds/re_1`), or only itself when it ends with `$`."""

    method: str | None = None
    path: str | None = None

    def matches(self, method: str, path: str) -> bool:
        if self.method is not None and self.method.upper() != method.upper():
            return False
        if self.path is None:
            return True
        exact = self.path.endswith("$")
        pattern = re.escape(self.path.rstrip("$")).replace(r"\*", "[^/]+")
        return re.fullmatch(pattern if exact else pattern + "(/.*)?", path) is not None


@dataclass
class Fault:
    """One scripted misbehaviour, for the next `remaining` requests its route takes."""

    kind: str  # "fail" | "time out"
    route: Route
    remaining: int
    status: int = 500
    after_forwarding: bool = False


@dataclass(frozen=True)
class Exchange:
    """One request the proxy received and what became of it. `outcome`: "forwarded" (answered by
    localstripe), "replayed" (a saved idempotent answer), "failed" (an injected error), "timed
    out" (held, never answered; `forwarded` says whether localstripe did the work),
    "idempotency error" (400, other parameters), "in use" (409), "upstream error" (502)."""

    method: str
    path: str
    idempotency_key: str | None
    outcome: str
    status: int | None  # what the client got; None when it got nothing
    forwarded: bool


@dataclass
class _Saved:
    fingerprint: tuple
    status: int = 0
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    done: bool = False


@dataclass
class _Answer:
    status: int
    headers: dict[str, str]
    body: bytes


def stripe_error(status: int, **error: str) -> _Answer:
    """An answer shaped as Stripe shapes its errors: `{"error": {"type", "message", "code"?}}`.
    A rate limit also names its limiter in `Stripe-Rate-Limited-Reason`, as Stripe's does
    (it sends no `Retry-After`, and no `Stripe-Should-Retry`, so the SDK does not retry it)."""
    body = {"error": {**ERRORS.get(status, ERRORS[500]), **error}}
    headers = {"Content-Type": "application/json", "Request-Id": f"req_{secrets.token_hex(8)}"}
    if status == 429:
        headers["Stripe-Rate-Limited-Reason"] = "global-rate"
    return _Answer(status, headers, json.dumps(body).encode())


class StripeProxy:
    """The proxy for one test: `start()` it (or use it as a context manager), point
    STRIPE_API_BASE at `url`, script faults, read the record; `stop()` releases held requests."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream.rstrip("/")
        self._lock = threading.Lock()
        self._faults: deque[Fault] = deque()
        self._saved: dict[tuple[str, str], _Saved] = {}
        self._exchanges: list[Exchange] = []
        self._released = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # --- life -----------------------------------------------------------------------------------

    def start(self) -> StripeProxy:
        handler = type("Handler", (_Handler,), {"proxy": self})
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="stripe-proxy",
            daemon=True,
        )  # a short poll: stop() is quick
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and let every held request go unanswered (for good: no restart)."""
        self._released.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> StripeProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        assert self._server is not None, "start() the proxy first"
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    # --- the script -----------------------------------------------------------------------------

    def fail_next(
        self, n: int = 1, *, status: int = 500, method: str | None = None, path: str | None = None
    ) -> None:
        """The next `n` requests `method`/`path` take are answered `status` with Stripe's error
        body for it, and never reach localstripe."""
        self._script(Fault("fail", Route(method, path), n, status=status))

    def time_out_next(
        self,
        n: int = 1,
        *,
        after_forwarding: bool = False,
        method: str | None = None,
        path: str | None = None,
    ) -> None:
        """The next `n` requests `method`/`path` take get no answer at all until their client
        hangs up (its timeout) or `HOLD_LIMIT_SECONDS` pass. `after_forwarding`: localstripe
        did the work first (and an idempotent POST's answer is saved); else it never saw it."""
        self._script(Fault("time out", Route(method, path), n, after_forwarding=after_forwarding))

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    def faults_left(self) -> int:
        """Requests the script would still misanswer."""
        with self._lock:
            return sum(fault.remaining for fault in self._faults)

    def _script(self, fault: Fault) -> None:
        if fault.remaining < 1:
            raise ValueError("a fault applies to one request or more")
        with self._lock:
            self._faults.append(fault)

    def _take_fault(self, method: str, path: str) -> Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.route.matches(method, path):
                    fault.remaining -= 1
                    if fault.remaining == 0:
                        self._faults.remove(fault)
                    return fault
        return None

    # --- the record -----------------------------------------------------------------------------

    @property
    def exchanges(self) -> list[Exchange]:
        with self._lock:
            return list(self._exchanges)

    def forwarded(self, method: str | None = None, path: str | None = None) -> int:
        """How many requests `method`/`path` take (see `Route`) reached localstripe."""
        route = Route(method, path)
        return sum(1 for e in self.exchanges if e.forwarded and route.matches(e.method, e.path))

    def objects(
        self, resource: str, *, metadata: dict[str, str] | None = None, **fields: Any
    ) -> list[dict]:
        """localstripe's `resource` objects (`payment_intents`, `refunds`, …), asked of it
        directly, page by page: those whose fields equal `fields` and whose metadata holds
        `metadata`. localstripe has one store for every key, so narrow by metadata or ids."""
        found: list[dict] = []
        params: dict[str, Any] = {"limit": 100}
        while True:
            answer = httpx.get(
                f"{self.upstream}/v1/{resource}",
                params=params,
                auth=("sk_test_fault_proxy", ""),
                timeout=UPSTREAM_TIMEOUT_SECONDS,
            )
            answer.raise_for_status()
            page = answer.json()
            for item in page["data"]:
                if all(item.get(k) == v for k, v in fields.items()) and all(
                    (item.get("metadata") or {}).get(k) == v for k, v in (metadata or {}).items()
                ):
                    found.append(item)
            if not page.get("has_more") or not page["data"]:
                return found
            params["starting_after"] = page["data"][-1]["id"]

    def _note(self, exchange: Exchange) -> None:
        with self._lock:
            self._exchanges.append(exchange)

    # --- one request ----------------------------------------------------------------------------

    def handle(
        self,
        method: str,
        path: str,
        query: str,
        headers: dict[str, str],
        body: bytes,
        client: socket.socket,
    ) -> _Answer | None:
        """What the client gets (None: nothing), after the script and the idempotency layer."""
        key = headers.get("idempotency-key") if method == "POST" else None
        fault = self._take_fault(method, path)

        def note(outcome: str, answer: _Answer | None, forwarded: bool) -> _Answer | None:
            self._note(
                Exchange(method, path, key, outcome, answer.status if answer else None, forwarded)
            )
            return answer

        if fault is not None and fault.kind == "fail":
            return note("failed", stripe_error(fault.status), False)
        if fault is not None and not fault.after_forwarding:
            note("timed out", None, False)  # noted first: the client may retry before the hold ends
            return self._hold(client)
        outcome, answer, forwarded = self._idempotent(method, path, query, headers, body, key)
        if fault is not None:  # a time-out after forwarding: the work is done, the answer lost
            note("timed out", None, forwarded)
            return self._hold(client)
        return note(outcome, answer, forwarded)

    def _idempotent(
        self,
        method: str,
        path: str,
        query: str,
        headers: dict[str, str],
        body: bytes,
        key: str | None,
    ) -> tuple[str, _Answer, bool]:
        if key is None:
            return self._forward_once(method, path, query, headers, body)
        scope = (headers.get("authorization", ""), key)
        parameters = urllib.parse.parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True)
        fingerprint = (
            method,
            path,
            query,
            tuple(sorted(parameters)),
        )  # the order of fields is no difference
        with self._lock:
            saved = self._saved.get(scope)
            if saved is None:
                saved = self._saved[scope] = _Saved(fingerprint)  # this request is the key's first
            elif saved.fingerprint != fingerprint:
                error = stripe_error(
                    400, type="idempotency_error", message=_OTHER_PARAMETERS.format(key=key)
                )
                return "idempotency error", error, False
            elif not saved.done:
                error = stripe_error(
                    409,
                    type="idempotency_error",
                    code="idempotency_key_in_use",
                    message=_IN_USE.format(key=key),
                )
                return "in use", error, False
            else:
                replay = _Answer(
                    saved.status, {**saved.headers, "Idempotent-Replayed": "true"}, saved.body
                )
                return "replayed", replay, False
        outcome, answer, forwarded = self._forward_once(method, path, query, headers, body)
        with self._lock:
            if forwarded and answer.status not in _NOT_SAVED:
                saved.status, saved.headers, saved.body, saved.done = (
                    answer.status,
                    answer.headers,
                    answer.body,
                    True,
                )
            else:  # nothing began executing: the key stays free
                del self._saved[scope]
        return outcome, answer, forwarded

    def _forward_once(
        self, method: str, path: str, query: str, headers: dict[str, str], body: bytes
    ) -> tuple[str, _Answer, bool]:
        parsed = urllib.parse.urlsplit(self.upstream)
        connection = http.client.HTTPConnection(
            parsed.hostname, parsed.port, timeout=UPSTREAM_TIMEOUT_SECONDS
        )
        sent = {k: v for k, v in headers.items() if k.lower() not in _HOP_HEADERS}
        try:
            connection.request(
                method, path + (f"?{query}" if query else ""), body=body or None, headers=sent
            )
            response = connection.getresponse()
            answer = _Answer(
                response.status,
                {k: response.headers[k] for k in _KEPT_ANSWER_HEADERS if response.headers.get(k)},
                response.read(),
            )
        except OSError as error:
            return (
                "upstream error",
                stripe_error(502, message=f"localstripe did not answer: {error}"),
                False,
            )
        finally:
            connection.close()
        answer.headers["Request-Id"] = f"req_{secrets.token_hex(8)}"  # as Stripe's every answer has
        return "forwarded", answer, True

    def _hold(self, client: socket.socket) -> None:
        """Wait, answering nothing, until the client hangs up, the proxy stops, or the limit."""
        for _ in range(int(HOLD_LIMIT_SECONDS / 0.05)):
            if self._released.is_set() or _hung_up(client):
                return None
            self._released.wait(0.05)
        return None


def _hung_up(client: socket.socket) -> bool:
    try:
        readable, _, _ = select.select([client], [], [], 0)
        return bool(readable) and client.recv(1, socket.MSG_PEEK) == b""
    except OSError:
        return True


class _Handler(BaseHTTPRequestHandler):
    """One request: read it whole, let the proxy decide, write the answer (or nothing)."""

    proxy: StripeProxy
    protocol_version = "HTTP/1.0"  # one request per connection: a held one holds nobody else

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        split = urllib.parse.urlsplit(self.path)
        headers = {k.lower(): v for k, v in self.headers.items()}
        answer = self.proxy.handle(
            self.command, split.path, split.query, headers, body, self.connection
        )
        if answer is None:
            self.close_connection = True
            return
        try:
            self.send_response(answer.status)
            for name, value in answer.headers.items():
                self.send_header(name, value)
            if key := headers.get("idempotency-key"):
                self.send_header("Idempotency-Key", key)
            self.send_header("Content-Length", str(len(answer.body)))
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(answer.body)
        except OSError:  # the client gave up meanwhile
            self.close_connection = True

    do_GET = do_POST = do_DELETE = _serve

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the record (`exchanges`) says what happened."""
