"""The `schemas` Invoke collection: arguments and help, then calls into the package."""

from __future__ import annotations

import sys
from typing import Any

from invoke import Collection, task

from schemasync.core.errors import ConfigError, SchemasyncError
from schemasync.frontends.task_args import (
    _asked_for_help,
    _config,
    _fail,
    _help,
    _on,
    _run,
)


@task(
    auto_shortflags=False,
    help=_help("host", "database", "table", "no_commit", "json", "verbose", "allow_empty", "full", "hosts_file"),
)
def refresh(
    c,
    host=None,
    database=None,
    table=None,
    no_commit=False,
    json=False,
    verbose=False,
    allow_empty=False,
    full=False,
    hosts_file=None,
):
    """Dump the schema over SSH and update the per-table files, then commit them."""
    from schemasync.frontends import report
    from schemasync.frontends.progress import LiveLine
    from schemasync.jobs.refresh import RefreshResult
    from schemasync.jobs.refresh import refresh as run_refresh
    from schemasync.jobs.sweep import sweep as run_sweep

    def job() -> Any:
        cfg = _config(c, hosts_file)
        target = cfg.host(_on(host, database), whole=True)
        if target.several:  # every database, in one remote run and one commit: reported as a sweep
            if table:
                raise ConfigError(f"--table: {target.name} has several databases; choose one with --database")
            return run_sweep(cfg, [target], commit=not no_commit)
        options = {"table": table, "commit": not no_commit, "allow_empty": allow_empty, "full": full}
        with LiveLine(sys.stdout, live=not json and sys.stdout.isatty(), name=target.name) as live:
            return run_refresh(cfg, _on(host, database), **options, progress=live)

    def one(r: Any) -> bool:
        return isinstance(r, RefreshResult)

    _run(
        json,
        job,
        lambda r: report.refresh_text(r, verbose=verbose) if one(r) else report.sweep_text(r),
        lambda r: report.refresh_data(r) if one(r) else report.sweep_data(r),
        lambda r: 0 if one(r) else r.exit_code,
    )


@task(
    name="list",
    auto_shortflags=False,
    help=_help(
        "host",
        "database",
        "json",
        "hosts_file",
        schema="only tables in this schema",
        pattern="only tables whose name contains this (or matches this glob)",
        group="only tables of this group in schema-notes.yaml",
        tag="only tables with this tag in schema-notes.yaml (on the table or a column)",
        limit="at most this many rows (default 500); the output says how to get the next ones",
        offset="skip this many rows (the next_offset of the previous page)",
    ),
)
def list_(
    c,
    host=None,
    database=None,
    schema=None,
    pattern=None,
    group=None,
    tag=None,
    limit=500,
    offset=0,
    json=False,
    hosts_file=None,
):
    """List the tables on the server with their status against the local files (no dump)."""
    from schemasync.frontends import report
    from schemasync.jobs.check import list_tables
    from schemasync.jobs.query import TableQuery

    def job() -> Any:
        try:
            want = TableQuery(schema, pattern, group, tag, int(limit), int(offset))
        except ValueError:
            raise ConfigError("--limit and --offset take whole numbers") from None
        return list_tables(_config(c, hosts_file), _on(host, database), want)

    _run(json, job, report.list_text, report.list_data)


@task(
    auto_shortflags=False,
    help=_help(
        "no_commit",
        "json",
        "hosts_file",
        hosts="comma-separated host names (default: every host in hosts.yaml)",
        workers="how many environments to refresh at once (default 4)",
        reference="compare every other environment with this one; writes _drift.md",
    ),
)
def sweep(c, hosts=None, workers=4, reference=None, no_commit=False, json=False, hosts_file=None):
    """Refresh every environment in parallel; one commit for all that changed; a summary table."""
    from schemasync.frontends import report
    from schemasync.frontends.progress import LiveStatus
    from schemasync.jobs.sweep import select_hosts
    from schemasync.jobs.sweep import sweep as run_sweep

    progress = sys.stderr if json else sys.stdout

    def job() -> Any:
        cfg = _config(c, hosts_file)
        selected = select_hosts(cfg, hosts)
        try:
            count = int(workers)
        except ValueError:
            raise ConfigError(f"--workers: expected a whole number, got {workers!r}") from None
        with LiveStatus(selected, progress) as live:
            return run_sweep(
                cfg,
                selected,
                workers=count,
                commit=not no_commit,
                reference=reference,
                on_done=live.done,
                on_start=live.begin,
            )

    _run(json, job, report.sweep_text, report.sweep_data, lambda r: r.exit_code)


@task(
    auto_shortflags=False,
    positional=["first", "second"],
    help=_help(
        "json",
        "hosts_file",
        first="the first environment (positional: inv schemas.diff dev prod)",
        second="the environment to compare it with",
        text="also print the unified diff of each differing file's text",
    ),
)
def diff(c, first, second, text=False, json=False, hosts_file=None):
    """Compare two environments from their committed files (no connection). Exit 1 when they differ."""
    from schemasync.jobs.diff import compare_hosts, render_data, render_text

    if _asked_for_help(diff, first, second):
        return

    _run(
        json,
        lambda: compare_hosts(_config(c, hosts_file), first, second),
        lambda r: render_text(r, with_diffs=text),
        render_data,
        lambda r: 0 if r.same else 1,
    )


@task(
    auto_shortflags=False,
    help=_help(
        "host",
        "database",
        "json",
        "verbose",
        "full",
        "hosts_file",
        strict_notes="exit 1 also when schema-notes.yaml names what does not exist",
    ),
)
def check(c, host=None, database=None, json=False, verbose=False, strict_notes=False, full=False, hosts_file=None):
    """CI mode: dump the live schema and compare it with the files; writes nothing. Exit 1 when stale."""
    from schemasync.frontends import report
    from schemasync.jobs.check import CheckResult
    from schemasync.jobs.check import check as run_check

    def code(r: Any) -> int:
        if isinstance(r, CheckResult):
            return 1 if r.stale or (strict_notes and r.stale_notes) else 0
        failed = [x.error.code for x in r if not isinstance(x, CheckResult)]
        return failed[0] if failed else max((code(x) for x in r), default=0)

    _run(
        json,
        lambda: run_check(_config(c, hosts_file), _on(host, database), full=full),
        lambda r: report.check_text(r, verbose) if isinstance(r, CheckResult) else report.checks_text(r, verbose),
        lambda r: report.check_data(r) if isinstance(r, CheckResult) else report.checks_data(r),
        code,
    )


@task(
    auto_shortflags=False,
    positional=["name"],
    help=_help(
        "host",
        "database",
        "json",
        "hosts_file",
        name="a table, view, function or type: name, schema.name, or a quoted name",
        part="with --json, only this part: columns, index_details, constraints, foreign_keys, referenced_by, "
        "dependents, triggers, policies, partitions",
        definition="with --json, also the DDL itself (the file named in `file` holds it)",
    ),
)
def show(c, name, host=None, database=None, json=False, hosts_file=None, part=None, definition=False):
    """Print one table (or view, function, type) from the local files: keys, references, then its definition."""
    from schemasync.jobs.reader import describe, show_text
    from schemasync.jobs.reader import show as run_show

    if _asked_for_help(show, name):
        return

    _run(
        json,
        lambda: run_show(_config(c, hosts_file), _on(host, database), name),
        show_text,
        lambda res: describe(res, definition=definition, part=part),
    )


@task(
    auto_shortflags=False,
    positional=["pattern"],
    help=_help(
        "host",
        "database",
        "json",
        "hosts_file",
        pattern="table or column name: a substring, or a glob with * and ? ('*' for all, with --type)",
        type="column type substring, e.g. timestamp, jsonb, int",
        tag="only columns with this tag in schema-notes.yaml (or in a table with it), e.g. pii",
        exact="PATTERN is a whole table or column name (case-insensitive), not a part of one",
        schema="only tables of this schema",
        table="only the columns of this table (name or schema.name)",
    ),
)
def search(
    c,
    pattern=None,
    type=None,
    tag=None,
    host=None,
    database=None,
    json=False,
    hosts_file=None,
    exact=False,
    schema=None,
    table=None,
):
    """Search the local files for columns by name, type or comment: `table.column type` lines, then a count."""
    from schemasync.jobs.reader import search as run_search
    from schemasync.jobs.reader import search_data, search_text

    if _asked_for_help(search, pattern):
        return

    def job() -> Any:
        return run_search(
            _config(c, hosts_file),
            _on(host, database),
            None if pattern == "*" else pattern,
            type,
            tag,
            exact=exact,
            schema=schema,
            table=table,
        )

    _run(json, job, search_text, search_data)


@task(
    auto_shortflags=False,
    positional=["table"],
    help=_help(
        "host",
        "database",
        "json",
        "hosts_file",
        table="the table (or view, function, type): name or schema.name",
        column="only this column: when it appeared, each change of type, nullability or default, when it left",
        all_hosts="with --column: when the column reached each environment",
    ),
)
def history(c, table, column=None, host=None, database=None, all_hosts=False, json=False, hosts_file=None):
    """Every commit that changed a table, and what changed, from git alone (no connection)."""
    from schemasync.jobs import history as hist

    if _asked_for_help(history, table):
        return

    def job() -> Any:
        cfg = _config(c, hosts_file)
        if all_hosts:
            if not column:
                raise ConfigError("--all-hosts goes with --column: when did that column reach each environment")
            return ("reach", table, column, hist.column_everywhere(cfg, table, column))
        return ("history", hist.history(cfg, _on(host, database), table, column))

    def text(r: tuple) -> str:
        return hist.reach_text(*r[1:]) if r[0] == "reach" else hist.history_text(r[1])

    def data(r: tuple) -> dict:
        return hist.reach_data(*r[1:]) if r[0] == "reach" else hist.history_data(r[1])

    _run(json, job, text, data)


@task(
    auto_shortflags=False,
    help=_help(
        "host",
        "database",
        "json",
        "hosts_file",
        since="a commit, tag or branch (v1.2, HEAD~10), or a date: 2026-11-01 (from the start of that day), "
        "'2026-11-01 14:00', '2 weeks ago', today, yesterday",
        log="every commit of the range with its own changes, oldest first (default: the net difference)",
    ),
)
def changes(c, since=None, host=None, database=None, json=False, hosts_file=None, log=False):
    """A changelog of the schema since a commit or date, grouped by table, from git alone."""
    from schemasync.jobs import history as hist

    def job() -> Any:
        if not since:
            raise ConfigError("changes: give --since REF or --since DATE")
        return hist.changes_since(_config(c, hosts_file), _on(host, database), since, log=log)

    _run(json, job, hist.changelog_text, hist.changelog_data)


@task(
    auto_shortflags=False,
    positional=["name"],
    help=_help(
        "host",
        "database",
        "json",
        "hosts_file",
        name="a table, column (table.column), view, type, sequence or function: name or schema.name",
        all_hosts="every environment with files: says where each dependent exists",
    ),
)
def impact(c, name, host=None, database=None, all_hosts=False, json=False, hosts_file=None):
    """Everything that depends on a table, column, type, sequence or function, with file and line (no connection)."""
    from schemasync.frontends.review_report import impact_text
    from schemasync.jobs.review import impact as run_impact
    from schemasync.jobs.review import impact_data

    if _asked_for_help(impact, name):
        return
    _run(
        json, lambda: run_impact(_config(c, hosts_file), name, _on(host, database), all_hosts), impact_text, impact_data
    )


@task(
    auto_shortflags=False,
    positional=["migrations"],
    help=_help(
        "host",
        "database",
        "json",
        "hosts_file",
        migrations="the migration: a .sql file, several (one per line, or separated by commas), a directory "
        "(its .sql files in name order), a quoted glob, or - for stdin",
        all_hosts="every environment with files; differences between them are reported as drift",
        format="text (default) or markdown (a pull-request comment)",
    ),
)
def review(c, migrations, host=None, database=None, all_hosts=False, json=False, format="text", hosts_file=None):
    """What a migration would do in each environment, from the files: fails, breaks, locks. Exit 1: something does."""
    from schemasync.frontends.review_report import review_markdown, review_text
    from schemasync.jobs.review import read_migrations, review_data, review_migration

    if _asked_for_help(review, migrations):
        return
    if format not in ("text", "markdown"):
        _fail(json, ConfigError(f"--format {format}: text or markdown"))

    def job() -> Any:
        return review_migration(_config(c, hosts_file), read_migrations(migrations, sys.stdin), _on(host, database),
                                all_hosts)  # fmt: skip

    def text(res: Any) -> str:
        return (review_markdown if format == "markdown" else review_text)(res, review_data(res))

    _run(json, job, text, review_data, exit_code=lambda res: 0 if res is None or res.ok else 1)


@task(name="agent-guide", auto_shortflags=False, help=_help("json", "hosts_file"))
def agent_guide(c, json=False, hosts_file=None):
    """Print a short block to paste into your project's CLAUDE.md."""
    from schemasync.output.guide import agent_guide as render

    _run(json, lambda: render(_config(c, hosts_file)), lambda text: text, lambda text: {"guide": text})


@task(auto_shortflags=False, help=_help("json", "hosts_file"))
def mcp(c, json=False, hosts_file=None):
    """Serve the schema files to agents over MCP (stdio): read tools plus refresh(host)."""
    from schemasync.frontends.mcp_server import HAVE_SDK, MISSING_SDK, main

    try:
        if not HAVE_SDK:
            raise MISSING_SDK
        _config(c, hosts_file)  # a bad hosts.yaml is reported here, before the server starts
    except SchemasyncError as exc:
        _fail(json, exc)
    main(hosts_file)


schemas = Collection(
    "schemas", refresh, list_, sweep, diff, check, show, search, history, changes, impact, review, agent_guide, mcp
)
ns = Collection(schemas)
TASK_NAMES = frozenset(schemas.task_names) | {f"schemas.{n}" for n in schemas.task_names}
