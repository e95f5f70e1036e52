"""The speed tricks, each named once. Every one is on. `SCHEMASYNC_PLAIN` (names separated by
commas, or `all`) turns tricks off: the run takes the plain path, whose results are the same.
That is how `bench/tricks.py` measures what each trick is worth (bench/TRICKS.md); a trick stays
only while its measured gain keeps a band of the bench."""

from __future__ import annotations

import os

TRICKS = {
    "gc_pause": "the cyclic garbage collector is paused for a command, and its objects frozen at the end",
    "fast_import": "the commit is built by git fast-import while the files are written, not by git add + commit",
    "early_dump": "a whole refresh's pg_dump starts while discovery runs, on the selection expected",
    "speculative_dump": "an incremental refresh's likely selection is dumped while the fingerprints are computed",
    "focused_reading": "review and impact read only the files that name what they ask about (and what uses those)",
}


def on(trick: str) -> bool:
    """Whether this trick is used in this run."""
    assert trick in TRICKS, trick
    plain = {t.strip() for t in os.environ.get("SCHEMASYNC_PLAIN", "").split(",") if t.strip()}
    return not ("all" in plain or trick in plain)
