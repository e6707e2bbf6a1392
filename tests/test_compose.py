"""The production compose (docker-compose.yml): every app process reaches PostgreSQL through the
pool, and the processes that write files and those that serve them share one volume for them.
The `citus` profile adds a Citus cluster (a coordinator, two workers, a one-shot setup) that the
same app services are pointed at by variables alone, and leaves the default stack as it was.
Docker is not needed: the file is read as compose reads it, variables filled in."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import urlsplit

import yaml

COMPOSE = Path(__file__).resolve().parents[1] / "docker-compose.yml"
APP_SERVICES = ("migrate", "web", "worker", "beat")
DEFAULT_SERVICES = {"postgres", "pgbouncer", "redis", *APP_SERVICES}
CITUS_NODES = ("citus-coordinator", "citus-worker-1", "citus-worker-2")
CITUS_SERVICES = {*CITUS_NODES, "citus-setup"}
# What the pool connected to before the profile existed: the default must stay exactly this.
PLAIN_UPSTREAM = "postgres://shop:shop@postgres:5432/shop"
SECRETS = {"SECRET_KEY": "s", "FIELD_ENCRYPTION_KEY": "k"}  # required by the file
VARIABLE = re.compile(r"\$\$|\$\{(\w+)(?:(:?[-?])([^}]*))?\}")


def _services() -> dict:
    return yaml.safe_load(COMPOSE.read_text())["services"]


def _interpolate(value: str, environment: dict[str, str]) -> str:
    """`value` as compose fills it in from `environment`: $$, ${NAME}, ${NAME:-default},
    ${NAME-default}, ${NAME:?error} (the forms this file uses)."""

    def fill(match: re.Match) -> str:
        name, operator, argument = match.groups()
        if name is None:
            return "$"
        present = name in environment and (environment[name] != "" or ":" not in (operator or ""))
        if present:
            return environment[name]
        if operator and operator.endswith("?"):
            raise KeyError(f"{name}: {argument}")
        return argument if operator else ""

    return VARIABLE.sub(fill, value)


def _environment(service: dict, variables: dict[str, str]) -> dict[str, str]:
    return {
        key: _interpolate(str(value), variables) for key, value in service["environment"].items()
    }


def _depends_on(service: dict) -> set[str]:
    return set(service.get("depends_on") or ())


def test_every_app_process_connects_through_the_pool():
    services = _services()
    for name in APP_SERVICES:
        assert "@pgbouncer:6432/" in services[name]["environment"]["DATABASE_URL"], name
    pool = services["pgbouncer"]
    assert pool["command"] == ["python", "-m", "config.devserver", "pgbouncer"]
    assert _environment(pool, {})["DATABASE_URL"] == PLAIN_UPSTREAM


def test_web_and_worker_keep_media_and_exports_on_one_volume():
    services = _services()
    mounts = {}
    for name in ("web", "worker"):
        environment, volumes = services[name]["environment"], services[name]["volumes"]
        (mount,) = [volume for volume in volumes if volume.startswith("files:")]
        target = mount.split(":", 1)[1]
        for setting in ("MEDIA_ROOT", "EXPORT_ROOT"):
            assert environment[setting].startswith(target + "/"), (name, setting)
        mounts[name] = (mount, environment["MEDIA_ROOT"], environment["EXPORT_ROOT"])
    assert mounts["web"] == mounts["worker"]
    assert "PROMETHEUS_MULTIPROC_DIR" in services["web"]["environment"]  # uvicorn --workers


def test_the_default_stack_is_unchanged_by_the_citus_profile():
    services = _services()
    default = {name for name, service in services.items() if not service.get("profiles")}
    assert default == DEFAULT_SERVICES
    for name in default:  # `docker compose up` without the profile never needs a Citus service
        assert _depends_on(services[name]) <= DEFAULT_SERVICES, name
    assert _depends_on(services["pgbouncer"]) == {"postgres"}
    for name in APP_SERVICES:
        assert _environment(services[name], SECRETS)["CITUS"] == "0", name
    assert _environment(services["pgbouncer"], SECRETS)["DATABASE_URL"] == PLAIN_UPSTREAM


def test_the_citus_profile_is_a_coordinator_and_two_workers_with_logical_wal():
    services = _services()
    assert {
        n for n, s in services.items() if "citus" in (s.get("profiles") or ())
    } == CITUS_SERVICES
    volumes = set()
    for name in CITUS_NODES:
        node = services[name]
        assert node["profiles"] == ["citus"], name
        assert node["image"].startswith("citusdata/citus:13."), name
        command = node["command"]
        assert "wal_level=logical" in command, name  # shard moves use logical replication
        assert command[command.index("wal_level=logical") - 1] == "-c", name
        assert "pg_isready" in " ".join(node["healthcheck"]["test"]), name
        (volume,) = node["volumes"]
        volumes.add(volume.split(":", 1)[0])
    assert len(volumes) == len(CITUS_NODES)  # a volume of its own each
    assert volumes <= set(yaml.safe_load(COMPOSE.read_text())["volumes"])


def test_citus_setup_makes_the_database_everywhere_and_registers_both_workers_once():
    services = _services()
    setup = services["citus-setup"]
    assert setup["profiles"] == ["citus"] and setup["restart"] == "no"
    assert setup["image"] == services["citus-coordinator"]["image"]
    assert setup["depends_on"] == {name: {"condition": "service_healthy"} for name in CITUS_NODES}
    script = _interpolate(" ".join(setup["entrypoint"] + setup["command"]), {})
    assert "citus_set_coordinator_host('citus-coordinator', 5432)" in script
    for worker in ("citus-worker-1", "citus-worker-2"):
        assert f"citus_add_node('{worker}', 5432) WHERE NOT EXISTS" in script, worker
        assert f"FROM pg_dist_node WHERE nodename = '{worker}' AND nodeport = 5432" in script
    for node in CITUS_NODES:  # Citus does not propagate CREATE DATABASE: every node gets it
        assert node in script.split("for node in ", 1)[1].split(";", 1)[0], node
    assert "CREATE DATABASE shop" in script
    assert "CREATE EXTENSION IF NOT EXISTS citus" in script


def test_the_app_is_pointed_at_the_coordinator_by_variables_alone():
    services = _services()
    variables = {
        **SECRETS,
        "CITUS": "1",
        "DATABASE_HOST": "citus-coordinator",
        "POSTGRES_PASSWORD": "p",
    }
    upstream = urlsplit(_environment(services["pgbouncer"], variables)["DATABASE_URL"])
    assert (upstream.hostname, upstream.port, upstream.password) == ("citus-coordinator", 5432, "p")
    for name in APP_SERVICES:
        environment = _environment(services[name], variables)
        assert environment["CITUS"] == "1", name
        assert "@pgbouncer:6432/" in environment["DATABASE_URL"], name
    # The pool logs in to the coordinator as it did to `postgres`: the same database, user and
    # password on every node, and the nodes reach each other with that password.
    for name in (*CITUS_NODES, "citus-setup"):
        node = _environment(services[name], variables)
        assert node["POSTGRES_DB"] == upstream.path.lstrip("/"), name
        assert node["POSTGRES_USER"] == node["PGUSER"] == upstream.username, name
        assert node["POSTGRES_PASSWORD"] == node["PGPASSWORD"] == upstream.password, name
