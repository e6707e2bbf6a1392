"""The client side of bench/faults.py: GraphQL over HTTP to the real server, Stripe's webhook
deliveries, and a ledger of every operation the workload meant to do.

An operation is retried until it succeeds or its deadline passes, with the key that makes a retry
safe where the API has one (refundCreate's `requestKey`, an event's id; an order's PaymentIntent
is handed out again while it is open). Where the API has none (orderCreate, exportCreate), a retry
is what a client can do: a write that committed but whose answer was lost is then done twice,
which the checks find (each order carries its client key in `note`, so it is counted per key).

What counts as worth another attempt: no answer (connection refused or reset, timeout), any 5xx
(the documented 503 UNAVAILABLE among them), a THROTTLED answer, a top-level UNAVAILABLE or
INTERNAL error, and a userError saying the payment provider could not be reached. Anything else
ends the operation as refused (a bug in the bench or the API, reported as such)."""

from __future__ import annotations

import collections
import hashlib
import hmac
import json
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

RETRY_CODES = frozenset({"UNAVAILABLE", "INTERNAL", "THROTTLED"})


class Retry(Exception):
    """One attempt failed in a way worth trying again; the message is the reason, counted."""


class Refused(Exception):
    """An answer no retry changes (a userError or an error code the bench does not expect)."""


@dataclass
class Operation:
    """One thing the workload meant to happen, once."""

    kind: str  # order, payment, refund, export, webhook
    key: str
    intent: dict[str, Any]
    started: float
    attempts: int = 0
    attempt_started: float = 0.0  # when the attempt that succeeded (or the last one) began
    succeeded: float | None = None
    result: dict[str, Any] = field(default_factory=dict)
    failures: collections.Counter = field(default_factory=collections.Counter)
    refused: str = ""


class Ledger:
    """Every operation begun and every HTTP answer seen, shared by the workload's threads."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self.clock = clock
        self.operations: list[Operation] = []
        self.statuses: collections.Counter = (
            collections.Counter()
        )  # HTTP status, "transport" for none
        self.codes: collections.Counter = collections.Counter()  # top-level GraphQL error codes
        self._lock = threading.Lock()

    def begin(self, kind: str, key: str, **intent: Any) -> Operation:
        operation = Operation(kind=kind, key=key, intent=intent, started=self.clock())
        with self._lock:
            self.operations.append(operation)
        return operation

    def answered(self, status: int | str, codes: list[str] = ()) -> None:
        with self._lock:
            self.statuses[status] += 1
            self.codes.update(codes)

    def answers(self) -> tuple[dict[int | str, int], dict[str, int]]:
        """A copy of (HTTP answers by status, GraphQL error codes), taken while no thread adds."""
        with self._lock:
            return dict(self.statuses), dict(self.codes)

    def http_5xx(self) -> int:
        return sum(
            n
            for status, n in self.answers()[0].items()
            if isinstance(status, int) and status >= 500
        )

    def of(self, kind: str) -> list[Operation]:
        with self._lock:
            return [operation for operation in self.operations if operation.kind == kind]


def attempt_until(
    operation: Operation,
    attempt: Callable[[], dict[str, Any]],
    *,
    deadline: float,
    clock: Callable[[], float],
) -> bool:
    """`attempt()` until it returns (success: its dict goes into `result`), raises Refused, or
    `deadline` passes; backoff with jitter from 0.2 s, capped at 2 s. True on success. An
    error of the bench's own (a payload it did not expect) ends the operation as refused, with
    the error, instead of ending the thread that runs it."""
    delay = 0.2
    while True:
        operation.attempts += 1
        operation.attempt_started = clock()
        try:
            result = attempt()
        except Retry as why:
            operation.failures[str(why)] += 1
        except httpx.HTTPError as error:  # localstripe, asked directly by the bench
            operation.failures[f"localstripe: {type(error).__name__}"] += 1
        except Refused as why:
            operation.refused = str(why)
            return False
        except Exception as error:
            operation.refused = f"bench error: {error!r}"
            return False
        else:
            operation.result.update(result)
            operation.succeeded = clock()
            return True
        if clock() + delay > deadline:
            return False
        time.sleep(delay * random.uniform(0.5, 1.0))
        delay = min(delay * 2, 2.0)


class Api:
    """The tenant's GraphQL endpoint and webhook URL on the real server, over one HTTP client
    per thread (httpx clients are not shared between threads here)."""

    def __init__(
        self,
        *,
        port: int,
        host: str,
        token: str,
        webhook_secret: str,
        ledger: Ledger,
        timeout: float = 20,
    ) -> None:
        self.base, self.host, self.token, self.secret = (
            f"http://127.0.0.1:{port}",
            host,
            token,
            webhook_secret,
        )
        self.ledger, self.timeout = ledger, timeout
        self._local = threading.local()

    @property
    def http(self) -> httpx.Client:
        if not hasattr(self._local, "client"):
            self._local.client = httpx.Client(
                base_url=self.base,
                timeout=self.timeout,
                headers={
                    "Host": f"{self.host}:{self.base.rsplit(':', 1)[1]}",
                    "Authorization": f"Bearer {self.token}",
                },
            )
        return self._local.client

    def _post(self, path: str, **kwargs: Any) -> httpx.Response:
        try:
            response = self.http.post(path, **kwargs)
        except httpx.HTTPError as error:
            self.ledger.answered("transport")
            raise Retry(f"no answer ({type(error).__name__})") from error
        return response

    def graphql(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        """The answer's `data`; Retry or Refused as the module docstring says."""
        response = self._post("/graphql/", json={"query": query, "variables": variables or {}})
        try:
            body = response.json()
        except ValueError:
            body = {}
        codes = [
            str((error.get("extensions") or {}).get("code")) for error in body.get("errors") or []
        ]
        self.ledger.answered(response.status_code, codes)
        if (
            response.status_code >= 500
            or response.status_code == 429
            or RETRY_CODES.intersection(codes)
        ):
            raise Retry(f"HTTP {response.status_code} {','.join(codes)}".strip())
        if codes or not isinstance(body.get("data"), dict):
            raise Refused(f"HTTP {response.status_code} {codes}: {response.text[:300]}")
        return body["data"]

    def deliver(self, event: dict[str, Any]) -> dict[str, Any]:
        """One signed delivery of a Stripe event (Stripe's scheme: t=<ts>,v1=<HMAC-SHA256 of
        "t.body">, signed afresh each time, as Stripe does); the answer's JSON on a 2xx."""
        body = json.dumps(event, separators=(",", ":")).encode()
        stamp = int(time.time())
        digest = hmac.new(
            self.secret.encode(), f"{stamp}.".encode() + body, hashlib.sha256
        ).hexdigest()
        response = self._post(
            "/webhooks/stripe/",
            content=body,
            headers={
                "Content-Type": "application/json",
                "Stripe-Signature": f"t={stamp},v1={digest}",
            },
        )
        self.ledger.answered(response.status_code)
        if response.status_code >= 500:
            raise Retry(f"HTTP {response.status_code}")
        if response.status_code >= 300:
            raise Refused(f"HTTP {response.status_code}: {response.text[:300]}")
        return response.json()


def user_errors(payload: dict[str, Any]) -> None:
    """Raise for a payload's userErrors: Retry for the payment provider's (unreachable, or a
    request it refused while the bench's own state check says a retry can still succeed; the
    operation's deadline bounds them), Refused for the rest."""
    errors = payload.get("userErrors") or []
    if not errors:
        return
    summary = "; ".join(f"{e.get('code')}: {e.get('message')}" for e in errors)
    if all(str(e.get("code", "")).startswith("PROVIDER") for e in errors):
        raise Retry(f"userError {summary}")
    raise Refused(f"userErrors {summary}")


class LocalStripe:
    """The Stripe side as the bench sees it (localstripe's REST API, plain HTTP): what a buyer's
    browser does (payment methods), what a merchant does in the Stripe dashboard (a refund made
    there), the objects Stripe's webhooks carry, and what the checks count."""

    CARD = {
        "type": "card",
        "card[number]": "4242424242424242",
        "card[exp_month]": "12",
        "card[exp_year]": "2040",
        "card[cvc]": "123",
    }

    def __init__(self, base: str, secret_key: str) -> None:
        self._local = threading.local()
        self.base, self.secret_key = base, secret_key

    @property
    def http(self) -> httpx.Client:
        if not hasattr(self._local, "client"):
            self._local.client = httpx.Client(
                base_url=self.base, auth=(self.secret_key, ""), timeout=30
            )
        return self._local.client

    def _ask(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        response = self.http.request(method, path, **kwargs)
        response.raise_for_status()
        return response.json()

    def card(self) -> str:
        """A new card payment method (pm_…), as Stripe.js makes one in the buyer's browser."""
        return self._ask("POST", "/v1/payment_methods", data=self.CARD)["id"]

    def intent(self, intent_id: str) -> dict[str, Any]:
        return self._ask("GET", f"/v1/payment_intents/{intent_id}")

    def charge_of(self, intent_id: str) -> dict[str, Any]:
        """The intent's charge, with its refunds (what `charge.refunded` carries)."""
        latest = self.intent(intent_id)["latest_charge"]
        return self._ask(
            "GET", f"/v1/charges/{latest['id'] if isinstance(latest, dict) else latest}"
        )

    def refund(self, intent_id: str, units: int, metadata: dict[str, str]) -> dict[str, Any]:
        data = {
            "payment_intent": intent_id,
            "amount": str(units),
            **{f"metadata[{name}]": value for name, value in metadata.items()},
        }
        return self._ask("POST", "/v1/refunds", data=data)

    def _all(self, path: str, **params: str) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        while True:
            page = self._ask(
                "GET",
                path,
                params={
                    "limit": "100",
                    **params,
                    **({"starting_after": found[-1]["id"]} if found else {}),
                },
            )
            found += page["data"]
            if not page.get("has_more"):
                return found

    def intents(self) -> list[dict[str, Any]]:
        return self._all("/v1/payment_intents")

    def refunds_of(self, intent_id: str) -> list[dict[str, Any]]:
        return self._all("/v1/refunds", payment_intent=intent_id)


def event(kind: str, obj: dict[str, Any], event_id: str) -> dict[str, Any]:
    """A Stripe event as its webhook body carries it."""
    return {
        "id": event_id,
        "object": "event",
        "api_version": "2024-06-20",
        "type": kind,
        "created": int(time.time()),
        "livemode": False,
        "data": {"object": obj},
    }
