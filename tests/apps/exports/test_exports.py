"""Exports written by the task's code (Celery eager, run as each test's writes queue it on
commit): every kind in every format read back with its format's reader and compared with the
database; formatting of XLSX (header, frozen pane, typed cells, a chart sheet for reports);
filters, masked contacts, progress on the live bus, coded refusals, and the expiry clean-up."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from io import BytesIO

import pytest
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.utils import timezone
from django_tenants.utils import tenant_context
from openpyxl import load_workbook

from apps.analytics import engine
from apps.analytics import reports as analytics_reports
from apps.analytics.definitions import query, today_in
from apps.analytics.models import Event
from apps.audit.models import AuditEntry
from apps.catalog.models import Variant
from apps.common.errors import UserError
from apps.customers.models import Customer
from apps.exports import files, services, tasks
from apps.exports.models import Export
from apps.exports.sources import ORDER_COLUMNS
from apps.live import bus
from apps.orders import services as order_services
from apps.orders.models import Order
from tests.apps.exports.files import content, read
from tests.apps.orders import shop
from tests.conftest import gid

FORMATS = [("csv", "array"), ("xlsx", "array"), ("json", "array"), ("json", "ndjson")]
KINDS = ["orders", "customers", "products", "events", "report"]
DEFINITION = {"metrics": ["gross_sales", "orders"], "dimension": "time", "range": "last_7_days"}


@pytest.fixture
def data(alpha):
    """Two orders (one cancelled), customers, two variants, three events, in alpha."""
    with tenant_context(alpha.tenant):
        hat, scarf = (
            shop.variant("15.00", stock=20, name="Hat"),
            shop.variant("4.25", stock=20, name="Scarf"),
        )
        first = shop.place(alpha, [(hat, 2), (scarf, 1)], email="ann@example.com")
        second = shop.place(alpha, [(scarf, 3)], email="bob@example.com")
        order_services.cancel_order(actor=shop.actor(alpha), order_id=second.pk)
        Customer.objects.create(email="cid@example.com", phone="+441234567890", tags=["vip"])
        now = timezone.now()
        for minutes, kind in ((3, "page_viewed"), (2, "product_viewed"), (1, "page_viewed")):
            Event.objects.create(
                type=kind,
                time=now - timedelta(minutes=minutes),
                session_id="s-1",
                properties={"path": f"/{kind}"},
            )
        yield {"orders": [first.pk, second.pk]}


def export(
    fixture,
    tasks_on_commit,
    kind: str,
    format: str = "csv",
    layout: str = "array",
    *,
    role: str = "owner",
    filters=None,
) -> Export:
    with tenant_context(fixture.tenant):
        made = services.create_export(
            actor=shop.actor(fixture, role),
            tenant=fixture.tenant,
            kind=kind,
            format=format,
            layout=layout,
            filters=filters,
        )
        tasks_on_commit()
        made.refresh_from_db()
    return made


def _money(value) -> Decimal:
    return Decimal(str(value))


def expected(kind: str, tenant) -> dict:
    """What each kind's rows must hold, keyed by a column that names the row."""
    if kind == "orders":
        return {str(o.number): (o.total, o.status, o.email) for o in Order.objects.all()}
    if kind == "customers":
        return {c.email: (c.total_spent, c.orders_count) for c in Customer.objects.all()}
    if kind == "products":
        return {v.sku: (v.price, v.stock) for v in Variant.objects.all()}
    if kind == "events":
        return {_to_millisecond(e.time): (e.type, e.properties) for e in Event.objects.all()}
    result = engine.run(
        tenant,
        query(analytics_reports.definitions.normalise(DEFINITION, tenant=tenant), tenant=tenant),
    )
    return {row.key: (row.values["gross_sales"], row.values["orders"]) for row in result.rows}


def _to_millisecond(value: datetime) -> str:
    """What every format promises of a time, to the millisecond: XLSX rounds half up to it when it
    writes; CSV and JSON keep the microseconds, and are rounded the same way here."""
    utc = value.astimezone(UTC).replace(tzinfo=None)
    milliseconds, rest = divmod(utc.microsecond, 1000)
    rounded = utc.replace(microsecond=0) + timedelta(milliseconds=milliseconds + (rest >= 500))
    return rounded.isoformat(timespec="milliseconds")


def _time_key(value) -> str:
    if isinstance(value, datetime):  # XLSX: a date cell, in UTC, already to the millisecond
        assert value.microsecond % 1000 == 0
        return value.isoformat(timespec="milliseconds")
    return _to_millisecond(datetime.fromisoformat(value))


def found(kind: str, rows: list[dict]) -> dict:
    """The same, as read back from the file (CSV gives text, XLSX numbers and dates, JSON both)."""
    if kind == "orders":
        return {
            str(row["number"]): (_money(row["total"]), row["status"], row["email"]) for row in rows
        }
    if kind == "customers":
        return {
            row["email"]: (_money(row["total_spent"]), int(row["orders_count"])) for row in rows
        }
    if kind == "products":
        return {row["sku"]: (_money(row["price"]), int(row["stock"])) for row in rows}
    if kind == "events":
        return {
            _time_key(row["time"]): (
                row["type"],
                row["properties"]
                if isinstance(row["properties"], dict)
                else json.loads(row["properties"]),
            )
            for row in rows
        }
    return {_day(row["time"]): (_money(row["gross_sales"]), int(row["orders"])) for row in rows}


def _day(value) -> str:
    return value.date().isoformat() if isinstance(value, datetime) else value


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(("format", "layout"), FORMATS, ids=["csv", "xlsx", "json", "ndjson"])
def test_each_kind_in_each_format_reads_back_as_the_data(
    alpha, data, tasks_on_commit, kind, format, layout
):
    filters = {"definition": DEFINITION} if kind == "report" else None
    made = export(alpha, tasks_on_commit, kind, format, layout, filters=filters)
    assert (made.status, made.error) == ("done", "")
    rows = read(made)
    with tenant_context(alpha.tenant):
        want = expected(kind, alpha.tenant)
    assert want and found(kind, rows) == want
    assert made.rows_done == made.rows_total == len(rows)
    assert made.size == len(content(made)) and made.file.startswith("alpha/")
    assert made.file_name.endswith("." + ("ndjson" if layout == "ndjson" else format))
    assert made.expires_at > timezone.now()


def test_csv_writes_plain_decimals_and_utc_times(alpha, data, tasks_on_commit):
    text = content(export(alpha, tasks_on_commit, "orders")).decode()
    header, first = text.splitlines()[:2]
    assert (
        header
        == "number,placed_at,status,email,currency,subtotal,discount,tax,shipping,total,refunded_total,lines,units"
    )
    with tenant_context(alpha.tenant):
        order = Order.objects.order_by("placed_at", "id").first()
    cells = first.split(",")
    assert cells[1] == order.placed_at.astimezone(UTC).isoformat() and cells[1].endswith("+00:00")
    assert cells[9] == str(order.total) and cells[11:] == ["2", "3"]


def test_xlsx_has_a_formatted_header_and_typed_cells(alpha, data, tasks_on_commit):
    book = load_workbook(BytesIO(content(export(alpha, tasks_on_commit, "orders", "xlsx"))))
    sheet = book["Data"]
    header, row = sheet[1], sheet[2]
    assert all(cell.font.b for cell in header) and header[0].fill.fgColor.rgb.endswith("305496")
    assert sheet.freeze_panes == "A2"
    by_name = {cell.value: value for cell, value in zip(header, row, strict=True)}
    assert isinstance(by_name["placed_at"].value, datetime) and by_name["placed_at"].is_date
    assert (
        isinstance(by_name["total"].value, (int, float))
        and by_name["total"].number_format == "#,##0.00"
    )
    assert isinstance(by_name["number"].value, int)
    assert book.chartsheets == []  # a chart for reports only


def test_report_xlsx_has_a_native_chart_sheet_over_the_data(alpha, data, tasks_on_commit):
    with tenant_context(alpha.tenant):
        report = analytics_reports.create_report(
            actor=shop.actor(alpha, "analyst"),
            tenant=alpha.tenant,
            name="Week",
            definition=DEFINITION,
        )
    made = export(
        alpha,
        tasks_on_commit,
        "report",
        "xlsx",
        filters={"report": gid(alpha, "Report", report.pk)},
    )
    book = load_workbook(BytesIO(content(made)))
    assert book.sheetnames == ["Data", "Chart"]
    (chart,) = book["Chart"]._charts
    assert chart.tagname == "lineChart" and len(chart.series) == 2
    assert chart.series[0].val.numRef.f == "'Data'!$B$2:$B$8"  # 7 days, gross sales
    assert made.filters["name"] == "Week"


def test_filters_narrow_the_rows(alpha, data, tasks_on_commit):
    rows = read(export(alpha, tasks_on_commit, "orders", filters={"statuses": ["cancelled"]}))
    assert [row["status"] for row in rows] == ["cancelled"]
    today = today_in(alpha.tenant)
    past = (today - timedelta(days=10)).isoformat()
    assert (
        read(
            export(alpha, tasks_on_commit, "orders", filters={"placed": {"from": past, "to": past}})
        )
        == []
    )
    assert (
        len(
            read(
                export(
                    alpha,
                    tasks_on_commit,
                    "orders",
                    filters={"placed": {"from": today.isoformat(), "to": today.isoformat()}},
                )
            )
        )
        == 2
    )
    assert {
        row["type"]
        for row in read(
            export(alpha, tasks_on_commit, "events", filters={"types": ["product_viewed"]})
        )
    } == {"product_viewed"}
    assert [
        row["email"]
        for row in read(export(alpha, tasks_on_commit, "customers", filters={"tags": ["VIP"]}))
    ] == ["cid@example.com"]


@pytest.mark.parametrize(("format", "layout"), FORMATS, ids=["csv", "xlsx", "json", "ndjson"])
def test_an_export_that_matches_nothing_is_an_empty_file_of_its_format(
    alpha, data, tasks_on_commit, format, layout
):
    """Zero rows: NDJSON is zero lines (0 bytes), a JSON array `[]`, CSV and XLSX just the header."""
    made = export(
        alpha, tasks_on_commit, "orders", format, layout, filters={"statuses": ["refunded"]}
    )
    assert (made.status, made.error, made.rows_done, made.rows_total) == ("done", "", 0, 0)
    data = content(made)
    assert made.size == len(data)
    if layout == "ndjson":
        assert data == b""
    elif format == "json":
        assert data == b"[]\n" and json.loads(data) == []
    elif format == "csv":
        assert data.decode() == ",".join(column.name for column in ORDER_COLUMNS) + "\r\n"
    else:
        sheet = load_workbook(BytesIO(data))["Data"]
        assert [[cell.value for cell in row] for row in sheet.iter_rows()] == [
            [column.name for column in ORDER_COLUMNS]
        ]
    assert read(made) == []


def test_analysts_get_contacts_masked_as_the_api_shows_them(alpha, data, tasks_on_commit):
    orders = read(export(alpha, tasks_on_commit, "orders", role="analyst"))
    assert sorted(row["email"] for row in orders) == ["a***@example.com", "b***@example.com"]
    customers = {
        row["email"]: row
        for row in read(export(alpha, tasks_on_commit, "customers", "json", role="analyst"))
    }
    assert customers["c***@example.com"]["phone"] == "+**********90"
    staff = read(export(alpha, tasks_on_commit, "orders", role="staff"))
    assert sorted(row["email"] for row in staff) == ["ann@example.com", "bob@example.com"]


@pytest.mark.parametrize(
    ("kind", "format", "filters", "field", "code"),
    [
        ("orders", "csv", {"shipped": {}}, "filters.shipped", "UNKNOWN_KEY"),
        ("orders", "csv", {"statuses": ["lost"]}, "filters.statuses", "INVALID"),
        (
            "orders",
            "csv",
            {"placed": {"from": "2026-02-30", "to": "2026-03-01"}},
            "filters.placed.from",
            "BAD_RANGE",
        ),
        (
            "orders",
            "csv",
            {"placed": {"from": "2026-03-02", "to": "2026-03-01"}},
            "filters.placed.from",
            "BAD_RANGE",
        ),
        ("customers", "csv", {"acceptsMarketing": "yes"}, "filters.acceptsMarketing", "INVALID"),
        ("events", "csv", "all", "filters", "INVALID"),
        ("report", "xlsx", {}, "filters.report", "REQUIRED"),
        ("report", "xlsx", {"report": "UNKNOWN"}, "filters.report", "NOT_FOUND"),
        (
            "report",
            "xlsx",
            {"definition": {"metrics": ["nope"], "range": "today"}},
            "filters.definition.metrics",
            "UNKNOWN_METRIC",
        ),
        ("orders", "pdf", None, "format", "INVALID"),
    ],
)
def test_bad_input_is_refused_with_a_code_and_nothing_is_made(
    alpha, kind, format, filters, field, code
):
    if filters == {"report": "UNKNOWN"}:
        filters = {"report": gid(alpha, "Report", 99999)}
    with tenant_context(alpha.tenant), pytest.raises(UserError) as refused:
        services.create_export(
            actor=shop.actor(alpha, "owner"),
            tenant=alpha.tenant,
            kind=kind,
            format=format,
            filters=filters,
        )
    assert (refused.value.field, refused.value.code) == (field, code), refused.value.message
    with tenant_context(alpha.tenant):
        assert not Export.objects.exists()


def test_a_json_layout_is_for_json_only_and_viewers_may_not_export(alpha):
    with tenant_context(alpha.tenant):
        with pytest.raises(UserError) as refused:
            services.create_export(
                actor=shop.actor(alpha, "owner"),
                tenant=alpha.tenant,
                kind="orders",
                format="csv",
                layout="ndjson",
            )
        assert refused.value.field == "layout"
        with pytest.raises(UserError) as refused:
            services.create_export(
                actor=shop.actor(alpha, "viewer"), tenant=alpha.tenant, kind="orders", format="csv"
            )
        assert refused.value.code == "PERMISSION_DENIED"


def test_asking_is_audited(alpha, data, tasks_on_commit):
    made = export(alpha, tasks_on_commit, "orders", filters={"statuses": ["paid"]})
    with tenant_context(alpha.tenant):
        entry = AuditEntry.objects.get(action="export.create")
    assert (entry.object_id, entry.changes["filters"]) == (
        str(made.pk),
        {"placed": None, "statuses": ["paid"]},
    )


def test_progress_is_published_on_the_tenants_exports_topic(
    alpha, data, tasks_on_commit, monkeypatch
):
    monkeypatch.setattr(services, "PROGRESS_EVERY", 1)
    layer, group = get_channel_layer(), bus.group("alpha", "exports")

    async def listen() -> str:
        channel = await layer.new_channel()
        await layer.group_add(group, channel)
        return channel

    async def drain(channel: str, count: int) -> list[dict]:
        received = [(await layer.receive(channel))["payload"] for _ in range(count)]
        await layer.group_discard(group, channel)
        return received

    channel = async_to_sync(listen)()
    made = export(alpha, tasks_on_commit, "orders")
    received = async_to_sync(drain)(channel, 4)
    assert received == [
        {"export": made.pk, "status": "running", "rows": 0, "total": 2},
        {"export": made.pk, "status": "running", "rows": 1, "total": 2},
        {"export": made.pk, "status": "running", "rows": 2, "total": 2},
        {"export": made.pk, "status": "done", "rows": 2, "total": 2},
    ]


def test_a_finished_export_is_not_written_again(alpha, data, tasks_on_commit):
    made = export(alpha, tasks_on_commit, "orders")
    with tenant_context(alpha.tenant):
        assert services.run_export(export_id=made.pk) == "done"
        made2 = Export.objects.get(pk=made.pk)
    assert made2.file == made.file


def test_expired_files_are_deleted_and_marked_by_the_clean_up(alpha, beta, data, tasks_on_commit):
    old, fresh = (
        export(alpha, tasks_on_commit, "orders"),
        export(alpha, tasks_on_commit, "products"),
    )
    theirs = export(beta, tasks_on_commit, "products")
    for fixture, made in ((alpha, old), (beta, theirs)):
        with tenant_context(fixture.tenant):
            Export.objects.filter(pk=made.pk).update(
                expires_at=timezone.now() - timedelta(seconds=1)
            )
    with tenant_context(alpha.tenant):
        assert tasks.expire_exports.apply().get() == 1  # the task, in alpha's schema
        old.refresh_from_db()
        fresh.refresh_from_db()
    assert (old.status, old.file, old.size) == ("expired", "", None)
    assert fresh.status == "done" and files.storage().exists(fresh.file)
    assert not files.storage().exists(f"alpha/{old.file_name}")
    with tenant_context(beta.tenant):
        theirs.refresh_from_db()
    assert theirs.status == "done" and files.storage().exists(
        theirs.file
    )  # beta's own run deletes it
