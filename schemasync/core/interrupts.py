"""Ctrl-C at the one point where it must wait: while a commit is made and the files settle.

A run's rule: until its commit is made, an interrupt puts the files back and makes no commit; once
the commit is made, the files stay as committed. Between "the branch moved" and "the run knows it
moved" an interrupt would break that rule, so there it is held until the step ends, and raised then.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType


@contextmanager
def held() -> Iterator[None]:
    """SIGINT received inside the block is raised (as the handler in force would) when it ends.
    Only the main thread receives signals in Python; elsewhere this does nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught: list[int] = []

    def note(signum: int, frame: FrameType | None) -> None:
        caught.append(signum)

    before = signal.signal(signal.SIGINT, note)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, before)
        if caught and callable(before):
            before(signal.SIGINT, None)  # Python's own handler: KeyboardInterrupt
