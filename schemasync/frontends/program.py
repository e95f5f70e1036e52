"""The `schemasync` command: Invoke's Program over the schemas tasks, where every command line is
schemasync's (no tasks.py needed). Through the subclass's own parse step, which `inv` (Invoke's
program) does not have:

- a command line that does not parse (`schemasync refrsh`, `--hots`, a missing argument) is a usage
  error, exit 2, never the 1 that `check` and `diff` use for "differences found";
- `schemasync search --tag pii` may leave PATTERN out (Invoke's positional arguments are required);
- `schemasync show --help` prints the task's help.
"""

from __future__ import annotations

import json
import sys

from invoke import Exit, Program
from invoke.exceptions import ParseError

from schemasync.core.errors import USAGE
from schemasync.core.names import close_names
from schemasync.frontends.task_args import error_data
from schemasync.frontends.tasks import TASK_NAMES


class SchemasyncProgram(Program):
    def parse_tasks(self) -> None:
        argv = list(self.core.unparsed)
        if argv and argv[0] in TASK_NAMES and any(a in ("-h", "--help") for a in argv[1:]):
            self.core.unparsed = []  # no task to run: only the parser, for its help
            super().parse_tasks()
            self.args.help.value = argv[0]  # Invoke's own per-task help, printed by parse_cleanup
            return
        try:
            try:
                super().parse_tasks()
            except ParseError as exc:
                if not (argv and argv[0] in ("search", "schemas.search") and "'pattern'" in str(exc)):
                    raise
                self.core.unparsed = [argv[0], "*", *argv[1:]]  # '*': every name
                super().parse_tasks()
        except ParseError as exc:
            usage_error(self, exc, argv)


def usage_error(program: Program, exc: ParseError, argv: list[str]) -> None:
    """The parser's words and how to get help on stderr, with --json an error document on
    stdout, exit 2."""
    binary = getattr(program, "called_as", None) or "schemasync"
    first = argv[0] if argv else ""
    unknown = bool(first) and first not in TASK_NAMES and not first.startswith("-")
    if unknown:
        near = close_names(first, sorted({n.removeprefix("schemas.") for n in TASK_NAMES}))
        usage = (f"did you mean {' or '.join(near)}? " if near else "") + f"{binary} --list shows the tasks"
    else:
        usage = f"{binary} --help {first}".strip()
    print(exc, file=sys.stderr)
    print(f"  {'hint' if unknown else 'usage'}: {usage}", file=sys.stderr)
    if "--json" in argv:
        print(json.dumps(error_data(str(exc), USAGE, usage), ensure_ascii=False))
    raise Exit(code=USAGE) from None
