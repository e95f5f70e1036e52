"""`./dev.sh bench-tricks`: what each speed trick is worth, measured side by side in one run.

Every trick of schemasync/core/speed.py is turned off in turn (SCHEMASYNC_PLAIN=<trick>), beside
the code with all of them on, on the 5,000-table database of the main bench: a cold refresh, an
unchanged one and one after a table changed, rotated each round, medians as ratios to the floor
(one whole pg_dump over SSH) measured in the same run. Writes bench/results/tricks.json and the
table in bench/TRICKS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
from datetime import datetime, timezone
from pathlib import Path

from schemasync.core.speed import TRICKS

from .__main__ import RESULTS, TARGETS, Bench
from .rounds import run_rotated

N = 5000
BANDS = {what: TARGETS[f"{what}_{N}"][1] for what in ("cold", "unchanged", "one_changed")}


class TricksBench(Bench):
    def __init__(self, runs: int, variants: list[str]) -> None:
        super().__init__([N], runs, [], None)
        self.plain = ""
        self.variants = variants

    def inv(self, repo: Path, *args: str, code: Path | None = None, ok: tuple[int, ...] = (0,)) -> tuple:
        os.environ["SCHEMASYNC_PLAIN"] = self.plain
        try:
            return super().inv(repo, *args, ok=ok) if code is None else super().inv(repo, *args, code=code, ok=ok)
        finally:
            os.environ.pop("SCHEMASYNC_PLAIN", None)

    def round(self, r: int) -> None:
        jobs = [("floor", lambda: self.record("floor", self.floor(N)))]
        for i, variant in enumerate(self.variants):
            jobs += [
                (f"cold/{variant}", lambda v=variant: self._as(v, "cold", self._cold_one)),
                (f"unchanged/{variant}", lambda v=variant: self._as(v, "unchanged", self._unchanged_one)),
                (
                    f"one_changed/{variant}",
                    lambda v=variant, i=i: self._as(v, "one_changed", lambda: self._changed(r, i)),
                ),
            ]
        run_rotated(jobs, r)

    def _as(self, variant: str, what: str, job) -> None:
        self.plain = variant
        try:
            seconds, rss = job()
        finally:
            self.plain = ""
        self.record(f"{what}/{variant}", seconds, rss)

    def _cold_one(self) -> tuple[float, int]:
        self.counter += 1
        seconds, rss, data = self.refresh(self.repo(f"cold_{self.counter}", [N]), f"b{N}")
        assert data["commit"] and data["tables"] > 0, data
        return seconds, rss

    def _unchanged_one(self) -> tuple[float, int]:
        seconds, rss, data = self.refresh(self.warm[N], f"b{N}")
        assert not data["changed"] and not data["files_written"], data
        return seconds, rss

    def _changer(self, r: int, i: int):
        return lambda: self._changed(r, i)

    def _changed(self, r: int, i: int) -> tuple[float, int]:
        self.sb.psql(f"ALTER TABLE t00001 ADD COLUMN trick_{r}_{i} integer;", database=f"bench_{N}")
        seconds, rss, data = self.refresh(self.warm[N], f"b{N}")
        assert data["updated"] == ["t00001"] and data["dumped"] == "part", data
        return seconds, rss


def table(bench: TricksBench) -> tuple[dict, str]:
    med = {k: statistics.median(v) for k, v in bench.times.items()}
    floor = med["floor"]
    rows = []
    for trick in bench.variants[1:]:
        row = {"trick": trick, "what": "; ".join(TRICKS[t] for t in trick.split(","))}
        for what, band in BANDS.items():
            on, off = med[f"{what}/"] / floor, med[f"{what}/{trick}"] / floor
            row[what] = {"on": round(on, 3), "off": round(off, 3), "band": band, "needed": off > band >= on}
        row["keeps_a_band"] = any(row[w]["needed"] for w in BANDS)
        rows.append(row)
    data = {
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d"),
        "tables": N,
        "runs": bench.runs,
        "floor_seconds": round(floor, 3),
        "medians": med,
        "rows": rows,
    }
    lines = [
        f"Measured {data['date']}: {N} tables, medians of {bench.runs} rounds, ratios to the floor "
        f"({floor:.2f} s, one whole pg_dump over SSH) in the same run.",
        "",
        "| trick | cold on / off | unchanged on / off | one changed on / off | keeps a band |",
        "|---|--:|--:|--:|---|",
    ]
    for row in rows:
        cells = [f"{row[w]['on']:.2f} / {row[w]['off']:.2f}" for w in BANDS]
        lines.append(f"| `{row['trick']}` | {' | '.join(cells)} | {'yes' if row['keeps_a_band'] else 'no'} |")
    return data, "\n".join(lines) + "\n"


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="bench.tricks", description=__doc__)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument(
        "--off",
        action="append",
        help="a set of tricks to turn off together (comma-separated); repeat for more (default: each alone)",
    )
    parser.add_argument("--out", default="tricks.json", help="file name under bench/results")
    args = parser.parse_args(argv)
    refresh_tricks = [t for t in TRICKS if t != "focused_reading"]  # that one is review's: bench/review.py
    bench = TricksBench(args.runs, ["", *(args.off or refresh_tricks)])
    try:
        bench.start()
        for r in range(args.runs):
            bench.round(r)
        data, text = table(bench)
    finally:
        bench.stop()
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / args.out).write_text(json.dumps(data, indent=2) + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
