"""`schemasync refresh --host dev`: the same tasks without a tasks.py, for any directory."""

from __future__ import annotations

from schemasync import __version__
from schemasync.frontends.program import SchemasyncProgram
from schemasync.frontends.tasks import schemas


def main() -> None:
    import signal

    signal.signal(signal.SIGPIPE, signal.SIG_DFL)  # `schemasync --list | head` ends quietly, as other tools do
    SchemasyncProgram(namespace=schemas, version=__version__, name="schemasync", binary="schemasync").run()
