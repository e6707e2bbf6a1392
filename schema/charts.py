"""Chart images of analytics results for clients that cannot draw (emails, exports): the
`chart(format, …)` field of widgets and report runs (apps.analytics.charts)."""

from __future__ import annotations

import base64
import enum
from typing import Annotated

import strawberry

from apps.analytics import charts
from apps.analytics.query import Result
from schema.errors import read_or_bad_request


@strawberry.enum(name="ChartFormat")
class ChartFormatEnum(enum.Enum):
    SVG = charts.ChartFormat.SVG.value
    PNG = charts.ChartFormat.PNG.value


@strawberry.enum(name="ChartKind")
class ChartKindEnum(enum.Enum):
    KPI = charts.ChartKind.KPI.value
    LINE = charts.ChartKind.LINE.value
    BAR = charts.ChartKind.BAR.value
    PIE = charts.ChartKind.PIE.value
    TABLE = charts.ChartKind.TABLE.value


@strawberry.type(
    description="A chart drawn on the server. SVG comes as text (`svg`), PNG as base64 (`base64`); "
    "`dataUrl` works for both, e.g. as an <img> src."
)
class ChartImage:
    media_type: str = strawberry.field(description="image/svg+xml or image/png.")
    width: int = strawberry.field(description="Pixels.")
    height: int = strawberry.field(description="Pixels.")
    svg: str | None = strawberry.field(description="The SVG document; null for PNG.")
    base64: str | None = strawberry.field(description="The PNG, base64; null for SVG.")
    data_url: str


Width = Annotated[
    int | None,
    strawberry.argument(
        description=f"Pixels, {charts.MIN_SIDE} to {charts.MAX_SIDE}; default {charts.DEFAULT_SIZE[0]}."
    ),
]
Height = Annotated[
    int | None,
    strawberry.argument(
        description=f"Pixels, {charts.MIN_SIDE} to {charts.MAX_SIDE}; default {charts.DEFAULT_SIZE[1]}."
    ),
]


def chart_image(
    result: Result,
    *,
    kind: ChartKindEnum,
    format: ChartFormatEnum,
    title: str,
    width: int | None,
    height: int | None,
) -> ChartImage:
    chart = read_or_bad_request(
        lambda: charts.render(
            result,
            kind=charts.ChartKind(kind.value),
            format=charts.ChartFormat(format.value),
            title=title,
            width=width,
            height=height,
        )
    )
    encoded = base64.b64encode(chart.content).decode()
    svg = chart.content.decode() if format is ChartFormatEnum.SVG else None
    return ChartImage(
        media_type=chart.media_type,
        width=chart.width,
        height=chart.height,
        svg=svg,
        base64=None if svg is not None else encoded,
        data_url=f"data:{chart.media_type};base64,{encoded}",
    )
