"""Provisioning speed: seconds until a new tenant answers a GraphQL query with a thousand tenants
present, and how long `migrate_schemas` takes over them when all are up to date (issue 17).

    make bench NAME=provision_tenant                 (the issue's figures: TENANTS=1000)
    TENANTS=200 make bench NAME=provision_tenant     (fewer, for a quick look)

It makes TENANTS tenants: SAMPLES (20) one by one through provisioning, each timed until it
answers (provision_baseline_s, the median with few tenants present: this run's baseline); all
but SAMPLES more in bulk, each a full clone of the template schema with its tenant row
(tenants.cloning.clone_schemas, the clone provisioning makes, ten schemas a transaction); the
last SAMPLES through provisioning again (provision_s, the median with ~TENANTS present); then it
times `migrate_schemas` over every schema, all up to date. A provisioning and its sign-in make
two password hashes; one is timed before each sample (password_hash_s, password_hash_baseline_s,
medians): it does not depend on tenants, so it tells how loaded the machine was in each phase.
Tenants it makes are named bench-<n> and dropped at the end (their schemas ten a statement).
Last line: one JSON object.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
os.environ.setdefault("SECRET_KEY", "bench-only-secret-key-0123456789abcdefghijklmnopqrstuvwxyz")
os.environ.setdefault("LOG_LEVEL", "WARNING")  # no access line per request

import django

django.setup()

from asgiref.sync import async_to_sync  # noqa: E402
from django.conf import settings  # noqa: E402
from django.contrib.auth.hashers import make_password  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import DatabaseError, connection, transaction  # noqa: E402
from django.test import AsyncClient  # noqa: E402

from apps.accounts.models import User  # noqa: E402
from apps.provisioning.services import provision_tenant  # noqa: E402
from tenants import hooks  # noqa: E402
from tenants.cloning import clone_schemas  # noqa: E402
from tenants.models import Tenant  # noqa: E402

TENANTS = int(os.environ.get("TENANTS", "1000"))
SAMPLES = min(TENANTS // 2, int(os.environ.get("SAMPLES", "20")))
# Schemas a transaction: each new relation holds a lock until commit (~200 a schema), and
# PostgreSQL's lock table has room for 64 x max_connections.
BATCH = 10
PASSWORD = "bench-Pass-123"


class _Client(AsyncClient):
    def request(self, **scope):
        scope["headers"] = [h for h in scope["headers"] if h != (b"host", b"testserver")]
        return super().request(**scope)


def _answers(host: str) -> bool:
    client = _Client()
    slug = host.split(".")[0]
    body = json.dumps(
        {
            "query": f'mutation {{ tokenCreate(email: "o@{slug}.test", password: "{PASSWORD}") {{ token }} }}'
        }
    )
    response = async_to_sync(client.post)(
        "/graphql/", body, content_type="application/json", headers={"Host": host}
    )
    token = json.loads(response.content)["data"]["tokenCreate"]["token"]
    response = async_to_sync(client.post)(
        "/graphql/",
        json.dumps({"query": "{ tenant { slug } }"}),
        content_type="application/json",
        headers={"Host": host, "Authorization": f"Bearer {token}"},
    )
    return json.loads(response.content)["data"]["tenant"]["slug"] == slug


def _provision(index: int) -> tuple[float, float, float]:
    """(seconds to provision, seconds until the tenant answers: sign-in and a query included,
    seconds one password hash took just before: the machine's load at that moment)."""
    slug = f"bench-{index}"
    started = time.perf_counter()
    make_password(PASSWORD)
    hashed = time.perf_counter() - started
    started = time.perf_counter()
    tenant = provision_tenant(
        name=slug, slug=slug, owner_email=f"o@{slug}.test", owner_password=PASSWORD
    )
    provisioned = time.perf_counter() - started
    assert _answers(tenant.domains.get().domain)
    return provisioned, time.perf_counter() - started, hashed


def _hash_s(timings: list[tuple[float, float, float]]) -> float:
    return statistics.median(hashed for _, _, hashed in timings)


def _bulk_tenants(indexes: range) -> None:
    """Tenants bench-<index> (rows and cloned schemas, as provisioning makes them; no domain or
    owner: they only have to be there), BATCH to a transaction."""
    for start in range(0, len(indexes), BATCH):
        slugs = [f"bench-{index}" for index in indexes[start : start + BATCH]]
        tenants = [
            Tenant(name=slug, slug=slug, schema_name=slug.replace("-", "_")) for slug in slugs
        ]
        with transaction.atomic():
            Tenant.objects.bulk_create(tenants)  # bulk: no save(), so no schema made one by one
            clone_schemas(settings.TENANT_BASE_SCHEMA, [tenant.schema_name for tenant in tenants])
        connection.set_schema_to_public()
        for tenant in tenants:
            hooks.schema_created.send(schema_name=tenant.schema_name)


def _drop_bench_tenants() -> None:
    schemas = list(
        Tenant.objects.filter(slug__startswith="bench-").values_list("schema_name", flat=True)
    )
    for start in range(0, len(schemas), BATCH):
        names = ", ".join(
            connection.ops.quote_name(schema) for schema in schemas[start : start + BATCH]
        )
        with connection.cursor() as cursor:
            cursor.execute(f"DROP SCHEMA IF EXISTS {names} CASCADE")
    Tenant.objects.filter(slug__startswith="bench-").delete()  # domains and memberships go along
    User.objects.filter(email__startswith="o@bench-").delete()  # so each sign-up makes its owner
    if schemas:
        _checkpoint()


def _checkpoint() -> None:
    """Write out what making and dropping a thousand schemas dirtied, now: left to the server's
    shutdown, it took the dev launcher past its 20 s stop and the next start into a crash
    recovery that fsyncs every file. Needs a superuser (the dev server's); elsewhere, skipped."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("CHECKPOINT")
    except DatabaseError as error:
        print(f"no CHECKPOINT ({error}); the server writes it out on its own")


def main() -> None:
    call_command("setup_platform", verbosity=0)  # the template must be current to be cloned
    _drop_bench_tenants()
    try:
        # The baseline of this run: SAMPLES provisionings with (almost) no tenant present.
        baseline = [_provision(index) for index in range(SAMPLES)]
        baseline_s = statistics.median(answered for _, answered, _ in baseline)
        print(f"provisioned {SAMPLES} tenants with few present: median {baseline_s:.3f} s")
        started = time.perf_counter()
        _bulk_tenants(range(SAMPLES, TENANTS - SAMPLES))
        print(
            f"cloned {TENANTS - 2 * SAMPLES} tenants in bulk: {time.perf_counter() - started:.1f} s"
        )
        timings = [_provision(index) for index in range(TENANTS - SAMPLES, TENANTS)]
        samples = [answered for _, answered, _ in timings]
        provision_only = statistics.median(provisioned for provisioned, _, _ in timings)
        print(
            f"provisioned {SAMPLES} tenants with {TENANTS - SAMPLES} and more present: first"
            f" {samples[0]:.3f} s, median {statistics.median(samples):.3f} s"
            f" (provisioning alone {provision_only:.3f} s; the rest is sign-in and the query)"
        )
        schemas = Tenant.objects.count()
        started = time.perf_counter()
        call_command("migrate_schemas", interactive=False, verbosity=1)
        migrate_s = time.perf_counter() - started
        print(f"migrate_schemas over {schemas} tenant schemas, all up to date: {migrate_s:.2f} s")
    finally:
        connection.set_schema_to_public()
        _drop_bench_tenants()
    print(
        json.dumps(
            {
                "bench": "provision_tenant",
                "provision_s": round(statistics.median(samples), 3),
                "provision_baseline_s": round(baseline_s, 3),
                "provision_only_s": round(provision_only, 3),
                "provision_first_s": round(samples[0], 3),
                "provision_max_s": round(max(samples), 3),
                "migrate_schemas_s": round(migrate_s, 2),
                "password_hash_s": round(_hash_s(timings), 3),
                "password_hash_baseline_s": round(_hash_s(baseline), 3),
                "tenants_count": TENANTS,
                "schemas_count": schemas,
                "provision_samples": SAMPLES,
            }
        )
    )


if __name__ == "__main__":
    main()
