"""An MCP server over the schema files: read tools, and refresh(host) through the same SSH path.

An agent using it never holds database credentials: it reads the reviewed files, and a refresh
runs exactly as `inv schemas.refresh` does, with the workstation's SSH keys and hosts.yaml.
"""

from __future__ import annotations

import sys
from typing import Any

from . import report
from .config import load_config
from .diff import compare_hosts, render_data
from .errors import SchemasyncError
from .history import changelog_data, changes_since, history, history_data
from .reader import load_records, search, search_data, show, show_data
from .refresh import refresh


def build_server(config_path: str | None = None) -> Any:
    from mcp.server.mcpserver import MCPServer

    server = MCPServer(
        name="schemasync",
        instructions=(
            "PostgreSQL schema reference kept as files by schemasync. Use list_tables, describe_table and "
            "search_columns to answer questions about tables, columns, keys and references; diff_environments "
            "to compare environments; refresh only when the files are stale or after a migration."
        ),
    )

    def cfg() -> Any:
        return load_config(config_path)

    def guarded(fn: Any) -> Any:
        try:
            return fn()
        except SchemasyncError as exc:
            return {"error": str(exc), "exit_code": exc.code}

    @server.tool()
    def list_tables(host: str | None = None) -> dict:
        """Tables of an environment (default host if omitted) with status, column count and primary key."""

        def run() -> dict:
            h = cfg().host(host)
            return {
                "host": h.name,
                "tables": [
                    {
                        "schema": r.schema,
                        "name": r.name,
                        "status": r.status,
                        "columns": r.columns,
                        "primary_key": (r.details or {}).get("primary_key", []),
                        "file": str(h.output / r.file),
                    }
                    for r in load_records(h)
                    if r.kind == "table"
                ],
            }

        return guarded(run)

    @server.tool()
    def describe_table(table: str, host: str | None = None) -> dict:
        """One table: columns, primary key, indexes, foreign keys out and in, and its full definition."""
        return guarded(lambda: show_data(show(cfg(), host, table)))

    @server.tool()
    def search_columns(pattern: str | None = None, type: str | None = None, host: str | None = None) -> dict:
        """Columns whose table or column name matches `pattern` and whose type contains `type`."""
        return guarded(lambda: search_data(search(cfg(), host, pattern, type)))

    @server.tool()
    def diff_environments(a: str, b: str) -> dict:
        """Compare two environments' committed schema files: missing, extra and different objects."""

        return guarded(lambda: render_data(compare_hosts(cfg(), a, b)))

    @server.tool()
    def table_history(table: str, column: str | None = None, host: str | None = None) -> dict:
        """Every commit that changed a table (or one column of it) and what changed, from git; no database."""
        return guarded(lambda: history_data(history(cfg(), host, table, column)))

    @server.tool()
    def schema_changes(since: str, host: str | None = None) -> dict:
        """What changed in the schema since a commit, tag or date ('2 weeks ago'), by table, from git."""
        return guarded(lambda: changelog_data(changes_since(cfg(), host, since)))

    @server.tool()
    def refresh_schema(host: str) -> dict:
        """Refresh one environment over SSH, exactly like `inv schemas.refresh --host HOST`, and commit."""
        return guarded(lambda: report.refresh_data(refresh(cfg(), host)))

    # The tool is called `refresh`, as the task is.
    server.remove_tool("refresh_schema")
    server.add_tool(refresh_schema, name="refresh")
    return server


def main(config_path: str | None = None) -> None:
    try:
        server = build_server(config_path)
    except ImportError:
        print("schemasync: the MCP server needs the `mcp` package: pip install 'schemasync[mcp]'", file=sys.stderr)
        raise SystemExit(2) from None
    server.run("stdio")


def console() -> None:
    """`schemasync-mcp [hosts.yaml]`"""
    main(sys.argv[1] if len(sys.argv) > 1 else None)
