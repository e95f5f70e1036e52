"""Commands and large parses without the cyclic garbage collector."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

from schemasync.core import speed


@contextmanager
def paused(then_freeze: bool = False) -> Iterator[None]:
    """JSON documents, a dump's pieces and the files' texts are trees: the collector finds no
    cycles in them, but building millions of objects sets it off again and again, each time
    walking what came before, for no memory saved (bench/TRICKS.md has what it is worth). Paused
    for a whole command (tasks.py, a sweep's worker) and around the
    large parses (what the long-running MCP server does). Process-wide, as the collector is; what
    it would have found is collected once it runs again.

    then_freeze: a CLI command, after which the process ends. Its objects are frozen (gc.freeze)
    rather than walked: the first collection after it, and the interpreter's last one at exit,
    would walk every one of them for nothing."""
    if not speed.on("gc_pause"):
        yield
        return
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if then_freeze:
            gc.freeze()
        if was:
            gc.enable()
