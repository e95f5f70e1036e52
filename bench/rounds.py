"""What every benchmark here does the same way: rounds with the contenders' order rotated, so the
machine's noise falls on each alike; another revision's code to run side by side."""

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
    SQL it sends live in ./remote, installed as schemasync.remote: its own copy."""
    into.mkdir()
    archive = subprocess.run(["git", "-C", str(REPO), "archive", revision], capture_output=True, check=True)
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive.stdout, check=True)
    shutil.copytree(into / "remote", into / "schemasync" / "remote")
    return into
