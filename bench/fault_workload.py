"""The mixed workload of bench/faults.py, on threads of the bench process, every operation in the
ledger (bench/fault_client.py says how each is retried).

Shoppers (SHOPPERS threads) each repeat a chain: place an order (`orderCreate`, the client key in
`note`), pay it through Stripe (`paymentIntentCreate`, a card made at localstripe as Stripe.js
would, `paymentConfirm`), refund part of it once or twice (`refundCreate` with a `requestKey`,
amounts in cents), and now and then refund some more in the Stripe dashboard (a refund made at
localstripe, not through the API). Stripe's webhooks follow: `payment_intent.succeeded` for the
payment and `charge.refunded` for the charge with all its refunds (known ones change nothing; a
dashboard refund is recorded from it), each delivered until answered 2xx and then once more (a
replay, which must be answered as a duplicate). When a confirmation reached Stripe but not the
database, the shopper sends Stripe's `payment_intent.succeeded` itself before trying again, as
Stripe would.

An exporter keeps up to EXPORTS_IN_FLIGHT exports of the orders (CSV, XLSX or JSON) queued with
`exportCreate` and polls each (`node`) until it is DONE; one that FAILED is asked for
again, as its user would (the failed one is reported)."""

from __future__ import annotations

import itertools
import queue
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from decimal import ROUND_DOWN, Decimal
from typing import Any

from bench.fault_client import (
    Api,
    Ledger,
    LocalStripe,
    Operation,
    Refused,
    Retry,
    attempt_until,
    event,
    user_errors,
)

ERRORS = "userErrors { field message code }"
ORDER_CREATE = f"""mutation($input: OrderCreateInput!) {{ orderCreate(input: $input) {{
  order {{ id number total {{ amount }} }} {ERRORS} }} }}"""
ORDER_STATUS = "query($id: ID!) { node(id: $id) { ... on Order { status } } }"
INTENT = f"""mutation($order: ID!) {{ paymentIntentCreate(order: $order) {{
  payment {{ id stripeId status }} {ERRORS} }} }}"""
CONFIRM = f"""mutation($payment: ID!, $method: String!) {{ paymentConfirm(payment: $payment, paymentMethod: $method) {{
  payment {{ status }} {ERRORS} }} }}"""
REFUND = f"""mutation($input: RefundCreateInput!) {{ refundCreate(input: $input) {{
  refund {{ id amount {{ amount }} stripeRefund {{ stripeId amount {{ amount }} }} }} {ERRORS} }} }}"""
EXPORT_CREATE = f"""mutation($format: ExportFormat!) {{ exportCreate(kind: ORDERS, format: $format) {{
  export {{ id }} {ERRORS} }} }}"""
EXPORT_STATUS = "query($id: ID!) { node(id: $id) { ... on Export { status } } }"

SHOPPERS = 4
# Exports a killed worker held come back only after the visibility timeout: new ones keep being
# asked for meanwhile (up to this many waiting), so the new worker's first export shows recovery.
EXPORTS_IN_FLIGHT = 8
EXPORT_GAP_S = 3.0  # at most one new export this often
DASHBOARD_SHARE = 0.3  # chains that also refund in the Stripe dashboard
CENT = Decimal("0.01")


@dataclass(frozen=True)
class Shop:
    """What the workload needs of the bench's tenant."""

    slug: str
    schema: str
    variants: tuple[str, ...]  # global ids of variants with plenty of stock
    run: str  # this run's prefix of every client key and event id


def _share(total: Decimal, rng: random.Random, most: float) -> Decimal:
    """Between a cent and `most` of `total`, in cents."""
    return max(
        CENT, (total * Decimal(str(rng.uniform(0.01, most)))).quantize(CENT, rounding=ROUND_DOWN)
    )


class Workload:
    def __init__(
        self,
        *,
        api: Api,
        stripe: LocalStripe,
        ledger: Ledger,
        shop: Shop,
        clock: Callable[[], float],
        seed: int,
        op_deadline_s: float,
        say: Callable[[str], None],
    ) -> None:
        self.api, self.stripe, self.ledger, self.shop = api, stripe, ledger, shop
        self.clock, self.seed, self.op_deadline_s, self.say = clock, seed, op_deadline_s, say
        self.stop_new = threading.Event()
        self._events: queue.Queue = queue.Queue()
        self._serial = itertools.count()
        self._lock = threading.Lock()
        self._shoppers = [
            threading.Thread(target=self._shop_loop, args=(n,), name=f"shopper-{n}", daemon=True)
            for n in range(SHOPPERS)
        ]
        self._exporter = threading.Thread(target=self._export_loop, name="exporter", daemon=True)
        self._webhooks = threading.Thread(target=self._webhook_loop, name="webhooks", daemon=True)

    def start(self) -> None:
        for thread in (*self._shoppers, self._exporter, self._webhooks):
            thread.start()

    def wind_down(self) -> None:
        """No new chain or export; what is under way goes on to success or its deadline."""
        self.stop_new.set()

    def busy(self) -> bool:
        return any(
            thread.is_alive() for thread in (*self._shoppers, self._exporter, self._webhooks)
        )

    def _key(self, letter: str) -> str:
        with self._lock:
            return f"{self.shop.run}-{letter}{next(self._serial)}"

    def _run(self, operation: Operation, attempt: Callable[[], dict[str, Any]]) -> bool:
        return attempt_until(
            operation, attempt, deadline=operation.started + self.op_deadline_s, clock=self.clock
        )

    # --- shoppers ---------------------------------------------------------------------------

    def _shop_loop(self, index: int) -> None:
        rng = random.Random(f"{self.seed}:shopper:{index}")
        while not self.stop_new.is_set():
            try:
                self._chain(rng)
            except (
                Exception
            ) as error:  # the bench's own (localstripe asked directly): said, not fatal
                self.say(f"t={self.clock():6.1f} s  shopper {index}: {error!r}")
                time.sleep(1)

    def _chain(self, rng: random.Random) -> None:
        order = self._order(rng)
        payment = order and self._pay(order)
        if payment:
            total = Decimal(order.result["total"])
            for _ in range(rng.choice((1, 1, 2))):
                self._refund(order, payment, _share(total, rng, 0.3))
            dashboard = (
                self._dashboard_refund(payment, _share(total, rng, 0.2))
                if rng.random() < DASHBOARD_SHARE
                else None
            )
            intent_id = payment.result["intent"]
            self._events.put(
                (
                    event(
                        "payment_intent.succeeded", self.stripe.intent(intent_id), self._key("evt")
                    ),
                    {"expect": "stale", "intent": intent_id},
                )
            )
            self._events.put(
                (
                    event("charge.refunded", self.stripe.charge_of(intent_id), self._key("evt")),
                    {
                        "expect": "applied" if dashboard else "stale",
                        "intent": intent_id,
                        "dashboard_refund": dashboard,
                    },
                )
            )

    def _order(self, rng: random.Random) -> Operation | None:
        key = self._key("o")
        lines = [
            {"variant": variant, "quantity": rng.randint(1, 3)}
            for variant in rng.sample(self.shop.variants, rng.randint(1, 2))
        ]
        variables = {
            "input": {
                "lines": lines,
                "email": f"buyer{rng.randrange(200)}@{self.shop.slug}.test",
                "note": key,
            }
        }
        operation = self.ledger.begin("order", key)

        def attempt() -> dict[str, Any]:
            payload = self.api.graphql(ORDER_CREATE, variables)["orderCreate"]
            user_errors(payload)
            order = payload["order"]
            return {"id": order["id"], "number": order["number"], "total": order["total"]["amount"]}

        return operation if self._run(operation, attempt) else None

    def _pay(self, order: Operation) -> Operation | None:
        order_id = order.result["id"]
        operation = self.ledger.begin(
            "payment", order.key, order=order_id, amount=order.result["total"]
        )

        def attempt() -> dict[str, Any]:
            status = self.api.graphql(ORDER_STATUS, {"id": order_id})["node"]["status"]
            if (
                status == "PAID" and "intent" in operation.result
            ):  # an earlier attempt's answer was lost
                return {}
            payload = self.api.graphql(INTENT, {"order": order_id})["paymentIntentCreate"]
            user_errors(payload)
            payment = payload["payment"]
            operation.result.update(intent=payment["stripeId"], payment=payment["id"])
            if payment["status"] == "SUCCEEDED":
                return {}
            if self.stripe.intent(payment["stripeId"])["status"] == "succeeded":
                # Stripe took the money, the database never heard: Stripe's webhook tells it.
                self._webhook(
                    event(
                        "payment_intent.succeeded",
                        self.stripe.intent(payment["stripeId"]),
                        self._key("evt"),
                    ),
                    {"expect": "applied", "intent": payment["stripeId"]},
                )
                raise Retry("confirmed at Stripe, not in the database: webhook sent")
            payload = self.api.graphql(
                CONFIRM, {"payment": payment["id"], "method": self.stripe.card()}
            )["paymentConfirm"]
            user_errors(payload)
            if payload["payment"]["status"] != "SUCCEEDED":
                raise Retry(f"payment {payload['payment']['status']}")
            return {}

        return operation if self._run(operation, attempt) else None

    def _refund(self, order: Operation, payment: Operation, amount: Decimal) -> None:
        key = self._key("r")
        operation = self.ledger.begin(
            "refund",
            key,
            order=order.result["id"],
            intent=payment.result["intent"],
            amount=str(amount),
        )
        variables = {
            "input": {
                "order": order.result["id"],
                "amount": str(amount),
                "requestKey": key,
                "reason": "bench faults",
            }
        }

        def attempt() -> dict[str, Any]:
            payload = self.api.graphql(REFUND, variables)["refundCreate"]
            user_errors(payload)
            refund = payload["refund"]
            return {
                "id": refund["id"],
                "amount": refund["amount"]["amount"],
                "stripe_id": (refund.get("stripeRefund") or {}).get("stripeId"),
            }

        self._run(operation, attempt)

    def _dashboard_refund(self, payment: Operation, amount: Decimal) -> dict[str, Any]:
        """A refund made in the Stripe dashboard: only the webhook tells the shop."""
        made = self.stripe.refund(
            payment.result["intent"], int(amount / CENT), {"tenant": self.shop.schema}
        )
        return {"id": made["id"], "amount": str(amount)}

    # --- webhooks ---------------------------------------------------------------------------

    def _webhook_loop(self) -> None:
        """Deliver what the shoppers queue, until they are all done and the queue is empty."""
        while True:
            try:
                item = self._events.get(timeout=0.5)
            except queue.Empty:
                if self.stop_new.is_set() and not any(
                    thread.is_alive() for thread in self._shoppers
                ):
                    return
                continue
            self._webhook(*item)

    def _webhook(self, body: dict[str, Any], intent: dict[str, Any]) -> None:
        """Deliver until answered, then replay once: the replay must be answered as a duplicate."""
        operation = self.ledger.begin("webhook", body["id"], type=body["type"], **intent)
        if not self._run(operation, lambda: {"duplicate": self.api.deliver(body)["duplicate"]}):
            return
        replay = Operation("replay", body["id"], {}, self.clock())
        if attempt_until(
            replay,
            lambda: {"duplicate": self.api.deliver(body)["duplicate"]},
            deadline=operation.started + self.op_deadline_s,
            clock=self.clock,
        ):
            operation.result["replay_duplicate"] = replay.result["duplicate"]
        operation.failures.update({f"replay: {why}": n for why, n in replay.failures.items()})

    # --- exports ----------------------------------------------------------------------------

    def _export_loop(self) -> None:
        rng = random.Random(f"{self.seed}:exports")
        pending: list[Operation] = []
        next_at = 0.0
        while not (self.stop_new.is_set() and not pending):
            if (
                not self.stop_new.is_set()
                and len(pending) < EXPORTS_IN_FLIGHT
                and self.clock() >= next_at
            ):
                operation = self.ledger.begin(
                    "export", self._key("e"), format=rng.choice(("CSV", "XLSX", "JSON"))
                )
                if self._create_export(operation):
                    pending.append(operation)
                next_at = self.clock() + EXPORT_GAP_S
            for operation in list(pending):
                if self._poll_export(operation):
                    pending.remove(operation)
            time.sleep(0.5)

    def _create_export(self, operation: Operation) -> bool:
        """exportCreate until it answers; the operation succeeds later, when its export is DONE."""

        def attempt() -> dict[str, Any]:
            payload = self.api.graphql(EXPORT_CREATE, {"format": operation.intent["format"]})[
                "exportCreate"
            ]
            user_errors(payload)
            operation.result.setdefault("exports", []).append(payload["export"]["id"])
            return {"export": payload["export"]["id"]}

        created = self._run(operation, attempt)
        operation.result["created_at"], operation.succeeded = operation.succeeded, None
        return created

    def _poll_export(self, operation: Operation) -> bool:
        """One look at the operation's export; True when the operation is over (done, refused,
        or past its deadline)."""
        try:
            status = self.api.graphql(EXPORT_STATUS, {"id": operation.result["export"]})["node"][
                "status"
            ]
        except Retry as why:
            operation.failures[f"poll: {why}"] += 1
            return self.clock() > operation.started + self.op_deadline_s
        except Refused as why:
            operation.refused = f"poll: {why}"
            return True
        if status == "DONE":
            operation.succeeded = self.clock()
            return True
        if status == "FAILED":  # its user asks again
            operation.result.setdefault("failed", []).append(operation.result["export"])
            self.say(f"t={self.clock():6.1f} s  export {operation.key} FAILED; asking again")
            return not self._create_export(operation)
        return self.clock() > operation.started + self.op_deadline_s
