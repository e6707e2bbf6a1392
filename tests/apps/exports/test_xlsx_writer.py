"""The XLSX writer on its own (XlsxWriter in constant_memory mode, data rows as XML text), read
back with openpyxl: every column type as a typed cell with its number format, empty values as no
cell, text that stays text whatever it looks like (escaped as Excel escapes it), the styled frozen
header, the native chart sheet over the data, the rows going on to "Data 2" past a sheet's rows,
progress after every row, and memory that does not grow with the rows."""

from __future__ import annotations

import tracemalloc
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from io import BytesIO
from itertools import repeat
from tempfile import TemporaryFile
from zipfile import ZIP_DEFLATED, ZipFile

import xlsxwriter.workbook
from openpyxl import load_workbook

from apps.exports.sources import Chart, Column, Type
from apps.exports.writers import XLSX_MAX_TEXT, write_xlsx

COLUMNS = [
    Column("id", Type.INT),
    Column("name"),
    Column("total", Type.MONEY),
    Column("ratio", Type.DECIMAL),
    Column("at", Type.DATETIME),
    Column("day", Type.DATE),
    Column("vip", Type.BOOL),
    Column("properties", Type.JSON),
]
PLUS_TWO = timezone(timedelta(hours=2))


def _book(columns, rows, **options):
    out = BytesIO()
    write_xlsx(out, columns, rows, lambda written: None, **options)
    return load_workbook(BytesIO(out.getvalue()))


def _values(sheet) -> list[list]:
    return [[cell.value for cell in row] for row in sheet.iter_rows()]


def test_every_type_is_a_typed_cell_with_its_format():
    row = (
        7,
        "Ann",
        Decimal("1234.50"),
        Decimal("0.125"),
        datetime(2026, 3, 1, 16, 5, 0, 250_400, tzinfo=PLUS_TWO),
        date(2026, 3, 1),
        True,
        {"path": "/", "n": 1},
    )
    sheet = _book(COLUMNS, [row])["Data"]
    cells = {header.value: cell for header, cell in zip(sheet[1], sheet[2], strict=True)}
    assert cells["id"].value == 7 and cells["id"].data_type == "n"
    assert cells["name"].value == "Ann" and cells["name"].data_type == "s"
    assert cells["total"].value == 1234.5 and cells["total"].number_format == "#,##0.00"
    assert cells["ratio"].value == 0.125 and cells["ratio"].number_format == "General"
    # UTC, to the millisecond (rounded half up), as a date cell
    assert cells["at"].value == datetime(2026, 3, 1, 14, 5, 0, 250_000)
    assert cells["at"].is_date and cells["at"].number_format == "yyyy-mm-dd hh:mm:ss"
    assert cells["day"].value == datetime(2026, 3, 1) and cells["day"].number_format == "yyyy-mm-dd"
    assert cells["vip"].value is True and cells["vip"].data_type == "b"
    assert cells["properties"].value == '{"n":1,"path":"/"}'


def test_none_and_empty_text_are_no_cell_and_the_rest_of_the_row_stays_in_place():
    rows = [
        (1, None, None, None, None, None, None, None),
        (2, "", Decimal("5.00"), None, None, None, False, None),
    ]
    assert _values(_book(COLUMNS, rows)["Data"])[1:] == [
        [1, None, None, None, None, None, None, None],
        [2, None, 5, None, None, None, False, None],
    ]


def test_text_stays_text_escaped_as_excel_escapes_it():
    texts = [
        '=HYPERLINK("http://x")',  # not a formula
        "0012",  # not a number
        "https://example.com",  # not a link
        "a & b <c> d",
        "  spaced ",
        "tab\tand\nnewline",
        "é 😀",
        "ann_lee@example.com",
    ]
    sheet = _book([Column("text")], [(text,) for text in texts])["Data"]
    cells = [row[0] for row in sheet.iter_rows(min_row=2)]
    assert [cell.value for cell in cells] == texts
    assert {cell.data_type for cell in cells} == {"s"}


def test_control_characters_and_long_text_are_written_as_excel_reads_them():
    """XML cannot hold most control characters: Excel writes them as _xHHHH_, and escapes a
    literal _xHHHH_ as _x005F_xHHHH_ (openpyxl leaves both as they are in the file). Text is cut
    at Excel's 32,767 characters."""
    texts = ["bell\x07", "_x0041_", "x" * (XLSX_MAX_TEXT + 10), "😀" * XLSX_MAX_TEXT]
    sheet = _book([Column("text")], [(text,) for text in texts])["Data"]
    bell, escape, long, wide = (row[0].value for row in sheet.iter_rows(min_row=2))
    assert (bell, escape) == ("bell_x0007_", "_x005F_x0041_")
    assert long == "x" * XLSX_MAX_TEXT
    assert wide == "😀" * (XLSX_MAX_TEXT // 2)  # two UTF-16 units each


def test_the_header_is_styled_and_frozen_with_widths_by_type():
    sheet = _book(COLUMNS, [])["Data"]
    assert _values(sheet) == [[column.name for column in COLUMNS]]
    header = sheet[1]
    assert all(cell.font.b and cell.font.color.rgb.endswith("FFFFFF") for cell in header)
    assert all(cell.fill.fgColor.rgb.endswith("305496") for cell in header)
    assert {cell.fill.fill_type for cell in header} == {"solid"}
    assert sheet.freeze_panes == "A2"
    assert round(sheet.column_dimensions["E"].width) == 23  # a time: 22 characters
    assert round(sheet.column_dimensions["H"].width) == 15  # the name's length and 4


def test_a_chart_sheet_draws_every_other_column_against_the_first():
    columns = [Column("day", Type.DATE), Column("sales", Type.MONEY), Column("orders", Type.INT)]
    rows = [(date(2026, 3, day), Decimal(day), day) for day in range(1, 6)]
    book = _book(columns, rows, chart=Chart(title="Week", line=True))
    assert book.sheetnames == ["Data", "Chart"]
    (chart,) = book["Chart"]._charts
    assert chart.tagname == "lineChart"
    assert [series.tx.strRef.f for series in chart.series] == ["'Data'!$B$1", "'Data'!$C$1"]
    assert [series.val.numRef.f for series in chart.series] == [
        "'Data'!$B$2:$B$6",
        "'Data'!$C$2:$C$6",
    ]
    assert {series.cat.numRef.f for series in chart.series} == {"'Data'!$A$2:$A$6"}
    assert chart.title.tx.rich.p[0].r[0].t == "Week"

    bars = _book(columns, rows, chart=Chart(title="Week", line=False))
    (chart,) = bars["Chart"]._charts
    assert chart.tagname == "barChart" and chart.barDir == "col"  # columns, as openpyxl drew them
    # no rows, or no series: no chart
    assert _book(columns, [], chart=Chart(title="Week", line=True)).sheetnames == ["Data"]
    alone = _book(columns[:1], [row[:1] for row in rows], chart=Chart(title="Week", line=True))
    assert alone.sheetnames == ["Data"]


def test_rows_past_a_sheet_go_on_to_the_next_with_its_own_header():
    columns = [Column("n", Type.INT), Column("m", Type.INT)]
    book = _book(columns, [(n, -n) for n in range(5)], sheet_rows=3, chart=Chart("N", line=True))
    assert book.sheetnames == ["Data", "Data 2", "Data 3", "Chart"]
    assert [_values(book[name]) for name in book.sheetnames[:3]] == [
        [["n", "m"], [0, 0], [1, -1]],
        [["n", "m"], [2, -2], [3, -3]],
        [["n", "m"], [4, -4]],
    ]
    assert {book[name].freeze_panes for name in book.sheetnames[:3]} == {"A2"}
    (chart,) = book["Chart"]._charts  # over the last sheet's rows
    assert chart.series[0].val.numRef.f == "'Data 3'!$B$2:$B$2"
    # exactly full: no empty sheet after
    full = _book(columns, [(n, n) for n in range(4)], sheet_rows=3)
    assert full.sheetnames == ["Data", "Data 2"]


def test_progress_is_told_after_every_row():
    told: list[int] = []
    write_xlsx(BytesIO(), [Column("n", Type.INT)], [(n,) for n in range(5)], told.append)
    assert told == [1, 2, 3, 4, 5]


def test_memory_does_not_grow_with_the_rows():
    """Rows go to the sheet's file as they come: the peak is the same for 5,000 rows as for
    50,000 (openpyxl's shared strings grew with every distinct text)."""
    row = (
        1,
        "someone@example.com",
        Decimal("10.00"),
        Decimal("0.5"),
        datetime(2026, 3, 1, tzinfo=UTC),
        date(2026, 3, 1),
        False,
        {"a": 1},
    )

    def peak(count: int) -> int:
        with TemporaryFile() as out:  # a file, as the task writes (a BytesIO would grow)
            tracemalloc.start()
            try:
                write_xlsx(out, COLUMNS, repeat(row, count), lambda written: None)
                return tracemalloc.get_traced_memory()[1]
            finally:
                tracemalloc.stop()

    small, large = peak(5_000), peak(50_000)
    assert large < small * 1.2, (small, large)  # about 1.1 MB both, as measured


def test_the_package_is_deflated_and_xlsxwriter_is_left_as_it_was():
    out = BytesIO()
    rows = repeat((1, "a@example.com", Decimal("1.00"), None, None, None, True, None), 2000)
    write_xlsx(out, COLUMNS, rows, lambda written: None)
    assert xlsxwriter.workbook.ZipFile is ZipFile  # its ZipFile swapped back after the close
    with ZipFile(BytesIO(out.getvalue())) as package:
        sheet = package.getinfo("xl/worksheets/sheet1.xml")
        assert package.testzip() is None
    assert sheet.compress_type == ZIP_DEFLATED and sheet.compress_size < sheet.file_size / 5
