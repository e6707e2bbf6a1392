from __future__ import annotations

from tests.fuzz.tally import TALLY


def pytest_terminal_summary(terminalreporter) -> None:
    if TALLY.operations:
        terminalreporter.write_line(
            f"fuzz: {TALLY.operations} operations; HTTP statuses {dict(sorted(TALLY.statuses.items()))}; "
            f"error codes {dict(TALLY.codes.most_common())}"
        )
