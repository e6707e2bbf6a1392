"""Shared fixtures: two tenants with a member of every role (created once per session, committed,
get-or-create so `--reuse-db` works), and a GraphQL client that goes through the ASGI request
path (tenant middleware → auth → GraphQL → DB) inside each test's transaction."""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import channels.db
import hypothesis
import pytest
from asgiref.sync import async_to_sync
from django.test import AsyncClient

from apps.accounts import services as account_services
from apps.accounts.models import Membership, Role, User
from apps.common import global_ids
from apps.provisioning.services import provision_tenant
from tenants.models import Tenant
from tenants.services import ensure_template

# Fixtures of a whole area, shared by its test modules (pytest takes plugins from the root only).
pytest_plugins = ["tests.apps.payments.fixtures", "tests.servers"]

# Property tests: the same examples on every run (a red CI is a bug, not a draw), and no time
# limits, which a busy machine breaks (an example over hypothesis' 200 ms deadline, or data made
# "too slowly"). HYPOTHESIS_PROFILE=explore draws new examples each run, for hunting.
hypothesis.settings.register_profile(
    "suite",
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=[hypothesis.HealthCheck.too_slow],
)
hypothesis.settings.register_profile(
    "explore",
    deadline=None,
    suppress_health_check=[hypothesis.HealthCheck.too_slow],
)
hypothesis.settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "suite"))

PASSWORD = "pw-Test-123!"
PLATFORM_HOST = "localhost"


@dataclass(frozen=True)
class TenantFixture:
    tenant: Tenant
    host: str

    @property
    def slug(self) -> str:
        return self.tenant.slug

    def email(self, role: str) -> str:
        return f"{role}@{self.slug}.test"

    def named_by(self, method: str) -> dict[str, Any]:
        """`gql.post` keyword arguments that name this tenant by host, header or query."""
        if method == "host":
            return {"host": self.host}
        if method == "header":
            return {"host": PLATFORM_HOST, "headers": {"X-Tenant-ID": self.slug}}
        return {"host": PLATFORM_HOST, "path": f"/graphql/?tenant_id={self.slug}"}


def _tenant(slug: str) -> TenantFixture:
    tenant = Tenant.objects.filter(slug=slug).first()
    if tenant is None:
        tenant = provision_tenant(
            name=slug.title(), slug=slug, owner_email=f"owner@{slug}.test", owner_password=PASSWORD
        )
    for role in Role.values:
        user = User.objects.filter(email=f"{role}@{slug}.test").first() or User.objects.create_user(
            email=f"{role}@{slug}.test", password=PASSWORD
        )
        Membership.objects.get_or_create(user=user, tenant=tenant, defaults={"role": role})
    return TenantFixture(tenant=tenant, host=tenant.domains.get(is_primary=True).domain)


@pytest.fixture(scope="session", autouse=True)
def _temporary_media_root():
    """settings_test points MEDIA_ROOT at a fresh temporary folder: remove it afterwards."""
    yield
    from django.conf import settings

    if Path(settings.MEDIA_ROOT).name.startswith("shop-test-media-"):
        shutil.rmtree(settings.MEDIA_ROOT, ignore_errors=True)


@pytest.fixture(autouse=True)
def _fresh_buckets():
    """Rate buckets live in Redis, not in the test's transaction: every test starts and ends with
    none, so one test's drained bucket never throttles another's."""
    from apps.common import redis as redis_config

    def flush() -> None:
        client = redis_config.client()
        for key in client.scan_iter(match=redis_config.key("throttle", "*")):
            client.delete(key)
        # Analytics answers are cached under each tenant's data version, bumped when a write
        # commits; a test's writes are rolled back, never committed: start every test on a new
        # version, so no answer cached by another test is read.
        # Every schema has a version key from its creation on (tenants.models.Tenant.create_schema).
        for key in client.scan_iter(
            match=redis_config.key("analytics", "*", "version"), count=1000
        ):
            client.incr(key)

    flush()
    yield
    flush()


@pytest.fixture(scope="session", autouse=True)
def _keep_test_connection():
    """Channels closes 'old' connections around each database_sync_to_async call, which would
    close the connection holding the test's transaction; Django's test clients do the same."""
    original = channels.db.close_old_connections
    channels.db.close_old_connections = lambda: None
    yield
    channels.db.close_old_connections = original


@pytest.fixture(scope="session")
def tenants(django_db_setup, django_db_blocker) -> dict[str, TenantFixture]:
    with django_db_blocker.unblock():
        ensure_template()
        made = {slug: _tenant(slug) for slug in ("alpha", "beta")}
        if not User.objects.filter(email="staff@platform.test").exists():
            User.objects.create_user(email="staff@platform.test", password=PASSWORD, is_staff=True)
    return made


@pytest.fixture
def alpha(tenants, db) -> TenantFixture:
    return tenants["alpha"]


@pytest.fixture
def beta(tenants, db) -> TenantFixture:
    return tenants["beta"]


def gid(where: TenantFixture | Tenant | None, type_name: str, pk: int) -> str:
    """The global id the API gives a `type_name` row of tenant `where` (None: the platform host),
    minted with the API's own codec: ids name their tenant, so a test says whose row it names."""
    schema = "public" if where is None else getattr(where, "tenant", where).schema_name
    return global_ids.encode(type_name, pk, schema)


def token_for(email: str, tenant: Tenant | None) -> str:
    _, access, _ = account_services.create_tokens(email=email, password=PASSWORD, tenant=tenant)
    return access


@dataclass
class Response:
    status: int
    body: dict[str, Any]
    headers: dict[str, str]

    @property
    def data(self) -> dict[str, Any] | None:
        return self.body.get("data")

    @property
    def errors(self) -> list[dict[str, Any]]:
        return self.body.get("errors") or []

    @property
    def codes(self) -> list[str]:
        return [e.get("extensions", {}).get("code") for e in self.errors]


class HostAsyncClient(AsyncClient):
    """Django's AsyncClient always sends `Host: testserver`; let a given Host replace it."""

    def request(self, **scope):
        headers = scope["headers"]
        if sum(1 for name, _ in headers if name == b"host") > 1:
            scope["headers"] = [h for h in headers if h != (b"host", b"testserver")]
        return super().request(**scope)


class GraphQLClient:
    """POSTs GraphQL through Django's ASGI request handling with real hosts and headers."""

    def __init__(self) -> None:
        self.client = HostAsyncClient()

    def post(
        self,
        query: str,
        variables: dict[str, Any] | None = None,
        *,
        host: str,
        token: str | None = None,
        api_key: str | None = None,
        headers: dict[str, str] | None = None,
        path: str = "/graphql/",
    ) -> Response:
        extra = dict(headers or {})
        if token:
            extra["Authorization"] = f"Bearer {token}"
        if api_key:
            extra["X-API-Key"] = api_key
        body = json.dumps({"query": query, "variables": variables or {}})
        response = async_to_sync(self.client.post)(
            path, body, content_type="application/json", headers={"Host": host, **extra}
        )
        try:
            payload = json.loads(response.content or b"{}")
        except ValueError:
            payload = {"raw": response.content.decode(errors="replace")}
        return Response(response.status_code, payload, dict(response.headers))

    def get(self, path: str, *, host: str, headers: dict[str, str] | None = None):
        return self.request("get", path, host=host, headers=headers)

    def request(
        self, method: str, path: str, *, host: str, headers: dict[str, str] | None = None, **extra
    ):
        call = getattr(self.client, method)
        return async_to_sync(call)(path, headers={"Host": host, **(headers or {})}, **extra)


def body_of(response) -> bytes:
    """A test client response's body; a download's arrives through an asynchronous iterator
    (apps.common.streaming), as a server reads it."""
    if not response.streaming:
        return response.content

    async def read() -> bytes:
        return b"".join([part async for part in response.streaming_content])

    return async_to_sync(read)()


@pytest.fixture
def gql() -> GraphQLClient:
    return GraphQLClient()
