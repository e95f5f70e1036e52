"""Hostile and odd table names, end to end against the real server."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from sandbox import Sandbox, sql_text

from .conftest import Workspace, without_stamp

NAMES = [
    "../../escape",
    "a/b",
    ".git",
    "CON",
    "-rf",
    "$(touch x)",
    "Users",
    "users",
    "new\nline; DROP TABLE users; --",
    "x" * 63,
    "ünïcødé_表",
    'quote"d',
]


@pytest.fixture(scope="module")
def hostile_db(sandbox: Sandbox) -> str:
    sandbox.create_database("hostile", sql_text("hostile.sql"))
    return "hostile"


def test_each_hostile_name_gets_exactly_one_file_inside_the_output(
    workspace: Workspace, hostile_db: str, tmp_path: Path
) -> None:
    workspace.add_host("dev", hostile_db)
    cwd_before = set(os.listdir(workspace.path))
    run = workspace.inv("schemas.refresh", "--host", "dev", "--json")
    assert run.code == 0, run.err
    out = workspace.out()
    manifest = json.loads((out / "_manifest.json").read_text())
    assert sorted(f["name"] for f in manifest["files"] if f["kind"] == "table") == sorted(NAMES)
    table_files = sorted(p for p in out.iterdir() if p.suffix == ".sql")
    assert len(table_files) == len(NAMES)
    assert len({p.name.lower() for p in table_files}) == len(NAMES)  # distinct even case-insensitively
    for p in workspace.path.rglob("*"):
        assert p.resolve().is_relative_to(workspace.path.resolve())
    assert set(os.listdir(workspace.path)) - cwd_before <= {"docs"}
    assert not (workspace.path / "x").exists() and not Path("x").exists()
    assert not (workspace.path.parent / "escape").exists()
    assert (out / "users.sql").is_file()
    assert 'REFERENCES public."Users"(id)' in (out / "users.sql").read_text()
    # A name with a newline never breaks out of our header's comment lines.
    newline_file = next(p for p in table_files if p.name.startswith("new_line"))
    header = newline_file.read_text().splitlines()[:3]
    assert all(line.startswith("-- ") for line in header)
    assert header[0] == '-- Table: public."new\\x0aline; DROP TABLE users; --"'
    # committed, and a second refresh changes nothing
    assert workspace.commits() == 1
    before = workspace.snapshot()
    again = workspace.inv("schemas.refresh", "--host", "dev")
    assert again.code == 0 and "no changes" in again.out
    assert workspace.snapshot() == before and workspace.commits() == 1


def test_hostile_names_with_table_refresh(workspace: Workspace, hostile_db: str) -> None:
    workspace.add_host("dev", hostile_db)
    for name in ["../../escape", "$(touch x)", "Users", "-rf"]:
        run = workspace.inv("schemas.refresh", "--host", "dev", "--table", name, "--no-commit", "--json")
        assert run.code == 0, (name, run.err)
        assert len(run.json["added"]) == 1
    files = sorted(p.name for p in workspace.out().glob("*.sql"))
    assert len(files) == 4 and not (workspace.path / "x").exists()


@pytest.mark.parametrize("search_path", [None, "public, pg_catalog"])
def test_functions_in_public_cannot_take_over_the_catalog_queries(
    workspace: Workspace, database: str, search_path: str | None
) -> None:
    """Anyone who may create functions in a schema on the role's search_path (public, for every
    user before PostgreSQL 15) could otherwise shadow what the catalog queries call: a function
    with a closer signature wins overload resolution wherever it sits in the path, and runs with
    the refresh's role (often a superuser). The queries run under search_path pg_catalog, as
    pg_dump's do; the files, and the types the manifest lists, do not depend on the role's path."""
    sb = workspace.sandbox
    workspace.add_host("dev", database)
    assert workspace.inv("schemas.refresh", "--host", "dev", "--no-commit").code == 0
    before = workspace.snapshot()
    shutil.rmtree(workspace.out())
    trap = "BEGIN RAISE EXCEPTION 'taken over by %', $1; END"
    sb.psql(
        f"CREATE FUNCTION public.hashtextextended(text, integer) RETURNS bigint LANGUAGE plpgsql AS $${trap}$$;"
        f"CREATE FUNCTION public.current_setting(varchar) RETURNS text LANGUAGE plpgsql AS $${trap}$$;",
        database,
    )
    if search_path:
        sb.psql(f"ALTER DATABASE {database} SET search_path = {search_path}")
    run = workspace.inv("schemas.refresh", "--host", "dev", "--no-commit", "--json")
    assert run.code == 0 and "taken over" not in run.err, run.err
    after = workspace.snapshot()
    functions = {f for f in after if f.startswith("functions/")} - set(before)
    assert functions == {"functions/hashtextextended.sql", "functions/current_setting.sql"}, functions
    for name in functions:
        del after[name]
    assert without_stamp(after).keys() == without_stamp(before).keys()
    manifest_files = [json.loads(files["_manifest.json"])["files"] for files in (after, before)]
    tables = [[r for r in files if r["kind"] == "table"] for files in manifest_files]
    assert tables[0] == tables[1]  # the same column types, whatever the role's search_path
