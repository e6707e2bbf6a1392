"""Make the test database on every node of the Citus cluster at CITUS_URL, as the test run needs
it: Citus does not propagate CREATE DATABASE, so Django's test database (`test_<name>`) is made
here on the coordinator and each worker, with the extension, and the workers are registered in
the coordinator's copy. Idempotent; the test run then keeps it (`--reuse-db`).

    python -m tests.citus.prepare postgres://user[:password]@coordinator:port/name

The workers are reached with the same user and password, at the addresses the coordinator's
pg_dist_node gives."""

from __future__ import annotations

import sys
from urllib.parse import urlsplit, urlunsplit

import psycopg2
from psycopg2 import sql


def _url(url: str, *, host: str | None = None, port: int | None = None, name: str) -> str:
    parts = urlsplit(url)
    auth = parts.netloc.rsplit("@", 1)[0] + "@" if "@" in parts.netloc else ""
    netloc = f"{auth}{host or parts.hostname}:{port or parts.port or 5432}"
    return urlunsplit((parts.scheme, netloc, f"/{name}", parts.query, ""))


def _connect(url: str):
    connection = psycopg2.connect(url)
    connection.autocommit = True
    return connection


def _ensure_database(url: str, name: str) -> None:
    with _connect(_url(url, name="postgres")) as admin, admin.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name])
        if cursor.fetchone() is None:
            cursor.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    with _connect(url) as database, database.cursor() as cursor:
        cursor.execute("CREATE EXTENSION IF NOT EXISTS citus")


def prepare(citus_url: str) -> str:
    """The test database's URL, once it exists on every node with the workers registered."""
    parts = urlsplit(citus_url)
    test_name = f"test_{parts.path.lstrip('/')}"
    with _connect(citus_url) as coordinator, coordinator.cursor() as cursor:
        cursor.execute(
            "SELECT nodename, nodeport FROM pg_dist_node "
            "WHERE noderole = 'primary' AND groupid <> 0 ORDER BY nodeid"
        )
        workers = cursor.fetchall()
    if not workers:
        raise SystemExit(f"{citus_url}: the coordinator has no workers (citus_add_node)")
    test_url = _url(citus_url, name=test_name)
    for host, port in workers:
        _ensure_database(_url(citus_url, host=host, port=port, name=test_name), test_name)
    _ensure_database(test_url, test_name)
    with _connect(test_url) as coordinator, coordinator.cursor() as cursor:
        cursor.execute(
            "SELECT citus_set_coordinator_host(%s, %s)", [parts.hostname, parts.port or 5432]
        )
        for host, port in workers:
            cursor.execute(
                "SELECT 1 FROM pg_dist_node WHERE nodename = %s AND nodeport = %s", [host, port]
            )
            if cursor.fetchone() is None:
                cursor.execute("SELECT citus_add_node(%s, %s)", [host, port])
    return test_url


if __name__ == "__main__":
    if len(sys.argv) != 2:
        raise SystemExit(__doc__)
    print(f"Citus test database ready on every node: {prepare(sys.argv[1])}")
