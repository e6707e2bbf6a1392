"""Data exports of one tenant: what was asked (kind, format, filters), how far the task got, and
the file it wrote (in the exports storage, apps.exports.files), until it expires."""

from django.db import models
from django.utils import timezone


class ExportKind(models.TextChoices):
    ORDERS = "orders"
    CUSTOMERS = "customers"
    PRODUCTS = "products"
    EVENTS = "events"
    REPORT = "report"


class ExportFormat(models.TextChoices):
    CSV = "csv"
    XLSX = "xlsx"
    JSON = "json"


class JsonLayout(models.TextChoices):
    ARRAY = "array"  # one JSON array of objects
    NDJSON = "ndjson"  # one object per line


class ExportStatus(models.TextChoices):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    EXPIRED = "expired"


FINISHED = frozenset({ExportStatus.DONE, ExportStatus.FAILED, ExportStatus.EXPIRED})


class Export(models.Model):
    Kind, Format, Layout, Status = ExportKind, ExportFormat, JsonLayout, ExportStatus

    kind = models.CharField(max_length=16, choices=ExportKind.choices)
    format = models.CharField(max_length=8, choices=ExportFormat.choices)
    layout = models.CharField(
        max_length=8, choices=JsonLayout.choices, default=JsonLayout.ARRAY
    )  # JSON only
    filters = models.JSONField(
        default=dict, blank=True
    )  # checked and normalised (apps.exports.filters)
    # Contact details masked, as the API shows them to the role that asked (decided when asked).
    redact_contacts = models.BooleanField(default=False)
    status = models.CharField(
        max_length=8, choices=ExportStatus.choices, default=ExportStatus.QUEUED
    )
    rows_done = models.PositiveBigIntegerField(default=0)
    rows_total = models.PositiveBigIntegerField(
        null=True, blank=True
    )  # counted when the task starts
    file = models.CharField(max_length=300, blank=True)  # name in the exports storage
    file_name = models.CharField(max_length=120, blank=True)  # what the download is called
    size = models.PositiveBigIntegerField(null=True, blank=True)  # bytes
    error = models.TextField(blank=True)
    requested_by_id = models.BigIntegerField(null=True, blank=True)  # a User in public: a plain id
    created = models.DateTimeField(default=timezone.now)
    # The run that writes the file (apps.exports.services.run_export): when the export was last
    # queued and started, by which Celery task, and how often a run died before finishing and
    # another started over. A worker can die at any line; these let the next run, or the
    # reconciler, tell a dead run from a live one.
    queued_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    run_id = models.CharField(max_length=64, blank=True)
    restarts = models.PositiveSmallIntegerField(default=0)
    finished = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)  # set when the file is written

    class Meta:
        ordering = ["-created", "-id"]
        indexes = [models.Index(fields=["status", "expires_at"], name="export_status_expires")]

    def __str__(self) -> str:
        return f"{self.kind} {self.format} export {self.pk}"
