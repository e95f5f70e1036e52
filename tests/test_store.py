"""Change detection (pure) and the atomic write."""

from __future__ import annotations

import os
from datetime import datetime, timezone
from pathlib import Path

import pytest

from schemasync import store
from schemasync.errors import LocalError
from schemasync.store import NewFile, Previous, Record, plan_changes

NOW = datetime(2026, 1, 2, 3, 4, tzinfo=timezone.utc)


def nf(name: str, content: str) -> NewFile:
    return NewFile("table", "public", name, f"{name}.sql", content, 1)


def plan(prev: Previous, produced: list[NewFile], partial: bool = False) -> store.Plan:
    return plan_changes(prev, produced, environment="dev", database="db", partial=partial, now=NOW)


def state_after(p: store.Plan, before: Previous) -> Previous:
    contents = dict(before.contents)
    contents.update(p.writes)
    records = {r.file: r for r in p.records} if p.changed else before.records
    return Previous(records, contents, format=store.FORMAT)


def test_first_run_marks_everything_new_and_writes_index() -> None:
    p = plan(Previous(), [nf("a", "A"), nf("b", "B")])
    assert [r.status for r in p.tables()] == ["new", "new"]
    assert set(p.writes) == {"a.sql", "b.sql", "_index.md", "_table_list.txt", "_manifest.json", "_erd.md"}
    assert "2026-01-02 03:04 UTC" in p.writes["_index.md"]
    assert p.writes["_table_list.txt"] == "public.a\npublic.b\n"


def test_unchanged_run_writes_nothing() -> None:
    first = plan(Previous(), [nf("a", "A")])
    prev = state_after(first, Previous())
    again = plan(prev, [nf("a", "A")])
    assert not again.changed and again.writes == {}


def test_updated_and_orphaned() -> None:
    prev = state_after(plan(Previous(), [nf("a", "A"), nf("b", "B")]), Previous())
    p = plan(prev, [nf("a", "A2"), nf("c", "C")])
    status = {r.name: r.status for r in p.tables()}
    assert status == {"a": "updated", "b": "orphaned", "c": "new"}
    assert "b.sql" not in p.writes  # orphaned files are kept as they are
    assert "public.b" not in p.writes["_table_list.txt"]
    assert "| ⚠ | `b`" in p.writes["_index.md"]
    # still orphaned next time, and that alone is no change
    assert not plan(state_after(p, prev), [nf("a", "A2"), nf("c", "C")]).changed


def test_partial_refresh_keeps_other_records() -> None:
    prev = state_after(plan(Previous(), [nf("a", "A"), nf("b", "B")]), Previous())
    p = plan(prev, [nf("a", "A2")], partial=True)
    assert {r.name: r.status for r in p.records} == {"a": "updated", "b": "new"}  # b: as recorded before
    assert [r.name for r in p.tables()] == ["a"]  # what this run reports


def test_transaction_rollback_restores_exactly(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "a.sql").write_text("old a")
    (out / "keep.txt").write_text("user file")
    tx = store.Transaction(out)
    tx.write({"a.sql": "new a", "views/v.sql": "v"})
    assert (out / "a.sql").read_text() == "new a"
    tx.rollback()
    assert sorted(os.listdir(out)) == ["a.sql", "keep.txt"]
    assert (out / "a.sql").read_text() == "old a"


def test_transaction_failure_midway_leaves_the_directory_as_it_was(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "a.sql").write_text("old a")
    (out / "views").write_text("a file where a folder is needed")
    with pytest.raises(LocalError):
        store.Transaction(out).write({"a.sql": "new a", "views/v.sql": "v"})
    assert sorted(os.listdir(out)) == ["a.sql", "views"]
    assert (out / "a.sql").read_text() == "old a"


def test_transaction_creates_and_removes_missing_directories(tmp_path: Path) -> None:
    out = tmp_path / "docs" / "schemas" / "dev"
    tx = store.Transaction(out)
    tx.write({"a.sql": "A"})
    tx.rollback()
    assert not (tmp_path / "docs").exists()


def test_manifest_paths_never_escape(tmp_path: Path) -> None:
    (tmp_path / "_manifest.json").write_text(
        '{"files": [{"kind": "table", "schema": "public", "name": "x", "file": "../x.sql", "status": "new"}]}'
    )
    with pytest.raises(LocalError, match="outside"):
        store.read_previous(tmp_path, [])


def test_records_round_trip_through_the_manifest(tmp_path: Path) -> None:
    recs = [Record("table", "public", "a", "a.sql", "new", 3)]
    (tmp_path / "_manifest.json").write_text(store.render_manifest(recs, "dev", "db"))
    (tmp_path / "a.sql").write_text("x")
    prev = store.read_previous(tmp_path, [])
    assert prev.records["a.sql"] == recs[0] and prev.tables_present() == 1
