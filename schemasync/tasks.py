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


def _run(
    json_out: bool,
    job: Callable[[], Any],
    text: Callable[[Any], str],
    data: Callable[[Any], dict],
    exit_code: Callable[[Any], int] = lambda _: 0,
) -> None:
    from .report import dumps

    try:
        result = job()
    except SchemasyncError as exc:
        print(f"schemasync: error: {exc}", file=sys.stderr)
        raise Exit(code=exc.code) from None
    except KeyboardInterrupt:
        print("schemasync: interrupted; the output directory is unchanged", file=sys.stderr)
        raise Exit(code=130) from None
    print(dumps(data(result)) if json_out else text(result), flush=True)
    code = exit_code(result)
    if code:
        raise Exit(code=code)


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


@task(
    auto_shortflags=False,
    help={
        "hosts": "comma-separated host names (default: every host in hosts.yaml)",
        "workers": "how many environments to refresh at once (default 4)",
        "reference": "compare every other environment with this one; writes _drift.md",
        "no_commit": HELP["no_commit"],
        "json": HELP["json"],
        "config": HELP["config"],
    },
)
def sweep(c, hosts=None, workers=4, reference=None, no_commit=False, json=False, config=None):
    """Refresh every environment in parallel; one commit for all that changed; a summary table."""
    from . import report
    from .config import load_config
    from .progress import LiveStatus
    from .sweep import select_hosts
    from .sweep import sweep as run_sweep

    progress = sys.stderr if json else sys.stdout

    def job() -> Any:
        cfg = load_config(config)
        selected = select_hosts(cfg, hosts)
        with LiveStatus(selected, progress) as live:
            return run_sweep(
                cfg, selected, workers=int(workers), commit=not no_commit, reference=reference, on_done=live.done
            )

    _run(json, job, report.sweep_text, report.sweep_data, lambda r: r.exit_code)


@task(
    auto_shortflags=False,
    positional=["a", "b"],
    help={"a": "first environment", "b": "second environment", "json": HELP["json"], "config": HELP["config"]},
)
def diff(c, a, b, json=False, config=None):
    """Compare two environments from their committed files (no connection). Exit 1 when they differ."""
    from .config import load_config
    from .diff import compare_hosts, render_data, render_text

    _run(json, lambda: compare_hosts(load_config(config), a, b), render_text, render_data, lambda r: 0 if r.same else 1)


@task(auto_shortflags=False, help={k: HELP[k] for k in ("host", "json", "config")})
def check(c, host=None, json=False, config=None):
    """CI mode: dump the live schema and compare it with the files; writes nothing. Exit 1 when stale."""
    from . import report
    from .config import load_config
    from .refresh import check as run_check

    _run(
        json,
        lambda: run_check(load_config(config), host),
        report.check_text,
        report.check_data,
        lambda r: 1 if r.stale else 0,
    )


@task(
    auto_shortflags=False,
    positional=["table"],
    help={
        "table": "name, schema.name, or a quoted name",
        "host": HELP["host"],
        "json": HELP["json"],
        "config": HELP["config"],
    },
)
def show(c, table, host=None, json=False, config=None):
    """Print one table from the local files: its definition, then the references in and out."""
    from .config import load_config
    from .reader import show as run_show
    from .reader import show_data, show_text

    _run(json, lambda: run_show(load_config(config), host, table), show_text, show_data)


@task(
    auto_shortflags=False,
    positional=["pattern"],
    help={
        "pattern": "table or column name: a substring, or a glob with * and ? ('*' for all, with --type)",
        "type": "column type substring, e.g. timestamp, jsonb, int",
        "host": HELP["host"],
        "json": HELP["json"],
        "config": HELP["config"],
    },
)
def search(c, pattern, type=None, host=None, json=False, config=None):
    """Search the local files for tables and columns by name or type; prints `table.column type`."""
    from .config import load_config
    from .reader import search as run_search
    from .reader import search_data, search_text

    _run(
        json,
        lambda: run_search(load_config(config), host, None if pattern == "*" else pattern, type),
        search_text,
        search_data,
    )


@task(name="agent-guide", auto_shortflags=False, help={"config": HELP["config"]})
def agent_guide(c, config=None):
    """Print a short block to paste into your project's CLAUDE.md."""
    from .config import load_config
    from .guide import agent_guide as render

    _run(False, lambda: load_config(config), render, lambda _: {})


@task(auto_shortflags=False, help={"config": HELP["config"]})
def mcp(c, config=None):
    """Serve the schema files to agents over MCP (stdio): read tools plus refresh(host)."""
    from .mcp_server import main

    main(config)


schemas = Collection("schemas", refresh, list_, sweep, diff, check, show, search, agent_guide, mcp)
ns = Collection(schemas)
