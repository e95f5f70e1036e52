"""A database with more tables than one pg_dump can lock is still dumped completely, in batches."""

from __future__ import annotations

import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sandbox import Sandbox

from .conftest import Workspace

TABLES = 600


def schema_sql() -> str:
    parts = ["CREATE TYPE mood AS ENUM ('ok', 'meh');", "CREATE SCHEMA extra;"]
    for tenant in ("ta", "tb"):  # small schemas: a batch dumps each whole
        parts.append(f"CREATE SCHEMA {tenant}; CREATE TYPE {tenant}.state AS ENUM ('on', 'off');")
        parts.append(f"CREATE FUNCTION {tenant}.f() RETURNS int LANGUAGE sql AS 'SELECT 1';")
        parts += [f"CREATE TABLE {tenant}.a{i} (id serial PRIMARY KEY, s {tenant}.state);" for i in range(12)]
    for i in range(TABLES):
        schema = "extra" if i % 10 == 0 else "public"
        parts.append(f"CREATE TABLE {schema}.t{i} (id serial PRIMARY KEY, m mood, note text);")
        parts.append(f"CREATE INDEX t{i}_note_idx ON {schema}.t{i} (note);")
    parts.append("CREATE TABLE parts (id int, at date) PARTITION BY RANGE (at);")
    parts.append("CREATE TABLE parts_a PARTITION OF parts FOR VALUES FROM ('2020-01-01') TO ('2021-01-01');")
    parts.append("CREATE VIEW v AS SELECT id FROM t1;")
    # a publication's tables are printed only by a dump of everything: the last batch keeps them
    parts.append('CREATE TABLE "T1" (id int PRIMARY KEY); CREATE TABLE "t1x" (id int);')
    parts.append('CREATE PUBLICATION pub FOR TABLE t1, "T1", extra.t10;')
    parts.append("CREATE PUBLICATION pub_schema FOR TABLES IN SCHEMA extra;")
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


def _pg_bin_that_logs(folder: Path, tight: Sandbox) -> Path:
    """pg_bin whose pg_dump writes its arguments, one run per line, to folder/args."""
    folder.mkdir()
    (folder / "psql").symlink_to(tight.pg_bin / "psql")
    script = folder / "pg_dump"
    script.write_text(f'#!/bin/sh\necho "$*" >> {folder / "args"}\nexec {tight.pg_bin / "pg_dump"} "$@"\n')
    script.chmod(0o755)
    return folder


def test_too_many_tables_for_one_dump_are_dumped_in_batches(
    workspace: Workspace, sandbox: Sandbox, tight_cluster: Sandbox, tmp_path: Path
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
        pg_bin=str(_pg_bin_that_logs(tmp_path / "bin", tight_cluster)),
    )
    batched = workspace.inv("schemas.refresh", "--host", "dev", "--no-commit", "--json")
    assert batched.code == 0, batched.err
    assert any("batches" in n for n in batched.json["notices"]), batched.json["notices"]
    assert batched.json["tables"] == TABLES + 3 + 24
    runs = (tmp_path / "bin" / "args").read_text().splitlines()
    assert any(' -n "ta" -n "tb"' in run and " -t " not in run for run in runs), runs  # whole, and alone
    assert any(' -N "ta" -N "tb"' in run for run in runs), runs

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


def _pg_bin_that_alters(folder: Path, tight: Sandbox, runs: int) -> Path:
    """pg_bin whose pg_dump, in the first `runs` runs (told apart by the snapshot their batches
    import), adds a column to public.t5 before the run's first batch dump, as another session
    would: a migration running while the refresh does."""
    folder.mkdir()
    real = tight.pg_bin
    (folder / "psql").symlink_to(real / "psql")
    seen = folder / "snapshots"
    alter = " ".join(str(a) for a in tight.client("psql", "locks", "-X", "-q"))
    script = folder / "pg_dump"
    script.write_text(
        "#!/bin/sh\n"
        'snap=""\n'
        'for a in "$@"; do case $a in --snapshot=*) snap=${a#--snapshot=} ;; esac; done\n'
        'case " $* " in *" -t "*)\n'
        f'  if [ -n "$snap" ] && ! grep -qx "$snap" {seen} 2>/dev/null; then\n'
        f"    n=$(cat {seen} 2>/dev/null | wc -l)\n"
        f'    echo "$snap" >> {seen}\n'
        f'    [ "$n" -lt {runs} ] && {alter} -c "ALTER TABLE public.t5 ADD COLUMN during_$n integer" >/dev/null\n'
        "  fi ;;\n"
        "esac\n"
        f'exec {real / "pg_dump"} "$@"\n'
    )
    script.chmod(0o755)
    return folder


@pytest.mark.parametrize("migrations", [1, 1000])
def test_a_table_changed_while_the_batches_ran_is_never_written_half_old(
    workspace: Workspace, tight_cluster: Sandbox, tmp_path: Path, migrations: int
) -> None:
    """Every batch imports the run's snapshot, but a table changed after it and before its batch
    locked it would be dumped half old, half new: the run sees the catalog moved, and dumps
    again once; if it moved again (here: in every run), nothing is written."""
    tight_cluster.create_database("locks", schema_sql())
    workspace.add_host(
        "dev",
        "locks",
        schemas=["*"],
        db_host=str(tight_cluster.pg_socket_dir),
        db_port=tight_cluster.pg_port,
        pg_bin=str(_pg_bin_that_alters(tmp_path / "bin", tight_cluster, migrations)),
    )
    before = workspace.snapshot()
    run = workspace.inv("schemas.refresh", "--host", "dev", "--json")
    if migrations == 1:
        assert run.code == 0, run.err
        assert any("batches" in n for n in run.json["notices"]), run.json["notices"]
        assert "during_0 integer" in workspace.snapshot()["t5.sql"].decode()  # as the table is now
    else:
        assert run.code == 4, run.err
        assert "the schema changed while the dump ran in batches" in run.err
        assert workspace.snapshot() == before and workspace.commits() == 0


def test_batches_lock_at_most_what_they_may_and_keep_a_table_with_its_partitions() -> None:
    from dataclasses import replace

    from schemasync.core.config import HostConfig
    from schemasync.core.errors import DatabaseError
    from schemasync.schema.discovery import Discovery
    from schemasync.transport.batches import all_but, plan_batches

    relations = [[1, "public", "big", "p", 1], [2, "public", "big_2024", "r", 1], [3, "public", "big_2025", "r", 1]]
    relations += [[10 + i, "public", f"t{i}", "r", 10 + i] for i in range(5)]
    relations += [[20, "public", "t0_id_seq", "S", 10], [30, "app", "v", "v", 30], [40, "public", "t0_pkey", "i", 10]]
    raw = {
        "version": 150000,
        "database": "d",
        "user": "u",
        "tables": [],
        "relations": relations,
        "subobjects": [],
        "schemas": ["app", "public"],
    }
    discovery = Discovery.from_dict(raw)
    host = HostConfig(name="h", ssh="x", database="d", output=Path("/tmp/out"), schemas=["app", "public"])
    batches = plan_batches(discovery, host, locks=3)
    *tables, rest = batches
    assert tables[0] == ["-n", '"app"']  # a schema that fits in a batch goes whole, never beside a -t
    assert all(len({a for a in b if a.startswith("-")}) == 1 for b in tables)
    named = [[a for a in b if a != "-t"] for b in tables if b[:2] != ["-n", '"app"']]
    assert all(len(b) <= 3 for b in named)
    together = next(b for b in named if '"public"."big"' in b)
    assert {'"public"."big_2024"', '"public"."big_2025"'} <= set(together)  # one file: one batch
    listed = [name for b in named for name in b]
    assert sorted(listed) == sorted(set(listed))  # each relation once
    assert '"public"."t0_id_seq"' not in listed and '"public"."t0_pkey"' not in listed  # they come with t0
    assert '"app"."v"' not in listed
    assert rest == ["-n", '"app"', "-n", '"public"', "-N", '"app"', "-T", '"public".*']
    part = plan_batches(discovery, host, locks=3, whole=False)  # a part: one by one, no rest
    assert [a for b in part for a in b if a != "-t"] == sorted([*listed, '"app"."v"'], key=str.encode)
    # a schema whose sequence a table of another schema owns, or with tables left out, goes one by one
    crossing = Discovery.from_dict({**raw, "relations": [*relations, [50, "app", "s", "S", 10]]})
    assert not any(b[:1] == ["-n"] for b in plan_batches(crossing, host, locks=3)[:-1])
    excluding = replace(host, exclude=["public.t4"])
    assert not any(b[:1] == ["-n"] for b in plan_batches(discovery, excluding, locks=3)[:-1])
    # a table a publication names (here t0, with its sequence) is left in the last dump only
    published = replace(discovery, published=frozenset({10}))
    *tables, rest = plan_batches(published, host, locks=3)
    assert not [a for b in tables for a in b if a.startswith('"public"."t0')]
    assert rest[-2:] == ["-T", '"public".' + all_but({"t0", "t0_id_seq"})]
    with pytest.raises(DatabaseError, match="named one by one by publications"):
        plan_batches(replace(discovery, published=frozenset({1, 10, 11})), host, locks=3)


def _pg_dump_name_regex(pattern: str) -> str:
    """The regular expression pg_dump makes of a name pattern (processSQLNamePattern, no dot), for
    Python's re: `*` and `?` outside quotes, quoted text literal, `\\xHEX` escapes spelled out."""
    out, quoted, i = [], False, 0
    while i < len(pattern):
        ch = pattern[i]
        if quoted and ch == '"' and pattern[i + 1 : i + 2] == '"':
            out.append('"')
            i += 1
        elif ch == '"':
            quoted = not quoted
        elif quoted:
            out.append(re.escape(ch))
        elif ch == "*":
            out.append(".*")
        elif ch == "?":
            out.append(".")
        elif ch == "\\" and pattern[i + 1] == "x":
            hexes = re.match(r"[0-9a-f]+", pattern[i + 2 :])
            assert hexes is not None
            out.append(re.escape(chr(int(hexes.group(), 16))))
            i += 1 + len(hexes.group())
        else:
            assert ch.lower() == ch and ch != ".", pattern  # pg_dump would fold it, or split at it
            out.append(ch)
        i += 1
    return "^(" + "".join(out) + ")$"


@settings(max_examples=300, deadline=None)
@given(
    st.sets(st.text(alphabet='aAb1_."\\[]^é', min_size=1, max_size=5), max_size=6),
    st.lists(st.text(alphabet='aAb1_."\\[]^é', min_size=1, max_size=6), max_size=20),
)
def test_all_but_matches_every_name_except_those(kept: set[str], others: list[str]) -> None:
    from schemasync.transport.batches import all_but

    regex = re.compile(_pg_dump_name_regex(all_but(kept)), re.DOTALL)
    assert all(regex.match(name) is None for name in kept)
    assert all(regex.match(name) is not None for name in others if name not in kept)
