"""Where a job stands, for a front end that shows it while the job runs (a live line on a
terminal). The job says each step as it starts it; by default nobody listens. The transport
counts a file's bytes as they arrive (`Transfer`), so the line can say how far a download is
without the transport calling anyone."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Transfer:
    """A file on its way: `done` grows as its bytes arrive."""

    total: int
    done: int = 0


class Progress:
    """Told each step of a job; this one ignores them (a pipe, a log, --json, the tests)."""

    def step(self, text: str, transfer: Transfer | None = None) -> None:
        """The job now does this ("discovery: 50,000 tables", "writing 120 files")."""


QUIET = Progress()
