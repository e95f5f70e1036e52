"""The `schemas` Invoke collection: arguments and help, then calls into the package."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

from invoke import Collection, Exit, task

from .errors import SchemasyncError

HELP = {
    "host": "environment name from hosts.yaml (default: `default:` there, or the only host)",
    "table": "refresh just this table: name or schema.name",
    "no_commit": "write the files but do not commit them",
    "json": "print exactly one JSON document on stdout",
    "allow_empty": "accept a database with no tables even though table files exist (marks them orphaned)",
    "config": "path of hosts.yaml (default: $SCHEMASYNC_HOSTS, else ./hosts.yaml)",
}


def _run(json_out: bool, job: Callable[[], Any], text: Callable[[Any], str], data: Callable[[Any], dict]) -> None:
    from .report import dumps

    try:
        result = job()
    except SchemasyncError as exc:
        print(f"schemasync: error: {exc}", file=sys.stderr)
        raise Exit(code=exc.code) from None
    except KeyboardInterrupt:
        print("schemasync: interrupted; the output directory is unchanged", file=sys.stderr)
        raise Exit(code=130) from None
    print(dumps(data(result)) if json_out else text(result))


@task(auto_shortflags=False, help=HELP)
def refresh(c, host=None, table=None, no_commit=False, json=False, allow_empty=False, config=None):
    """Dump the schema over SSH and update the per-table files, then commit them."""
    from . import report
    from .config import load_config
    from .refresh import refresh as run_refresh

    _run(
        json,
        lambda: run_refresh(load_config(config), host, table=table, commit=not no_commit, allow_empty=allow_empty),
        report.refresh_text,
        report.refresh_data,
    )


@task(name="list", auto_shortflags=False, help={k: HELP[k] for k in ("host", "json", "config")})
def list_(c, host=None, json=False, config=None):
    """List the tables on the server with their status against the local files (no dump)."""
    from . import report
    from .config import load_config
    from .refresh import list_tables

    _run(json, lambda: list_tables(load_config(config), host), report.list_text, report.list_data)


schemas = Collection("schemas", refresh, list_)
ns = Collection(schemas)
