"""`./dev.sh bench-context --musicbrainz DIR`: what the agents' answers cost in characters on the
largest public schema at hand, MusicBrainz (its SQL is public: `git clone --depth 1
https://github.com/metabrainz/musicbrainz-server`, then DIR is its `admin/sql`).

Loads the schema as MusicBrainz's own InitDb.pl does (without data), refreshes it through the
sandbox's sshd, then asks the MCP server over stdio, as an editor would, and measures each answer:
the text an MCP client hands the model. Prints a table and writes bench/results/context.json.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import anyio
import yaml

from sandbox import Sandbox

REPO = Path(__file__).resolve().parent.parent
SCHEMAS = [
    "musicbrainz",
    "cover_art_archive",
    "documentation",
    "event_art_archive",
    "json_dump",
    "report",
    "sitemaps",
    "statistics",
    "wikidocs",
    "dbmirror2",
]
# InitDb.pl's order, without data, replication and mirror-only parts
SCRIPTS = [
    "Extensions.sql",
    "CreateCollations.sql",
    "CreateTypes.sql",
    *(f"{d}CreateTables.sql" for d in ("", "caa/", "eaa/", "documentation/", "json_dump/", "report/", "sitemaps/")),
    "statistics/CreateTables.sql",
    "wikidocs/CreateTables.sql",
    *(f"{d}CreatePrimaryKeys.sql" for d in ("", "caa/", "documentation/", "eaa/", "json_dump/", "statistics/")),
    "wikidocs/CreatePrimaryKeys.sql",
    "CreateSearchConfiguration.sql",
    "CreateFunctions.sql",
    "caa/CreateFunctions.sql",
    "eaa/CreateFunctions.sql",
    *(f"{d}CreateIndexes.sql" for d in ("", "caa/", "eaa/", "json_dump/", "sitemaps/", "statistics/")),
    *(f"{d}CreateFKConstraints.sql" for d in ("", "caa/", "documentation/", "eaa/", "sitemaps/")),
    "CreateConstraints.sql",
    "CreateViews.sql",
    "caa/CreateViews.sql",
    "eaa/CreateViews.sql",
    "CreateTriggers.sql",
    "caa/CreateTriggers.sql",
    "eaa/CreateTriggers.sql",
    "CreateSearchIndexes.sql",
    "dbmirror2/dbmirror2.sql",
]
BUDGETS = {  # issue 14: the most each answer may be, in characters
    "list_tables (default)": 24_000,
    "describe_table (most referenced)": 12_000,
}


def load(sb: Sandbox, database: str, sql_dir: Path) -> None:
    sb.psql(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE);\nCREATE DATABASE "{database}";')
    sb.psql(f'ALTER DATABASE "{database}" SET search_path = musicbrainz, public;')
    sb.psql("".join(f"CREATE SCHEMA {s};\n" for s in SCHEMAS), database=database)
    for script in SCRIPTS:
        sb.psql((sql_dir / script).read_text(), database=database)


async def answers(server: Path, hosts: Path, cwd: Path, table: str) -> dict[str, int]:
    from mcp import ClientSession, StdioServerParameters
    from mcp.client.stdio import stdio_client

    sizes: dict[str, int] = {}
    params = StdioServerParameters(command=str(server), args=[str(hosts)], cwd=str(cwd))
    async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
        await session.initialize()

        async def size(label: str, tool: str, **args: object) -> dict:
            result = await session.call_tool(tool, args)
            assert not result.is_error, result.content
            sizes[label] = sum(len(c.text) for c in result.content if hasattr(c, "text"))
            return json.loads(result.content[0].text)

        page = await size("list_tables (default)", "list_tables")
        sizes["list_tables: tables in all"] = page["total"]
        sizes["list_tables: tables on the first page"] = len(page["tables"])
        if page["next_offset"] is not None:
            await size("list_tables (next page)", "list_tables", offset=page["next_offset"])
        await size("list_tables schema=musicbrainz", "list_tables", schema="musicbrainz")
        described = await size("describe_table (most referenced)", "describe_table", table=table)
        sizes["describe_table: foreign keys in"] = len(described["referenced_by"])
        await size("describe_table definition=true", "describe_table", table=table, definition=True)
        await size("search_columns pattern=id (first page)", "search_columns", pattern="id")
        await size("search_columns type=text (first page)", "search_columns", type="text")
    return sizes


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="bench-context", description=__doc__.split("\n\n")[0])
    parser.add_argument("--musicbrainz", type=Path, required=True, help="musicbrainz-server's admin/sql folder")
    parser.add_argument("--keep", action="store_true", help="keep the repository and stop no server; print where")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "context.json")
    args = parser.parse_args(argv)
    sql_dir = args.musicbrainz
    if not (sql_dir / "CreateTables.sql").is_file():
        print(f"{sql_dir}: no CreateTables.sql; give musicbrainz-server's admin/sql folder", file=sys.stderr)
        return 2
    root = Path(tempfile.mkdtemp(prefix="schemasync-context-"))
    os.chmod(root, 0o755)  # as root, PostgreSQL runs as another user who must reach its data
    sb = Sandbox(root / "sandbox").start()
    try:
        load(sb, "musicbrainz_db", sql_dir)
        work = root / "repo"
        work.mkdir()
        subprocess.run(["git", "init", "-q", str(work)], check=True)
        for key, value in (("user.name", "bench"), ("user.email", "bench@example.com")):
            subprocess.run(["git", "-C", str(work), "config", key, value], check=True)
        hosts = work / "hosts.yaml"
        entry = sb.hosts_entry("musicbrainz_db", schemas=["*"])
        hosts.write_text(yaml.safe_dump({"hosts": {"mb": entry}}))
        inv = [sys.executable, "-m", "invoke", "-r", str(REPO)]
        env = {**os.environ, "SCHEMASYNC_HOSTS": str(hosts)}
        run = subprocess.run([*inv, "schemas.refresh", "--json"], cwd=work, env=env, capture_output=True, text=True)
        if run.returncode != 0:
            print(run.stderr, file=sys.stderr)
            return 1
        out = work / "docs" / "schemas" / "mb"
        manifest = json.loads((out / "_manifest.json").read_text())
        tables = [f for f in manifest["files"] if f["kind"] == "table"]
        top = max(tables, key=lambda f: len(f["details"]["referenced_by"]))
        table = top["name"] if top["schema"] == "public" else f"{top['schema']}.{top['name']}"
        sizes = anyio.run(answers, Path(sys.executable).parent / "schemasync-mcp", hosts, work, table)
        schemas = len({f["schema"] for f in tables})
        pages = {p: (out / p).stat().st_size for p in ["_index.md", "_erd.md", *manifest.get("pages", [])]}
        erd_pages = {p: n for p, n in pages.items() if p.startswith("_erd")}
        diagrams = {p: (out / p).read_text().count("```mermaid") for p in erd_pages}
        result = {
            "schema": f"MusicBrainz: {len(tables)} tables in {schemas} schemas",
            "most_referenced": table,
            "answers": sizes,
            "budgets": BUDGETS,
            "pages": len(pages),
            "largest_index_page": max(n for p, n in pages.items() if p.startswith("_index")),
            "largest_erd_page": max(erd_pages.values()),
            "most_diagrams_on_a_page": max(diagrams.values()),
            "diagrams": sum(diagrams.values()),
        }
    finally:
        if args.keep:
            pids = f"$(cat {root}/sandbox/ssh/sshd.pid) $(head -1 {root}/sandbox/pg/data/postmaster.pid)"
            print(f"kept: {root / 'repo'} (stop its servers with: kill {pids})")
        else:
            sb.stop()
            shutil.rmtree(root, ignore_errors=True)
    print(f"{result['schema']}; the most referenced table: {result['most_referenced']}\n")
    print(f"| {'answer':<42} | {'characters':>10} | {'budget':>7} |")
    print(f"|{'-' * 44}|{'-' * 12}:|{'-' * 8}:|")
    for label, n in sizes.items():
        budget = BUDGETS.get(label)
        mark = "" if budget is None else (" ok" if n <= budget else " OVER")
        print(f"| {label:<42} | {n:>10,} | {budget or '':>7} |{mark}")
    print(
        f"\n{result['pages']} index and diagram pages; the largest index page {result['largest_index_page']:,} bytes, "
        f"the largest diagram page {result['largest_erd_page']:,} bytes with {result['most_diagrams_on_a_page']} "
        f"diagrams ({result['diagrams']} in all)"
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    over = [label for label, budget in BUDGETS.items() if sizes.get(label, 0) > budget]
    return 1 if over else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
