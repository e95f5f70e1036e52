"""A sweep's progress on the terminal: one line per environment as it finishes, and a live
"still running" line that only a terminal gets (a pipe or a log sees just the finished lines)."""

from __future__ import annotations

import threading
import time
from typing import TextIO

from schemasync.core.config import HostConfig
from schemasync.frontends.report import sweep_progress
from schemasync.jobs.sweep import Outcome


class LiveStatus:
    """One line per environment as it finishes; a live 'still running' line only on a terminal."""

    def __init__(self, hosts: list[HostConfig], stream: TextIO) -> None:
        self.pending = [h.name for h in hosts]
        self.stream = stream
        self.live = stream.isatty()
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._tick, daemon=True)

    def __enter__(self) -> LiveStatus:
        self.started = time.monotonic()
        return self

    def begin(self) -> None:
        """The live line's thread; the sweep calls this once its worker processes are forked."""
        if self.live and not self.thread.is_alive():
            self.thread.start()

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        if self.thread.is_alive():
            self.thread.join()
            self._clear()

    def _clear(self) -> None:
        self.stream.write("\r\033[K")

    def _tick(self) -> None:
        while not self.stop.wait(0.25):
            with self.lock:
                if not self.pending:
                    continue
                self._clear()
                self.stream.write(f"running: {', '.join(self.pending)} ({time.monotonic() - self.started:.0f}s)")
                self.stream.flush()

    def done(self, outcome: Outcome) -> None:
        with self.lock:
            if self.live:
                self._clear()
            if outcome.host.name in self.pending:
                self.pending.remove(outcome.host.name)
            self.stream.write(sweep_progress(outcome) + "\n")
            self.stream.flush()
