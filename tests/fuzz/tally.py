"""What the fuzzer sent and what came back, for the summary at the end of the run."""

from __future__ import annotations

from collections import Counter


class Tally:
    def __init__(self) -> None:
        self.operations = 0
        self.codes: Counter[str] = Counter()
        self.statuses: Counter[int] = Counter()

    def count(self, codes: list[str | None], status: int) -> None:
        self.operations += 1
        self.statuses[status] += 1
        self.codes.update(code or "none" for code in codes or ["(no error)"])


TALLY = Tally()
