"""Writing rows to a file as they come, in constant memory: CSV (the csv module), XLSX (openpyxl's
write-only mode) and JSON (an array written piece by piece, or NDJSON).

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
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import IO, Any

from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.chart import BarChart, LineChart, Reference
from openpyxl.styles import Font, PatternFill
from openpyxl.utils import get_column_letter

from apps.exports.sources import Chart, Column, Type

XLSX_MAX_ROWS = 1_048_576  # Excel's rows per sheet; longer exports go on to another sheet
MONEY_FORMAT = "#,##0.00"
DATETIME_FORMAT = "yyyy-mm-dd hh:mm:ss"
DATE_FORMAT = "yyyy-mm-dd"
HEADER_FONT = Font(bold=True, color="FFFFFF")
HEADER_FILL = PatternFill("solid", fgColor="305496")

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


def xlsx_time(value: datetime | None) -> datetime | None:
    """What an XLSX date cell holds for an aware time: the UTC time (cells have no zone) rounded
    half up to the millisecond, which reads back exactly."""
    if value is None:
        return None
    utc = value.astimezone(UTC).replace(tzinfo=None)
    return utc.replace(microsecond=0) + timedelta(milliseconds=(utc.microsecond + 500) // 1000)


def _cells(sheet: Any, columns: list[Column]) -> list[Callable[[Any], Any]]:
    """Per column: value -> what to append. Styled columns reuse one cell each (write-only sheets
    serialise a row when it is appended, so the cell is free again for the next row)."""
    makers: list[Callable[[Any], Any]] = []
    for column in columns:
        make: Callable[[Any], Any]
        if column.type in (Type.MONEY, Type.DATETIME, Type.DATE):
            cell = WriteOnlyCell(sheet)
            cell.number_format = {
                Type.MONEY: MONEY_FORMAT,
                Type.DATETIME: DATETIME_FORMAT,
                Type.DATE: DATE_FORMAT,
            }[column.type]
            convert = xlsx_time if column.type == Type.DATETIME else (lambda value: value)

            def styled(
                value: Any, cell: Any = cell, convert: Callable[[Any], Any] = convert
            ) -> Any:
                cell.value = convert(value)
                return cell

            make = styled
        elif column.type == Type.JSON:
            make = _json_text
        else:

            def unchanged(value: Any) -> Any:
                return value

            make = unchanged
        makers.append(make)
    return makers


def _sheet(
    book: Workbook, title: str, columns: list[Column]
) -> tuple[Any, list[Callable[[Any], Any]]]:
    sheet = book.create_sheet(title)
    sheet.freeze_panes = "A2"
    for index, column in enumerate(columns):
        width = 22 if column.type == Type.DATETIME else max(12, len(column.name) + 4)
        sheet.column_dimensions[get_column_letter(index + 1)].width = width
    header = []
    for column in columns:
        cell = WriteOnlyCell(sheet, value=column.name)
        cell.font, cell.fill = HEADER_FONT, HEADER_FILL
        header.append(cell)
    sheet.append(header)
    return sheet, _cells(sheet, columns)


def write_xlsx(
    out: IO[bytes],
    columns: list[Column],
    rows: Rows,
    progress: Progress,
    *,
    chart: Chart | None = None,
) -> None:
    book = Workbook(write_only=True)
    sheet, makers = _sheet(book, "Data", columns)
    sheets, in_sheet, written = 1, 1, 0
    for row in _counted(rows, progress):
        if in_sheet == XLSX_MAX_ROWS:
            sheets += 1
            sheet, makers = _sheet(book, f"Data {sheets}", columns)
            in_sheet = 1
        sheet.append([make(value) for make, value in zip(makers, row, strict=True)])
        in_sheet += 1
        written += 1
    if chart is not None and written:
        _chart_sheet(book, sheet, chart, len(columns), written)
    book.save(out)


def _chart_sheet(book: Workbook, data: Any, chart: Chart, width: int, rows: int) -> None:
    """A native Excel chart on a sheet of its own, drawn from the data sheet's cells: the first
    column labels the points, every other column is a series named by its header."""
    plot = LineChart() if chart.line else BarChart()
    plot.title = chart.title
    plot.add_data(
        Reference(data, min_col=2, max_col=width, min_row=1, max_row=rows + 1),
        titles_from_data=True,
    )
    plot.set_categories(Reference(data, min_col=1, min_row=2, max_row=rows + 1))
    book.create_chartsheet("Chart").add_chart(plot)
