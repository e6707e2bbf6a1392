"""`make run-multi` itself, as the README tells an operator to start it: one command sets up the
platform and its demo tenants, then serves through PgBouncer with two uvicorn processes, two
Celery workers and beat; the demo owner signs in, an export is written by a worker, /metrics
adds up the processes, and a SIGTERM stops every process it started.

The launcher gets a database of its own on the test server, a Redis of its own and a data folder
of its own (DEVSERVER_DATA_DIR: the suite's launcher holds `.data/`)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import psutil
import psycopg2
import pytest

from config.devserver import PROJECT_DIR
from config.devserver.__main__ import DEMO_PASSWORD
from tests.faults.processes import RedisProcess, _free_port
from tests.servers import database_url

pytestmark = pytest.mark.pooled

STARTUP = 180.0  # migrations and the demo tenants' 4,000 orders: about 25 s here
STOP = 30.0  # the launcher's own grace for its children is 8 s


@dataclass
class Launched:
    process: subprocess.Popen[bytes]
    port: int
    log: Path

    def client(self, host: str = "localhost") -> httpx.Client:
        return httpx.Client(
            base_url=f"http://127.0.0.1:{self.port}",
            headers={"Host": f"{host}:{self.port}"},
            timeout=30,
        )

    def graphql(self, host: str, query: str, token: str | None = None) -> dict:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        with self.client(host) as client:
            response = client.post("/graphql/", json={"query": query}, headers=headers)
        assert response.status_code == 200, response.text
        body = response.json()
        assert "errors" not in body, body
        return body["data"]


def _server_url(name: str) -> str:
    return database_url().rsplit("/", 1)[0] + f"/{name}"


@pytest.fixture
def launched(tmp_path: Path) -> Iterator[Launched]:
    name = f"run_multi_{uuid.uuid4().hex[:8]}"
    admin = psycopg2.connect(_server_url("postgres"))
    admin.autocommit = True
    with admin.cursor() as cursor:
        cursor.execute(f'CREATE DATABASE "{name}"')
    redis = RedisProcess(tmp_path)
    redis.start()
    port = _free_port()
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("DEBUG", "DJANGO_SETTINGS_MODULE", "PROMETHEUS_MULTIPROC_DIR")
    }
    env.update(
        DJANGO_SETTINGS_MODULE="config.settings",
        DATABASE_URL=_server_url(name),
        REDIS_URL=redis.url,
        PORT=str(port),
        DEVSERVER_DATA_DIR=str(tmp_path / "data"),
        MEDIA_ROOT=str(tmp_path / "media"),
        EXPORT_ROOT=str(tmp_path / "exports"),
    )
    log = tmp_path / "run-multi.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "config.devserver", "run", "--multi", "--processes", "2"],
            cwd=PROJECT_DIR,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        yield Launched(process, port, log)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        redis.kill()
        with admin.cursor() as cursor:
            cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


def _wait_until_serving(launched: Launched) -> None:
    deadline = time.monotonic() + STARTUP
    while time.monotonic() < deadline:
        assert launched.process.poll() is None, launched.log.read_text()[-4000:]
        if "dev server is up" in launched.log.read_text(errors="replace"):
            return
        time.sleep(0.5)
    pytest.fail(f"not serving after {STARTUP} s:\n{launched.log.read_text()[-4000:]}")


def _command_lines(processes: list[psutil.Process]) -> list[str]:
    lines = []
    for process in processes:
        try:
            lines.append(" ".join(process.cmdline()))
        except psutil.NoSuchProcess:
            continue
    return lines


def test_run_multi_serves_the_demo_pooled_over_several_processes_and_stops_them_all(
    launched: Launched,
):
    _wait_until_serving(launched)
    launcher = psutil.Process(launched.process.pid)
    started = launcher.children(recursive=True)
    lines = _command_lines(launcher.children())
    # uvicorn's supervisor and its two processes, two workers (each with its pool) and beat.
    supervisor = next(p for p in launcher.children() if "uvicorn" in " ".join(p.cmdline()))
    serving = [line for line in _command_lines(supervisor.children()) if "spawn_main" in line]
    assert len(serving) == 2, lines
    assert sum(" worker " in line and "-n worker" in line for line in lines) == 2, lines
    assert sum(" beat " in line for line in lines) == 1, lines
    assert sum("pgbouncer" in line for line in lines) == 1, lines

    token = launched.graphql(
        "acme.localhost",
        f'mutation {{ tokenCreate(email: "owner@acme.test", password: "{DEMO_PASSWORD}") '
        "{ token userErrors { code } } }",
    )["tokenCreate"]["token"]
    assert token
    mine = launched.graphql(
        "acme.localhost", "{ tenant { slug } products(first: 1) { totalCount } }", token
    )
    assert mine["tenant"]["slug"] == "acme" and mine["products"]["totalCount"] > 0, mine
    with launched.client("globex.localhost") as client:  # acme's token is not globex's
        response = client.post(
            "/graphql/",
            json={"query": "{ tenant { slug } }"},
            headers={"Authorization": f"Bearer {token}"},
        )
    assert response.status_code == 403, response.text
    assert response.json()["errors"][0]["extensions"]["code"] == "FORBIDDEN", response.text

    created = launched.graphql(
        "acme.localhost",
        "mutation { exportCreate(kind: CUSTOMERS, format: CSV) { export { id } userErrors { code } } }",
        token,
    )["exportCreate"]
    assert created["userErrors"] == [], created
    query = f'{{ node(id: "{created["export"]["id"]}") {{ ... on Export {{ status rowsDone }} }} }}'
    deadline = time.monotonic() + 60
    while (node := launched.graphql("acme.localhost", query, token)["node"])["status"] not in (
        "DONE",
        "FAILED",
    ):
        assert time.monotonic() < deadline, node
        time.sleep(0.5)
    assert node["status"] == "DONE" and node["rowsDone"] > 0, node

    with launched.client() as client:
        metrics = client.get("/metrics")
    assert metrics.status_code == 200, metrics.text
    served = [
        float(line.rsplit(" ", 1)[1])
        for line in metrics.text.splitlines()
        if line.startswith("shop_http_requests_total{") and "acme" in line
    ]
    assert sum(served) >= 4, metrics.text[:3000]

    launched.process.send_signal(signal.SIGTERM)
    assert launched.process.wait(STOP) == 0, launched.log.read_text()[-4000:]
    deadline = time.monotonic() + 5
    while left := [p for p in started if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]:
        assert time.monotonic() < deadline, _command_lines(left)
        time.sleep(0.1)
