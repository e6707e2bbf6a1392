"""python -m config.devserver exec -- CMD [ARG ...]
python -m config.devserver run [--multi [--processes N]]
python -m config.devserver pgbouncer

Both start an embedded PostgreSQL and Redis unless DATABASE_URL / REDIS_URL are set (then those
servers are used as they are), hand the URLs to their children in the environment, and stop the
servers they started when they end, however they end.

Both give their children the dev environment: DJANGO_DEV_SERVER=1, which lets the settings fall
back to the dev-only SECRET_KEY and FIELD_ENCRYPTION_KEY when none is set, so a `manage.py`
command run through `exec` signs and decrypts as the `run` server does.

exec  run CMD (`make test`, `make bench`, `python manage.py createsuperuser`) and exit with its
      exit code. DEBUG stays off unless the caller sets it: tests and benches measure the
      settings a deployment has. If another launcher holds .data/ (a `make run` is up), CMD gets
      throwaway servers in .data/scratch-*/ instead; to reach that server's data, give CMD its
      DATABASE_URL and REDIS_URL (the `run` banner prints the whole command).
run   migrate and load the demo tenants (manage.py setup_platform, load_demo), then serve: uvicorn,
      a Celery worker and Celery beat, with DEBUG on. Ctrl-C (or SIGTERM, or any of them dying)
      stops everything; the exit code is non-zero if one died on its own.
      --multi: the production-like run (`make run-multi`): DEBUG off, PgBouncer in front of
      PostgreSQL (config/devserver/pgbouncer.py), --processes uvicorn processes on the one port
      and two Celery workers beside beat, so that nothing works only because it is one process.
pgbouncer  (the production compose's pool) replace this process with PgBouncer on
      PGBOUNCER_LISTEN (0.0.0.0:6432) in front of DATABASE_URL, PGBOUNCER_POOL_SIZE (20) server
      connections; see config/devserver/pgbouncer.py. Needs Debian's pgbouncer (the app image has it).
"""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import FrameType

from config.devserver import PROJECT_DIR, ServiceError, say
from config.devserver.data_dir import DATA_DIR
from config.devserver.pgbouncer import serve_in_foreground
from config.devserver.ports import port_is_open
from config.devserver.processes import spawn, stop_processes
from config.devserver.services import running_services

SETUP_COMMANDS = (("setup_platform",), ("load_demo",))
DEMO_PASSWORD = "demo-pass-123"
DEMO_TENANTS = ("acme", "globex")
# Seconds the app processes get to finish after SIGTERM before they are SIGKILLed.
CHILD_GRACE = 8.0
HANDLED_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class Interrupted(Exception):
    """A signal arrived while the servers were starting."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def _raise_interrupted(signum: int, _frame: FrameType | None) -> None:
    raise Interrupted(signum)


class StopRequests:
    """The signal handler once the servers are up: remember the first signal, and pass SIGTERM
    and SIGHUP on to the foreground command. It never raises, so no cleanup step is cut short
    and a second Ctrl-C cannot leave a server running."""

    def __init__(self) -> None:
        self.signum: int | None = None
        self._foreground: subprocess.Popen[bytes] | None = None
        for signum in HANDLED_SIGNALS:
            signal.signal(signum, self)

    def __call__(self, signum: int, _frame: FrameType | None) -> None:
        if self.signum is None:
            self.signum = signum
            say(f"{signal.Signals(signum).name}: stopping")
        # The terminal sends Ctrl-C to the foreground command itself, as to any shell job.
        if self._foreground is not None and signum != signal.SIGINT:
            self._foreground.send_signal(signum)

    def run_in_foreground(
        self, command: Sequence[str], *, env: Mapping[str, str], cwd: Path | None = None
    ) -> int:
        """Run `command` in the terminal's process group (Ctrl-C, --pdb reach it) until it ends;
        a SIGTERM or SIGHUP the launcher gets, even while it starts, goes on to it."""
        child = spawn(command, env=env, cwd=cwd, new_session=False)
        self._foreground = child
        try:
            if self.signum is not None and self.signum != signal.SIGINT:
                child.send_signal(self.signum)
            return child.wait()
        finally:
            self._foreground = None


def child_environment(urls: Mapping[str, str], *, debug: bool) -> dict[str, str]:
    """Our environment plus the service URLs and DJANGO_DEV_SERVER=1 (the dev-only keys when
    none is set), with the venv's bin/ first on PATH so that `python`, `pytest` and `celery` in
    a command are the venv's even when it is not activated. DEBUG follows `debug` unless our
    environment sets it."""
    env = dict(os.environ)
    env.update(urls)
    if sys.prefix != sys.base_prefix:
        venv_bin = os.path.dirname(sys.executable)
        path = env.get("PATH", os.defpath).split(os.pathsep)
        env["PATH"] = os.pathsep.join([venv_bin, *(entry for entry in path if entry != venv_bin)])
    env["DJANGO_DEV_SERVER"] = "1"
    env.setdefault("DEBUG", "1" if debug else "0")
    return env


def _exit_code(returncode: int) -> int:
    # A child killed by signal N exits the way a shell reports it: 128 + N.
    return returncode if returncode >= 0 else 128 - returncode


def exec_command(command: Sequence[str]) -> int:
    """`exec` mode: run `command` with the services, return its exit code."""
    with running_services(dict(os.environ), allow_scratch=True) as urls:
        stops = StopRequests()
        env = child_environment(urls, debug=False)
        try:
            return _exit_code(stops.run_in_foreground(command, env=env))
        except FileNotFoundError:
            say(f"command not found: {command[0]}")
            return 127


def _set_up(stops: StopRequests, env: Mapping[str, str]) -> bool:
    for command in SETUP_COMMANDS:
        returncode = stops.run_in_foreground(
            [sys.executable, "manage.py", *command], env=env, cwd=PROJECT_DIR
        )
        if stops.signum is not None:
            return False
        if returncode:
            say(
                f"`manage.py {' '.join(command)}` failed with exit code {returncode} (its output "
                "is above); not starting the servers"
            )
            return False
    return True


def _app_commands(port: int, *, processes: int = 1, workers: int = 1) -> dict[str, list[str]]:
    uvicorn = [sys.executable, "-m", "uvicorn", "config.asgi:application"]
    # Django logs each request as a JSON line with tenant and request id (config.middleware).
    uvicorn += ["--host", "127.0.0.1", "--port", str(port), "--no-access-log"]
    # Open subscriptions would hold the shutdown for ever; within CHILD_GRACE, then they are cut.
    uvicorn += ["--timeout-graceful-shutdown", "5"]
    if processes > 1:  # uvicorn's supervisor: the processes accept on one shared socket
        uvicorn += ["--workers", str(processes)]
    celery = [sys.executable, "-m", "celery", "-A", "config"]
    schedule = str(DATA_DIR / "celerybeat-schedule")
    commands = {"uvicorn": uvicorn}
    for number in range(1, workers + 1):
        name = "celery worker" if workers == 1 else f"celery worker {number}"
        commands[name] = [
            *celery, "worker", "-l", "info", "--concurrency", "2", "-n", f"worker{number}@%h"
        ]  # fmt: skip
    commands["celery beat"] = [*celery, "beat", "-l", "info", "--schedule", schedule]
    return commands


def admin_command(urls: Mapping[str, str]) -> str:
    """The shell command that makes a platform admin in the database of the servers at `urls`
    (an `exec` next to a running `run` would otherwise get throwaway servers)."""
    return (
        f"DATABASE_URL={shlex.quote(urls['DATABASE_URL'])} REDIS_URL={shlex.quote(urls['REDIS_URL'])} "
        ".venv/bin/python -m config.devserver exec -- python manage.py createsuperuser"
    )


def _banner(port: int, urls: Mapping[str, str]) -> str:
    tenant_hosts = [f"http://{slug}.localhost:{port}" for slug in DEMO_TENANTS]
    logins = ", ".join(f"owner@{slug}.test" for slug in DEMO_TENANTS)
    return "\n".join(
        [
            "",
            "  Shop analytics dev server is up (Ctrl-C stops everything)",
            f"  platform      http://localhost:{port}/   admin: http://localhost:{port}/admin/",
            *(
                f"  tenant        {host}/graphql/   (GraphiQL in a browser)   login: {host}/login/"
                for host in tenant_hosts
            ),
            f"  logins        {logins}   password: {DEMO_PASSWORD}",
            f"  DATABASE_URL  {urls['DATABASE_URL']}",
            *(
                [f"  (pooled; PostgreSQL itself: {urls['DIRECT_DATABASE_URL']})"]
                if "DIRECT_DATABASE_URL" in urls
                else []
            ),
            f"  REDIS_URL     {urls['REDIS_URL']}",
            f"  admin user    {admin_command(urls)}",
            "",
        ]
    )


def _serve(
    stops: StopRequests,
    apps: Mapping[str, subprocess.Popen[bytes]],
    port: int,
    urls: Mapping[str, str],
) -> int:
    """Wait until a stop signal (exit 0) or until an app process dies (exit 1)."""
    announced = False
    while stops.signum is None:
        for name, process in apps.items():
            if process.poll() is not None:
                say(f"{name} exited with code {process.returncode}; stopping the rest")
                return 1
        if not announced and port_is_open(port):
            print(_banner(port, urls), flush=True)
            announced = True
        time.sleep(0.2)
    return 0


def run_stack(*, multi: bool = False, processes: int = 2) -> int:
    """`run` mode: set up the platform and demo data, then serve until stopped; `multi`: the
    production-like run (see the module docstring)."""
    if not (PROJECT_DIR / "manage.py").exists():
        say(f"no manage.py in {PROJECT_DIR}")
        return 1
    port = int(os.environ.get("PORT", "8000"))
    if port_is_open(port):
        say(f"port {port} is already in use; stop what listens there or set PORT")
        return 1
    DATA_DIR.mkdir(exist_ok=True)  # beat keeps its schedule there even with both URLs set
    with running_services(dict(os.environ), pooled=multi) as urls:
        stops = StopRequests()
        env = child_environment(urls, debug=not multi)
        if multi:  # /metrics adds up every process's counts from here (config/metrics.py)
            counts = DATA_DIR / "prometheus"
            shutil.rmtree(counts, ignore_errors=True)
            counts.mkdir()
            env["PROMETHEUS_MULTIPROC_DIR"] = str(counts)
        if not _set_up(stops, env):
            return 1 if stops.signum is None else 128 + stops.signum
        apps: dict[str, subprocess.Popen[bytes]] = {}
        commands = (
            _app_commands(port, processes=processes, workers=2) if multi else _app_commands(port)
        )
        try:
            for name, command in commands.items():
                if stops.signum is None:
                    apps[name] = spawn(command, env=env, cwd=PROJECT_DIR)
            return _serve(stops, apps, port, urls)
        finally:
            began = time.monotonic()
            stop_processes(apps.values(), [(signal.SIGTERM, CHILD_GRACE)])
            say(f"app processes stopped in {time.monotonic() - began:.2f} s")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m config.devserver",
        description="Run the project with embedded PostgreSQL and Redis (see the module docstring).",
    )
    modes = parser.add_subparsers(dest="mode", required=True)
    exec_parser = modes.add_parser("exec", help="run a command with the services, e.g. pytest")
    exec_parser.add_argument("command", nargs=argparse.REMAINDER)
    run_parser = modes.add_parser("run", help="migrate, load demo data, serve app, worker, beat")
    run_parser.add_argument(
        "--multi", action="store_true", help="production-like: pooled, several processes"
    )
    run_parser.add_argument(
        "--processes", type=int, default=2, help="uvicorn processes with --multi (default 2)"
    )
    modes.add_parser("pgbouncer", help="PgBouncer in front of DATABASE_URL, in the foreground")
    args = parser.parse_args(argv)
    command = getattr(args, "command", [])
    command = command[1:] if command[:1] == ["--"] else command
    if args.mode == "exec" and not command:
        parser.error("exec needs a command: exec -- CMD [ARG ...]")

    # While the servers start, a signal unwinds through every `finally`, stopping those already
    # up (the default SIGTERM action would skip that); the modes then install StopRequests.
    for signum in HANDLED_SIGNALS:
        signal.signal(signum, _raise_interrupted)
    try:
        if args.mode == "run":
            return run_stack(multi=args.multi, processes=args.processes)
        if args.mode == "pgbouncer":
            serve_in_foreground(
                os.environ["DATABASE_URL"],
                os.environ.get("PGBOUNCER_LISTEN", "0.0.0.0:6432"),
                int(os.environ.get("PGBOUNCER_POOL_SIZE", "20")),
                Path(os.environ.get("PGBOUNCER_DIR", "/tmp/pgbouncer")),
            )
        return exec_command(command)
    except ServiceError as error:
        say(f"error: {error}")
        return 1
    except Interrupted as interrupted:
        say(f"{interrupted}: stopped while starting")
        return 128 + interrupted.signum


if __name__ == "__main__":
    sys.exit(main())
