"""What readers and agents ask, answered from the tool's output, checked against the live catalog."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import anyio
import pytest

from schemasync.output.erd import ERD_LIMIT, render_erd
from schemasync.output.records import Record

from .conftest import REPO, Workspace


def catalog(ws: Workspace, database: str, sql: str) -> list[list[str]]:
    out = ws.sandbox.psql(sql, database=database)
    return [line.split("|") for line in out.splitlines() if line]


@pytest.fixture
def refreshed(workspace: Workspace, database: str) -> Workspace:
    workspace.add_host("dev", database)
    assert workspace.inv("schemas.refresh", "--host", "dev").code == 0
    return workspace


def test_what_columns_does_survey_notes_have(refreshed: Workspace, database: str) -> None:
    run = refreshed.inv("schemas.show", "survey_notes", "--json")
    assert run.code == 0, run.err
    got = [[c["name"], c["type"]] for c in run.json["columns"]]
    want = catalog(
        refreshed,
        database,
        "SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute "
        "WHERE attrelid = 'survey_notes'::regclass AND attnum > 0 AND NOT attisdropped ORDER BY attnum",
    )
    assert got == want and len(got) == 7


def test_show_me_all_indexes_on_users(refreshed: Workspace, database: str) -> None:
    run = refreshed.inv("schemas.show", "users", "--part", "index_details", "--json")
    assert set(run.json) == {"host", "kind", "schema", "name", "file", "folder", "index_details"}  # that part alone
    names = {i["name"] for i in run.json["index_details"]}
    ddl = refreshed.inv("schemas.show", "users", "--definition", "--json").json["definition"]
    for name in names:  # each one's statement is in the definition
        assert re.search(rf"(CREATE (UNIQUE )?INDEX {name} |ADD CONSTRAINT {name} )", ddl), name
    want = {r[0] for r in catalog(refreshed, database, "SELECT indexname FROM pg_indexes WHERE tablename = 'users'")}
    assert names == want and len(want) == 3


def test_what_foreign_keys_reference_company(refreshed: Workspace, database: str) -> None:
    run = refreshed.inv("schemas.show", "company", "--json")
    # one line each: `public.users(company_id) -> (id) ON DELETE CASCADE`
    lines = [re.match(r"(?:public\.)?(\S+)\(([^)]*)\) -> ", line) for line in run.json["referenced_by"]]
    got = sorted((m.group(1), m.group(2).replace(", ", ",")) for m in lines if m)
    want = sorted(
        (r[0], r[1])
        for r in catalog(
            refreshed,
            database,
            "SELECT c.conrelid::regclass::text, string_agg(a.attname, ',' ORDER BY k.i) FROM pg_constraint c, "
            "unnest(c.conkey) WITH ORDINALITY k(n, i), pg_attribute a WHERE c.contype = 'f' "
            "AND c.confrelid = 'company'::regclass AND a.attrelid = c.conrelid AND a.attnum = k.n "
            "GROUP BY c.oid, c.conrelid",
        )
    )
    assert got == want and len(want) == 3
    # and in the file itself, which is what an agent reading company.sql sees
    text = (refreshed.out() / "company.sql").read_text()
    lines = [line for line in text.splitlines() if line.startswith("-- Referenced by: ")]
    assert lines == sorted(lines) and len(lines) == 3
    assert "-- Referenced by: public.solar_projects(company_id) -> company(id) ON DELETE CASCADE" in lines


def test_list_all_timestamp_columns_in_project_system_details(refreshed: Workspace, database: str) -> None:
    run = refreshed.inv("schemas.search", "project_system_details", "--type", "timestamp", "--json")
    got = sorted(m["column"] for m in run.json["matches"])
    want = sorted(
        r[0]
        for r in catalog(
            refreshed,
            database,
            "SELECT column_name FROM information_schema.columns WHERE table_name = "
            "'project_system_details' AND data_type LIKE 'timestamp%'",
        )
    )
    assert got == want == ["approved_at", "designed_at", "updated_at"]
    text = refreshed.inv("schemas.search", "project_system_details", "--type", "timestamp")
    assert "project_system_details.approved_at timestamp without time zone" in text.out.splitlines()


def test_whats_the_primary_key_of_solar_projects(refreshed: Workspace, database: str) -> None:
    run = refreshed.inv("schemas.show", "solar_projects", "--json")
    want = [
        r[0]
        for r in catalog(
            refreshed,
            database,
            "SELECT a.attname FROM pg_index i JOIN pg_attribute a ON "
            "a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey) WHERE i.indisprimary AND "
            "i.indrelid = 'solar_projects'::regclass",
        )
    ]
    assert run.json["primary_key"] == want == ["id"]
    assert "| `solar_projects` | `public` | 9 | `id` |" in (refreshed.out() / "_index.md").read_text()


def test_unknown_table_gives_close_matches(refreshed: Workspace) -> None:
    run = refreshed.inv("schemas.show", "survey_note")
    assert run.code == 2 and "did you mean: survey_notes" in run.err and run.out == ""


def test_index_erd_and_guide(refreshed: Workspace) -> None:
    out = refreshed.out()
    index = (out / "_index.md").read_text()
    assert "| primary key | FKs out | FKs in |" in index
    assert (
        "| `company` | `public` | 5 | `id` | 0 | 3 | [company.sql](company.sql) | Installer companies (tenants) |"
        in index
    )
    erd = (out / "_erd.md").read_text()
    assert erd.count("erDiagram") == 1
    assert '    survey_notes }o--|| solar_projects : "project_id"' in erd
    guide = (refreshed.path / "docs" / "schemas" / "README.md").read_text()
    assert "`dev`" in guide and "inv schemas.refresh --host <env>" in guide and "⚠ orphaned" in guide
    assert "docs/schemas/README.md" in refreshed.git("show", "--name-only", "--format=", "HEAD").split()
    agent = refreshed.inv("schemas.agent-guide")
    assert agent.code == 0 and "inv schemas.check --host <env>" in agent.out and "`docs/schemas/<env>/`" in agent.out
    for said in ("materialized_views/", "other/", "`<schema>.<table>`", "inv schemas.search <column> --host <env>"):
        assert said in agent.out, said


def test_big_schemas_get_readable_diagrams() -> None:
    def table(i: int, parent: int | None) -> Record:
        fk = {
            "schema": "public",
            "table": f"t{i}",
            "columns": ["p"],
            "ref_schema": "public",
            "ref_table": f"t{parent}",
            "ref_columns": ["id"],
        }
        fks = [] if parent is None else [fk]
        return Record(
            "table",
            "public",
            f"t{i}",
            f"t{i}.sql",
            "current",
            2,
            {
                "column_defs": [["id", "integer", True], ["p", "integer", False]],
                "primary_key": ["id"],
                "comment": None,
                "foreign_keys": fks,
                "referenced_by": [],
            },
        )

    chain = [table(i, i - 1 if i else None) for i in range(100)]  # one group of 100
    pairs = [table(1000 + i, 1000 + i - 1 if i % 2 else None) for i in range(10)]  # five groups of 2
    lonely = [table(2000 + i, None) for i in range(5)]
    erd = render_erd(chain + pairs + lonely, "big")
    diagrams = erd.split("```mermaid")[1:]
    assert len(diagrams) == 100 + 5  # a neighbourhood per table of the big group, one diagram per small group
    assert max(d.count(" {\n") for d in diagrams) <= 31 <= ERD_LIMIT
    assert "Tables without foreign keys: `t2000`" in erd


def test_diagrams_keep_real_names_readable_types_and_say_what_they_leave_out() -> None:
    def record(schema: str, name: str, fks: list[dict], cols: list[list]) -> Record:
        details = {"column_defs": cols, "primary_key": ["id"], "comment": None, "foreign_keys": fks}
        return Record(
            "table", schema, name, f"{schema}.{name}.sql", "current", len(cols), {**details, "referenced_by": []}
        )

    def fk(schema: str, table: str, column: str, ref_schema: str, ref_table: str) -> dict:
        return {"schema": schema, "table": table, "columns": [column], "ref_schema": ref_schema,
                "ref_table": ref_table, "ref_columns": ["id"]}  # fmt: skip

    hub = record("public", "link", [], [["id", "integer", True]])
    spokes = [
        record(
            "public",
            f"s{i}",
            [fk("public", f"s{i}", "link_id", "public", "link")],
            [["id", "integer", True], ["link_id", "integer", False]],
        )
        for i in range(70)
    ]
    columns = [["id", "character varying(50)", True], ["Link Id", "integer", False], ["at", "timestamptz", False]]
    other = record("music", "Release Group", [fk("music", "Release Group", "Link Id", "public", "link")], columns)
    erd = render_erd([hub, *spokes, other], "dev")
    link = "".join(part.split("\n### ")[0] for part in erd.split("### `link` and its neighbours")[1:])
    assert link.count("}o--||") == 30 and "### `link` and its neighbours (5 of 5)" in erd  # 6 to a diagram
    assert "40 of its 70 foreign keys are not drawn here" in link and "`public.s30`" in link and "20 more" in link
    assert 'Release_Group["Release Group"] {' in erd  # the real name, as Mermaid's alias
    assert 'public__link["public.link"] {' in erd  # and the schema of a table from another one
    assert 'integer Link_Id FK "Link Id"' in erd and "varchar(50) id PK" in erd
    assert "character_varying" not in erd


def test_every_command_prints_exactly_one_json_document(refreshed: Workspace) -> None:
    shapes = {
        ("schemas.refresh", "--host", "dev"): {"host", "database", "tables", "added", "updated", "orphaned", "commit"},
        ("schemas.list", "--host", "dev"): {"host", "tables"},
        ("schemas.check", "--host", "dev"): {"host", "stale", "added", "changed", "gone"},
        ("schemas.sweep",): {"environments", "commit", "ok"},
        ("schemas.diff", "dev", "dev"): {"a", "b", "same", "only_in_a", "only_in_b", "different"},
        ("schemas.show", "company"): {
            "host",
            "schema",
            "name",
            "file",
            "columns",
            "primary_key",
            "index_details",
            "referenced_by",
        },
        ("schemas.show", "company", "--definition"): {"definition"},
        ("schemas.search", "company_id"): {"host", "matches"},
    }
    for args, keys in shapes.items():
        run = refreshed.inv(*args, "--json")
        assert run.code == 0, (args, run.err)
        doc = json.loads(run.out)  # the whole of stdout is one document
        assert keys <= set(doc), (args, keys - set(doc))
    listed = refreshed.inv("schemas.list", "--json").json["tables"]
    assert all(set(t) >= {"name", "schema", "status"} for t in listed)
    assert {t["status"] for t in listed} == {"current"}
    assert {t["name"]: t["primary_key"] for t in listed}["company"] == ["id"]  # one short row: the key too
    refresh = refreshed.inv("schemas.refresh", "--json").json
    assert isinstance(refresh["tables"], int) and refresh["added"] == [] and refresh["commit"] is None


def test_mcp_server_over_stdio(refreshed: Workspace) -> None:
    from mcp import ClientSession, StdioServerParameters
    from mcp.client.stdio import stdio_client

    server = Path(sys.executable).parent / "schemasync-mcp"
    hosts = str(refreshed.path / "hosts.yaml")

    async def session_calls() -> dict:
        params = StdioServerParameters(command=str(server), args=[hosts], cwd=str(refreshed.path))
        async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
            await session.initialize()
            listed = (await session.list_tools()).tools
            tools = sorted(t.name for t in listed)
            schemas = {t.name: t.output_schema for t in listed}
            undescribed = [
                f"{t.name}.{name}"
                for t in listed
                for name, prop in t.input_schema["properties"].items()
                if not prop.get("description")
            ]

            async def call(name: str, **args: object) -> dict:
                result = await session.call_tool(name, args)
                if result.is_error:
                    return {"isError": True, "message": result.content[0].text}
                text = json.loads(result.content[0].text)
                assert result.structured_content == text, (name, set(text) ^ set(result.structured_content))
                return result.structured_content

            return {
                "tools": tools,
                "schemas": schemas,
                "undescribed": undescribed,
                "huge": await call("search_columns", pattern="*", limit=5000),
                "page": await call("list_tables", limit=5, offset=5),
                "by_schema": await call("list_tables", schema="nope"),
                "ids": await call("search_columns", pattern="id", limit=3),
                "bad_page": await call("list_tables", limit=0),
                "list": await call("list_tables"),
                "describe": await call("describe_table", table="company"),
                "with_ddl": await call("describe_table", table="company", definition=True),
                "raw": (await session.call_tool("describe_table", {"table": "company"})).content[0].text,
                "search": await call("search_columns", type="timestamp", pattern="project_system_details"),
                "diff": await call("diff_environments", a="dev", b="dev"),
                "missing": await call("describe_table", table="nope"),
                "refresh": await call("refresh", host="dev"),
            }

    got = anyio.run(session_calls)
    assert got["tools"] == ["describe_table", "diff_environments", "list_tables", "refresh", "review_migration",
                            "schema_changes", "search_columns", "table_history", "what_depends_on"]  # fmt: skip
    assert len(got["list"]["tables"]) == 16 and got["list"]["total"] == 16 and got["list"]["next_offset"] is None
    assert got["undescribed"] == []  # the model reads every parameter's description
    assert got["huge"]["limit"] == 200 and len(got["huge"]["matches"]) <= 200  # capped at the budget
    # every tool declares its output schema (and the answers above matched it as structured content)
    assert all(schema and schema.get("type") == "object" for schema in got["schemas"].values()), got["schemas"]
    page = got["page"]
    assert (page["total"], page["offset"], page["next_offset"], len(page["tables"])) == (16, 5, 10, 5)
    assert page["tables"] == got["list"]["tables"][5:10] and got["by_schema"]["total"] == 0
    assert len(got["ids"]["matches"]) == 3 and got["ids"]["total"] > 3 and got["ids"]["next_offset"] == 3
    assert got["bad_page"]["isError"] is True
    # each fact once: foreign keys in are one line each, the DDL only when asked for
    assert "definition" not in got["describe"] and "/" not in got["describe"]["file"]
    assert "-- Referenced by" not in got["with_ddl"]["definition"] and "CREATE TABLE" in got["with_ddl"]["definition"]
    assert sorted(got["describe"]["referenced_by"]) == [
        "public.customers(company_id) -> (id)",
        "public.solar_projects(company_id) -> (id) ON DELETE CASCADE",
        "public.users(company_id) -> (id) ON DELETE CASCADE",
    ]
    assert "\n" not in got["raw"] and ": " not in got["raw"][:200]  # compact JSON, not indented
    assert sorted(m["column"] for m in got["search"]["matches"]) == ["approved_at", "designed_at", "updated_at"]
    assert got["diff"]["same"] is True
    assert got["missing"]["isError"] is True and "no table or object 'nope'" in got["missing"]["message"]
    assert got["refresh"]["host"] == "dev" and got["refresh"]["changed"] is False


# A Python without the optional MCP SDK (nor what it brings: pydantic, typing_extensions)
WITHOUT_SDK = """import sys
class Hide:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("mcp", "pydantic", "typing_extensions"):
            raise ModuleNotFoundError(f"No module named {name!r}")
sys.meta_path.insert(0, Hide())
"""


@pytest.mark.parametrize(
    "start",
    [
        f"from invoke.main import program; program.run(['inv', '-r', {str(REPO)!r}, 'schemas.mcp', '--json'])",
        "from schemasync.frontends.cli import main; sys.argv = ['schemasync', 'mcp', '--json']; main()",
        "from schemasync.frontends.mcp_server import console; sys.argv = ['schemasync-mcp']; console()",
    ],
)
def test_without_the_mcp_extra_the_server_says_what_to_install(start: str, tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-c", WITHOUT_SDK + start], cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr and "pip install 'schemasync[mcp]'" in proc.stderr, proc.stderr
    if "--json" in start:
        assert json.loads(proc.stdout)["hints"] == ["pip install 'schemasync[mcp]'"]


def test_answers_fit_a_context_window_on_a_big_schema(workspace: Workspace) -> None:
    """The budgets of the README, on MusicBrainz's shape: 520 tables, one of them referenced by 108
    foreign keys (bench/context.py measures MusicBrainz itself)."""
    from mcp import ClientSession, StdioServerParameters
    from mcp.client.stdio import stdio_client

    sql = [
        "CREATE SCHEMA musicbrainz;",
        "CREATE TABLE musicbrainz.link (id serial PRIMARY KEY, link_type int NOT NULL, begin_date_year smallint, "
        "end_date_year smallint, attribute_count int NOT NULL DEFAULT 0, created timestamptz DEFAULT now(), "
        "ended boolean NOT NULL DEFAULT false);",
    ]
    for i in range(519):
        ref = ", link int NOT NULL REFERENCES musicbrainz.link" if i < 108 else ""
        sql.append(
            f"CREATE TABLE musicbrainz.l_entity_{i:03d}_other (id serial PRIMARY KEY, entity0 int NOT NULL, "
            f"entity1 int NOT NULL, edits_pending int NOT NULL DEFAULT 0{ref});"
            f"COMMENT ON TABLE musicbrainz.l_entity_{i:03d}_other IS 'Relationships between two entities, "
            "of the types in link_type; one row per pair.';"
        )
    workspace.sandbox.create_database("bigshape", "\n".join(sql))
    workspace.add_host("dev", "bigshape", schemas=["musicbrainz"])
    assert workspace.inv("schemas.refresh", "--host", "dev").code == 0
    server = Path(sys.executable).parent / "schemasync-mcp"

    async def sizes() -> dict[str, tuple[int, dict]]:
        params = StdioServerParameters(command=str(server), args=[str(workspace.path / "hosts.yaml")])
        async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
            await session.initialize()
            out = {}
            for label, tool, args in (
                ("list", "list_tables", {}),
                ("describe", "describe_table", {"table": "musicbrainz.link"}),
                ("search", "search_columns", {"pattern": "id"}),
            ):
                text = (await session.call_tool(tool, args)).content[0].text
                out[label] = (len(text), json.loads(text))
            return out

    got = anyio.run(sizes)
    assert got["list"][0] <= 24_000 and got["list"][1]["total"] == 520 and got["list"][1]["next_offset"] == 100
    assert got["describe"][0] <= 12_000 and len(got["describe"][1]["referenced_by"]) == 108
    assert got["search"][0] <= 24_000 and got["search"][1]["total"] >= 520
