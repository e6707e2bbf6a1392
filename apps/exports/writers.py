"""Writing rows to a file as they come, in constant memory: CSV (the csv module), XLSX (XlsxWriter
in constant_memory mode, its data rows written as XML text; see below) and JSON (an array written
piece by piece, or NDJSON).

Values: money and other decimals as plain decimals ("1234.50"; numbers with a money format in
XLSX; strings in JSON, exact as the API writes them); times in UTC, ISO 8601 with the offset
("2026-03-01T14:05:00+00:00"; in XLSX, where a cell has no zone, the UTC time rounded to the
millisecond as a date cell: a date cell is a floating-point day count that spreadsheets read to
the millisecond at best, so a time written with its microseconds could read back a hair early
and show the previous second);
days as YYYY-MM-DD (date cells in XLSX); JSON values (event properties) as JSON text in CSV/XLSX."""

from __future__ import annotations

import csv
import json
import re
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from functools import partial
from itertools import chain, islice
from typing import IO, Any
from zipfile import ZipFile

# XlsxWriter has inline types but no py.typed marker: pyproject.toml lists it with the untyped.
import xlsxwriter.workbook
from xlsxwriter.format import Format
from xlsxwriter.utility import xl_col_to_name
from xlsxwriter.workbook import Workbook
from xlsxwriter.worksheet import Worksheet

from apps.exports.sources import Chart, Column, Type

Rows = Iterable[tuple]
Progress = Callable[[int], None]  # told the rows written so far, after each one


def _counted(rows: Rows, progress: Progress) -> Iterator[tuple]:
    for written, row in enumerate(rows, 1):
        yield row
        progress(written)


def _text(value: Any) -> Any:
    return value if value is None or isinstance(value, (str, int, Decimal)) else value.isoformat()


def _json_text(value: Any) -> str | None:
    return None if value is None else json.dumps(value, separators=(",", ":"), sort_keys=True)


# --- CSV -------------------------------------------------------------------------------------------


def write_csv(out: IO[str], columns: list[Column], rows: Rows, progress: Progress) -> None:
    writer = csv.writer(out)
    writer.writerow([column.name for column in columns])
    # Only the columns that need it are converted: str, int and Decimal print as they should.
    convert = [
        (index, _json_text if column.type == Type.JSON else _text)
        for index, column in enumerate(columns)
        if column.type in (Type.DATETIME, Type.DATE, Type.JSON)
    ]
    for row in _counted(rows, progress):
        if not convert:
            writer.writerow(row)
            continue
        cells = list(row)
        for index, make in convert:
            cells[index] = make(cells[index])
        writer.writerow(cells)


# --- JSON ------------------------------------------------------------------------------------------


def _json_value(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, (date, datetime)):
        return value.isoformat()
    return value


def write_json(
    out: IO[str], columns: list[Column], rows: Rows, progress: Progress, *, ndjson: bool
) -> None:
    """NDJSON: every object on a line that ends in a newline, so zero rows is an empty file (a
    lone newline would read as one blank record). Array: `[`, the objects one a line, `]` and a
    newline; zero rows is `[]` and a newline."""
    names = [column.name for column in columns]
    if not ndjson:
        out.write("[")
    separator = ""
    for row in _counted(rows, progress):
        text = json.dumps(
            dict(zip(names, map(_json_value, row), strict=True)), separators=(",", ":")
        )
        if ndjson:
            out.write(text + "\n")
        else:
            out.write(separator + text)
            separator = ",\n"
    if not ndjson:
        out.write("]\n")


# --- XLSX ------------------------------------------------------------------------------------------
#
# XlsxWriter in constant_memory mode: the styles, the header, the frozen pane, the column widths,
# the chart sheet and the package are its own, written through its API; the data rows are the
# hot path (a million orders are 13 million cells) and go to the row file it keeps for a sheet in
# that mode as XML text made by one template per sheet, one `%` a row. Its `write_row` (a call,
# checks, a cell object and an XML element a cell) took about 13 times as long on 50,000 orders,
# hardly faster than openpyxl. `_DataSheet` holds the little that reaches into XlsxWriter's
# internals; the read-back tests (openpyxl) check what it writes.

XLSX_MAX_ROWS = 1_048_576  # Excel's rows per sheet; longer exports go on to another sheet
MONEY_FORMAT = "#,##0.00"
DATETIME_FORMAT = "yyyy-mm-dd hh:mm:ss"
DATE_FORMAT = "yyyy-mm-dd"
HEADER_FORMAT = {"bold": True, "font_color": "#FFFFFF", "bg_color": "#305496", "pattern": 1}
XLSX_OPTIONS = {
    "constant_memory": True,  # a row at a time to a temporary file; strings inline
    # Text stays text, whatever it looks like (no formulas, numbers or links made of it).
    "strings_to_formulas": False,
    "strings_to_numbers": False,
    "strings_to_urls": False,
}
ROWS_PER_WRITE = 1000  # rows of XML joined into one write to the sheet's row file
DEFLATE_LEVEL = 1  # zlib's fastest; see _deflating
XLSX_MAX_TEXT = 32_767  # UTF-16 units in a cell; longer text is cut there (as XlsxWriter does)

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_UNIX_DAY = 25_569  # the serial day of 1970-01-01 (day 0 is 1899-12-30)
_DAY_MS = 86_400_000
_HALF_MS, _MS = timedelta(microseconds=500), timedelta(milliseconds=1)
_DAY_0 = date(1899, 12, 30).toordinal()
_NONE = type(None)
# Text with any of these takes the long way (`_escaped`): markup, the control characters XML
# cannot hold, and `_`, for the `_xHHHH_` that stands for one (Excel's escape, escaped in turn).
_SPECIAL = re.compile(r"[&<>_\x00-\x08\x0b-\x1f]")
_ESCAPE = re.compile(r"(_x[0-9A-Fa-f]{4}_)")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f]")
_SHORT = XLSX_MAX_TEXT // 2  # no text this long can be over the limit


def xlsx_time(value: datetime | None) -> float | None:
    """The serial number of an XLSX date cell for an aware time: the UTC time (cells have no
    zone) rounded half up to the millisecond, which reads back exactly."""
    if value is None:
        return None
    serial = ((value - _EPOCH) + _HALF_MS) // _MS / _DAY_MS + _UNIX_DAY
    # Excel counts a 29 February 1900 that never was: days before March 1900 are one less.
    return serial if serial >= 61 else serial - 1


def _xlsx_day(value: date | None) -> int | None:
    if value is None:
        return None
    serial = value.toordinal() - _DAY_0
    return serial if serial >= 61 else serial - 1


def _xlsx_bool(value: bool | None) -> int | None:
    return None if value is None else int(value)


def _xlsx_text(value: Any) -> str | None:
    """What goes after `<t` in an inline string cell: `>` and the text, escaped; None for no
    cell (None or empty text)."""
    if value.__class__ is not str:
        if value is None:
            return None
        value = str(value)
    if not value:
        return None
    if len(value) <= _SHORT and _SPECIAL.search(value) is None and value.strip() == value:
        return ">" + value
    return _escaped(value)


def _escaped(value: str) -> str:
    """`_xlsx_text` for text that needs it, as XlsxWriter writes it: cut at XLSX_MAX_TEXT UTF-16
    units, markup escaped, control characters as _xHHHH_, white space at an end preserved."""
    if len(value) > _SHORT:
        value = value.encode("utf-16-le")[: XLSX_MAX_TEXT * 2].decode("utf-16-le", "ignore")
    preserve = value.strip() != value
    value = value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    value = _ESCAPE.sub(r"_x005F\1", value)
    value = _CONTROL.sub(lambda found: f"_x{ord(found.group()):04X}_", value)
    return (' xml:space="preserve">' if preserve else ">") + value


def _xlsx_json(value: Any) -> str | None:
    return _xlsx_text(_json_text(value))


CONVERT: dict[str, Callable[[Any], Any]] = {
    Type.DATETIME: xlsx_time,
    Type.DATE: _xlsx_day,
    Type.BOOL: _xlsx_bool,
    Type.TEXT: _xlsx_text,
    Type.JSON: _xlsx_json,
}  # the others (int, money, decimal) are written as Python prints them


class _DataSheet(Worksheet):
    """A data sheet: the header through XlsxWriter's API, then rows as XML text appended to the
    row file of constant_memory mode (where its `write_*` methods put them, a row at a time)."""

    def start(self, columns: list[Column], formats: dict[str, Format], header: Format) -> None:
        self.freeze_panes(1, 0)
        for index, column in enumerate(columns):
            width = 22 if column.type == Type.DATETIME else max(12, len(column.name) + 4)
            self.set_column(index, index, width)
            self.write_string(0, index, column.name, header)
        self._write_single_row(1)  # the header goes to the row file now, before the rows
        self.rows = 0  # written below the header
        self.width = len(columns)
        # A row's template takes its number before each cell and the values between:
        # (number, number, value, number, value, ...), one % for the row.
        self.cells = [_cell_xml(index, column, formats) for index, column in enumerate(columns)]
        self.template = '<row r="%s">' + "".join(self.cells) + "</row>"
        self.converts = [
            (2 + 2 * index, CONVERT[column.type])
            for index, column in enumerate(columns)
            if column.type in CONVERT
        ]

    def append(self, rows: Iterable[tuple]) -> int:
        """Write `rows` below those written so far; how many."""
        row_file, template, converts = self.row_data_fh, self.template, self.converts
        size, first = 2 * self.width + 1, self.rows + 2  # Excel's row numbers start at 1
        number, pending = first, []
        for row in rows:
            values = [number] * size
            values[2::2] = row
            for index, convert in converts:
                values[index] = convert(values[index])
            # A None is a cell left out (what the converters return for empty text too).
            if _NONE in map(type, values):
                pending.append(self._sparse(number, values[2::2]))
            else:
                pending.append(template % tuple(values))
            number += 1
            if len(pending) == ROWS_PER_WRITE:
                row_file.write("".join(pending))
                pending.clear()
        row_file.write("".join(pending))
        if number > first:
            self.rows += number - first
            self._check_dimensions(self.rows, self.width - 1)  # what <dimension> covers
            self.previous_row = self.rows
        return number - first

    def _sparse(self, number: int, values: list[Any]) -> str:
        cells = "".join(
            cell % (number, value)
            for cell, value in zip(self.cells, values, strict=True)
            if value is not None
        )
        return f'<row r="{number}">{cells}</row>'


def _cell_xml(index: int, column: Column, formats: dict[str, Format]) -> str:
    """The XML of a cell of `column`, for `%` with the row's number and the value."""
    where = f'r="{xl_col_to_name(index)}%s"'
    if column.type in (Type.TEXT, Type.JSON):
        return f'<c {where} t="inlineStr"><is><t%s</t></is></c>'
    if column.type == Type.BOOL:
        return f'<c {where} t="b"><v>%s</v></c>'
    style = formats.get(column.type)
    styled = f' s="{style._get_xf_index()}"' if style is not None else ""
    return f"<c {where}{styled}><v>%s</v></c>"


def write_xlsx(
    out: IO[bytes],
    columns: list[Column],
    rows: Rows,
    progress: Progress,
    *,
    chart: Chart | None = None,
    sheet_rows: int = XLSX_MAX_ROWS,
    tmpdir: str | None = None,
) -> None:
    """The rows on a sheet "Data" below a styled, frozen header (on "Data 2", … past `sheet_rows`
    rows a sheet, header included), and `chart` on a chart sheet over the last data sheet.
    XlsxWriter's temporary row files go to `tmpdir` (the system's temporary folder if None)."""
    book = Workbook(out, {**XLSX_OPTIONS, "tmpdir": tmpdir} if tmpdir else XLSX_OPTIONS)
    header = book.add_format(HEADER_FORMAT)
    formats = {
        Type.MONEY: book.add_format({"num_format": MONEY_FORMAT}),
        Type.DATETIME: book.add_format({"num_format": DATETIME_FORMAT}),
        Type.DATE: book.add_format({"num_format": DATE_FORMAT}),
    }

    def data_sheet(title: str) -> _DataSheet:
        sheet = book.add_worksheet(title, worksheet_class=_DataSheet)
        sheet.start(columns, formats, header)
        return sheet

    left: Iterator[tuple] = iter(_counted(rows, progress))
    sheets = 1
    sheet = data_sheet("Data")
    while sheet.append(islice(left, sheet_rows - 1)) == sheet_rows - 1:
        more = next(left, None)  # a row for another sheet, or the end
        if more is None:
            break
        sheets += 1
        sheet, left = data_sheet(f"Data {sheets}"), chain([more], left)
    if chart is not None and sheet.rows and sheet.width > 1:  # points, and a series of them
        _chart_sheet(book, sheet, chart)
    with _deflating(DEFLATE_LEVEL):
        book.close()


_DEFLATE_LOCK = threading.Lock()


@contextmanager
def _deflating(level: int) -> Iterator[None]:
    """XlsxWriter zips the package when the book closes, at zlib's default level (6), and has no
    option for it. A million orders are about 550 MB of sheet XML: level 6 spent 30% of the
    export deflating it (the bench's profile), level 1 deflates it about 3 times as fast, for a
    file about 30% larger. So its module's ZipFile takes `level` for the length of a close (one
    close at a time in a process: the swap is undone whatever happens)."""
    with _DEFLATE_LOCK:
        module = xlsxwriter.workbook
        original = module.ZipFile
        module.ZipFile = partial(ZipFile, compresslevel=level)
        try:
            yield
        finally:
            module.ZipFile = original


def _chart_sheet(book: Workbook, data: _DataSheet, chart: Chart) -> None:
    """A native Excel chart on a sheet of its own, drawn from the data sheet's cells: the first
    column labels the points, every other column is a series named by its header."""
    plot = book.add_chart({"type": "line" if chart.line else "column"})
    sheet, last = "'" + data.name.replace("'", "''") + "'", data.rows + 1
    for index in range(1, data.width):
        column = xl_col_to_name(index)
        plot.add_series(
            {
                "name": f"={sheet}!${column}$1",
                "categories": f"={sheet}!$A$2:$A${last}",
                "values": f"={sheet}!${column}$2:${column}${last}",
            }
        )
    plot.set_title({"name": chart.title})
    book.add_chartsheet("Chart").set_chart(plot)
