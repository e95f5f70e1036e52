"""What every benchmark here does the same way: rounds with the contenders' order rotated, so the
machine's noise falls on each alike; another revision's code to run side by side.

The repositories a run writes (a cold refresh's thousands of files) are kept until it ends, when
its stop() removes its whole folder: on an ext4 without a journal (these machines' disks), creating
a file skips every inode freed in the last five to ten minutes, one by one, so a round that deleted
the last round's 5,000 files made the next cold refresh pay 1-3 s more in the kernel (measured:
5,000 creates 0.4-0.8 s on a quiet disk, 2-3.5 s in the minutes after thousands of deletions;
perf: ext4's recently_deleted). Users do not delete their schema folder before each refresh."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

REPO = Path(__file__).resolve().parent.parent


class Rounds(Protocol):
    def start(self) -> None: ...
    def round(self, r: int) -> None: ...
    def stop(self) -> None: ...


def run_rounds(bench: Rounds, runs: int) -> None:
    """Set up, run `runs` rounds, and always tear down."""
    try:
        bench.start()
        for r in range(runs):
            bench.round(r)
    finally:
        bench.stop()


def run_rotated(jobs: list[tuple[str, Callable[[], object]]], r: int) -> None:
    """Round r: every job once, starting at a different one each round."""
    shift = r % len(jobs)
    for name, job in jobs[shift:] + jobs[:shift]:
        started = time.perf_counter()
        job()
        print(f"  round {r + 1}: {name} {time.perf_counter() - started:.2f}s", flush=True)


def checkout(revision: str, into: Path) -> Path:
    """That revision's code in `into`, to run with this Python and these dependencies; the sh and
    SQL it sends live in ./remote, installed as schemasync.transport.remote (schemasync.remote before
    the layers): its own copy."""
    into.mkdir()
    archive = subprocess.run(["git", "-C", str(REPO), "archive", revision], capture_output=True, check=True)
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive.stdout, check=True)
    layered = (into / "schemasync" / "transport").is_dir()
    shutil.copytree(into / "remote", into / "schemasync" / ("transport/remote" if layered else "remote"))
    return into
