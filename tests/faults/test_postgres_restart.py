"""PostgreSQL itself restarted under traffic (issue 15): a cluster of this test's own (the suite's
must stay up for the test process), set up as production is (`setup_platform`, a tenant, its
owner), serves a real uvicorn. Clients keep reading and writing from threads while the cluster is
shut down the way a crash or a failover does it (immediate shutdown: every connection dropped, no
checkpoint, crash recovery at the next start) and started again on the same port. While it is
down every answer is the coded 503 UNAVAILABLE, fast; once it is up the same server answers 200
again without a restart, and every write it confirmed is there exactly once.

(tests/faults/test_outages.py cuts the network to the suite's own database instead, which is
what a server sees of a failover to another host.)"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psycopg2
import pytest

from config.devserver.asgi_server import uvicorn_server
from config.devserver.postgres import EmbeddedPostgres, postgres_system_user
from tests.faults.processes import RedisProcess

ROOT = Path(__file__).resolve().parents[2]
SLUG = "pgrestart"
HOST = f"{SLUG}.localhost"
EMAIL, PASSWORD = f"owner@{SLUG}.test", "pw-Restart-123!"
DOWN_SECONDS = 3  # how long the cluster stays down
ANSWER_DEADLINE = 5  # seconds any one answer may take: an outage is answered, never waited out
READ = "{ customers(first: 1) { totalCount } }"
WRITE = """mutation($email: String!) { customerCreate(input: {email: $email}) {
  customer { id } userErrors { code } } }"""
PROVISION = f"""
from tenants.models import Domain, Tenant
from apps.accounts.models import Membership, User
tenant = Tenant(schema_name="{SLUG}", slug="{SLUG}", name="Restart")
tenant.save()
Domain.objects.create(domain="{HOST}", tenant=tenant, is_primary=True)
owner = User.objects.create_user(email="{EMAIL}", password="{PASSWORD}")
Membership.objects.create(user=owner, tenant=tenant, role="owner")
"""


class RestartablePostgres(EmbeddedPostgres):
    """The embedded PostgreSQL, shut down as a crash does and started again on its port. With
    production's durability: a commit waits for its WAL flush (the embedded server for
    development and tests does not, and a crash may lose its last commits)."""

    def _command(self, port: int) -> list[str | os.PathLike[str]]:
        return [*super()._command(port), "-csynchronous_commit=on"]

    def crash(self) -> None:
        """Immediate shutdown (SIGQUIT, `pg_ctl stop -m immediate`): connections dropped at once,
        nothing flushed beyond the WAL; the next start runs crash recovery."""
        assert self._process is not None
        self._process.send_signal(signal.SIGQUIT)
        self._process.wait(timeout=30)

    def start_again(self) -> None:
        assert self.port is not None
        self.stop_leftover()
        self._launch(self.port, postgres_system_user())


@dataclass
class Traffic:
    """Reads and writes sent from threads until stopped, and what each one was answered."""

    client: httpx.Client
    answers: list[tuple[float, str, int, str]] = field(
        default_factory=list
    )  # at, kind, status, code
    confirmed: list[str] = field(default_factory=list)  # emails whose customerCreate answered ok
    stop: threading.Event = field(default_factory=threading.Event)
    slowest: float = 0.0

    def _send(self, kind: str, query: str, variables: dict) -> None:
        started = time.monotonic()
        try:
            response = self.client.post("/graphql/", json={"query": query, "variables": variables})
        except httpx.HTTPError as error:  # no answer at all: what this test must never see
            self.answers.append((started, kind, 0, type(error).__name__))
            return
        took = time.monotonic() - started
        self.slowest = max(self.slowest, took)
        body = response.json()
        codes = [e.get("extensions", {}).get("code", "") for e in body.get("errors") or []]
        self.answers.append((started, kind, response.status_code, ",".join(codes)))
        if kind == "write" and response.status_code == 200 and not codes:
            assert body["data"]["customerCreate"]["userErrors"] == []
            self.confirmed.append(variables["email"])

    def run(self, kind: str) -> None:
        while not self.stop.is_set():
            if kind == "read":
                self._send(kind, READ, {})
            else:
                self._send(kind, WRITE, {"email": f"w-{uuid.uuid4().hex[:12]}@example.com"})
            time.sleep(0.05)


@pytest.fixture
def cluster() -> Iterator[RestartablePostgres]:
    # Not under pytest's temporary root: a pytest session starting meanwhile on this machine
    # would close it to its owner, and PostgreSQL runs as its own user here when we are root.
    folder = Path(tempfile.mkdtemp(prefix="shop-pg-restart-"))
    os.chmod(folder, 0o755)
    postgres = RestartablePostgres(folder / "postgres", database="shop")
    try:
        postgres.start()
        yield postgres
    finally:
        postgres.stop()
        shutil.rmtree(folder, ignore_errors=True)


def _manage(url: str, *args: str) -> None:
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings_test", "DATABASE_URL": url}
    done = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]


def _customers(url: str) -> Counter:
    with psycopg2.connect(url, connect_timeout=10) as connection, connection.cursor() as cursor:
        cursor.execute(f'SELECT email FROM "{SLUG}".customers_customer')
        return Counter(email for (email,) in cursor.fetchall())


def test_postgresql_restarted_under_traffic_answers_503_while_down_and_recovers_by_itself(
    cluster, tmp_path
):
    url = cluster.url
    _manage(url, "setup_platform")
    _manage(url, "shell", "-c", PROVISION)
    redis = RedisProcess(tmp_path)
    redis.start()
    env = {
        "DJANGO_SETTINGS_MODULE": "config.settings_test",
        "DATABASE_URL": url,
        "REDIS_URL": redis.url,
        "SESSION_COOKIE_SECURE": "false",
        "LOG_LEVEL": "ERROR",  # not a warning line for each request answered 503
    }
    try:
        # Its output goes where pytest puts this test's: a pipe nobody reads would fill with the
        # outage's log lines and stop the server mid-request.
        with uvicorn_server(env=env, start_timeout=60) as server:
            base = f"http://127.0.0.1:{server.port}"
            headers = {"Host": f"{HOST}:{server.port}"}
            signed = httpx.post(
                f"{base}/graphql/",
                headers=headers,
                json={
                    "query": "mutation($e: String!, $p: String!) { tokenCreate(email: $e, "
                    "password: $p) { token } }",
                    "variables": {"e": EMAIL, "p": PASSWORD},
                },
                timeout=30,
            ).json()
            headers["Authorization"] = f"Bearer {signed['data']['tokenCreate']['token']}"
            client = httpx.Client(base_url=base, headers=headers, timeout=30)
            traffic = Traffic(client)
            threads = [
                threading.Thread(target=traffic.run, args=(kind,), daemon=True)
                for kind in ("read", "read", "write")
            ]
            with client:
                for thread in threads:
                    thread.start()
                time.sleep(1.5)
                down_at = time.monotonic()
                cluster.crash()
                time.sleep(DOWN_SECONDS)
                cluster.start_again()  # returns once it accepts connections
                up_at = time.monotonic()
                time.sleep(2.0)
                traffic.stop.set()
                for thread in threads:
                    thread.join(timeout=60)
                after = client.post("/graphql/", json={"query": READ})
    finally:
        redis.kill()

    by_phase = Counter(
        ("before" if at < down_at else "down" if at < up_at else "after", status, code)
        for at, _, status, code in traffic.answers
    )
    # An answer every time, and only 200s and the coded 503 (a request the crash cut in the
    # middle answers 200 with an UNAVAILABLE error for what it could not read): no 500, no
    # INTERNAL, no other code, ever; and fast.
    assert {(status, code) for _, status, code in by_phase} <= {
        (200, ""),
        (200, "UNAVAILABLE"),
        (503, "UNAVAILABLE"),
    }, by_phase
    assert traffic.slowest < ANSWER_DEADLINE, traffic.slowest
    assert by_phase[("before", 200, "")] > 0, by_phase
    assert by_phase[("down", 503, "UNAVAILABLE")] > 0, by_phase
    # Back without restarting the server: everything sent after PostgreSQL accepts connections
    # again is answered in full.
    after_phase = {(status, code) for phase, status, code in by_phase if phase == "after"}
    assert after_phase == {(200, "")}, by_phase
    assert after.status_code == 200 and "errors" not in after.json(), after.text
    # Every write the server confirmed is stored, once; none stored twice.
    stored = _customers(url)
    assert all(stored[email] == 1 for email in traffic.confirmed), traffic.confirmed
    assert not [email for email, count in stored.items() if count > 1]
    assert after.json()["data"]["customers"]["totalCount"] == sum(stored.values())
