"""An MCP server over the schema files: read tools, and refresh(host) through the same SSH path.

An agent using it never holds database credentials: it reads the reviewed files, and a refresh
runs exactly as `inv schemas.refresh` does, with the workstation's SSH keys and hosts.yaml.

Made for a context window: listings are one short row per item and come in pages (`limit`,
`offset`, and `total`/`next_offset` to go on); each fact is said once (no text copies of
structured data, paths relative to the host's output directory); every tool declares its output
schema and returns structured content; a failure is an MCP error (`isError`) with the message and
the closest matches.
"""

from __future__ import annotations

import json
import sys
from typing import Annotated, Any

try:
    from mcp.types import CallToolResult  # named in the tools' annotations, which the SDK resolves here
    from pydantic import Field  # likewise: each parameter's description, which the model reads
    from typing_extensions import TypedDict  # pydantic (the SDK's) needs it for output schemas before 3.12

    HAVE_SDK = True
except ImportError:  # an optional extra: the task and main() say what to install
    from typing import TypedDict

    CallToolResult = Any  # type: ignore[misc,assignment]
    HAVE_SDK = False

    def Field(description: str) -> Any:
        return description


from schemasync.core.config import load_config
from schemasync.core.errors import ConfigError, SchemasyncError
from schemasync.core.notes import Notes, notes_for
from schemasync.frontends import report
from schemasync.jobs.diff import compare_hosts, render_data
from schemasync.jobs.history import changelog_data, changes_since, history, history_data
from schemasync.jobs.query import Page, TableQuery, page
from schemasync.jobs.reader import describe, load_records, search, search_data, show
from schemasync.jobs.refresh import refresh
from schemasync.jobs.review import impact, impact_data, review_data, review_migration
from schemasync.output.records import ORPHANED, Record

MISSING_SDK = ConfigError(
    "the MCP server needs the MCP Python SDK (the `mcp` package), which is not installed",
    hint="pip install 'schemasync[mcp]'",
)
# Parameters several tools take, described once.
Host = Annotated[
    str | None,
    Field(description="environment name from hosts.yaml (default: its default host); env/database for one of several"),
]
Limit = Annotated[int, Field(description="rows per page, at most 200 (more is served as 200)")]
Offset = Annotated[int, Field(description="where the page starts: next_offset of the previous page")]

PAGE = 100  # rows per page by default
MAX_PAGE = 200  # and at most: a bigger page would not fit the context budget an agent has for one answer
COMMENT_CHARS = 100  # a row's comment: its first line, cut here


class TableRow(TypedDict):
    name: str
    columns: int | None
    primary_key: list[str]
    group: str | None
    note: str | None  # the team's note (schema-notes.yaml), else the database comment: first line
    orphaned: bool


class TablePage(TypedDict):
    host: str
    total: int
    offset: int
    limit: int  # the page size applied (at most MAX_PAGE)
    next_offset: int | None
    tables: list[TableRow]


class ColumnRow(TypedDict):
    table: str
    column: str
    type: str
    not_null: bool
    comment: str | None
    tags: list[str]


class ColumnPage(TypedDict):
    host: str
    total: int
    offset: int
    limit: int  # the page size applied (at most MAX_PAGE)
    next_offset: int | None
    matches: list[ColumnRow]


class TableDescription(TypedDict, total=False):
    host: str
    kind: str
    group: str | None
    note: str | None
    tags: list[str]
    schema: str | None
    name: str
    file: str  # relative to folder
    folder: str  # the environment's output directory
    status: str
    columns: list[dict[str, Any]]
    primary_key: list[str]
    comment: str | None
    index_details: list[dict[str, Any]]
    constraints: list[dict[str, Any]]
    foreign_keys: list[dict[str, Any]]
    referenced_by: list[str]  # "schema.table(columns) -> (columns) [ON DELETE ...]": one line per foreign key in
    dependents: list[dict[str, str]]
    triggers: list[dict[str, Any]]
    policies: list[dict[str, Any]]
    row_security: dict[str, bool]
    partitions: list[dict[str, str]]
    values: list[str]
    definition: str


class Comparison(TypedDict):
    a: str
    b: str
    same: bool
    versions: dict[str, dict[str, Any]]
    only_in_a: list[dict[str, Any]]
    only_in_b: list[dict[str, Any]]
    different: list[dict[str, Any]]


class HistoryAnswer(TypedDict):
    host: str
    table: str
    file: str
    column: str | None
    commits: list[dict[str, Any]]


class ChangelogAnswer(TypedDict, total=False):
    host: str
    since: str | None
    until: str
    objects: list[dict[str, Any]]  # the net difference
    commits: list[dict[str, Any]]  # log=True: each commit with its objects


class ImpactAnswer(TypedDict):
    """As `inv schemas.impact --json`."""

    name: str
    target: dict[str, Any]
    hosts: list[str]
    missing_in: list[str]
    count: int
    dependents: list[dict[str, Any]]  # kind, name, file, line, depth, names, hosts, checked
    unchecked: list[str]


class ReviewAnswer(TypedDict):
    """As `inv schemas.review --json`."""

    ok: bool
    exit_code: int
    sources: list[str]
    hosts: list[dict[str, Any]]  # host, ok, statements: fails, breaks, locks, cascades, notes
    drift: list[dict[str, Any]]


class RefreshAnswer(TypedDict):
    """As `inv schemas.refresh --json` (README)."""

    host: str
    database: str
    output: str
    table: str | None
    tables: int
    added: list[str]
    updated: list[str]
    orphaned: list[str]
    orphaned_before: list[str]
    current: int
    objects: dict[str, list[str]]
    restored: list[str]
    overwritten_edits: list[str]
    references_only: list[str]
    files_written: list[str]
    files_removed: list[str]
    tenants: dict[str, Any] | None
    guide_written: str | None
    changed: bool
    commit: str | None
    seconds: float
    transferred_bytes: int
    notices: list[str]
    redacted: list[dict[str, str]]
    secret_in_previous_version: list[str]
    stale_notes: list[str]


def _paging(shown: Page) -> dict[str, Any]:
    """Where a page stands: every paged answer says it alike."""
    return {"total": shown.total, "offset": shown.offset, "limit": shown.limit, "next_offset": shown.next_offset}


def _table_row(r: Record, notes: Notes) -> TableRow:
    d = r.details or {}
    t = notes.for_table(r.schema, r.name)
    return TableRow(
        name=r.label,
        columns=r.columns,
        primary_key=d.get("primary_key", []),
        group=notes.group_of(r.schema, r.name),
        note=_one_line((t.note.description if t else None) or d.get("comment")),
        orphaned=r.status == ORPHANED,
    )


def _one_line(text: str | None) -> str | None:
    if not text:
        return None
    line = text.strip().splitlines()[0]
    return line if len(line) <= COMMENT_CHARS else line[: COMMENT_CHARS - 1] + "…"


def guarded(fn: Any) -> Any:
    """The answer as structured content and as compact JSON text (the SDK would indent it: a third
    of a big answer is indentation), or an MCP error (isError) with the closest matches."""
    from mcp.server.mcpserver.exceptions import ToolError
    from mcp.types import TextContent

    try:
        data = fn()
    except SchemasyncError as exc:
        raise ToolError(str(exc)) from None
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    return CallToolResult(content=[TextContent(type="text", text=text)], structured_content=data)


class Tools:
    """The tools: arguments and what they mean, then a call into a job, as the tasks do."""

    def __init__(self, config_path: str | None) -> None:
        self.config_path = config_path

    def cfg(self) -> Any:
        return load_config(self.config_path)

    def list_tables(
        self,
        host: Host = None,
        schema: Annotated[str | None, Field(description="only tables of this schema, e.g. public")] = None,
        pattern: Annotated[
            str | None, Field(description="a name substring, or a glob with * or ? (case-insensitive)")
        ] = None,
        group: Annotated[str | None, Field(description="only tables of this group of schema-notes.yaml")] = None,
        tag: Annotated[
            str | None, Field(description="only tables with this tag in schema-notes.yaml, e.g. pii")
        ] = None,
        limit: Limit = PAGE,
        offset: Offset = 0,
    ) -> Annotated[CallToolResult, TablePage]:
        """Tables of an environment, one short row each (name, column count, primary key, group, note
        or comment), in pages of at most 200 (default 100): pass next_offset as offset for more.
        Filter by schema, by a name substring or glob, by group and by tag (schema-notes.yaml)."""

        def run() -> TablePage:
            c = self.cfg()
            h = c.host(host)
            notes = notes_for(c, h)
            want = TableQuery(schema, pattern, group, tag, limit, offset)
            rows = [
                _table_row(r, notes)
                for r in load_records(h)
                if r.kind == "table" and want.wants(r.schema, r.name, notes)
            ]
            shown = page(rows, offset, limit, most=MAX_PAGE)
            return TablePage(host=h.name, **_paging(shown), tables=shown.rows)

        return guarded(run)

    def describe_table(
        self,
        table: Annotated[str, Field(description="table, view, function or type: name or schema.name")],
        host: Host = None,
        definition: Annotated[
            bool, Field(description="also return the DDL itself (it is in `file` otherwise)")
        ] = False,
        part: Annotated[
            str | None,
            Field(
                description="only this part of a table: columns, index_details, constraints, foreign_keys, "
                "referenced_by, dependents, triggers, policies or partitions"
            ),
        ] = None,
    ) -> Annotated[CallToolResult, TableDescription]:
        """One table (or view, function, type): columns with defaults and comments, keys, indexes,
        foreign keys out and in (one line each), the views and functions that depend on it,
        triggers, policies, row security, partitions, notes. Each fact once: the DDL itself is in
        `file` (relative to the environment's folder), or in the answer with definition=true."""

        def run() -> TableDescription:
            return describe(show(self.cfg(), host, table), definition=definition, part=part)  # type: ignore[return-value]

        return guarded(run)

    def search_columns(
        self,
        pattern: Annotated[
            str | None, Field(description="part of a table or column name or comment, or a glob with * or ?")
        ] = None,
        type: Annotated[str | None, Field(description="part of the column's type, e.g. timestamp or jsonb")] = None,
        tag: Annotated[
            str | None, Field(description="only columns with this tag in schema-notes.yaml, e.g. pii")
        ] = None,
        host: Host = None,
        limit: Limit = PAGE,
        offset: Offset = 0,
    ) -> Annotated[CallToolResult, ColumnPage]:
        """Columns whose table or column name (or comment) matches `pattern`, whose type contains
        `type`, and with a tag from schema-notes.yaml (e.g. pii), in pages of at most 200 (default
        100), with the total count."""

        def run() -> ColumnPage:
            res = search(self.cfg(), host, pattern, type, tag)
            rows = [
                ColumnRow(
                    table=m["table"],
                    column=m["column"],
                    type=m["type"],
                    not_null=m["not_null"],
                    comment=_one_line(m["comment"]),
                    tags=m["tags"],
                )
                for m in search_data(res)["matches"]
            ]
            shown = page(rows, offset, limit, most=MAX_PAGE)
            return ColumnPage(host=res.host.name, **_paging(shown), matches=shown.rows)

        return guarded(run)

    def diff_environments(
        self,
        a: Annotated[str, Field(description="the first environment (host name, or env/database)")],
        b: Annotated[str, Field(description="the second environment")],
    ) -> Annotated[CallToolResult, Comparison]:
        """Compare two environments' committed schema files, by object: what is missing, extra, different."""

        def run() -> Comparison:
            data = render_data(compare_hosts(self.cfg(), a, b))
            for d in data["different"]:
                d.pop("diff", None)  # the changes say it; the text diff is `inv schemas.diff --text`
            return data  # type: ignore[return-value]

        return guarded(run)

    def table_history(
        self,
        table: Annotated[str, Field(description="table or object: name or schema.name")],
        column: Annotated[str | None, Field(description="only the commits that changed this column")] = None,
        host: Host = None,
    ) -> Annotated[CallToolResult, HistoryAnswer]:
        """Every commit that changed a table (or one column of it) and what changed, from git; no database."""
        return guarded(lambda: history_data(history(self.cfg(), host, table, column)))

    def schema_changes(
        self,
        since: Annotated[
            str,
            Field(description="a commit, tag or branch, or a date: 2026-11-01 (start of day), '2 weeks ago', today"),
        ],
        host: Host = None,
        log: Annotated[
            bool, Field(description="every commit of the range with its own changes, not only the net difference")
        ] = False,
    ) -> Annotated[CallToolResult, ChangelogAnswer]:
        """What changed in the schema since a commit, tag or date ('2 weeks ago'), by table, from git:
        the net difference, or with log=True every commit of the range with its own changes."""
        return guarded(lambda: changelog_data(changes_since(self.cfg(), host, since, log=log)))

    def what_depends_on(
        self,
        name: Annotated[
            str,
            Field(description="a table, table.column, view, type, sequence or function: name or schema.name"),
        ],
        host: Host = None,
        all_hosts: Annotated[
            bool, Field(description="every environment with files: each dependent says where it exists")
        ] = False,
    ) -> Annotated[CallToolResult, ImpactAnswer]:
        """Everything that depends on a name, transitively: views (column by column), SQL and PL/pgSQL
        function bodies (a body that builds SQL at run time is listed as not checked), triggers,
        policies, checks, defaults, generated columns, foreign keys in and out, indexes, partitions.
        Each with the file and line that names it. From the files; no database."""
        return guarded(lambda: impact_data(impact(self.cfg(), name, host, all_hosts)))

    def review_migration(
        self,
        sql: Annotated[str, Field(description="the migration's SQL: one or more statements")],
        host: Host = None,
        all_hosts: Annotated[
            bool, Field(description="every environment with files; differences between them come as drift")
        ] = False,
    ) -> Annotated[CallToolResult, ReviewAnswer]:
        """Call before running a migration: what each statement would do in the environment, from
        its files. fails: what PostgreSQL would refuse there (with the dependents it names);
        breaks: what succeeds but leaves a function body or policy naming something gone;
        cascades: what CASCADE drops; locks: the lock on each table, whether it rewrites or scans,
        weighed by the table's size. ok=false when anything fails or breaks."""
        return guarded(lambda: review_data(review_migration(self.cfg(), [("migration", sql)], host, all_hosts)))

    def refresh_schema(
        self,
        host: Annotated[str, Field(description="the environment to refresh: a host name of hosts.yaml")],
    ) -> Annotated[CallToolResult, RefreshAnswer]:
        """Refresh one environment over SSH, exactly like `inv schemas.refresh --host HOST`, and commit."""
        return guarded(lambda: report.refresh_data(refresh(self.cfg(), host)))


# name -> method; `refresh` is the tool the task of that name is
TOOLS = {
    "list_tables": "list_tables",
    "describe_table": "describe_table",
    "search_columns": "search_columns",
    "diff_environments": "diff_environments",
    "table_history": "table_history",
    "schema_changes": "schema_changes",
    "what_depends_on": "what_depends_on",
    "review_migration": "review_migration",
    "refresh": "refresh_schema",
}


def build_server(config_path: str | None = None) -> Any:
    from mcp.server.mcpserver import MCPServer

    server = MCPServer(
        name="schemasync",
        instructions=(
            "PostgreSQL schema reference kept as files by schemasync. list_tables (paged) for what exists, "
            "describe_table for one table or object, search_columns (paged) by name, type or comment; "
            "table_history and schema_changes for what changed and when; diff_environments to compare "
            "environments; what_depends_on before changing or dropping something; review_migration before "
            "running any migration; refresh only when the files are stale or after a migration. A host with several "
            "databases: pass host as 'env/database'."
        ),
    )
    tools = Tools(config_path)
    for name, method in TOOLS.items():
        server.add_tool(getattr(tools, method), name=name)
    return server


def main(config_path: str | None = None) -> None:
    try:
        server = build_server(config_path)
    except ImportError:
        print(f"schemasync: error: {MISSING_SDK}", file=sys.stderr)
        raise SystemExit(MISSING_SDK.code) from None
    server.run("stdio")


def console() -> None:
    """`schemasync-mcp [hosts.yaml]`"""
    main(sys.argv[1] if len(sys.argv) > 1 else None)
