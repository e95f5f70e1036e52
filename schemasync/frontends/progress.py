"""Live lines on a terminal: where a refresh is (`LiveLine`), and a sweep's environments as they
finish with a "still running" line (`LiveStatus`). Only a terminal gets the live line; a pipe,
a log and --json see nothing of it (a sweep's finished lines are output, and they see those)."""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Callable
from typing import TextIO

from schemasync.core.config import HostConfig
from schemasync.core.progress import Progress, Transfer
from schemasync.frontends.report import sweep_progress
from schemasync.jobs.sweep import Outcome

TICK = 0.25  # seconds between redraws
QUIET_FOR = 1.0  # a run this short shows no live line at all


class _Ticker:
    """Redraws one line on a terminal from `text()` every TICK, once QUIET_FOR has passed;
    clears it when stopped. `lock` is held while drawing, so others can print between draws."""

    def __init__(self, stream: TextIO, text: Callable[[float], str | None], lock: threading.Lock) -> None:
        self.stream, self.text, self.lock = stream, text, lock
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._tick, name="schemasync-live", daemon=True)
        self.started = time.monotonic()
        self.drawn: str | None = None  # the text on the line now

    def start(self) -> None:
        if not self.thread.is_alive():
            self.thread.start()

    def end(self) -> None:
        self.stop.set()
        if self.thread.is_alive():
            self.thread.join()
        with self.lock:
            self.clear()

    def clear(self) -> None:
        """The caller holds the lock."""
        if self.drawn is not None:
            self.stream.write("\r\033[K")
            self.stream.flush()
            self.drawn = None

    def _tick(self) -> None:
        while not self.stop.wait(TICK):
            elapsed = time.monotonic() - self.started
            if elapsed < QUIET_FOR:
                continue
            with self.lock:
                text = self.text(elapsed)
                if text is None or text == self.drawn:
                    continue
                width = shutil.get_terminal_size((80, 24)).columns - 1  # never wrap: \r returns one line
                self.stream.write("\r\033[K" + text[:width])
                self.stream.flush()
                self.drawn = text


def _size(n: float) -> str:
    return f"{n / 1e6:.1f} MB" if n >= 1e5 else f"{n / 1e3:.0f} kB"


class LiveLine(Progress):
    """A refresh's steps as one live line: `dev: receiving the dump 12.0 of 48.3 MB (14s)`.
    Drawn only when `live` (a terminal, not --json), from a second into the run."""

    def __init__(self, stream: TextIO, live: bool, name: str = "") -> None:
        self.name = name
        self.now: tuple[str, Transfer | None] = ("starting", None)
        self.ticker = _Ticker(stream, self._text, threading.Lock()) if live else None

    def step(self, text: str, transfer: Transfer | None = None) -> None:
        self.now = (text, transfer)  # one assignment: the drawing thread sees the old or the new

    def _text(self, elapsed: float) -> str:
        text, transfer = self.now
        if transfer is not None:
            text += f" {_size(transfer.done)} of {_size(transfer.total)}"
        return f"{self.name + ': ' if self.name else ''}{text} ({elapsed:.0f}s)"

    def __enter__(self) -> LiveLine:
        if self.ticker is not None:
            self.ticker.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.ticker is not None:
            self.ticker.end()


class LiveStatus:
    """One line per environment as it finishes; a live 'still running' line only on a terminal."""

    def __init__(self, hosts: list[HostConfig], stream: TextIO) -> None:
        self.pending = [h.name for h in hosts]
        self.stream = stream
        self.lock = threading.Lock()  # finished lines come from several threads, between draws
        self.ticker = _Ticker(stream, self._text, self.lock) if stream.isatty() else None

    def _text(self, elapsed: float) -> str | None:
        return f"running: {', '.join(self.pending)} ({elapsed:.0f}s)" if self.pending else None

    def __enter__(self) -> LiveStatus:
        return self

    def begin(self) -> None:
        """The live line's thread; the sweep calls this once its worker processes are forked."""
        if self.ticker is not None:
            self.ticker.start()

    def __exit__(self, *exc: object) -> None:
        if self.ticker is not None:
            self.ticker.end()

    def done(self, outcome: Outcome) -> None:
        with self.lock:
            if self.ticker is not None:
                self.ticker.clear()
            if outcome.host.name in self.pending:
                self.pending.remove(outcome.host.name)
            self.stream.write(sweep_progress(outcome) + "\n")
            self.stream.flush()
