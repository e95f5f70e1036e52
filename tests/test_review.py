"""`impact` and `review` as a user runs them: from the files a real refresh wrote (real sshd, real
PostgreSQL), on the command line, as JSON, as markdown, across drifted environments, and over MCP.
What PostgreSQL itself says of each prediction is tests/test_review_oracle.py; the pure parts are
tested here without servers."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest

from sandbox import Sandbox, sql_text
from schemasync.core.errors import USAGE
from schemasync.jobs.review import read_migrations
from schemasync.schema.catalog import Catalog, SourceFile, dependents_of, target_of
from schemasync.schema.catalog_build import build_catalog
from schemasync.schema.review import MigrationSyntaxError, parse_migration, review
from schemasync.schema.review_rules import type_change_rewrites

from .conftest import Workspace


@pytest.fixture
def environments(workspace: Workspace, sandbox: Sandbox) -> Iterator[Workspace]:
    """prod: the review schema; staging: the same, drifted (tickets.status exists there already)."""
    sql = sql_text("skyfire.sql") + "\n" + sql_text("review.sql")
    names = {"prod": f"rv_prod_{id(workspace)}", "staging": f"rv_staging_{id(workspace)}"}
    sandbox.create_database(names["prod"], sql)
    sandbox.create_database(names["staging"], sql + "\nALTER TABLE tickets ADD COLUMN status text;")
    for host, db in names.items():
        workspace.add_host(host, db)
        run = workspace.inv("schemas.refresh", "--host", host)
        assert run.code == 0, run.err
    yield workspace
    for db in names.values():
        sandbox.psql(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE);', check=False)


def test_impact_names_every_dependent_with_file_and_line(environments: Workspace) -> None:
    run = environments.inv("schemas.impact", "invoices.tax_cents", "--host", "prod", "--json")
    assert run.code == 0, run.err
    found = {d["name"]: d for d in run.json["dependents"]}
    assert set(found) == {"column total_cents of table invoices", "function invoice_total(integer)"}
    body = found["function invoice_total(integer)"]
    lines = (environments.out("prod") / body["file"]).read_text().splitlines()
    assert "i.tax_cents" in lines[body["line"] - 1]  # the line that names it
    generated = found["column total_cents of table invoices"]
    assert "tax_cents" in (environments.out("prod") / generated["file"]).read_text().splitlines()[generated["line"] - 1]
    # transitively: a view on a view, and a trigger through the function whose body names the column
    assert (
        environments.inv("schemas.impact", "solar_projects.status", "--host", "prod", "--json").json["dependents"][-1][
            "name"
        ]
        == "view open_project_customers"
    )
    payments = environments.inv("schemas.impact", "payments.amount_cents", "--host", "prod").out
    assert "function log_payment()" in payments and "trigger payments_log on table payments" in payments
    # a body that builds SQL at run time is named, and said not to be checked
    purge = environments.inv("schemas.impact", "purge", "--host", "prod", "--json")
    assert purge.code == 0 and purge.json["target"]["kind"] == "function"


def test_impact_across_environments_says_where_each_dependent_is(environments: Workspace) -> None:
    run = environments.inv("schemas.impact", "tickets", "--all-hosts", "--json")
    assert run.code == 0, run.err
    assert sorted(run.json["hosts"]) == ["prod", "staging"]
    assert all(sorted(d["hosts"]) == ["prod", "staging"] for d in run.json["dependents"])
    status = environments.inv("schemas.impact", "tickets.status", "--all-hosts", "--json")
    assert status.code == 0 and status.json["missing_in"] == ["prod"]
    unknown = environments.inv("schemas.impact", "nothing_named_so", "--host", "prod", "--json")
    assert unknown.code == USAGE and "nothing named" in unknown.json["error"]


MIGRATION = """-- a release
ALTER TABLE tickets ADD COLUMN status text;
ALTER TABLE tickets ALTER COLUMN status SET NOT NULL;
CREATE INDEX tickets_status_idx ON tickets (status);
ALTER TABLE invoices RENAME COLUMN tax_cents TO tax;
"""


def test_review_exit_codes_text_markdown_and_json(environments: Workspace) -> None:
    good = environments.path / "0001_good.sql"
    good.write_text(
        "ALTER TABLE customers ADD COLUMN nickname text;\nCREATE INDEX CONCURRENTLY c_nick ON customers (nickname);\n"
    )
    bad = environments.path / "0002_bad.sql"
    bad.write_text(MIGRATION)
    ok = environments.inv("schemas.review", str(good), "--host", "prod")
    assert ok.code == 0, ok.err
    assert "nothing fails or breaks (exit 0)" in ok.out and "SHARE UPDATE EXCLUSIVE on customers" in ok.out
    run = environments.inv("schemas.review", str(bad), "--host", "prod", "--json")
    assert run.code == 1
    statements = run.json["hosts"][0]["statements"]
    assert [s["line"] for s in statements] == [2, 3, 4, 5]
    assert statements[3]["breaks"][0]["objects"] == ["function invoice_total(integer)"]
    assert statements[3]["breaks"][0]["places"][0]["file"] == "functions/invoice_total.sql"
    assert statements[1]["locks"][0] == {
        "table": "tickets", "mode": "ACCESS EXCLUSIVE", "effect": "scan", "size": None, "weight": "unknown size"
    }  # fmt: skip
    markdown = environments.inv("schemas.review", f"{good},{bad}", "--host", "prod", "--format", "markdown")
    assert markdown.code == 1
    assert markdown.out.startswith("### schemasync review: ❌")
    assert "| 6 | `ALTER TABLE invoices RENAME COLUMN tax_cents TO tax` | ❌" in markdown.out
    assert "- **#6 breaks in prod**:" in markdown.out and "functions/invoice_total.sql:" in markdown.out
    # stdin, and a migration that does not parse: exit 2, with where and the statement
    env = {**os.environ, "SCHEMASYNC_HOSTS": str(environments.path / "hosts.yaml")}
    piped = subprocess.run(
        [sys.executable, "-m", "invoke", "-r", str(Path(__file__).parents[1]), "schemas.review", "-", "--json"],
        input="ALTER TABLE tickets ADD COLUM x int;", capture_output=True, text=True, cwd=environments.path, env=env,
    )  # fmt: skip
    assert piped.returncode == 2
    doc = json.loads(piped.stdout)
    assert doc["error"].startswith("<stdin>:1:33: syntax error") and "ADD COLUM x int" in doc["hints"][0]


def test_review_across_drifted_environments(environments: Workspace) -> None:
    path = environments.path / "release.sql"
    path.write_text(MIGRATION)
    run = environments.inv("schemas.review", str(path), "--all-hosts", "--json")
    assert run.code == 1
    by_host = {h["host"]: h["statements"] for h in run.json["hosts"]}
    assert by_host["staging"][0]["fails"][0]["message"] == 'column "status" of relation "tickets" already exists'
    assert by_host["prod"][0]["fails"] == []
    drift = run.json["drift"]
    assert drift[0]["kind"] == "differs already" and drift[0]["hosts"] == ["staging"]
    text = environments.inv("schemas.review", str(path), "--all-hosts").out
    assert 'staging: FAILS column "status"' in text and "drift between environments:" in text
    # the same CLI without tasks.py
    cli = environments.cli("review", str(path), "--host", "prod", "--json")
    assert cli.code == 1 and cli.json["hosts"][0]["host"] == "prod"


def test_size_classes_are_kept_and_only_a_new_class_changes_the_manifest(workspace: Workspace, database: str,
                                                                          sandbox: Sandbox) -> None:  # fmt: skip
    workspace.add_host("dev", database)
    sandbox.psql("INSERT INTO equipment_catalog (sku, kind, manufacturer) SELECT 's' || i, 'panel', 'm' "
                 "FROM generate_series(1, 20) i; ANALYZE equipment_catalog;", database=database)  # fmt: skip
    assert workspace.inv("schemas.refresh", "--host", "dev").code == 0
    manifest = json.loads((workspace.out() / "_manifest.json").read_text())
    sizes = {r["name"]: r["details"].get("size") for r in manifest["files"] if r["kind"] == "table"}
    assert sizes["equipment_catalog"] == {"rows": 10, "bytes": 1000} and sizes["company"] is None
    commits = workspace.commits()
    sandbox.psql("INSERT INTO equipment_catalog (sku, kind, manufacturer) SELECT 't' || i, 'panel', 'm' "
                 "FROM generate_series(1, 30) i; ANALYZE equipment_catalog;", database=database)  # fmt: skip
    assert workspace.inv("schemas.refresh", "--host", "dev").code == 0
    assert workspace.commits() == commits  # 50 rows: the same class as 20
    sandbox.psql("INSERT INTO equipment_catalog (sku, kind, manufacturer) SELECT 'u' || i, 'panel', 'm' "
                 "FROM generate_series(1, 100) i; ANALYZE equipment_catalog;", database=database)  # fmt: skip
    run = workspace.inv("schemas.refresh", "--host", "dev", "--json")
    assert run.code == 0 and run.json["files_written"] == ["_manifest.json"]
    manifest = json.loads((workspace.out() / "_manifest.json").read_text())
    assert {r["name"]: r["details"].get("size") for r in manifest["files"] if r["kind"] == "table"}[
        "equipment_catalog"
    ]["rows"] == 100


def test_review_and_impact_over_mcp(environments: Workspace) -> None:
    from mcp import ClientSession, StdioServerParameters
    from mcp.client.stdio import stdio_client

    server = Path(sys.executable).parent / "schemasync-mcp"

    async def calls() -> dict:
        params = StdioServerParameters(command=str(server), args=[str(environments.path / "hosts.yaml")])
        async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
            await session.initialize()
            tools = {t.name: t for t in (await session.list_tools()).tools}
            review_answer = await session.call_tool("review_migration", {"sql": MIGRATION, "all_hosts": True})
            impact_answer = await session.call_tool("what_depends_on", {"name": "customers.email", "host": "prod"})
            return {"tools": tools, "review": review_answer.structured_content,
                    "impact": impact_answer.structured_content}  # fmt: skip

    got = anyio.run(calls)
    for name in ("review_migration", "what_depends_on"):
        tool = got["tools"][name]
        assert tool.output_schema and all(p.get("description") for p in tool.input_schema["properties"].values())
    assert got["review"]["ok"] is False and got["review"]["exit_code"] == 1 and len(got["review"]["drift"]) >= 1
    assert [d["name"] for d in got["impact"]["dependents"]] == ["function customer_email(bigint)"]


# --- pure parts ------------------------------------------------------------------------------


def catalog_of(*files: tuple[str, str]) -> Catalog:
    return build_catalog([SourceFile("table", "public", Path(f).stem, f, text) for f, text in files])


def test_a_plpgsql_body_is_read_statement_by_statement_and_dynamic_sql_is_flagged() -> None:
    cat = catalog_of(
        ("t.sql", "CREATE TABLE public.t (id integer, a text, b text);\n"),
        ("f.sql", "CREATE FUNCTION public.f() RETURNS trigger LANGUAGE plpgsql AS $$\nBEGIN\n"
                  "  IF NEW.a IS NULL THEN\n    UPDATE t SET b = 'x' WHERE id = NEW.id;\n  END IF;\n"
                  "  EXECUTE 'SELECT 1';\n  RETURN NEW;\nEND\n$$;\n"
                  "CREATE TRIGGER trg BEFORE INSERT ON public.t FOR EACH ROW EXECUTE FUNCTION public.f();\n"),
    )  # fmt: skip
    found = {
        (d.name, d.target[-1], d.line, d.checked, depth)
        for d, depth in dependents_of(cat, ("column", "public", "t", "b"))
    }
    assert found == {
        ("function f()", "b", 4, False, 1),  # line 4 of f.sql; not checked: it runs built SQL too
        ("trigger trg on table t", "f", 10, True, 2),  # and what calls the function
    }
    via_new = {(d.name, d.line) for d, depth in dependents_of(cat, ("column", "public", "t", "a")) if depth == 1}
    assert via_new == {("function f()", 3)}  # NEW.a, through the trigger on t


def test_names_resolve_to_what_they_mean() -> None:
    cat = catalog_of(("t.sql", "CREATE TABLE public.t (id integer, a text);\nCREATE TABLE app.t (x integer);\n"))
    assert target_of(cat, "t") == ("relation", "public", "t")
    assert target_of(cat, "app.t") == ("relation", "app", "t")
    assert target_of(cat, "t.a") == ("column", "public", "t", "a")
    assert target_of(cat, "app.t.x") == ("column", "app", "t", "x")
    assert target_of(cat, "t.nope") is None


@pytest.mark.parametrize(
    ("old", "new", "rewrites"),
    [
        ("character varying(80)", "character varying(200)", False),
        ("character varying(80)", "character varying(40)", True),
        ("character varying(80)", "text", False),
        ("text", "character varying", False),
        ("text", "character varying(10)", True),
        ("numeric(6,2)", "numeric(8,2)", False),
        ("numeric(6,2)", "numeric(8,3)", True),
        ("numeric(6,2)", "numeric", False),
        ("smallint", "integer", True),
        ("integer", "bigint", True),
        ("timestamp without time zone", "timestamp with time zone", True),
    ],
)
def test_which_type_changes_rewrite(old: str, new: str, rewrites: bool) -> None:
    assert type_change_rewrites(old, new, None, "c") is rewrites


def test_a_failing_statement_changes_nothing_and_later_ones_see_the_earlier_ones() -> None:
    cat = catalog_of(("t.sql", "CREATE TABLE public.t (id integer PRIMARY KEY, a text);\n"))
    sql = "ALTER TABLE t ADD COLUMN a int;\nALTER TABLE t ADD COLUMN b int;\nALTER TABLE t DROP COLUMN b;\n" \
          "ALTER TABLE t DROP COLUMN b;"  # fmt: skip
    results, final = review(cat, parse_migration([("m.sql", sql)]))
    assert [bool(r.fails) for r in results] == [True, False, False, True]
    assert set(final.relations[("public", "t")].columns) == {"id", "a"}


def test_syntax_errors_say_file_line_column_and_statement() -> None:
    with pytest.raises(MigrationSyntaxError) as err:
        parse_migration([("a.sql", "SELECT 1;\n"), ("b.sql", "ALTER TABLE t\n  ADD COLUM x int;\n")])
    assert str(err.value.message) == 'b.sql:2:15: syntax error at or near "int"'
    assert err.value.statement == "ALTER TABLE t\n  ADD COLUM x int" and err.value.code == USAGE


def test_migration_files_by_list_directory_glob_and_stdin(tmp_path: Path) -> None:
    for name in ("0002_b.sql", "0001_a.sql", "notes.txt"):
        (tmp_path / name).write_text(name)
    a, b = str(tmp_path / "0001_a.sql"), str(tmp_path / "0002_b.sql")
    assert [n for n, _ in read_migrations(str(tmp_path), None)] == [a, b]
    assert [n for n, _ in read_migrations(f"{b}\n{a}", None)] == [b, a]
    assert [n for n, _ in read_migrations(f"{b},{a}", None)] == [b, a]
    assert [n for n, _ in read_migrations(str(tmp_path / "*.sql"), None)] == [a, b]
    assert read_migrations("-", io.StringIO("SELECT 1;")) == [("<stdin>", "SELECT 1;")]
    with pytest.raises(Exception, match="no migration file"):
        read_migrations(str(tmp_path / "missing.sql"), None)
