"""`schemasync refresh --host dev`: the same tasks without a tasks.py, for any directory."""

from __future__ import annotations

from invoke import Program
from invoke.exceptions import ParseError

from schemasync import __version__
from schemasync.frontends.tasks import schemas, usage_error


class SchemasyncProgram(Program):
    """Invoke's program over the schemas tasks, where every command line is schemasync's: one
    that does not parse (`schemasync refrsh`) is a usage error, exit 2."""

    def parse_tasks(self) -> None:
        try:
            super().parse_tasks()
        except ParseError as exc:
            usage_error(self, exc, list(self.core.unparsed))


def main() -> None:
    import signal

    signal.signal(signal.SIGPIPE, signal.SIG_DFL)  # `schemasync --list | head` ends quietly, as other tools do
    SchemasyncProgram(namespace=schemas, version=__version__, name="schemasync", binary="schemasync").run()
