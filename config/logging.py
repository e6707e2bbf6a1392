"""JSON log lines that carry the tenant and request id of the work that wrote them, and in a
Celery worker the task and its id."""

import json
import logging
from datetime import UTC, datetime

from celery._state import get_current_task

from tenants.context import current_request_id, current_schema_name


class ContextFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "tenant", None) is None:
            record.tenant = current_schema_name()
        if getattr(record, "request_id", None) is None:
            record.request_id = current_request_id.get()
        task = get_current_task()  # a Celery task running in this thread, if any
        request = getattr(task, "request", None)
        task_id = getattr(request, "id", None) if task is not None else None
        record.__dict__.update(task_id=task_id, task=task.name if task_id else None)
        return True


class OutageAnswered(logging.Filter):
    """On `django.request`: drops its record of a 503 that an outage caused. config.middleware's
    handler500 has logged that one in a line (a warning); Django's record repeats it with the
    whole traceback, for every request while PostgreSQL is away (hundreds a second under load),
    which buries what else the log says. Every other 5xx is kept."""

    def filter(self, record: logging.LogRecord) -> bool:
        from apps.common.outages import is_outage

        error = record.exc_info[1] if record.exc_info else None
        return not (
            getattr(record, "status_code", None) == 503 and error is not None and is_outage(error)
        )


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "tenant": getattr(record, "tenant", None),
            "request_id": getattr(record, "request_id", None),
        }
        if task_id := getattr(record, "task_id", None):  # a worker's line: which task wrote it
            line["task"], line["task_id"] = getattr(record, "task", None), task_id
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str)
