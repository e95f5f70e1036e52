"""A database with more tables than one pg_dump can lock is still dumped completely, in batches."""

from __future__ import annotations

import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from sandbox import Sandbox

from .conftest import Workspace

TABLES = 600


def schema_sql() -> str:
    parts = ["CREATE TYPE mood AS ENUM ('ok', 'meh');", "CREATE SCHEMA extra;"]
    for i in range(TABLES):
        schema = "extra" if i % 10 == 0 else "public"
        parts.append(f"CREATE TABLE {schema}.t{i} (id serial PRIMARY KEY, m mood, note text);")
        parts.append(f"CREATE INDEX t{i}_note_idx ON {schema}.t{i} (note);")
    parts.append("CREATE TABLE parts (id int, at date) PARTITION BY RANGE (at);")
    parts.append("CREATE TABLE parts_a PARTITION OF parts FOR VALUES FROM ('2020-01-01') TO ('2021-01-01');")
    parts.append("CREATE VIEW v AS SELECT id FROM t1;")
    return "\n".join(parts)


@pytest.fixture(scope="module")
def tight_cluster(sandbox: Sandbox) -> Iterator[Sandbox]:
    root = Path(tempfile.mkdtemp(prefix="schemasync-tight-"))
    tight = Sandbox(root).start_postgres("-c max_locks_per_transaction=10 -c max_connections=10")
    try:
        yield tight
    finally:
        tight.stop()
        shutil.rmtree(root, ignore_errors=True)


def test_too_many_tables_for_one_dump_are_dumped_in_batches(
    workspace: Workspace, sandbox: Sandbox, tight_cluster: Sandbox
) -> None:
    sql = schema_sql()
    sandbox.create_database("locks", sql)
    tight_cluster.create_database("locks", sql)
    # The same schema, dumped at once from a normal server...
    workspace.add_host("dev", "locks", schemas=["*"], output="one")
    single = workspace.inv("schemas.refresh", "--host", "dev", "--no-commit", "--json")
    assert single.code == 0, single.err
    assert "batches" not in " ".join(single.json["notices"])
    # ...and from a server whose lock table is far too small for one pg_dump.
    workspace.add_host(
        "dev",
        "locks",
        schemas=["*"],
        output="two",
        db_host=str(tight_cluster.pg_socket_dir),
        db_port=tight_cluster.pg_port,
    )
    batched = workspace.inv("schemas.refresh", "--host", "dev", "--no-commit", "--json")
    assert batched.code == 0, batched.err
    assert any("batches" in n for n in batched.json["notices"]), batched.json["notices"]
    assert batched.json["tables"] == TABLES + 1

    def files(name: str) -> dict[str, bytes]:
        root = workspace.path / name
        got = {
            str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file() and p.name != "_index.md"
        }
        # the catalog fingerprints are each cluster's own (OIDs, transaction ids): not compared
        fingerprints = rb'"fingerprints": \{[^}]*\}, |, "fp": "-?[0-9a-f]+"'
        got["_manifest.json"] = re.sub(fingerprints, b"", got["_manifest.json"])
        return got

    one, two = files("one"), files("two")
    assert len(one) > TABLES
    assert one.keys() == two.keys()
    assert [k for k in one if one[k] != two[k]] == []
