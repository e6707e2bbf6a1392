"""The services a launcher gives its children: PostgreSQL and Redis, those of the URLs it was
given or embedded servers of its own."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator, Mapping
from pathlib import Path

from config.devserver import say
from config.devserver.data_dir import DATA_DIR, claim_data_dir
from config.devserver.pgbouncer import EmbeddedPgBouncer
from config.devserver.postgres import EmbeddedPostgres
from config.devserver.redis import EmbeddedRedis
from config.devserver.servers import EmbeddedServer


@contextlib.contextmanager
def running_services(
    environ: Mapping[str, str],
    *,
    data_dir: Path = DATA_DIR,
    allow_scratch: bool = False,
    pooled: bool = False,
) -> Iterator[dict[str, str]]:
    """Yield {"DATABASE_URL": ..., "REDIS_URL": ...}: the URLs `environ` already has, and for
    each one it lacks, an embedded server started here and stopped when the block exits
    (exceptions and KeyboardInterrupt included). `pooled`: DATABASE_URL is a PgBouncer of ours
    in front of that PostgreSQL (config/devserver/pgbouncer.py), and DIRECT_DATABASE_URL the
    PostgreSQL itself."""
    urls = {name: environ[name] for name in ("DATABASE_URL", "REDIS_URL") if environ.get(name)}
    if len(urls) == 2 and not pooled:
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
        if pooled:
            pool = EmbeddedPgBouncer(home / "pgbouncer", urls["DATABASE_URL"])
            stack.callback(_timed_stop, pool)
            urls["DIRECT_DATABASE_URL"] = urls["DATABASE_URL"]
            urls["DATABASE_URL"] = pool.start()
            say(
                f"PgBouncer ({pool.mode} pooling, {pool.pool_size} server connections) at {pool.url}"
            )
        yield urls


def _timed_stop(server: EmbeddedServer) -> None:
    if server.pid is None:  # it never started
        return
    began = time.monotonic()
    server.stop()
    say(f"{server.name} stopped in {time.monotonic() - began:.2f} s")
