"""Chart images of an analytics Result, drawn on the server (for emails, exports and clients that
cannot draw): line, bar, pie, table and KPI, as SVG or PNG.

matplotlib is imported on first use (it takes a while) and only through its object API: each
chart is its own Figure with its own Agg/SVG canvas, never pyplot's global state, so charts can
be drawn on several threads at once. Money is written in the result's currency with thousands
separators; days are the tenant's local days, and the chart says which time zone they are in.
Output is deterministic: the same result, kind, format and size give the same bytes."""

from __future__ import annotations

import io
import os
import tempfile
import threading
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from types import SimpleNamespace
from typing import Any

from apps.analytics.errors import AnalyticsErrorCode
from apps.analytics.query import Dimension, Kind, Result, Value
from apps.common.errors import UserError


class ChartFormat(StrEnum):
    SVG = "svg"
    PNG = "png"


class ChartKind(StrEnum):
    KPI = "kpi"
    LINE = "line"
    BAR = "bar"
    PIE = "pie"
    TABLE = "table"


MEDIA_TYPES = {ChartFormat.SVG: "image/svg+xml", ChartFormat.PNG: "image/png"}
MIN_SIDE, MAX_SIDE = 100, 2000  # pixels, each side
DEFAULT_SIZE = (800, 450)
DPI = 100
MAX_TICKS = 12  # category labels written under an axis; the others are skipped evenly
TABLE_ROW_PX = 18  # a table chart shows the rows that fit, and says how many it left out
PALETTE = (
    "#4e79a7",
    "#f28e2b",
    "#e15759",
    "#76b7b2",
    "#59a14f",
    "#edc948",
    "#b07aa1",
    "#ff9da7",
    "#9c755f",
    "#bab0ac",
)
UP, DOWN, MUTED = "#2e7d32", "#c62828", "#666666"

# The common currencies' symbols; any other is written as its ISO code ("CHF 1,200").
SYMBOLS = {
    "USD": "$",
    "EUR": "€",
    "GBP": "£",
    "JPY": "¥",
    "CNY": "¥",
    "INR": "₹",
    "KRW": "₩",
    "AUD": "A$",
    "CAD": "C$",
    "NZD": "NZ$",
    "BRL": "R$",
    "MXN": "MX$",
    "HKD": "HK$",
    "SGD": "S$",
    "ILS": "₪",
    "PLN": "zł",
    "TRY": "₺",
    "RUB": "₽",
    "UAH": "₴",
    "NGN": "₦",
    "PHP": "₱",
    "VND": "₫",
    "THB": "฿",
}


@dataclass(frozen=True)
class Chart:
    media_type: str
    content: bytes
    width: int
    height: int


_setup = threading.Lock()
_matplotlib: SimpleNamespace | None = None


def _mpl() -> SimpleNamespace:
    """The parts of matplotlib used here, imported and configured once. Its settings are set here
    and never changed afterwards, so reading them from several threads is safe."""
    global _matplotlib
    with _setup:
        if _matplotlib is None:
            # matplotlib writes a font cache under MPLCONFIGDIR (default ~/.config, maybe read-only).
            os.environ.setdefault(
                "MPLCONFIGDIR", os.path.join(tempfile.gettempdir(), "shop-matplotlib")
            )
            import matplotlib

            matplotlib.rcParams.update(
                {
                    "svg.fonttype": "none",  # text stays text in SVG: searchable, selectable, smaller
                    "svg.hashsalt": "shop-charts",  # stable element ids: same chart, same bytes
                    "font.family": "DejaVu Sans",  # bundled with matplotlib: the same on every machine
                    "axes.spines.top": False,
                    "axes.spines.right": False,
                }
            )
            import matplotlib.figure
            import matplotlib.ticker
            from matplotlib.backends import backend_agg, backend_svg

            _matplotlib = SimpleNamespace(
                figure=matplotlib.figure,
                ticker=matplotlib.ticker,
                canvases={
                    ChartFormat.PNG: backend_agg.FigureCanvasAgg,
                    ChartFormat.SVG: backend_svg.FigureCanvasSVG,
                },
            )
        return _matplotlib


# --- numbers as people read them ----------------------------------------------------------------


def money_text(amount: Decimal | float, currency: str, *, cents: bool = True) -> str:
    """`$1,234.50`, `-€12.00`, `CHF 1,200` (without cents when `cents` is false)."""
    symbol = SYMBOLS.get(currency.upper())
    number = f"{abs(amount):,.2f}" if cents else f"{abs(amount):,.0f}"
    sign = "-" if amount < 0 else ""
    return f"{sign}{symbol}{number}" if symbol else f"{sign}{currency.upper()} {number}"


def value_text(value: Value, kind: Kind, currency: str) -> str:
    if value is None:
        return "\u2013"
    if kind == Kind.MONEY:
        return money_text(value, currency)
    if kind == Kind.RATIO:
        return f"{Decimal(value) * 100:,.1f}%"
    return f"{value:,}"


def _tick_text(value: float, kind: Kind, currency: str) -> str:
    whole = abs(value - round(value)) < 1e-9
    if kind == Kind.MONEY:
        return money_text(value, currency, cents=not whole)
    if kind == Kind.RATIO:
        return f"{value * 100:,.0f}%"
    return f"{value:,.0f}" if whole else f"{value:,.2f}"


def _number(value: Value) -> float:
    # Plotting needs floats; the figures themselves stay Decimal up to here.
    return 0.0 if value is None else float(value)


# --- drawing ------------------------------------------------------------------------------------


def check_size(width: int | None, height: int | None) -> tuple[int, int]:
    width = DEFAULT_SIZE[0] if width is None else width
    height = DEFAULT_SIZE[1] if height is None else height
    for name, side in (("width", width), ("height", height)):
        if not MIN_SIDE <= side <= MAX_SIDE:
            raise UserError(
                f"`{name}` must be {MIN_SIDE} to {MAX_SIDE} pixels.",
                field=name,
                code=AnalyticsErrorCode.BAD_SIZE,
            )
    return width, height


def render(
    result: Result,
    *,
    kind: ChartKind,
    format: ChartFormat,
    title: str = "",
    width: int | None = None,
    height: int | None = None,
) -> Chart:
    """`result` drawn as a `kind` chart of `width` x `height` pixels."""
    width, height = check_size(width, height)
    mpl = _mpl()
    figure = mpl.figure.Figure(figsize=(width / DPI, height / DPI), dpi=DPI, layout="constrained")
    canvas = mpl.canvases[format](figure)
    if title:
        figure.suptitle(title, fontsize=13, fontweight="bold")
    kinds = _metric_kinds(result)
    draw = {
        ChartKind.KPI: _kpi,
        ChartKind.LINE: _line,
        ChartKind.BAR: _bar,
        ChartKind.PIE: _pie,
        ChartKind.TABLE: _table,
    }[kind]
    draw(mpl, figure, result, kinds)
    if result.query.dimension == Dimension.TIME and kind != ChartKind.KPI:
        figure.text(
            0.995,
            0.005,
            f"Days in {result.time_zone}",
            ha="right",
            va="bottom",
            fontsize=7,
            color=MUTED,
        )
    out = io.BytesIO()
    if format == ChartFormat.SVG:
        canvas.print_svg(out, metadata={"Date": None})
    else:
        canvas.print_png(out, metadata={"Software": None})
    return Chart(media_type=MEDIA_TYPES[format], content=out.getvalue(), width=width, height=height)


def _metric_kinds(result: Result) -> dict[str, Kind]:
    from apps.analytics.metrics import METRICS

    return {name: METRICS[name].kind for name in result.query.metrics}


def _empty(axes: Any, text: str = "No data for this range") -> None:
    axes.set_axis_off()
    axes.text(
        0.5, 0.5, text, ha="center", va="center", fontsize=12, color=MUTED, transform=axes.transAxes
    )


def _category_ticks(axes: Any, labels: list[str]) -> None:
    step = max(1, -(-len(labels) // MAX_TICKS))
    positions = list(range(0, len(labels), step))
    axes.set_xticks(
        positions,
        [labels[i] for i in positions],
        rotation=30 if len(positions) > 6 else 0,
        ha="right" if len(positions) > 6 else "center",
    )


def _axes_by_kind(
    mpl: SimpleNamespace, axes: Any, result: Result, kinds: dict[str, Kind]
) -> dict[str, Any]:
    """Each metric's axes: the first metric's kind on the left, a second kind on the right (so
    money and counts are not drawn against one scale)."""
    order = list(dict.fromkeys(kinds[name] for name in result.query.metrics))
    per_kind = {order[0]: axes}
    if len(order) > 1:
        per_kind[order[1]] = axes.twinx()
        per_kind[order[1]].spines["right"].set_visible(True)
    for kind, side in per_kind.items():
        side.yaxis.set_major_formatter(
            mpl.ticker.FuncFormatter(
                lambda value, _, kind=kind: _tick_text(value, kind, result.currency)
            )
        )
        side.yaxis.set_major_locator(mpl.ticker.MaxNLocator(nbins=6, integer=kind == Kind.COUNT))
    return {name: per_kind.get(kinds[name], per_kind[order[-1]]) for name in result.query.metrics}


def _line(mpl: SimpleNamespace, figure: Any, result: Result, kinds: dict[str, Kind]) -> None:
    axes = figure.add_subplot()
    series = result.series
    if not series.labels:
        return _empty(axes)
    where = _axes_by_kind(mpl, axes, result, kinds)
    positions = range(len(series.labels))
    lines = []
    for index, dataset in enumerate(series.datasets):
        lines += where[dataset.metric].plot(
            positions,
            [_number(v) for v in dataset.data],
            marker="o" if len(positions) <= 31 else None,
            markersize=3,
            linewidth=1.8,
            color=PALETTE[index % len(PALETTE)],
            label=dataset.label,
        )
    for side in set(where.values()):
        side.set_ylim(bottom=min(0, side.get_ylim()[0]))
    _category_ticks(axes, series.labels)
    axes.grid(axis="y", alpha=0.3)
    if len(lines) > 1:
        axes.legend(handles=lines, loc="upper left", fontsize=8, frameon=False)


def _bar(mpl: SimpleNamespace, figure: Any, result: Result, kinds: dict[str, Kind]) -> None:
    axes = figure.add_subplot()
    series = result.series
    if not series.labels:
        return _empty(axes)
    where = _axes_by_kind(mpl, axes, result, kinds)
    count = len(series.datasets)
    width = 0.8 / count
    bars = []
    for index, dataset in enumerate(series.datasets):
        offsets = [i - 0.4 + width * (index + 0.5) for i in range(len(series.labels))]
        bars.append(
            where[dataset.metric].bar(
                offsets,
                [_number(v) for v in dataset.data],
                width=width,
                color=PALETTE[index % len(PALETTE)],
                label=dataset.label,
            )
        )
    _category_ticks(axes, series.labels)
    axes.grid(axis="y", alpha=0.3)
    if count > 1:
        axes.legend(handles=bars, loc="upper right", fontsize=8, frameon=False)


def _pie(mpl: SimpleNamespace, figure: Any, result: Result, kinds: dict[str, Kind]) -> None:
    axes = figure.add_subplot()
    series = result.series
    dataset = series.datasets[0]
    slices = [
        (label, _number(value), value)
        for label, value in zip(series.labels, dataset.data, strict=True)
        if value is not None and value > 0
    ]
    if not slices:
        return _empty(axes)
    kind = kinds[dataset.metric]
    axes.pie(
        [number for _, number, _ in slices],
        labels=[label for label, _, _ in slices],
        colors=[PALETTE[i % len(PALETTE)] for i in range(len(slices))],
        startangle=90,
        counterclock=False,
        autopct=lambda share: f"{share:.0f}%" if share >= 4 else "",
        textprops={"fontsize": 8},
        wedgeprops={"linewidth": 1, "edgecolor": "white"},
    )
    axes.set_title(
        f"{dataset.label}: {value_text(result.totals.get(dataset.metric), kind, result.currency)}",
        fontsize=10,
    )
    axes.set_aspect("equal")


def _table(mpl: SimpleNamespace, figure: Any, result: Result, kinds: dict[str, Kind]) -> None:
    from apps.analytics.metrics import METRICS

    axes = figure.add_subplot()
    axes.set_axis_off()
    metrics, dimension = result.query.metrics, result.query.dimension
    height = figure.get_figheight() * DPI
    fits = max(1, int((height - 40) // TABLE_ROW_PX) - 3)  # less the title, header and total rows
    rows = result.rows if dimension else []
    shown = rows if len(rows) <= fits else rows[: fits - 1]
    body = [
        [row.label] + [value_text(row.values.get(m), kinds[m], result.currency) for m in metrics]
        for row in shown
    ]
    if len(shown) < len(rows):
        body.append([f"… and {len(rows) - len(shown)} more"] + [""] * len(metrics))
    body.append(
        ["Total"] + [value_text(result.totals.get(m), kinds[m], result.currency) for m in metrics]
    )
    header = [dimension.value.title() if dimension else ""] + [METRICS[m].label for m in metrics]
    row_height = min(1.0, TABLE_ROW_PX * (len(body) + 1) / max(height - 40, 1))
    table = axes.table(
        cellText=body,
        colLabels=header,
        cellLoc="right",
        colLoc="right",
        bbox=[0, 1 - row_height, 1, row_height],
    )
    table.auto_set_font_size(False)
    table.set_fontsize(8)
    for (row, _), cell in table.get_celld().items():
        cell.set_edgecolor("#dddddd")
        if row in (0, len(body)):
            cell.set_text_props(fontweight="bold")


def _kpi(mpl: SimpleNamespace, figure: Any, result: Result, kinds: dict[str, Kind]) -> None:
    axes = figure.add_subplot()
    axes.set_axis_off()
    from apps.analytics.metrics import METRICS

    name = result.query.metrics[0]
    axes.text(
        0.5,
        0.78,
        METRICS[name].label,
        ha="center",
        va="center",
        fontsize=14,
        color=MUTED,
        transform=axes.transAxes,
    )
    axes.text(
        0.5,
        0.5,
        value_text(result.totals.get(name), kinds[name], result.currency),
        ha="center",
        va="center",
        fontsize=40,
        fontweight="bold",
        transform=axes.transAxes,
    )
    change = result.change.get(name) if result.previous is not None else None
    if result.previous is not None:
        before = value_text(result.previous.get(name), kinds[name], result.currency)
        if change is None:
            text, color = f"previous period: {before}", MUTED
        else:
            arrow = "▲" if change > 0 else "▼" if change < 0 else "■"
            text = f"{arrow} {abs(change) * 100:,.1f}% vs previous period ({before})"
            color = UP if change > 0 else DOWN if change < 0 else MUTED
        axes.text(
            0.5,
            0.22,
            text,
            ha="center",
            va="center",
            fontsize=12,
            color=color,
            transform=axes.transAxes,
        )
    axes.text(
        0.5,
        0.04,
        f"{result.query.range.first:%d %b %Y} \u2013 {result.query.range.last:%d %b %Y}",
        ha="center",
        va="center",
        fontsize=9,
        color=MUTED,
        transform=axes.transAxes,
    )
