"""A production-like stack for the tests of this folder: PgBouncer (session pooling, POOL_SIZE
server connections) in front of the test database, two uvicorn processes (A and B) and two
Celery workers on it, and a Redis of their own (broker, cache, channel layer, limits), with one
media and one export folder for all. Whatever works here works across processes, not only
within one: nothing a request needs may live in one process's memory.

Only committed data is visible to these processes, so the tenants of this folder are made once
and committed (dropped after the folder), and every write goes through the servers' API.
Needs Debian's pgbouncer (tests marked `pooled`; `make test` says when it leaves them out)."""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import httpx
import psycopg2
import pytest

from apps.accounts.models import User
from apps.catalog.models import Product, Variant
from config.devserver.asgi_server import RunningServer, uvicorn_server
from config.devserver.pgbouncer import EmbeddedPgBouncer
from tests.committed import run_committed
from tests.conftest import TenantFixture, _tenant, gid, token_for
from tests.faults.processes import CeleryWorkerProcess, RedisProcess
from tests.servers import SESSION_TOKEN_LIFETIME, _access_tokens_lasting, database_url

POOL_SIZE = 4  # server connections, for two servers, two workers and the test's own clients
SUBSCRIPTIONS_PER_TENANT = 3
SLUGS = ("pool-a", "pool-b", "pool-c")
TIMEOUT = 30.0  # a deadline for any one wait, never slept


@dataclass
class Shop:
    fixture: TenantFixture
    tokens: dict[str, str] = field(default_factory=dict)
    variant: str = ""  # the global id of a variant with plenty of stock

    @property
    def slug(self) -> str:
        return self.fixture.slug

    @property
    def host(self) -> str:
        return self.fixture.host

    @property
    def product_name(self) -> str:
        return f"Only in {self.slug}"


@dataclass
class Stack:
    pool: EmbeddedPgBouncer
    servers: tuple[RunningServer, RunningServer]
    redis_url: str
    shops: dict[str, Shop]
    workers: list[CeleryWorkerProcess]

    def http(self, server: int, shop: Shop | None, role: str = "owner") -> httpx.Client:
        """A client of server `server` (0 is A, 1 is B) on `shop`'s host with its `role` token."""
        port = self.servers[server].port
        headers = {"Host": f"{shop.host}:{port}" if shop else f"localhost:{port}"}
        if shop is not None:
            headers["Authorization"] = f"Bearer {shop.tokens[role]}"
        return httpx.Client(base_url=f"http://127.0.0.1:{port}", headers=headers, timeout=TIMEOUT)

    def graphql(
        self, server: int, shop: Shop, query: str, variables: dict | None = None, **options: Any
    ) -> dict[str, Any]:
        with self.http(server, shop, **options) as client:
            response = client.post("/graphql/", json={"query": query, "variables": variables})
        assert response.status_code == 200, response.text
        body = response.json()
        assert "errors" not in body, body
        return body["data"]

    def place_order(self, server: int, shop: Shop) -> dict[str, Any]:
        data = self.graphql(
            server,
            shop,
            "mutation($v: ID!) { orderCreate(input: {lines: [{variant: $v, quantity: 1}], "
            'email: "buyer@example.com"}) { order { id number } userErrors { code } } }',
            {"v": shop.variant},
        )["orderCreate"]
        assert data["userErrors"] == [], data
        return data["order"]

    def servers_in_pool(self) -> int:
        """Server connections PgBouncer holds for the test database now (SHOW POOLS)."""
        with contextlib.closing(psycopg2.connect(self.admin_url())) as admin:
            admin.autocommit = True
            with admin.cursor() as cursor:
                cursor.execute("SHOW POOLS")
                columns = [column[0] for column in cursor.description]
                rows = [dict(zip(columns, row, strict=True)) for row in cursor.fetchall()]
        database = self.pool.url.rsplit("/", 1)[1]
        return sum(
            row[name]
            for row in rows
            if row["database"] == database
            for name in ("sv_active", "sv_idle", "sv_used", "sv_tested", "sv_login")
        )

    def admin_url(self) -> str:
        return self.pool.url.rsplit("/", 1)[0] + "/pgbouncer"


def _stock(shop: Shop) -> None:
    def work() -> int:
        product = Product.objects.create(
            name=shop.product_name, slug="only", status=Product.Status.ACTIVE
        )
        return Variant.objects.create(
            product=product, sku="ONLY-1", name="One", price=Decimal("12.50"), stock=1_000_000
        ).pk

    shop.variant = gid(shop.fixture, "Variant", run_committed(shop.fixture.tenant, work))


@pytest.fixture(scope="package")
def shops(tenants, django_db_blocker) -> Iterator[dict[str, Shop]]:
    made: dict[str, Shop] = {}
    try:
        with django_db_blocker.unblock(), _access_tokens_lasting(SESSION_TOKEN_LIFETIME):
            for slug in SLUGS:
                shop = made[slug] = Shop(_tenant(slug))
                for role in ("owner", "analyst", "viewer"):
                    shop.tokens[role] = token_for(shop.fixture.email(role), shop.fixture.tenant)
                _stock(shop)
        yield made
    finally:
        with django_db_blocker.unblock():
            for shop in made.values():
                shop.fixture.tenant.delete(force_drop=True)
            for slug in SLUGS:
                User.objects.filter(email__endswith=f"@{slug}.test").delete()


@pytest.fixture(scope="package")
def stack(shops, tmp_path_factory) -> Iterator[Stack]:
    home = tmp_path_factory.mktemp("stack")
    redis = RedisProcess(home)
    redis.start()
    pool = EmbeddedPgBouncer(home / "pgbouncer", database_url(), pool_size=POOL_SIZE)
    workers: list[CeleryWorkerProcess] = []
    try:
        pool.start()
        # The test process's REDIS_KEY_PREFIX (inherited): its own Redis keeps them apart, and the
        # test can name the stack's keys (apps.live.limits) and queue its tasks as its own.
        env = {
            "DJANGO_SETTINGS_MODULE": "config.settings_test",
            "DATABASE_URL": pool.url,
            "REDIS_URL": redis.url,
            "MEDIA_ROOT": str(home / "media"),
            "EXPORT_ROOT": str(home / "exports"),
            "SESSION_COOKIE_SECURE": "false",  # plain http on loopback
            "LIVE_SUBSCRIPTIONS_PER_TENANT": str(SUBSCRIPTIONS_PER_TENANT),
            # One deployment: /metrics on either server adds up both (config/metrics.py).
            "PROMETHEUS_MULTIPROC_DIR": str(home / "prometheus"),
        }
        (home / "prometheus").mkdir()
        workers += [
            CeleryWorkerProcess(redis.url, env, log=home / f"worker-{number}.log")
            for number in (1, 2)
        ]
        # The workers start while the servers do (each takes seconds on a loaded machine).
        with ThreadPoolExecutor(len(workers)) as starting:
            started = [starting.submit(worker.start) for worker in workers]
            with (
                uvicorn_server(env=env, start_timeout=60) as a,
                uvicorn_server(env=env, start_timeout=60) as b,
            ):
                for future in started:
                    future.result()
                yield Stack(pool, (a, b), redis.url, shops, workers)
    finally:
        for worker in workers:
            worker.kill()
        pool.stop()
        redis.kill()
        shutil.rmtree(home, ignore_errors=True)
