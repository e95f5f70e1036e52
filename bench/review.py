"""`./dev.sh bench-review`: `review` of a 50-statement migration and `impact` of a column against
a 5,000-table environment (issue 34: at most 1.5 s and 1 s), as a user runs them: the `schemasync`
command, a new process each time, reading the files a real refresh wrote.

Beside them, in the same rounds, `schemasync show` of one table: the cheapest command that reads
the same files (start-up and the manifest), so that the ratio says what review and impact add on
this machine, whatever its speed that day.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path

import yaml

from sandbox import Sandbox

from .rounds import run_rotated
from .schema import schema_sql

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "bench" / "results" / "review.md"
TARGETS = {"review_50": 1.5, "impact_column": 1.0}  # seconds (issue 34)
PLAIN = "focused_reading"


def migration(n: int, statements: int = 50, seed: int = 11) -> str:
    """A release of `statements` statements over the generated schema's tables: columns added,
    defaults, NOT NULL, indexes, checks and keys, renames, type changes, drops."""
    rnd = random.Random(seed)
    plain = [i for i in range(n) if i % 20 != 7 and i not in (n // 3, n // 2, (2 * n) // 3)]
    out = []
    for k in range(statements):
        t = f"t{rnd.choice(plain):05d}"
        out.append(
            rnd.choice(
                [
                    f"ALTER TABLE {t} ADD COLUMN extra_{k} text;",
                    f"ALTER TABLE {t} ADD COLUMN flag_{k} boolean NOT NULL DEFAULT false;",
                    f"ALTER TABLE {t} ALTER COLUMN updated_at SET DEFAULT clock_timestamp();",
                    f"CREATE INDEX {t}_idx_{k} ON {t} (id, updated_at);",
                    f"CREATE INDEX CONCURRENTLY {t}_cidx_{k} ON {t} (updated_at);",
                    f"ALTER TABLE {t} ADD CONSTRAINT {t}_chk_{k} CHECK (id > 0) NOT VALID;",
                    f"ALTER TABLE {t} RENAME COLUMN updated_at TO changed_at_{k};",
                    f"ALTER TABLE {t} ALTER COLUMN id TYPE bigint;",
                    f"ALTER TABLE {t} DROP COLUMN updated_at;",
                ]
            )
        )
    return "\n".join(out) + "\n"


class ReviewBench:
    def __init__(self, n: int, runs: int) -> None:
        self.n, self.runs = n, runs
        self.root = Path(tempfile.mkdtemp(prefix="schemasync-bench-review-"))
        os.chmod(self.root, 0o755)
        self.times: dict[str, list[float]] = {}

    def start(self) -> None:
        self.sb = Sandbox(self.root / "sandbox", pg_options="-c max_locks_per_transaction=1024").start()
        started = time.perf_counter()
        self.sb.create_database(f"bench_{self.n}", schema_sql(self.n))
        print(f"database of {self.n} tables built in {time.perf_counter() - started:.1f}s", flush=True)
        self.repo = self.root / "repo"
        self.repo.mkdir()
        subprocess.run(["git", "init", "-q", "-b", "main", str(self.repo)], check=True)
        for key, value in (("user.email", "bench@example.com"), ("user.name", "bench")):
            subprocess.run(["git", "-C", str(self.repo), "config", key, value], check=True)
        hosts = {"b": self.sb.hosts_entry(f"bench_{self.n}", command_timeout=600)}
        (self.repo / "hosts.yaml").write_text(yaml.safe_dump({"hosts": hosts}))
        self.run("refresh", "--host", "b")
        (self.repo / "release.sql").write_text(migration(self.n))

    def run(self, *args: str, ok: tuple[int, ...] = (0,), plain: str = "") -> float:
        env = {**os.environ, "SCHEMASYNC_HOSTS": str(self.repo / "hosts.yaml"), "SCHEMASYNC_PLAIN": plain}
        cmd = [str(Path(sys.executable).parent / "schemasync"), *args, "--json"]
        started = time.perf_counter()
        proc = subprocess.run(cmd, cwd=self.repo, env=env, capture_output=True, text=True, check=False)
        seconds = time.perf_counter() - started
        if proc.returncode not in ok:
            raise RuntimeError(f"{' '.join(args)} failed ({proc.returncode}):\n{proc.stderr[-2000:]}")
        json.loads(proc.stdout)
        return seconds

    def round(self, r: int) -> None:
        jobs = [
            ("review_50", lambda: self.run("review", "release.sql", "--host", "b", ok=(0, 1))),
            ("impact_column", lambda: self.run("impact", "t00100.updated_at", "--host", "b")),
            ("show_table", lambda: self.run("show", "t00100", "--host", "b")),
            # the trick off (bench/TRICKS.md): every file read
            ("review_50_plain", lambda: self.run("review", "release.sql", "--host", "b", ok=(0, 1), plain=PLAIN)),
            ("impact_column_plain", lambda: self.run("impact", "t00100.updated_at", "--host", "b", plain=PLAIN)),
        ]
        timed = [(name, self._timed(name, job)) for name, job in jobs]
        run_rotated(timed, r)

    def _timed(self, name: str, job: Callable[[], float]) -> Callable[[], None]:
        def go() -> None:
            self.times.setdefault(name, []).append(job())

        return go

    def stop(self) -> None:
        if hasattr(self, "sb"):
            self.sb.stop()
        shutil.rmtree(self.root, ignore_errors=True)

    def report(self) -> str:
        med = {k: statistics.median(v) for k, v in self.times.items()}
        lines = [
            f"# review and impact on {self.n:,} tables ({datetime.now(timezone.utc):%Y-%m-%d}, "
            f"{os.cpu_count()} cores, {self.runs} rounds, medians)",
            "",
            "`./dev.sh bench-review`: the `schemasync` command, a new process each time, on the files a real "
            "refresh wrote; `show_table` (one table from the same files) measured in the same rounds.",
            "",
            "| measure | median s | ÷ show_table | target s | met |",
            "|---|--:|--:|--:|:-:|",
        ]
        for name in ("review_50", "impact_column", "show_table", "review_50_plain", "impact_column_plain"):
            target = TARGETS.get(name)
            met = "" if target is None else ("yes" if med[name] <= target else "**no**")
            lines.append(f"| {name} | {med[name]:.2f} | {med[name] / med['show_table']:.2f} | {target or ''} | {met} |")
        return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tables", type=int, default=5000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    bench = ReviewBench(args.tables, args.runs)
    try:
        bench.start()
        for r in range(args.runs):
            bench.round(r)
    finally:
        bench.stop()
    text = bench.report()
    print(text)
    RESULTS.write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
