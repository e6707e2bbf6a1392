"""Exporting 1,000,000 orders (apps.exports): `csv_s` for the CSV file (target < 15) and
`csv_peak_rss_mb`, the peak resident memory of the process that wrote it (target < 300), then
`xlsx_s` (and its peak) for the same rows as XLSX, and `xlsx_to_csv_ratio`, xlsx_s / csv_s
(target <= 3: both read the rows from the same source, so the ratio measures the writer). Each
export runs as the Celery task's code does (apps.exports.services.run_export), in a child process
of its own, so its peak is read from resource.getrusage(RUSAGE_CHILDREN) without this process's
memory in it; `idle_rss_mb` is the peak of a child that only starts Django, and `copy_s` the floor
of reading the same rows: one COPY (SELECT …) TO STDOUT into a file by PostgreSQL's own CSV writer (no Python per row).

Then the CSV file is downloaded over HTTP through its signed link from a uvicorn process
(bench/server.py) while the server's resident memory is sampled: `download_s`, and
`download_rss_growth_mb`, the peak during the download minus the server's idle RSS just before it
(`download_idle_rss_mb`; target: growth < 50 MB whatever the file's size, as the file is streamed),
and that growth as a share of the file's size (`download_growth_to_file_ratio`).

    make bench NAME=export            (ORDERS=1000000 by default; XLSX=0 skips the XLSX run)

The tenant is bench/analytics.py's bench-analytics (seeded once, kept between runs). The export
rows and files are removed at the end. Last line: one JSON object."""

from __future__ import annotations

import importlib
import json
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
os.environ.setdefault("SECRET_KEY", "bench-only-secret-key-0123456789abcdefghijklmnopqrstuvwxyz")
os.environ.setdefault("LOG_LEVEL", "WARNING")

import django

django.setup()

import httpx  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402
from django_tenants.utils import tenant_context  # noqa: E402

from apps.exports import files, links, services  # noqa: E402
from apps.exports.models import Export  # noqa: E402
from bench.server import uvicorn_process  # noqa: E402
from tenants.models import Tenant  # noqa: E402

# bench/analytics.py (beside this script) seeds or finds the tenant with a million orders: one
# seeding for both benches.
analytics_bench = importlib.import_module("analytics")
SIZE = analytics_bench.SIZE

MB = 1024  # ru_maxrss is in KiB on Linux


def _child(*args: str) -> tuple[float, dict]:
    """Run this script with `args` in a new process; its own report (seconds, answer)."""
    started = time.perf_counter()
    output = subprocess.run(
        [sys.executable, __file__, *args], check=True, capture_output=True, text=True
    ).stdout
    return time.perf_counter() - started, json.loads(output.strip().splitlines()[-1])


def _peak_mb() -> float:
    """The largest resident set of any child waited for so far."""
    return round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / MB, 1)


def _export(tenant: Tenant, format: str) -> Export:
    with tenant_context(tenant):
        return Export.objects.create(kind=Export.Kind.ORDERS, format=format, requested_by_id=None)


def _copy_floor(tenant: Tenant) -> float:
    """PostgreSQL writing the same columns as CSV, straight into a file."""
    with (
        tenant_context(tenant),
        connection.cursor() as cursor,
        tempfile.TemporaryFile("w+b") as out,
    ):
        started = time.perf_counter()
        cursor.copy_expert(
            "COPY (SELECT o.number, o.placed_at, o.status, o.email, o.currency, o.subtotal, o.discount_total, "
            "o.tax_total, o.shipping_total, o.total, o.refunded_total, l.lines, l.units FROM orders_order o "
            "CROSS JOIN LATERAL (SELECT count(*) AS lines, COALESCE(sum(quantity), 0) AS units FROM orders_orderline "
            "WHERE order_id = o.id) l ORDER BY o.placed_at, o.id) TO STDOUT WITH (FORMAT csv, HEADER)",
            out,
        )
        return time.perf_counter() - started


def _rss_mb(pid: int) -> float:
    """The resident set of process `pid` now (Linux: VmRSS in /proc/<pid>/status, in kB)."""
    with open(f"/proc/{pid}/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS:")) / 1024


def _download(tenant: Tenant, export: Export) -> tuple[float, float, float]:
    """The export's file over HTTP from a uvicorn process: (seconds, the server's idle RSS in MB,
    its peak RSS during the download minus that idle figure)."""
    host = tenant.domains.get(is_primary=True).domain
    with (
        uvicorn_process("--no-access-log") as (port, server),
        httpx.Client(
            base_url=f"http://127.0.0.1:{port}", headers={"Host": host}, timeout=600
        ) as client,
    ):
        # Warm the path a download takes (tenant, middleware, the view): a refused link (logged as
        # "Forbidden") sends no file.
        assert client.get(f"/exports/{export.pk}/download?sig=x").status_code == 403
        idle = peak = _rss_mb(server.pid)
        done = threading.Event()

        def sample() -> None:
            nonlocal peak
            while not done.wait(0.005):
                peak = max(peak, _rss_mb(server.pid))

        sampler = threading.Thread(target=sample)
        sampler.start()
        started, received = time.perf_counter(), 0
        try:
            with client.stream("GET", links.path(tenant.schema_name, export.pk)) as response:
                assert response.status_code == 200, response.status_code
                for chunk in response.iter_raw():
                    received += len(chunk)
        finally:
            done.set()
            sampler.join()
        elapsed = time.perf_counter() - started
    assert received == export.size, (received, export.size)
    return elapsed, idle, peak - idle


def run_child(schema: str, export_id: str) -> None:
    """In the child: the task's work for one export, and what it wrote."""
    if export_id == "idle":
        print(json.dumps({}))
        return
    tenant = Tenant.objects.get(schema_name=schema)
    with tenant_context(tenant):
        connection.set_tenant(tenant)
        started = time.perf_counter()
        status = services.run_export(export_id=int(export_id))
        elapsed = time.perf_counter() - started
        export = Export.objects.get(pk=int(export_id))
    print(
        json.dumps({"status": status, "s": elapsed, "rows": export.rows_done, "size": export.size})
    )


def main() -> None:
    call_command("setup_platform", verbosity=0)
    tenant, _ = analytics_bench._tenant()
    made: list[Export] = []
    try:
        _child(tenant.schema_name, "idle")
        idle = _peak_mb()
        csv = _export(tenant, Export.Format.CSV)
        made.append(csv)
        _, answer = _child(tenant.schema_name, str(csv.pk))
        assert answer["status"] == "done" and answer["rows"] == SIZE.orders, answer
        csv_s, csv_peak, csv_mb = answer["s"], _peak_mb(), answer["size"] / 1e6
        # Right after the CSV, before the HTTP server (a child too) is in the peak.
        xlsx_s = xlsx_peak = None
        if os.environ.get("XLSX", "1") != "0":
            xlsx = _export(tenant, Export.Format.XLSX)
            made.append(xlsx)
            _, answer = _child(tenant.schema_name, str(xlsx.pk))
            assert answer["status"] == "done" and answer["rows"] == SIZE.orders, answer
            xlsx_s, xlsx_peak = answer["s"], _peak_mb()
        with tenant_context(tenant):
            csv.refresh_from_db()
        download_s, server_idle, download_growth = _download(tenant, csv)
        copy_s = _copy_floor(tenant)
    finally:
        with tenant_context(tenant):
            for export in made:
                export.refresh_from_db()
                files.delete(export.file)
                export.delete()
    print(
        f"{SIZE.orders} orders as CSV ({csv_mb:.0f} MB) in {csv_s:.1f} s, peak RSS {csv_peak} MB "
        f"(idle Django {idle} MB); COPY floor {copy_s:.1f} s; XLSX {xlsx_s and round(xlsx_s, 1)} s; "
        f"downloaded over HTTP in {download_s:.1f} s, server RSS +{download_growth:.1f} MB over {server_idle:.0f} MB"
    )
    print(
        json.dumps(
            {
                "bench": "export",
                "orders": SIZE.orders,
                "csv_s": round(csv_s, 2),
                "csv_peak_rss_mb": csv_peak,
                "csv_size_mb": round(csv_mb, 1),
                "copy_s": round(copy_s, 2),
                "csv_to_copy_ratio": round(csv_s / copy_s, 1),
                "idle_rss_mb": idle,
                "xlsx_s": xlsx_s and round(xlsx_s, 2),
                "xlsx_peak_rss_mb": xlsx_peak,
                "xlsx_to_csv_ratio": xlsx_s and round(xlsx_s / csv_s, 2),
                "download_s": round(download_s, 2),
                "download_rss_growth_mb": round(download_growth, 1),
                "download_idle_rss_mb": round(server_idle, 1),
                # what the server held at most, as a share of the file: ~1 when it reads the file whole
                "download_growth_to_file_ratio": round(download_growth * 2**20 / csv.size, 3),
            }
        )
    )


if __name__ == "__main__":
    if len(sys.argv) == 3:
        run_child(sys.argv[1], sys.argv[2])
    else:
        main()
