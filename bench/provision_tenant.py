"""Provisioning speed: seconds until a new tenant answers a GraphQL query, and how long
`migrate_schemas` takes over many up-to-date tenants.

    make bench NAME=provision_tenant            (TENANTS=200 by default)

Tenants it makes are named bench-<n> and dropped at the end. Last line: one JSON object.
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
from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402
from django.test import AsyncClient  # noqa: E402

from apps.accounts.models import User  # noqa: E402
from apps.provisioning.services import provision_tenant  # noqa: E402
from tenants.models import Tenant  # noqa: E402

TENANTS = int(os.environ.get("TENANTS", "200"))
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


def _provision(index: int) -> tuple[float, float]:
    """(seconds to provision, seconds until the tenant answers: sign-in and a query included)."""
    slug = f"bench-{index}"
    started = time.perf_counter()
    tenant = provision_tenant(
        name=slug, slug=slug, owner_email=f"o@{slug}.test", owner_password=PASSWORD
    )
    provisioned = time.perf_counter() - started
    assert _answers(tenant.domains.get().domain)
    return provisioned, time.perf_counter() - started


def _drop_bench_tenants() -> None:
    for tenant in Tenant.objects.filter(slug__startswith="bench-"):
        tenant.delete(force_drop=True)
    User.objects.filter(email__startswith="o@bench-").delete()  # so each sign-up makes its owner


def main() -> None:
    call_command("setup_platform", verbosity=0)  # the template must be current to be cloned
    _drop_bench_tenants()
    try:
        timings = [_provision(index) for index in range(TENANTS)]
        samples = [answered for _, answered in timings]
        provision_only = statistics.median(provisioned for provisioned, _ in timings)
        print(
            f"provisioned {TENANTS} tenants: first {samples[0]:.3f} s, median {statistics.median(samples):.3f} s"
            f" (provisioning alone {provision_only:.3f} s; the rest is sign-in and the query)"
        )
        started = time.perf_counter()
        call_command("migrate_schemas", interactive=False, verbosity=0)
        migrate_s = time.perf_counter() - started
        print(f"migrate_schemas over {Tenant.objects.count()} schemas: {migrate_s:.2f} s")
    finally:
        connection.set_schema_to_public()
        _drop_bench_tenants()
    print(
        json.dumps(
            {
                "bench": "provision_tenant",
                "provision_s": round(statistics.median(samples), 3),
                "provision_only_s": round(provision_only, 3),
                "provision_first_s": round(samples[0], 3),
                "provision_max_s": round(max(samples), 3),
                "migrate_schemas_s": round(migrate_s, 2),
                "tenants_count": TENANTS,
            }
        )
    )


if __name__ == "__main__":
    main()
