"""Outages of Redis and PostgreSQL under a real server (issue 15, finding 5; the degraded modes of
apps.common.outages): a uvicorn process whose Redis is a process of this test's own, killed with
SIGKILL and started again, and whose every PostgreSQL connection goes through a relay this test
cuts and restores. No 5xx but the coded 503 while PostgreSQL is away, no request left hanging
(every request has a deadline), and recovery without restarting the server."""

from __future__ import annotations

import httpx
import pytest
from django.conf import settings

from apps.accounts.models import Membership, User
from config.devserver.asgi_server import uvicorn_server
from tests.committed import throwaway_tenant
from tests.conftest import PASSWORD, token_for
from tests.faults.processes import RedisProcess, Relay
from tests.servers import database_url

READ = "{ products(first: 5) { totalCount } customers(first: 5) { totalCount } }"
WRITE = """mutation($email: String!) { customerCreate(input: {email: $email}) {
  customer { id } userErrors { code } } }"""
DEADLINE = 15  # seconds any one answer may take: an outage is answered, never waited out


SLUG = "faults-outage"


@pytest.fixture
def outage_shop(tenants, django_db_blocker):
    """A committed tenant of its own (dropped after): the server commits what it writes, which
    the suite's shared tenants must never see."""
    with throwaway_tenant(django_db_blocker, SLUG, "Outage", domain=f"{SLUG}.localhost") as tenant:
        with django_db_blocker.unblock():
            owner = User.objects.filter(
                email=f"owner@{SLUG}.test"
            ).first() or User.objects.create_user(email=f"owner@{SLUG}.test", password=PASSWORD)
            Membership.objects.get_or_create(user=owner, tenant=tenant, defaults={"role": "owner"})
            token = token_for(owner.email, tenant)
        try:
            yield token
        finally:
            with django_db_blocker.unblock():
                owner.delete()


@pytest.fixture
def outage_server(outage_shop, tmp_path, db):
    token = outage_shop
    redis = RedisProcess(tmp_path)
    redis.start()
    database = settings.DATABASES["default"]
    relay = Relay((database["HOST"] or "127.0.0.1", int(database["PORT"] or 5432)))
    relay.restore()
    env = {
        "DJANGO_SETTINGS_MODULE": "config.settings_test",
        "DATABASE_URL": database_url(relay_port=relay.port),
        "REDIS_URL": redis.url,
        "SESSION_COOKIE_SECURE": "false",
    }
    try:
        with uvicorn_server(env=env, start_timeout=60, capture_output=True) as server:
            client = httpx.Client(
                base_url=f"http://127.0.0.1:{server.port}",
                timeout=DEADLINE,
                headers={
                    "Host": f"{SLUG}.localhost:{server.port}",
                    "Authorization": f"Bearer {token}",
                },
            )
            with client:
                yield client, redis, relay
    finally:
        relay.cut()
        redis.kill()


def _ask(client: httpx.Client, query: str, variables: dict | None = None) -> httpx.Response:
    response = client.post("/graphql/", json={"query": query, "variables": variables or {}})
    assert response.status_code < 500 or response.status_code == 503, (
        response.status_code,
        response.text,
    )
    return response


def test_reads_and_writes_go_on_while_redis_is_down_and_metering_comes_back_with_it(outage_server):
    client, redis, _ = outage_server
    before = _ask(client, READ).json()
    assert before.get("errors") is None and "throttleStatus" in before["extensions"]["cost"]

    redis.kill()
    during = _ask(client, READ)
    assert during.status_code == 200 and during.json().get("errors") is None, during.text
    assert during.json()["data"] == before["data"]
    assert "throttleStatus" not in during.json()["extensions"]["cost"]  # unmetered, said so
    # A write commits, and what it does through Redis after the commit is dropped, not a 500.
    wrote = _ask(client, WRITE, {"email": "outage-redis@example.com"})
    assert wrote.status_code == 200, wrote.text
    assert wrote.json()["data"]["customerCreate"]["userErrors"] == []

    redis.start()
    after = _ask(client, READ).json()
    assert after.get("errors") is None and "throttleStatus" in after["extensions"]["cost"]
    assert after["data"]["customers"]["totalCount"] == before["data"]["customers"]["totalCount"] + 1


def test_while_postgresql_is_away_requests_answer_503_unavailable_and_recover_after(outage_server):
    client, _, relay = outage_server
    assert _ask(client, READ).status_code == 200

    relay.cut()
    for _ in range(3):
        refused = _ask(client, READ)
        assert refused.status_code == 503, refused.text
        assert refused.headers["Retry-After"] == "5"
        assert [e["extensions"]["code"] for e in refused.json()["errors"]] == ["UNAVAILABLE"]

    relay.restore()
    back = _ask(client, READ)
    assert back.status_code == 200 and back.json().get("errors") is None, back.text
