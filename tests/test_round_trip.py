"""The generated files, loaded into an empty database, reproduce the schema."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from sandbox import Sandbox

from .conftest import Workspace

_ENTRY = re.compile(r"^--\n-- Name: .*\n--\n", re.M)


def entries_of(text: str) -> list[str]:
    """The statements of one generated file, one string per dump entry (header comments dropped)."""
    parts = _ENTRY.split(text)
    return [p.strip() + "\n" for p in parts[1:] if p.strip()]


def load(sandbox: Sandbox, database: str, statements: list[str]) -> None:
    """Run each entry in its own psql call; retry the failures until nothing more succeeds.

    The files are grouped by table, not in pg_dump's dependency order, so a foreign key may come
    before the table it points at: repeated passes settle that without the test knowing SQL.
    """
    pending = statements
    while pending:
        failed = []
        for stmt in pending:
            sql = "SET check_function_bodies = false;\nSELECT pg_catalog.set_config('search_path', '', false);\n" + stmt
            cmd = sandbox.client("psql", database, "-X", "-q", "-v", "ON_ERROR_STOP=1")
            proc = subprocess.run(cmd, input=sql, capture_output=True, text=True)
            if proc.returncode != 0:
                failed.append((stmt, proc.stderr))
        if len(failed) == len(pending):
            raise AssertionError("statements that never load:\n" + "\n".join(f"{s}{e}" for s, e in failed[:5]))
        pending = [s for s, _ in failed]


def schema_dump(sandbox: Sandbox, database: str) -> str:
    cmd = sandbox.client("pg_dump", database, "--schema-only", "--no-owner", "--no-privileges")
    proc = subprocess.run(cmd, capture_output=True, text=True, check=True)
    text = re.sub(r"^\\(un)?restrict \S+$", "", proc.stdout, flags=re.M)
    return re.sub(r"^-- Dumped (from|by) .*$", "", text, flags=re.M)


def test_generated_files_rebuild_the_same_schema(workspace: Workspace) -> None:
    sb = workspace.sandbox
    workspace.add_host("hard", "hardcases", schemas=["*"])
    run = workspace.inv("schemas.refresh", "--host", "hard", "--no-commit")
    assert run.code == 0, run.err
    out = workspace.out("hard")
    files = sorted(p for p in out.rglob("*.sql"))
    statements = [s for f in files for s in entries_of(f.read_text())]
    assert len(statements) > 40
    sb.psql('DROP DATABASE IF EXISTS "roundtrip" WITH (FORCE); CREATE DATABASE "roundtrip";')
    load(sb, "roundtrip", statements)
    assert schema_dump(sb, "roundtrip") == schema_dump(sb, "hardcases")


def test_entries_of_reads_a_file(tmp_path: Path) -> None:
    text = "-- Table: x\n\n--\n-- Name: a; Type: TABLE; Schema: public; Owner: -\n--\n\nCREATE TABLE a ();\n"
    assert entries_of(text) == ["CREATE TABLE a ();\n"]
