"""Stripe webhook throughput and exactly-once: signed events delivered concurrently, with
duplicates and out-of-order failures, to `POST /webhooks/stripe/` on a tenant host, against plain
requests to /healthz through the same path, measured in the same run.

    make bench NAME=webhooks            (ORDERS=300 CONCURRENCY=16 by default)

The bench provisions a tenant bench-webhooks, sets its webhook signing secret through
apps.payments.services.update_settings, places ORDERS orders through the order services and gives
each a pending Stripe payment (ORM rows: creating intents needs a Stripe server). It then builds
one `payment_intent.succeeded` event per payment and, for every third payment, a
`payment_intent.payment_failed` that Stripe created before the success (so when it lands after
it, it is out of order and must change nothing). Every event is delivered 2 or 3 times, each
delivery signed with Stripe's scheme (`t=<ts>,v1=<hex HMAC-SHA256(secret, "t.body")>`), and the
deliveries are shuffled with a fixed seed, those of one event in five kept back to back (a retry
racing the first delivery).

Deliveries go through `config.asgi.application`, the object uvicorn serves, in-process with
httpx's ASGITransport, at most CONCURRENCY in flight: Django runs each request's sync view in a
thread of its own (ThreadSensitiveContext), with its own database connection, so duplicates of
one event do race each other in PostgreSQL. The baseline is the same number of requests to
/healthz at the same concurrency through the same ASGI path (no tenant, no database).

Connections: Django opens one per request (CONN_MAX_AGE=0, the deployment's default). By default
(POOL=pgbouncer) the bench puts a PgBouncer of its own in front of DATABASE_URL, in session mode
with at most 20 server connections, as production runs (config/devserver/pgbouncer.py): a
delivery's connection is then a client connection to PgBouncer, not a new PostgreSQL backend.
POOL=none connects straight to PostgreSQL (a backend started per delivery). The SQL statements
of the deliveries are counted with an execute wrapper on every connection (`delivery_queries`:
a delivery's own, the tenant lookup and search_path changes of the middleware included).

Afterwards the database must say: every payment succeeded and its order is paid, each event id
is stored once, and no event's effect was applied twice (`applied_twice_count`: events with more
than one stored row, more than one first-delivery answer, more than one `paid` order event for
their order or more than one audited status change of their payment to their target). It also
counts the succeeded payments whose method type is not the one that paid (`method_type_wrong_count`:
the failed try used a bank debit, the success a card; a late failure must not relabel the
payment). The tenant is dropped at the end. Last line: one JSON object.
"""

from __future__ import annotations

import asyncio
import collections
import hashlib
import hmac
import itertools
import json
import os
import random
import sys
import time
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
os.environ.setdefault("SECRET_KEY", "bench-only-secret-key-0123456789abcdefghijklmnopqrstuvwxyz")
os.environ.setdefault("LOG_LEVEL", "WARNING")  # no access line per request
# The webhook secret is stored encrypted (apps.common.crypto); a bench-only key when none is set.
os.environ.setdefault("FIELD_ENCRYPTION_KEY", "YmVuY2gtb25seS1maWVsZC1rZXktMDEyMzQ1Njc4OWE=")
# CONN_MAX_AGE stays at the deployment's default (0): under ASGI each request runs in a thread of
# its own, so a persistent connection is never reused and, with 16 requests in flight, the
# abandoned ones pile up until PostgreSQL refuses clients ("too many clients already").
POOL = os.environ.get("POOL", "pgbouncer")
if POOL not in ("pgbouncer", "none"):
    sys.exit(f"POOL={POOL!r}: pgbouncer or none")


def _start_pool():
    """A PgBouncer in front of DATABASE_URL, which then points at it (before Django reads it)."""
    from config.devserver.pgbouncer import EmbeddedPgBouncer

    root = Path(__file__).resolve().parents[1]
    pool = EmbeddedPgBouncer(
        root / ".data" / "bench-webhooks-pgbouncer", os.environ["DATABASE_URL"]
    )
    os.environ["DATABASE_URL"] = pool.start()
    return pool


pool = _start_pool() if POOL == "pgbouncer" else None

import django  # noqa: E402  (after the pool, whose address Django reads)

django.setup()

import httpx  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402
from django.db.backends.signals import connection_created  # noqa: E402
from django.db.models import Count  # noqa: E402
from django_tenants.utils import tenant_context  # noqa: E402

from apps.accounts.authentication import Principal  # noqa: E402
from apps.accounts.models import User  # noqa: E402
from apps.audit.models import AuditEntry  # noqa: E402
from apps.catalog.models import Product, Variant  # noqa: E402
from apps.orders import services as order_services  # noqa: E402
from apps.orders.models import Order, OrderEvent, OrderStatus  # noqa: E402
from apps.payments import services as payment_services  # noqa: E402
from apps.payments.gateway import minor_units  # noqa: E402
from apps.payments.models import Payment, PaymentStatus, Provider, WebhookEvent  # noqa: E402
from apps.provisioning.services import provision_tenant  # noqa: E402
from tenants.models import Tenant  # noqa: E402

SLUG = "bench-webhooks"
OWNER = f"o@{SLUG}.test"
PASSWORD = "bench-Pass-123"
WEBHOOK_SECRET = "whsec_bench_" + "0123456789abcdef" * 2
ORDERS = int(os.environ.get("ORDERS", "300"))
CONCURRENCY = int(os.environ.get("CONCURRENCY", "16"))
FAILURE_EVERY = 3  # one payment in three also gets a (late) payment_failed
BURST_EVERY = 5  # one event in five has its deliveries sent back to back
SEED = 42
# The failed try used a bank debit, the success a card: a late failure must not relabel the payment.
FAILED_METHOD, PAID_METHOD = "sepa_debit", "card"
WARMUP = 32


class ConnectionCounter:
    """Counts the database connections opened and the SQL statements run on them, whichever
    thread opens them."""

    def __init__(self) -> None:
        self.count = 0
        self.statements = 0

    def __call__(self, sender, connection, **kwargs) -> None:
        self.count += 1
        connection.execute_wrappers.append(self.execute)

    def execute(self, execute, sql, params, many, context):
        self.statements += 1
        return execute(sql, params, many, context)


def _drop() -> None:
    connection.set_schema_to_public()
    for tenant in Tenant.objects.filter(slug=SLUG):
        tenant.delete(force_drop=True)
    User.objects.filter(email=OWNER).delete()


def _seed(tenant: Tenant) -> list[Payment]:
    """The webhook secret (through the service), ORDERS pending orders (through the order
    services) and a pending Stripe payment for each."""
    with tenant_context(tenant):
        owner = Principal(
            tenant=tenant, user=User.objects.get(email=OWNER), role="owner", via="jwt"
        )
        payment_services.update_settings(actor=owner, stripe_webhook_secret=WEBHOOK_SECRET)
        product = Product.objects.create(
            name="Bench product", slug="bench-product", status=Product.Status.ACTIVE
        )
        variants = [
            Variant.objects.create(
                product=product,
                sku=f"BENCH-{n}",
                name=f"Size {n}",
                price=Decimal(price),
                stock=ORDERS * 3,
            )
            for n, price in enumerate(("19.90", "42.00", "7.25"))
        ]
        orders = [
            order_services.create_order(
                actor=owner,
                tenant=tenant,
                email=f"buyer{index % 50}@bench-webhooks.test",
                lines=[order_services.LineRequest(variants[index % 3].pk, 1 + index % 2)],
            )
            for index in range(ORDERS)
        ]
        return Payment.objects.bulk_create(
            Payment(
                order=order,
                provider=Provider.STRIPE,
                stripe_id=f"pi_bench_{order.pk:06d}",
                amount=order.total,
                currency=order.currency,
                attempt=1,
            )
            for order in orders
        )


def _sign(body: bytes, timestamp: int) -> str:
    digest = hmac.new(
        WEBHOOK_SECRET.encode(), f"{timestamp}.".encode() + body, hashlib.sha256
    ).hexdigest()
    return f"t={timestamp},v1={digest}"


def _events(
    payments: list[Payment], schema: str
) -> tuple[dict[str, dict], list[tuple[str, bytes, str]]]:
    """({event id: event}, shuffled deliveries (event id, body, Stripe-Signature))."""
    rng = random.Random(SEED)
    now = int(time.time())
    events: dict[str, dict] = {}
    for index, payment in enumerate(payments):
        intent = {
            "id": payment.stripe_id,
            "object": "payment_intent",
            "amount": minor_units(payment.amount, payment.currency),
            "currency": payment.currency.lower(),
            "metadata": {"tenant": schema, "order_id": str(payment.order_id), "attempt": "1"},
        }
        if (
            index % FAILURE_EVERY == 0
        ):  # a declined try Stripe reported first; delivered late, or not
            events[f"evt_bench_failed_{payment.pk:06d}"] = {
                "type": "payment_intent.payment_failed",
                "created": now - 60,
                "object": {
                    **intent,
                    "status": "requires_payment_method",
                    "last_payment_error": {
                        "code": "card_declined",
                        "decline_code": "insufficient_funds",
                        "message": "Your card has insufficient funds.",
                        "payment_method": {
                            "id": f"pm_bench_debit_{payment.pk}",
                            "type": FAILED_METHOD,
                        },
                    },
                },
            }
        events[f"evt_bench_succeeded_{payment.pk:06d}"] = {
            "type": "payment_intent.succeeded",
            "created": now - 30,
            "object": {
                **intent,
                "status": "succeeded",
                "payment_method": {"id": f"pm_bench_card_{payment.pk}", "type": PAID_METHOD},
            },
        }
    units: list[list[tuple[str, bytes, str]]] = []  # shuffled as units: a burst stays together
    for index, (event_id, event) in enumerate(events.items()):
        body = json.dumps(
            {
                "id": event_id,
                "object": "event",
                "api_version": "2024-06-20",
                "type": event["type"],
                "created": event["created"],
                "livemode": False,
                "data": {"object": event["object"]},
            },
            separators=(",", ":"),
        ).encode()
        # Each delivery signed afresh, as Stripe does.
        copies = [
            (event_id, body, _sign(body, now - attempt)) for attempt in range(rng.choice((2, 3)))
        ]
        if (
            index % BURST_EVERY == 0
        ):  # a retry while the first delivery is still running: in flight together
            units.append(copies)
        else:
            units.extend([copy] for copy in copies)
    rng.shuffle(units)
    return events, [delivery for unit in units for delivery in unit]


async def _deliver(
    host: str, deliveries: list[tuple[str, bytes, str]], counter: ConnectionCounter
) -> dict[str, object]:
    from config.asgi import application

    transport = httpx.ASGITransport(app=application)
    async with httpx.AsyncClient(
        transport=transport, base_url=f"http://{host}", timeout=120
    ) as client:

        async def run(calls) -> tuple[float, list]:
            gate = asyncio.Semaphore(CONCURRENCY)

            async def bounded(call):
                async with gate:
                    return await call()

            started = time.perf_counter()
            results = await asyncio.gather(*(bounded(call) for call in calls))
            return time.perf_counter() - started, results

        def healthz():
            return client.get("/healthz")  # a POST is refused by the CSRF middleware (403)

        def webhook(event_id: str, body: bytes, signature: str):
            async def call():
                response = await client.post(
                    "/webhooks/stripe/",
                    content=body,
                    headers={"Content-Type": "application/json", "Stripe-Signature": signature},
                )
                return event_id, response.status_code, response.text

            return call

        # Warm-up: every module imported and every middleware built, for both paths. A webhook
        # with a wrong signature goes through the tenant lookup and the settings read, writes nothing.
        await run([healthz] * WARMUP)
        refused = await client.post(
            "/webhooks/stripe/",
            content=b"{}",
            headers={"Content-Type": "application/json", "Stripe-Signature": "t=1,v1=00"},
        )
        assert refused.status_code == 400, (refused.status_code, refused.text[:300])

        baseline_s, answers = await run([healthz] * len(deliveries))
        baseline_statuses = collections.Counter(response.status_code for response in answers)
        before = (counter.count, counter.statements)
        webhooks_s, results = await run([webhook(*delivery) for delivery in deliveries])
    return {
        "baseline_s": baseline_s,
        "baseline_statuses": baseline_statuses,
        "webhooks_s": webhooks_s,
        "results": results,
        "webhook_connections": counter.count - before[0],
        "webhook_statements": counter.statements - before[1],
    }


def _verify(
    tenant: Tenant, events: dict[str, dict], results: list[tuple[str, int, str]]
) -> dict[str, object]:
    """What the database and the answers say about exactly-once."""
    twice: dict[str, str] = {}  # event id: the first reason found
    first_answers = collections.Counter()
    for event_id, status, text in results:
        if status == 200 and json.loads(text).get("duplicate") is False:
            first_answers[event_id] += 1
    for event_id, count in first_answers.items():
        if count > 1:
            twice.setdefault(event_id, f"{count} deliveries answered duplicate=false")
    with tenant_context(tenant):
        payments = {p.stripe_id: p for p in Payment.objects.select_related("order")}
        not_succeeded = sum(p.status != PaymentStatus.SUCCEEDED for p in payments.values())
        not_paid = sum(p.order.status != OrderStatus.PAID for p in payments.values())
        wrong_method = sum(p.method_type != PAID_METHOD for p in payments.values())
        unpaid_orders = Order.objects.exclude(status=OrderStatus.PAID).count()
        stored = dict(WebhookEvent.objects.values_list("event_id").annotate(n=Count("id")))
        outcomes = collections.Counter(WebhookEvent.objects.values_list("type", "outcome"))
        paid_events = dict(
            OrderEvent.objects.filter(to_status=OrderStatus.PAID)
            .values_list("order_id")
            .annotate(n=Count("id"))
        )
        status_audits = collections.Counter(
            (int(object_id), changes["status"][1])
            for object_id, changes in AuditEntry.objects.filter(
                action="payment.update_status"
            ).values_list("object_id", "changes")
        )
    for event_id, count in stored.items():
        if count > 1:
            twice.setdefault(event_id, f"stored {count} times")
    for event_id, event in events.items():
        payment = payments[event["object"]["id"]]
        target = "succeeded" if event["type"] == "payment_intent.succeeded" else "failed"
        if status_audits[(payment.pk, target)] > 1:
            twice.setdefault(
                event_id,
                f"payment {payment.pk} moved to {target} {status_audits[(payment.pk, target)]} times",
            )
        if target == "succeeded" and paid_events.get(payment.order_id, 0) > 1:
            twice.setdefault(
                event_id, f"order {payment.order_id} paid {paid_events[payment.order_id]} times"
            )
    return {
        "twice": twice,
        "not_succeeded": not_succeeded,
        "not_paid": max(not_paid, unpaid_orders),
        "wrong_method": wrong_method,
        "missing": sorted(set(events) - set(stored)),
        "unexpected": sorted(set(stored) - set(events)),
        "outcomes": outcomes,
        "unanswered_first": sorted(set(events) - set(first_answers)),
    }


def main() -> None:
    try:
        _main()
    finally:
        connection.close()
        if pool is not None:
            pool.stop()


def _main() -> None:
    call_command("setup_platform", verbosity=0)  # every schema current, the template included
    _drop()
    counter = ConnectionCounter()
    try:
        tenant = provision_tenant(
            name="Bench webhooks", slug=SLUG, owner_email=OWNER, owner_password=PASSWORD
        )
        started = time.perf_counter()
        payments = _seed(tenant)
        seed_s = time.perf_counter() - started
        events, deliveries = _events(payments, tenant.schema_name)
        host = tenant.domains.get().domain
        connection.close()  # the requests open their own connections, in asgiref's threads
        connection_created.connect(counter, weak=False)
        try:
            figures = asyncio.run(_deliver(host, deliveries, counter))
        finally:
            connection_created.disconnect(counter)
        check = _verify(tenant, events, figures["results"])
    finally:
        _drop()

    results = figures["results"]
    statuses = collections.Counter(status for _, status, _ in results)
    failed_answers = [
        (event_id, status, text[:200]) for event_id, status, text in results if status != 200
    ]
    position: dict[str, int] = {}
    for index, (event_id, _, _) in enumerate(deliveries):
        position.setdefault(event_id, index)
    late_failures = sum(
        1
        for event_id in events
        if event_id.startswith("evt_bench_failed_")
        and position[event_id] > position[event_id.replace("failed", "succeeded")]
    )
    events_per_s = len(events) / figures["webhooks_s"]
    deliveries_per_s = len(deliveries) / figures["webhooks_s"]
    baseline_per_s = len(deliveries) / figures["baseline_s"]
    failures = sum(1 for event_id in events if event_id.startswith("evt_bench_failed_"))
    spots = collections.defaultdict(list)
    for index, (event_id, _, _) in enumerate(deliveries):
        spots[event_id].append(index)
    # Deliveries of one event less than CONCURRENCY apart may be in flight together.
    racing = sum(
        1
        for indexes in spots.values()
        if min(b - a for a, b in itertools.pairwise(indexes)) < CONCURRENCY
    )

    print(f"seeded {len(payments)} orders with a pending Stripe payment in {seed_s:.1f} s")
    print(
        f"{len(events)} events ({len(payments)} succeeded, {failures} payment_failed, {late_failures} of them "
        f"first delivered after their success), {len(deliveries)} signed deliveries, shuffled (seed {SEED}), "
        f"{CONCURRENCY} in flight; {racing} events have two deliveries less than {CONCURRENCY} apart"
    )
    print(
        f"webhooks: {figures['webhooks_s']:.2f} s, {events_per_s:.1f} events/s, {deliveries_per_s:.1f} deliveries/s,"
        f" answers {dict(statuses)}"
    )
    print(
        f"baseline: {len(deliveries)} GET /healthz in {figures['baseline_s']:.2f} s, {baseline_per_s:.1f} requests/s,"
        f" answers {dict(figures['baseline_statuses'])}; webhooks deliver at "
        f"{deliveries_per_s / baseline_per_s:.2f} of the baseline's rate"
    )
    print(
        f"webhook deliveries opened {figures['webhook_connections']} database connections and ran "
        f"{figures['webhook_statements']} SQL statements ({figures['webhook_statements'] / len(deliveries):.1f} "
        f"a delivery); the warm-up and the baseline opened {counter.count - figures['webhook_connections']}; "
        + (
            f"connections to PgBouncer ({pool.mode} pooling, at most {pool.pool_size} to PostgreSQL)"
            if pool is not None
            else "connections straight to PostgreSQL (POOL=none)"
        )
    )
    print(f"stored outcomes: {dict(sorted(check['outcomes'].items()))}")
    print(
        f"payments not succeeded: {check['not_succeeded']}, orders not paid: {check['not_paid']}, "
        f"events not stored: {len(check['missing'])}, unexpected events stored: {len(check['unexpected'])}, "
        f"events no delivery answered as first: {len(check['unanswered_first'])}"
    )
    print(
        f"succeeded payments whose method type is not the method that paid ({PAID_METHOD}): {check['wrong_method']}"
        + (
            f" (relabelled {FAILED_METHOD} by a payment_failed applied after the success)"
            if check["wrong_method"]
            else ""
        )
    )
    for event_id, status, text in failed_answers[:10]:
        print(f"    {status} for {event_id}: {text}")
    for event_id, reason in list(check["twice"].items())[:10]:
        print(f"    applied twice: {event_id}: {reason}")
    problems = [
        name
        for name, bad in (
            ("non-200 answers", failed_answers),
            ("effects applied twice", check["twice"]),
            ("payments not succeeded", check["not_succeeded"]),
            ("orders not paid", check["not_paid"]),
            ("events not stored", check["missing"]),
            ("unexpected events", check["unexpected"]),
            ("events no delivery answered as first", check["unanswered_first"]),
            ("baseline not 200", set(figures["baseline_statuses"]) - {200}),
        )
        if bad
    ]
    print(
        json.dumps(
            {
                "bench": "webhooks",
                "events_per_s": round(events_per_s, 1),
                "deliveries_per_s": round(deliveries_per_s, 1),
                "applied_twice_count": len(check["twice"]),
                "events_count": len(events),
                "deliveries_count": len(deliveries),
                "baseline_requests_per_s": round(baseline_per_s, 1),
                "deliveries_to_baseline_ratio": round(deliveries_per_s / baseline_per_s, 3),
                "delivery_queries": round(figures["webhook_statements"] / len(deliveries), 2),
                "delivery_connections": round(figures["webhook_connections"] / len(deliveries), 2),
                "pool": POOL,
                "non_200_count": len(failed_answers),
                "method_type_wrong_count": check["wrong_method"],
                "concurrency": CONCURRENCY,
            }
        )
    )
    if problems:
        print(f"webhooks bench: {', '.join(problems)}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
