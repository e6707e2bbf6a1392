"""The dev launcher's embedded servers: they start on free ports, serve, stop, and leave nothing
running. Real servers in tmp dirs, no Django: these run with or without pytest-django."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg2
import pytest
import redis

from config.devserver import PROJECT_DIR, ServiceError
from config.devserver.data_dir import claim_data_dir
from config.devserver.ports import RESERVED_PORTS, port_is_open
from config.devserver.postgres import EmbeddedPostgres
from config.devserver.redis import EmbeddedRedis
from config.devserver.services import running_services


def _process_gone(pid: int) -> bool:
    return not Path(f"/proc/{pid}").exists()


def _query(url: str, sql: str, params: tuple = ()) -> list[tuple]:
    connection = psycopg2.connect(url)
    try:
        with connection, connection.cursor() as cursor:
            cursor.execute(sql, params)
            return cursor.fetchall() if cursor.description else []
    finally:
        connection.close()


@contextmanager
def _outside_pytests_root() -> Iterator[Path]:
    """A folder for an embedded PostgreSQL, outside pytest's temporary root: the server's system
    user must be able to reach it, and every pytest session that starts on the machine closes
    pytest's root to its owner again (initdb failed with "Permission denied" while another test
    run started)."""
    path = Path(tempfile.mkdtemp(prefix="shop-devserver-test-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="module")
def pg_data() -> Iterator[Path]:
    """A data dir already through initdb, holding table `kept`: starts on it are warm."""
    with _outside_pytests_root() as home:
        data_dir = home / "postgres"
        server = EmbeddedPostgres(data_dir)
        try:
            url = server.start()
            _query(url, "CREATE TABLE kept (word text)")
            _query(url, "INSERT INTO kept VALUES (%s)", ("été",))
        finally:
            server.stop()
        yield data_dir


@pytest.fixture
def postgres(pg_data: Path):
    server = EmbeddedPostgres(pg_data)
    yield server
    server.stop()


def test_postgres_cold_start_serves_and_stops():
    with _outside_pytests_root() as home:
        _cold_start(home)


def _cold_start(home: Path) -> None:
    server = EmbeddedPostgres(home / "postgres")
    try:
        url = server.start()
        port, pid = server.port, server.pid

        assert server.cold
        assert port not in RESERVED_PORTS
        assert url == f"postgres://postgres@127.0.0.1:{port}/shop"
        # The builtin C.UTF-8 locale upper-cases beyond ASCII (what Django's iexact relies on).
        assert _query(url, "SELECT current_database(), upper('été')") == [("shop", "ÉTÉ")]
    finally:
        server.stop()
    assert not port_is_open(port)
    assert _process_gone(pid)
    assert not (server.data_dir / "postmaster.pid").exists()


def test_postgres_warm_start_keeps_data(postgres: EmbeddedPostgres):
    url = postgres.start()

    assert not postgres.cold
    assert _query(url, "SELECT word FROM kept") == [("été",)]


def test_postgres_ignores_stale_postmaster_pid(postgres: EmbeddedPostgres):
    # A crash leaves postmaster.pid behind; its pid may since belong to a live process (here
    # ours), which PostgreSQL would take for a running server and refuse to start.
    (postgres.data_dir / "postmaster.pid").write_text(f"{os.getpid()}\n{postgres.data_dir}\n")

    url = postgres.start()

    assert _query(url, "SELECT 1") == [(1,)]


def test_postgres_stops_a_server_left_by_a_killed_launcher(pg_data: Path):
    abandoned = EmbeddedPostgres(pg_data)
    abandoned.start()
    old_port, old_pid = abandoned.port, abandoned.pid
    successor = EmbeddedPostgres(pg_data)
    try:
        url = successor.start()

        assert _query(url, "SELECT 1") == [(1,)]
        assert not port_is_open(old_port)
    finally:
        successor.stop()
        abandoned.stop()
    assert _process_gone(old_pid)


def test_redis_serves_and_stops(tmp_path: Path):
    server = EmbeddedRedis(tmp_path / "redis")
    try:
        url = server.start()
        port, pid = server.port, server.pid

        assert port not in RESERVED_PORTS
        assert url == f"redis://127.0.0.1:{port}/0"
        client = redis.Redis.from_url(url)
        client.set("greeting", "hello")
        assert client.get("greeting") == b"hello"
        client.close()
    finally:
        server.stop()
    assert not port_is_open(port)
    assert _process_gone(pid)
    assert not list((tmp_path / "redis").glob("*.rdb"))  # nothing persisted


def test_given_urls_are_used_and_nothing_starts(tmp_path: Path):
    given = {"DATABASE_URL": "postgres://u@db.example:5432/x", "REDIS_URL": "redis://r:6379/1"}

    with running_services(given, data_dir=tmp_path / "data") as urls:
        assert urls == given

    assert not (tmp_path / "data").exists()


def test_only_the_missing_service_starts(tmp_path: Path):
    given = {"DATABASE_URL": "postgres://u@db.example:5432/x"}

    with running_services(given, data_dir=tmp_path) as urls:
        assert urls["DATABASE_URL"] == given["DATABASE_URL"]
        assert redis.Redis.from_url(urls["REDIS_URL"]).ping()
        port = int(urls["REDIS_URL"].rsplit(":", 1)[1].split("/")[0])

    assert not port_is_open(port)
    assert not (tmp_path / "postgres").exists()


def test_second_launcher_is_refused_or_gets_a_scratch_dir(tmp_path: Path):
    with claim_data_dir(tmp_path) as home:
        assert home == tmp_path
        with (
            pytest.raises(ServiceError, match="in use by another launcher"),
            claim_data_dir(tmp_path),
        ):
            pass
        with claim_data_dir(tmp_path, allow_scratch=True) as scratch:
            assert scratch.parent == tmp_path
            assert scratch.name.startswith("scratch-")
        assert not scratch.exists()


def test_scratch_dir_of_a_dead_launcher_is_swept(tmp_path: Path):
    abandoned = tmp_path / "scratch-abandoned"
    (abandoned / "redis").mkdir(parents=True)

    with claim_data_dir(tmp_path):
        assert not abandoned.exists()


def _launcher(*command: str) -> subprocess.Popen[str]:
    # Without the URLs, so the launcher starts its own servers even under `make test`; the
    # project's .data is then either free (warm start) or held by that `make test` (scratch dir).
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    return subprocess.Popen(
        [sys.executable, "-m", "config.devserver", "exec", "--", *command],
        cwd=PROJECT_DIR,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _ports(launcher_output: str) -> list[int]:
    lines = [line for line in launcher_output.splitlines() if " ready in " in line]
    return [int(line.split("127.0.0.1:")[1].split("/")[0]) for line in lines]


def test_exec_passes_urls_and_exit_code_and_stops_everything():
    script = (
        "import os, sys, psycopg2, redis\n"
        "psycopg2.connect(os.environ['DATABASE_URL']).close()\n"
        "assert redis.Redis.from_url(os.environ['REDIS_URL']).ping()\n"
        "print(os.environ.get('DJANGO_SETTINGS_MODULE'))\n"
        "sys.exit(3)\n"
    )
    launcher = _launcher("python", "-c", script)
    out, err = launcher.communicate(timeout=60)

    assert launcher.returncode == 3, err
    # config/celery.py sets DJANGO_SETTINGS_MODULE in the launcher; it must not reach children.
    assert out.strip() == str(os.environ.get("DJANGO_SETTINGS_MODULE"))
    ports = _ports(err)
    assert len(ports) == 2
    assert not any(port_is_open(port) for port in ports)


def test_exec_on_sigterm_stops_command_and_servers():
    launcher = _launcher("sleep", "60")
    err = ""
    while "Redis ready" not in err:
        line = launcher.stderr.readline()
        assert line, "launcher ended early"
        err += line

    launcher.send_signal(signal.SIGTERM)
    err += launcher.communicate(timeout=30)[1]

    assert launcher.returncode == 128 + signal.SIGTERM, err
    assert not any(port_is_open(port) for port in _ports(err))
