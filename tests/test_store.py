"""Change detection (pure) and the atomic write."""

from __future__ import annotations

import json
import os
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path
from tempfile import TemporaryDirectory

import pytest
from hypothesis import given
from hypothesis import strategies as st

from schemasync.core.errors import LocalError
from schemasync.output import manifest, store, transaction
from schemasync.output.records import CURRENT, FORMAT, ORPHANED, UPDATED, NewFile, Plan, Previous, Record, stable_status
from schemasync.output.store import plan_changes

NOW = datetime(2026, 1, 2, 3, 4, tzinfo=timezone.utc)


def nf(name: str, content: str) -> NewFile:
    return NewFile("table", "public", name, f"{name}.sql", content, 1)


def plan(prev: Previous, produced: list[NewFile], partial: bool = False) -> Plan:
    return plan_changes(prev, produced, environment="dev", database="db", partial=partial, now=NOW)


def state_after(p: Plan, before: Previous) -> Previous:
    contents = dict(before.contents)
    contents.update(p.writes)
    records = {r.file: r for r in p.records} if p.changed else before.records
    return Previous(records, contents, format=FORMAT)


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
    tx = transaction.Transaction(out)
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
        transaction.Transaction(out).write({"a.sql": "new a", "views/v.sql": "v"})
    assert sorted(os.listdir(out)) == ["a.sql", "views"]
    assert (out / "a.sql").read_text() == "old a"


def test_transaction_creates_and_removes_missing_directories(tmp_path: Path) -> None:
    out = tmp_path / "docs" / "schemas" / "dev"
    tx = transaction.Transaction(out)
    tx.write({"a.sql": "A"})
    tx.rollback()
    assert not (tmp_path / "docs").exists()


def test_manifest_paths_never_escape(tmp_path: Path) -> None:
    (tmp_path / "_manifest.json").write_text(
        '{"files": [{"kind": "table", "schema": "public", "name": "x", "file": "../x.sql", "status": "new"}]}'
    )
    with pytest.raises(LocalError, match="outside"):
        manifest.read_previous(tmp_path, [])


def test_records_round_trip_through_the_manifest(tmp_path: Path) -> None:
    recs = [Record("table", "public", "a", "a.sql", "current", 3, sha="0123")]
    (tmp_path / "_manifest.json").write_text(manifest.render_manifest(recs, "dev", "db"))
    (tmp_path / "a.sql").write_text("x")
    prev = manifest.read_previous(tmp_path, [])
    assert prev.records["a.sql"] == recs[0] and prev.tables_present() == 1
    # a run's own statuses are not per-row data: "new" is stored as "current"
    fresh = manifest.render_manifest([Record("table", "public", "a", "a.sql", "new", 3)], "dev", "db")
    assert '"status": "current"' in fresh and '"new"' not in fresh


@pytest.mark.parametrize("count", [0, 1, 3])
def test_the_manifest_reads_back_in_any_layout_json_reads(count: int) -> None:
    """Records with commas, newlines and brackets in their values read back as written; a
    manifest reformatted by hand (or by a merge tool) is still read; one that is not JSON is
    refused."""
    recs = [
        Record("table", "public", f"t{i},\n", f"t{i}.sql", "current", 2, {"comment": "a,\n]}"}, "ab", str(-i))
        for i in range(count)
    ]
    text = manifest.render_manifest(recs, "dev", "db", fingerprints={"quick": "1:2"}, pages=["_index/public.md"])
    assert manifest.parse_manifest(text, Path("m")).records == [replace(r, status="current") for r in recs]
    pretty = json.dumps(json.loads(text), indent=1)
    assert manifest.parse_manifest(pretty, Path("m")) == manifest.parse_manifest(text, Path("m"))
    if count > 1:  # a record's comma removed: not JSON, refused
        broken = text.replace("},\n{", "}\n{", 1)
        with pytest.raises(LocalError, match="unreadable"):
            manifest.parse_manifest(broken, Path("m"))


def test_the_manifest_head_is_its_first_line_or_else_the_whole_file(tmp_path: Path) -> None:
    """What a refresh starts the server's work from, before reading the records."""
    assert manifest.manifest_head(tmp_path) == {}  # no manifest: a first refresh
    recs = [Record("table", "public", "a", "a.sql", "current", 3, sha="0123", fp="7")]
    text = manifest.render_manifest(recs, "dev", "db", fingerprints={"quick": "1:2", "local": "k"})
    (tmp_path / "_manifest.json").write_text(text)
    head = manifest.manifest_head(tmp_path)
    assert head["format"] == FORMAT and head["fingerprints"] == {"quick": "1:2", "local": "k"}
    assert "files" not in head and head["environment"] == "dev"
    (tmp_path / "_manifest.json").write_text(json.dumps(json.loads(text), indent=2))  # reformatted
    head = manifest.manifest_head(tmp_path)
    assert head == {"format": FORMAT, "fingerprints": {"quick": "1:2", "local": "k"}}
    (tmp_path / "_manifest.json").write_text("{not json")
    with pytest.raises(LocalError, match="unreadable"):
        manifest.manifest_head(tmp_path)


def written(p: Plan, before: Previous) -> Previous:
    """The directory after a run, as the next run reads it: records as the manifest stores them."""
    after = state_after(p, before)
    after.records = {f: replace(r, status=stable_status(r.status)) for f, r in after.records.items()}
    return after


def test_a_hand_edit_is_put_back_without_claiming_a_change() -> None:
    prev = written(plan(Previous(), [nf("users", "-- Table: users\n\nCREATE TABLE users ();\n")]), Previous())
    prev.contents["users.sql"] += "-- my edit\n"
    p = plan(prev, [nf("users", "-- Table: users\n\nCREATE TABLE users ();\n")])
    assert p.restored == ["users.sql"] and [r.status for r in p.tables()] == ["current"]
    assert set(p.writes) == {"users.sql"}  # the index and manifest say nothing happened, because nothing did


def test_a_hand_edit_and_a_database_change_are_both_said() -> None:
    prev = written(plan(Previous(), [nf("users", "CREATE TABLE users ();\n")]), Previous())
    prev.contents["users.sql"] += "-- my edit\n"
    p = plan(prev, [nf("users", "CREATE TABLE users (id int);\n")])
    assert p.overwritten == ["users.sql"] and [r.status for r in p.tables()] == ["updated"]
    assert p.restored == []


def test_a_references_header_alone_is_not_a_table_change() -> None:
    prev = written(plan(Previous(), [nf("company", "-- Table: company\n\nCREATE TABLE company ();\n")]), Previous())
    new = "-- Table: company\n-- Referenced by: public.users(company_id) -> company(id)\n\nCREATE TABLE company ();\n"
    p = plan(prev, [nf("company", new)])
    assert p.references_only == ["company.sql"] and p.tables(UPDATED) == []
    assert set(p.writes) == {"company.sql"}


def test_an_orphan_is_news_once() -> None:
    first = written(plan(Previous(), [nf("a", "A"), nf("b", "B")]), Previous())
    dropped = plan(first, [nf("a", "A")])
    assert [r.name for r in dropped.announced(ORPHANED)] == ["b"]
    later = plan(written(dropped, first), [nf("a", "A2")])
    assert later.announced(ORPHANED) == [] and [r.name for r in later.standing_orphans()] == ["b"]
    assert "| ⚠ | `b`" in later.writes["_index.md"]  # still listed as orphaned in the index
    assert "newly orphaned" not in later.writes["_index.md"]


def test_index_rows_do_not_flip_between_runs() -> None:
    first = plan(Previous(), [nf("a", "A"), nf("b", "B")])
    second = plan(written(first, Previous()), [nf("a", "A2"), nf("b", "B")])
    rows = lambda text: [line for line in text.splitlines() if line.startswith("| ")][2:]  # noqa: E731
    assert rows(first.writes["_index.md"]) == [r.replace("A2", "A") for r in rows(second.writes["_index.md"])]
    assert "- ~ updated: `a`" in second.writes["_index.md"]


def test_the_postgres_majors_are_recorded_and_an_upgrade_is_written() -> None:
    first = plan_changes(Previous(), [nf("a", "A")], environment="dev", database="db", partial=False, now=NOW,
                         versions={"server": 15, "pg_dump": 15})  # fmt: skip
    assert '"postgres": {"pg_dump": 15, "server": 15}' in first.writes["_manifest.json"]
    prev = state_after(first, Previous())
    prev.versions = {"server": 15, "pg_dump": 15}
    same = plan_changes(prev, [nf("a", "A")], environment="dev", database="db", partial=False, now=NOW,
                        versions={"server": 15, "pg_dump": 15})  # fmt: skip
    assert not same.changed
    upgraded = plan_changes(prev, [nf("a", "A")], environment="dev", database="db", partial=False, now=NOW,
                            versions={"server": 16, "pg_dump": 16})  # fmt: skip
    assert upgraded.changed and '"server": 16' in upgraded.writes["_manifest.json"]


def test_a_removed_page_comes_back_on_rollback_and_its_empty_folder_goes_on_finish(tmp_path: Path) -> None:
    out = tmp_path / "out"
    (out / "_erd").mkdir(parents=True)
    (out / "_erd" / "gone.md").write_text("old page")
    tx = transaction.Transaction(out)
    tx.write({"_erd.md": "one page"}, removed=["_erd/gone.md"])
    assert not (out / "_erd" / "gone.md").exists()
    tx.rollback()
    assert (out / "_erd" / "gone.md").read_text() == "old page" and not (out / "_erd.md").exists()
    tx = transaction.Transaction(out)
    tx.write({"_erd.md": "one page"}, removed=["_erd/gone.md"])
    tx.finish()
    assert sorted(os.listdir(out)) == ["_erd.md"]


def test_pages_the_manifest_names_must_be_ours(tmp_path: Path) -> None:
    recs = [Record("table", "public", "a", "a.sql", "new", 3)]
    (tmp_path / "_manifest.json").write_text(manifest.render_manifest(recs, "dev", "db", pages=["users.sql"]))
    with pytest.raises(LocalError, match="refusing page"):
        manifest.read_previous(tmp_path, [])


def _table(i: int, pk_type: str, extra: str) -> Record:
    details = {
        "column_defs": [["id", pk_type, True], ["note", extra, False], ["parent", "integer", False]],
        "primary_key": ["id"],
        "foreign_keys": [{"columns": ["parent"], "ref_schema": "public", "ref_table": f"t{(i + 1) % 5}"}],
    }
    return Record("table", "public", f"t{i}", f"t{i}.sql", CURRENT, 3, details, "sha", "fp")


@given(
    changes=st.dictionaries(
        st.integers(0, 4),
        st.tuples(st.sampled_from(["integer", "bigint"]), st.sampled_from(["text", "varchar"]), st.booleans()),
    ),
    drop=st.booleans(),
)
def test_the_diagram_is_compared_on_the_changed_records_alone_with_the_same_answer(changes, drop) -> None:
    before = {r.file: r for r in (_table(i, "integer", "text") for i in range(5))}
    after = []
    for i, r in enumerate(before.values()):
        if i in changes:
            pk_type, extra, orphan = changes[i]
            r = _table(i, pk_type, extra)  # a new record, equal or not
            r = replace(r, status=ORPHANED) if orphan else r
        after.append(r)
    if drop:
        after = after[1:]  # a file forgotten: the whole comparison
    full = store._erd_inputs(after) == store._erd_inputs(list(before.values()))
    assert store._erd_same(after, before) == full


_names = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=6)


@given(
    names=st.lists(_names, min_size=0, max_size=6, unique=True),
    changed=st.sets(st.integers(0, 5)),
    layout=st.sampled_from(["ours", "pretty", "older format"]),
)
def test_kept_records_are_written_as_a_whole_render_writes_them(names, changed, layout) -> None:
    """Records read from the manifest and kept as they were are written again from their lines,
    not rendered: the text is the whole render's, byte for byte. A manifest in another layout (or
    an older format) has no lines to keep, and is rendered whole."""
    recs = [
        Record("table", "public", n, f"t{i}.sql", "current", i, {"comment": n + ",\n]}"}, "ab", f"{i};x")
        for i, n in enumerate(names)
    ]
    text = manifest.render_manifest(recs, "dev", "db", fingerprints={"quick": "1:2"})
    if layout == "pretty":
        text = json.dumps(json.loads(text), indent=1)
    elif layout == "older format":
        text = text.replace(f'"format": {FORMAT}', '"format": 1', 1)
    with TemporaryDirectory() as d:
        (Path(d) / "_manifest.json").write_text(text)
        prev = manifest.read_previous(Path(d), [])
    assert bool(prev.lines) == (layout == "ours" and bool(names))
    # some records replaced by new ones (equal or not), the others kept as the same objects
    now = [
        replace(r, status="new", columns=(r.columns or 0) + 1) if i in changed else r
        for i, r in enumerate(prev.records.values())
    ]
    kept = manifest.render_manifest(now, "dev", "db", fingerprints={"quick": "3:4"}, kept=prev.lines)
    assert kept == manifest.render_manifest(now, "dev", "db", fingerprints={"quick": "3:4"})


def test_a_folder_made_meanwhile_by_another_writer_is_used_and_left_alone(tmp_path: Path, monkeypatch) -> None:
    """A sweep writes its environments in threads: both may find docs/ missing, and the second
    mkdir fails. That folder is the other's: this write goes on, and its rollback keeps it."""
    shared = tmp_path / "docs"
    real_mkdir = Path.mkdir

    def racing_mkdir(self: Path, *args, **kwargs) -> None:
        if self == shared and not shared.exists():
            os.mkdir(shared)  # the other environment got there first
        real_mkdir(self, *args, **kwargs)

    monkeypatch.setattr(Path, "mkdir", racing_mkdir)
    tx = transaction.Transaction(shared / "dev")
    tx.write({"a.sql": "A\n"})
    assert (shared / "dev" / "a.sql").read_text() == "A\n"
    tx.rollback()
    assert shared.is_dir() and not (shared / "dev").exists()
