"""The folder the embedded servers keep their data in, and the lock that makes it one launcher's.

`<project>/.data/` unless DEVSERVER_DATA_DIR names another (a test starting `run` beside the
suite's own launcher, which holds `.data/`). Its layout (the folder is git-ignored):

    devserver.lock    held (fcntl) by the launcher that owns postgres/ and redis/
    postgres/         PGDATA, kept between runs so the next start is warm; server.log inside
    redis/            working dir of redis-server (nothing persisted); redis.log inside
    scratch-XXXXXX/   own postgres/ and redis/ of an `exec` started while devserver.lock is held
                      (`make test` next to `make run`); deleted when it ends, or by the next
                      launcher if its owner was killed
    scratch.lock      serialises creating and sweeping scratch dirs
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from config.devserver import PROJECT_DIR, ServiceError, say
from config.devserver.postgres import EmbeddedPostgres
from config.devserver.redis import EmbeddedRedis

DATA_DIR = Path(os.environ.get("DEVSERVER_DATA_DIR") or PROJECT_DIR / ".data")


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
