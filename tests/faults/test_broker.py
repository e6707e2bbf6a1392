"""The broker keeps Celery's messages (issue 15, finding 4): the production stack's Redis writes
an append-only file to a volume, and a task a dead worker left unacknowledged comes back after a
visibility timeout that outlasts the longest task (so no running task is handed out twice)."""

from __future__ import annotations

from pathlib import Path

import yaml
from django.conf import settings

from config.celery import app

COMPOSE = Path(__file__).resolve().parents[2] / "docker-compose.yml"


def _redis_service() -> dict:
    return yaml.safe_load(COMPOSE.read_text())["services"]["redis"]


def test_the_production_broker_keeps_its_messages_across_a_restart():
    redis = _redis_service()
    command = redis["command"]
    assert command[command.index("--appendonly") + 1] == "yes"
    assert command[command.index("--appendfsync") + 1] in ("everysec", "always")
    assert any(
        volume.endswith(":/data") for volume in redis["volumes"]
    )  # the file outlives the container


def test_an_unacknowledged_task_comes_back_only_after_the_longest_task_could_have_ended():
    assert app.conf.task_acks_late and app.conf.task_reject_on_worker_lost
    limit = app.conf.task_time_limit
    assert limit and app.conf.task_soft_time_limit < limit
    timeout = app.conf.broker_transport_options["visibility_timeout"]
    assert timeout == settings.CELERY_VISIBILITY_TIMEOUT > limit
    assert (
        timeout <= 3600
    )  # and a crashed task runs again within the hour Celery's default would take


def test_a_queued_task_survives_a_crash_of_a_broker_run_as_compose_runs_it(tmp_path, db):
    """A real redis-server with the persistence of compose's (its append-only setting), a task
    queued on it, the server SIGKILLed once its fsync (every second) has passed, then started
    again on the same folder: the message is still there, and a worker started after runs it.
    (With compose's old `--appendonly no` the message is gone after the restart.)"""
    import time

    from tenants.tasks import worker_probe
    from tests.faults.processes import CeleryWorkerProcess, RedisProcess
    from tests.servers import database_url

    command = _redis_service()["command"]
    broker = RedisProcess(tmp_path, appendonly=command[command.index("--appendonly") + 1] == "yes")
    broker.start()
    worker = CeleryWorkerProcess(
        broker.url,
        {"DJANGO_SETTINGS_MODULE": "config.settings_test", "DATABASE_URL": database_url()},
        log=tmp_path / "worker.log",
    )
    try:
        with app.connection_for_write(broker.url) as connection:
            worker_probe.apply_async(headers={"_schema_name": "public"}, connection=connection)
        assert worker.pending() == 1
        time.sleep(1.5)  # appendfsync everysec: what a crash may lose is the last second
        broker.kill()
        broker.start()
        assert worker.pending() == 1  # kept across the crash
        worker.start()
        worker.wait_idle(30)  # run, then acknowledged (acks late)
    finally:
        worker.kill()
        broker.kill()
