"""Every time an XLSX export writes reads back as the same millisecond, whatever its microseconds
(a date cell is a floating-point day count: written unrounded, 05:20:18.9996 came back as
05:20:18.999 or 05:20:19.000 depending on the float, and a reader that shows seconds saw the
previous second)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from io import BytesIO

from hypothesis import given, settings
from hypothesis import strategies as st

from apps.exports.sources import Column, Type
from apps.exports.writers import write_xlsx
from tests.apps.exports.files import rows_of

times = st.datetimes(
    min_value=datetime(1970, 1, 1),
    max_value=datetime(2200, 12, 31),
    timezones=st.sampled_from(
        [UTC, timezone(timedelta(hours=5, minutes=45)), timezone(timedelta(hours=-9, minutes=-30))]
    ),
)


def _half_up_to_millisecond(value: datetime) -> datetime:
    utc = value.astimezone(UTC).replace(tzinfo=None)
    milliseconds, rest = divmod(utc.microsecond, 1000)
    return utc.replace(microsecond=0) + timedelta(milliseconds=milliseconds + (rest >= 500))


@settings(max_examples=25, deadline=None)
@given(st.lists(times, min_size=1, max_size=200))
def test_xlsx_times_read_back_as_the_utc_time_rounded_to_the_millisecond(values):
    out = BytesIO()
    write_xlsx(
        out, [Column("time", Type.DATETIME)], [(value,) for value in values], lambda written: None
    )
    read = [row["time"] for row in rows_of(out.getvalue(), "xlsx")]
    assert read == [_half_up_to_millisecond(value) for value in values]


def test_the_edges_of_a_second_round_to_the_nearest_millisecond():
    second = datetime(2026, 12, 3, 5, 20, 18, tzinfo=UTC)
    values = [
        second + timedelta(microseconds=micro) for micro in (0, 499, 500, 999_499, 999_500, 999_999)
    ]
    out = BytesIO()
    write_xlsx(
        out, [Column("time", Type.DATETIME)], [(value,) for value in values], lambda written: None
    )
    assert [
        row["time"].isoformat(timespec="milliseconds") for row in rows_of(out.getvalue(), "xlsx")
    ] == [
        "2026-12-03T05:20:18.000",
        "2026-12-03T05:20:18.000",
        "2026-12-03T05:20:18.001",
        "2026-12-03T05:20:18.999",
        "2026-12-03T05:20:19.000",
        "2026-12-03T05:20:19.000",
    ]
