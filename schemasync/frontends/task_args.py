"""What every task shares: the help of common options, running a job and printing its result
(text or one JSON document), failing the same way, and finding hosts.yaml."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import Any

from invoke import Exit

from schemasync.core.errors import ConfigError, Interrupted, SchemasyncError

HELP = {
    "host": "environment name from hosts.yaml (default: `default:` there, or the only host)",
    "table": "refresh just this table: name or schema.name",
    "no_commit": "write the files but do not commit them",
    "json": "print exactly one JSON document on stdout (errors too)",
    "verbose": "list every changed name (by default a long list is summarised)",
    "allow_empty": "accept a database with no tables even though table files exist (marks them orphaned)",
    "full": "dump the whole schema, not only what the catalog fingerprints say changed since the last refresh",
    "database": "one database of a host whose `database:` names several (a list or a pattern)",
    "hosts_file": "path of hosts.yaml (default: $SCHEMASYNC_HOSTS, else hosts.yaml here or in a parent directory)",
}


def _help(*keys: str, **extra: str) -> dict[str, str]:
    return {**{k: HELP[k] for k in keys}, **extra}


def _on(host: str | None, database: str | None) -> str | None:
    """The host argument the package takes: `dev`, or `dev/app` for one database of several
    (an empty host part: the default host)."""
    return f"{host or ''}/{database}" if database else host


def error_data(message: str, code: int, hint: str = "") -> dict[str, Any]:
    """The JSON document of a failure, for every command and the usage errors alike."""
    return {"error": message, "exit_code": code, "hints": [hint] if hint else []}


def _fail(json_out: bool, exc: SchemasyncError) -> None:
    """The one way a task fails: a line on stderr, with --json one document on stdout, the exit code."""
    from schemasync.frontends.report import dumps

    print(f"schemasync: {'' if isinstance(exc, Interrupted) else 'error: '}{exc}", file=sys.stderr)
    if json_out:
        print(dumps(error_data(exc.message, exc.code, exc.hint)), flush=True)
    raise Exit(code=exc.code) from None


def _run(
    json_out: bool,
    job: Callable[[], Any],
    text: Callable[[Any], str],
    data: Callable[[Any], dict],
    exit_code: Callable[[Any], int] = lambda _: 0,
) -> None:
    from schemasync.core import gcpause
    from schemasync.frontends.report import dumps

    result: Any = None
    # a command's objects live until it ends, and the process ends with it (gcpause.py)
    with gcpause.paused(then_freeze=True):
        try:
            result = job()
            print(dumps(data(result)) if json_out else text(result), flush=True)
        except BrokenPipeError:
            # the reader went away (`| head`): what it did not read was not wanted
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        except SchemasyncError as exc:
            _fail(json_out, exc)
        except KeyboardInterrupt:
            # the run's rule (publish.py): no commit, files as they were; or, once the commit is
            # made, the files as committed (Interrupted, above)
            commit = getattr(result, "commit", None)
            _fail(json_out, Interrupted(commit) if commit else Interrupted.before_commit())
    code = exit_code(result)
    if code:
        raise Exit(code=code)


def _config(c: Any, hosts_file: str | None) -> Any:
    """hosts.yaml, refusing the one mix-up Invoke invites: `inv --config hosts.yaml ...` is Invoke's
    own option (its configuration file) and would silently leave ours at its default."""
    from schemasync.core.config import load_config

    invoke_file = _invoke_config_option(sys.argv[1:])
    if invoke_file and not hosts_file:
        try:
            with open(invoke_file, encoding="utf-8") as fh:
                looks_like_hosts = any(line.startswith("hosts:") for line in fh)
        except OSError:
            looks_like_hosts = False
        if looks_like_hosts:
            raise ConfigError(
                f"`inv --config {invoke_file}` is Invoke's own option (its configuration file), "
                "not the hosts file; nothing was run",
                hint=f"put it after the task: inv schemas.<task> ... --hosts-file {invoke_file} "
                "(or set SCHEMASYNC_HOSTS)",
            )
    return load_config(hosts_file)


def _invoke_config_option(argv: list[str]) -> str | None:
    """The file given to Invoke's own -f/--config, before the first task on the command line."""
    for i, arg in enumerate(argv):
        if arg in ("-f", "--config") and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith("--config="):
            return arg.split("=", 1)[1]
        if arg.startswith("schemas.") or arg in _task_names():
            return None
    return None


def _asked_for_help(task_: Any, *values: Any) -> bool:
    """`inv schemas.show --help`: Invoke hands "--help" to the task as its positional argument
    (a program of its own, as `schemasync` is, sees it first). Print the task's help instead."""
    if not any(v in ("-h", "--help") for v in values):
        return False
    print(task_help(task_))
    return True


def task_help(task_: Any) -> str:
    """A task's usage, what it does and its options, as `inv --help <task>` prints them."""
    import inspect

    name = task_.name
    positional = " ".join(f"<{p}>" for p in task_.positional)
    lines = [f"Usage: inv[oke] [--core-opts] schemas.{name} [--options] {positional}".rstrip(), ""]
    lines += ["Docstring:", f"  {inspect.getdoc(task_.body) or ''}", "", "Options:"]
    for arg in task_.get_arguments():
        flag = f"--{arg.name.replace('_', '-')}" + ("" if arg.kind is bool else "=STRING")
        lines.append(f"  {flag:<26}{arg.help or task_.help.get(arg.name, '')}")
    return "\n".join(lines)


def _task_names() -> frozenset[str]:
    from schemasync.frontends.tasks import TASK_NAMES

    return TASK_NAMES
