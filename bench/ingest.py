"""Event ingestion throughput: `POST /api/events` over real HTTP to uvicorn (a subprocess serving
config.asgi), against a raw COPY of the same rows into the same table, in the same run.

    make bench NAME=ingest            (EVENTS=500000 CONCURRENCY=4 WORKERS=2 by default)

The bench provisions a tenant bench-ingest (seed_demo: 200 products, 2,000 customers), makes an
API key with the `events` scope, and builds EVENTS events (the standard types, times over the
last 30 days, a session each, a product on 60% of them, a customer on 30%, two properties),
serialized as JSON arrays of 10,000 before the clock starts. CONCURRENCY clients post them
(httpx, keep-alive) to uvicorn with WORKERS processes; every answer must be 200 with nothing
rejected, and afterwards the table must hold every event and EventDay must count them all.
The clock starts once every worker has imported the app (uvicorn answers as soon as one has)
and each client's connection has answered an empty batch.

Then the events table is emptied and the same rows are written by COPY (psycopg2 copy_expert,
10,000 a transaction, one connection): `copy_events_per_s`, the ceiling for the endpoint (which
also parses, validates, looks ids up and keeps EventDay). The tenant is dropped at the end.
Last line: one JSON object.

PROFILE=N first posts N of the bodies in this process (Django's test client, the same middleware
and view) under cProfile, prints the functions that took longest to stderr, and empties the
tables again before the measured run: where an endpoint's time goes, without a server's noise."""

from __future__ import annotations

import asyncio
import io
import json
import os
import random
import sys
import time
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
os.environ.setdefault("SECRET_KEY", "bench-only-secret-key-0123456789abcdefghijklmnopqrstuvwxyz")
os.environ.setdefault("LOG_LEVEL", "WARNING")  # no access line per request

import django  # noqa: E402

django.setup()

import httpx  # noqa: E402
import psutil  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection, transaction  # noqa: E402
from django.utils import timezone  # noqa: E402
from django_tenants.utils import tenant_context  # noqa: E402

from apps.accounts import services as account_services  # noqa: E402
from apps.accounts.authentication import Principal  # noqa: E402
from apps.accounts.models import User  # noqa: E402
from apps.analytics import events as ingestion  # noqa: E402
from apps.analytics.models import Event, EventDay  # noqa: E402
from apps.catalog.models import Product  # noqa: E402
from apps.customers.models import Customer  # noqa: E402
from apps.provisioning.seeding import SeedSize, seed_demo  # noqa: E402
from apps.provisioning.services import provision_tenant  # noqa: E402
from bench.server import uvicorn_process  # noqa: E402
from tenants.models import Tenant  # noqa: E402

SLUG = "bench-ingest"
OWNER = f"o@{SLUG}.test"
PASSWORD = "bench-Pass-123"
EVENTS = int(os.environ.get("EVENTS", "500000"))
BATCH = ingestion.REST_MAX_EVENTS
CONCURRENCY = int(os.environ.get("CONCURRENCY", "4"))
WORKERS = int(os.environ.get("WORKERS", "2"))
PROFILE = int(os.environ.get("PROFILE", "0"))
SEED = 42
COLUMNS = "type, time, session_id, customer_id, product_id, order_id, properties, received"


def _drop() -> None:
    connection.set_schema_to_public()
    for tenant in Tenant.objects.filter(slug=SLUG):
        tenant.delete(force_drop=True)
    User.objects.filter(email=OWNER).delete()


def _events(products: list[int], customers: list[int]) -> list[dict]:
    rng = random.Random(SEED)
    now = timezone.now()
    made = []
    for _ in range(EVENTS):
        event = {
            "type": rng.choice(ingestion.STANDARD_TYPES),
            "time": (now - timedelta(seconds=rng.randrange(30 * 86400))).isoformat(),
            "sessionId": f"sess-{rng.randrange(50_000):05d}",
            "properties": {
                "path": f"/p/{rng.randrange(1000)}",
                "ref": rng.choice(("ads", "mail", "direct")),
            },
        }
        if rng.random() < 0.6:
            event["productId"] = rng.choice(products)
        if rng.random() < 0.3:
            event["customerId"] = rng.choice(customers)
        made.append(event)
    return made


def _copy_text(batch: list[dict], received: str) -> str:
    null = "\\N"
    return "".join(
        f"{e['type']}\t{e['time']}\t{e['sessionId']}\t{e.get('customerId', null)}\t{e.get('productId', null)}\t"
        f"{null}\t{json.dumps(e['properties'], separators=(',', ':'))}\t{received}\n"
        for e in batch
    )


async def _post_all(
    port: int, host: str, key: str, bodies: list[bytes]
) -> tuple[float, list[tuple[int, dict]]]:
    headers = {"Host": host, "X-API-Key": key, "Content-Type": "application/json"}
    limits = httpx.Limits(max_connections=CONCURRENCY, max_keepalive_connections=CONCURRENCY)
    async with httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{port}", headers=headers, timeout=300, limits=limits
    ) as client:
        # One request on each of the connections the run uses (each worker's first is slow).
        warm = await asyncio.gather(
            *(client.post("/api/events", content=b"[]") for _ in range(CONCURRENCY))
        )
        assert all(w.status_code == 200 for w in warm), [
            (w.status_code, w.text[:300]) for w in warm
        ]
        queue: asyncio.Queue[bytes] = asyncio.Queue()
        for body in bodies:
            queue.put_nowait(body)
        answers: list[tuple[int, dict]] = []

        async def client_loop() -> None:
            while not queue.empty():
                body = queue.get_nowait()
                response = await client.post("/api/events", content=body)
                answers.append((response.status_code, response.json()))

        started = time.perf_counter()
        await asyncio.gather(*(client_loop() for _ in range(CONCURRENCY)))
        return time.perf_counter() - started, answers


def _profile(host: str, key: str, bodies: list[bytes]) -> None:
    """POST `bodies` in this process under cProfile; print where the time went; empty the tables."""
    import cProfile
    import pstats

    from django.test import Client

    client = Client(HTTP_HOST=host, HTTP_X_API_KEY=key)
    client.post("/api/events", data=b"[]", content_type="application/json")  # URLconf, imports
    profile = cProfile.Profile()
    started = time.perf_counter()
    with profile:
        for body in bodies:
            response = client.post("/api/events", data=body, content_type="application/json")
            assert response.status_code == 200, (response.status_code, response.content[:300])
    elapsed = time.perf_counter() - started
    events = sum(len(json.loads(body)) for body in bodies)
    print(f"profile: {events} events in-process, {elapsed:.2f} s", file=sys.stderr)
    pstats.Stats(profile, stream=sys.stderr).sort_stats("tottime").print_stats(20)
    connection.set_schema_to_public()
    with tenant_context(Tenant.objects.get(slug=SLUG)), connection.cursor() as cursor:
        cursor.execute(f"TRUNCATE {Event._meta.db_table}, {EventDay._meta.db_table}")
    connection.close()


def _wait_for_workers(server: psutil.Process, timeout: float = 180) -> None:
    """uvicorn answers /healthz once one worker has imported the app; on a busy machine another
    may still be importing it (seconds) while the first serves alone. Wait until WORKERS
    processes have gone quiet twice over (CPU under 0.05 s in 0.5 s): all are up, none timed."""
    deadline, quiet = time.monotonic() + timeout, 0
    while quiet < 2 and time.monotonic() < deadline:
        children = server.children()
        before = [sum(child.cpu_times()[:2]) for child in children]
        time.sleep(0.5)
        after = [sum(child.cpu_times()[:2]) for child in children]
        idle = len(children) >= WORKERS and all(
            b - a < 0.05 for a, b in zip(before, after, strict=True)
        )
        quiet = quiet + 1 if idle else 0


def _raw_copy(texts: list[str]) -> float:
    """COPY the same rows, 10,000 a transaction, into the emptied table."""
    with connection.cursor() as cursor:
        cursor.execute(f"TRUNCATE {Event._meta.db_table}")
    started = time.perf_counter()
    for text in texts:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.copy_expert(
                f"COPY {Event._meta.db_table} ({COLUMNS}) FROM STDIN", io.StringIO(text)
            )
    return time.perf_counter() - started


def main() -> None:
    call_command("setup_platform", verbosity=0)
    _drop()
    try:
        tenant = provision_tenant(
            name="Bench ingest", slug=SLUG, owner_email=OWNER, owner_password=PASSWORD
        )
        seed_demo(tenant=tenant, size=SeedSize(products=200, customers=2000, orders=100), seed=SEED)
        with tenant_context(tenant):
            owner = Principal(
                tenant=tenant, user=User.objects.get(email=OWNER), role="owner", via="jwt"
            )
            _, key = account_services.create_api_key(
                actor=owner, tenant=tenant, name="bench", role="staff", scopes=["events"]
            )
            products = list(Product.objects.values_list("pk", flat=True))
            customers = list(Customer.objects.values_list("pk", flat=True))
        made = _events(products, customers)
        batches = [made[i : i + BATCH] for i in range(0, len(made), BATCH)]
        bodies = [json.dumps(batch).encode() for batch in batches]
        received = timezone.now().isoformat()
        texts = [_copy_text(batch, received) for batch in batches]
        host = tenant.domains.get().domain
        connection.close()
        if PROFILE:
            _profile(host, key, bodies[:PROFILE])

        with uvicorn_process("--workers", str(WORKERS), "--no-access-log") as (port, server):
            _wait_for_workers(psutil.Process(server.pid))
            elapsed, answers = asyncio.run(_post_all(port, host, key, bodies))

        with tenant_context(tenant):
            stored = Event.objects.count()
            counted = sum(EventDay.objects.values_list("events", flat=True))
            copy_s = _raw_copy(texts)
            copied = Event.objects.count()
    finally:
        _drop()

    statuses = sorted({status for status, _ in answers})
    accepted = sum(answer.get("accepted", 0) for _, answer in answers)
    rejected = sum(answer.get("rejected", 0) for _, answer in answers)
    events_per_s = EVENTS / elapsed
    copy_per_s = EVENTS / copy_s
    print(
        f"{EVENTS} events in {len(bodies)} requests of {BATCH} ({sum(map(len, bodies)) / EVENTS:.0f} bytes an "
        f"event), {CONCURRENCY} clients, uvicorn with {WORKERS} workers, {os.cpu_count()} cores"
    )
    print(
        f"POST /api/events: {elapsed:.2f} s, {events_per_s:,.0f} events/s; answers {statuses}, accepted "
        f"{accepted}, rejected {rejected}; stored {stored}, EventDay counts {counted}"
    )
    print(f"raw COPY of the same rows: {copy_s:.2f} s, {copy_per_s:,.0f} events/s ({copied} rows)")
    problems = [
        name
        for name, bad in (
            ("non-200 answers", statuses != [200]),
            ("rejected events", rejected),
            ("events not stored", stored != EVENTS),
            ("EventDay off", counted != EVENTS),
            ("copy incomplete", copied != EVENTS),
        )
        if bad
    ]
    print(
        json.dumps(
            {
                "bench": "ingest",
                "events_per_s": round(events_per_s),
                "copy_events_per_s": round(copy_per_s),
                "endpoint_to_copy_ratio": round(events_per_s / copy_per_s, 3),
                "events_count": EVENTS,
                "batch_size": BATCH,
                "concurrency": CONCURRENCY,
                "workers": WORKERS,
            }
        )
    )
    if problems:
        print(f"ingest bench: {', '.join(problems)}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
