"""PgBouncer's configuration (config/devserver/pgbouncer.py): who may connect, to what, pooled how."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

from config.devserver.pgbouncer import configuration


def _settings(ini: str) -> dict[str, str]:
    pairs = (line.split(" = ", 1) for line in ini.splitlines() if " = " in line)
    return {key.strip(): value for key, value in pairs}


def test_with_a_password_clients_must_give_it_and_the_pool_logs_in_with_it():
    ini, userlist = configuration(
        urlsplit("postgres://shop:s3cr%22t%20pw@postgres:5432/shop"),
        Path("/run/pool"),
        "0.0.0.0",
        6432,
        pool_size=15,
    )
    settings = _settings(ini)
    assert settings["auth_type"] == "scram-sha-256"
    assert settings["*"] == "host='postgres' port='5432' user='shop' password='s3cr\"t pw'"
    assert userlist == '"shop" "s3cr""t pw"\n'  # PgBouncer doubles a quote inside a field
    assert settings["pool_mode"] == "session" and settings["default_pool_size"] == "15"
    assert settings["server_reset_query"] == "DISCARD ALL"
    assert (settings["listen_addr"], settings["listen_port"]) == ("0.0.0.0", "6432")


def test_without_a_password_it_trusts_loopback_clients_as_the_embedded_postgresql_does():
    ini, userlist = configuration(
        urlsplit("postgres://postgres@127.0.0.1:5555/shop"), Path("/d"), "127.0.0.1", 7000
    )
    settings = _settings(ini)
    assert settings["auth_type"] == "trust" and settings["listen_addr"] == "127.0.0.1"
    assert settings["*"] == "host='127.0.0.1' port='5555' user='postgres'"
    assert userlist == '"postgres" ""\n'
