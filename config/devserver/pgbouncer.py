"""PgBouncer (Debian's `pgbouncer` package) in front of a PostgreSQL: the pooled path.

Session mode, chosen by measurement (bench/pool.py): a client connection, which Django opens per
request (CONN_MAX_AGE=0), takes a server connection from the pool for its life, and PgBouncer
runs `DISCARD ALL` before the next client gets it. A new client connection starts with a fresh
search_path, and our backend sets the tenant's before its first query (django-tenants forgets the
schema it set when a connection closes), so no tenant carries over. Server-side cursors, advisory
locks and SET work as on a direct connection, which transaction mode would break (search_path
would not follow a client from one transaction to the next: PgBouncer 1.18 cannot track it).
The server connections stay at most `pool_size` whatever the number of clients; the others wait.
"""

from __future__ import annotations

import functools
import os
import shutil
import signal
import socket
import subprocess
from pathlib import Path
from urllib.parse import SplitResult, unquote, urlsplit, urlunsplit

from config.devserver import ServiceError
from config.devserver.ports import HOST
from config.devserver.postgres import let_others_traverse, postgres_system_user
from config.devserver.servers import EmbeddedServer

PGBOUNCER_PATHS = ("/usr/sbin/pgbouncer", "/usr/bin/pgbouncer")
POOL_SIZE = 20  # server connections per database and user


@functools.cache
def pgbouncer_path() -> Path | None:
    """Debian's pgbouncer binary, or None when it is not installed."""
    found = shutil.which("pgbouncer")
    candidates = [found] if found else []
    candidates += [path for path in PGBOUNCER_PATHS if os.access(path, os.X_OK)]
    return Path(candidates[0]) if candidates else None


def _ini_value(value: str) -> str:
    # libpq connection-string quoting, for the [databases] line.
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def configuration(
    upstream: SplitResult,
    data_dir: Path,
    listen_host: str,
    port: int,
    *,
    pool_size: int = POOL_SIZE,
    mode: str = "session",
) -> tuple[str, str]:
    """pgbouncer.ini and userlist.txt (both kept in `data_dir`) for a PgBouncer on
    listen_host:port in front of `upstream`, for its user. With a password in the upstream URL,
    clients give the same one (scram-sha-256; the userlist holds it, so keep it private); without
    one, as for the embedded PostgreSQL on loopback, they give none (trust)."""
    user = unquote(upstream.username or "postgres")
    target = {"host": upstream.hostname or HOST, "port": str(upstream.port or 5432), "user": user}
    password = unquote(upstream.password or "")
    if password:
        target["password"] = password
    settings = {
        "listen_addr": listen_host,
        "listen_port": str(port),
        "unix_socket_dir": "",  # TCP only, like the embedded PostgreSQL
        "auth_type": "scram-sha-256" if password else "trust",
        "auth_file": str(data_dir / "userlist.txt"),
        "admin_users": user,
        "pool_mode": mode,
        "default_pool_size": str(pool_size),
        "max_client_conn": "2000",
        "server_reset_query": "DISCARD ALL",
        # Django and psycopg2 send these at connect; PgBouncer would refuse the client.
        "ignore_startup_parameters": "extra_float_digits,options",
        # A server connection that died (PostgreSQL restarted) is noticed before reuse.
        "server_check_query": "select 1",
        "server_check_delay": "5",
        "log_connections": "0",  # one line per request otherwise
        "log_disconnections": "0",
        "logfile": "",  # stdout
        "pidfile": str(data_dir / "pgbouncer.pid"),
    }
    line = " ".join(f"{key}={_ini_value(value)}" for key, value in target.items())
    ini = ["[databases]", f"* = {line}", "", "[pgbouncer]"]
    ini += [f"{key} = {value}" for key, value in settings.items()]
    quoted = password.replace('"', '""')
    return "\n".join(ini) + "\n", f'"{user}" "{quoted}"\n'


def serve_in_foreground(upstream_url: str, listen: str, pool_size: int, data_dir: Path) -> None:
    """Replace this process with PgBouncer on `listen` (host:port) in front of `upstream_url`:
    the production compose's `pgbouncer` service (the app image has Debian's pgbouncer)."""
    binary = pgbouncer_path()
    if binary is None:
        raise ServiceError("pgbouncer is not installed (Debian: apt-get install pgbouncer)")
    host, _, port = listen.rpartition(":")
    data_dir.mkdir(parents=True, exist_ok=True)
    ini, userlist = configuration(
        urlsplit(upstream_url), data_dir, host or "0.0.0.0", int(port), pool_size=pool_size
    )
    secret = data_dir / "userlist.txt"
    secret.write_text(userlist)
    secret.chmod(0o600)
    (data_dir / "pgbouncer.ini").write_text(ini)
    os.execv(binary, [str(binary), str(data_dir / "pgbouncer.ini")])


class EmbeddedPgBouncer(EmbeddedServer):
    """PgBouncer on a free port of 127.0.0.1 in front of the PostgreSQL at `upstream_url`.

    Every database of the upstream is reachable (a `*` entry: the test database too), as the
    upstream URL's user; clients connect without a password (trust: it listens on loopback only,
    as the embedded PostgreSQL does). The upstream's user is also PgBouncer's admin, so
    `SHOW POOLS` on the `pgbouncer` database reports the server connections.
    """

    name = "PgBouncer"
    # SIGTERM is PgBouncer's immediate shutdown (SIGINT would wait for every client).
    stop_steps = ((signal.SIGTERM, 5.0),)
    log_name = "pgbouncer.log"

    def __init__(
        self,
        data_dir: Path,
        upstream_url: str,
        *,
        pool_size: int = POOL_SIZE,
        mode: str = "session",
    ) -> None:
        super().__init__(data_dir)
        self.upstream = urlsplit(upstream_url)
        self.pool_size = pool_size
        self.mode = mode

    @property
    def user(self) -> str:
        return unquote(self.upstream.username or "postgres")

    @property
    def url(self) -> str:
        """The upstream URL with PgBouncer's address and no password."""
        return urlunsplit(self.upstream._replace(netloc=f"{self.user}@{HOST}:{self.port}"))

    def start(self) -> str:
        """Write the configuration, start PgBouncer and return its URL."""
        binary = pgbouncer_path()
        if binary is None:
            raise ServiceError(
                "pgbouncer is not installed (Debian: apt-get install pgbouncer); the pooled "
                "run needs it"
            )
        self.binary = binary
        self.data_dir.mkdir(parents=True, exist_ok=True)
        system_user = postgres_system_user()  # PgBouncer refuses to run as root too
        if system_user is not None:
            shutil.chown(self.data_dir, system_user)
            let_others_traverse(self.data_dir)
        self._start_on_free_port(user=system_user)
        return self.url

    def _config(self, port: int) -> str:
        ini, userlist = configuration(
            self.upstream, self.data_dir, HOST, port, pool_size=self.pool_size, mode=self.mode
        )
        (self.data_dir / "userlist.txt").write_text(userlist)
        return ini

    def _command(self, port: int) -> list[str | os.PathLike[str]]:
        ini = self.data_dir / "pgbouncer.ini"
        ini.write_text(self._config(port))
        ini.chmod(0o644)
        return [self.binary, ini]

    def _ready(self, process: subprocess.Popen[bytes], port: int) -> bool:
        try:
            with socket.create_connection((HOST, port), timeout=0.5):
                return True
        except OSError:
            return False
