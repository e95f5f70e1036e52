"""Fast tests of the pure parts the end-to-end suite also reaches: comparing environments, the
references read from discovery, and the JSON shapes of the reports."""

from __future__ import annotations

from pathlib import Path

from schemasync.core.config import HostConfig
from schemasync.frontends.report import check_data, refresh_data
from schemasync.jobs.check import CheckResult
from schemasync.jobs.diff import compare, definition, render_data, render_text
from schemasync.jobs.refresh import RefreshResult
from schemasync.output.manifest import render_manifest
from schemasync.output.records import NewFile, Previous, Record
from schemasync.output.store import plan_changes
from schemasync.schema.discovery import Discovery
from schemasync.schema.relations import header_lines, table_details

DISCOVERY = Discovery.from_dict(
    {
        "version": 150000,
        "database": "app",
        "user": "me",
        "tables": [
            [1, "public", "company", "r", 2, [["id", "integer", True], ["name", "text", False]], ["id"], "firms"],
            [2, "public", "users", "r", 2, [["id", "integer", True], ["company_id", "integer", False]], ["id"]],
            [3, "billing", "Invoice", "r", 1, [["user_id", "integer", False]], []],
        ],
        "foreign_keys": [
            ["public", "users", ["company_id"], "public", "company", ["id"], "c", "a", "users_company_fk"],
            ["billing", "Invoice", ["user_id"], "public", "users", ["id"], "a", "n", "inv_user_fk"],
        ],
        "relations": [
            [1, "public", "company", "r", 1],
            [2, "public", "users", "r", 2],
            [3, "billing", "Invoice", "r", 3],
        ],
        "subobjects": [],
    }
)


def test_table_details_give_references_both_ways() -> None:
    d = table_details(DISCOVERY)
    assert d[("public", "company")]["comment"] == "firms"
    assert [fk["text"] for fk in d[("public", "company")]["referenced_by"]] == [
        "public.users(company_id) -> company(id) ON DELETE CASCADE"
    ]
    assert d[("public", "users")]["referenced_by"][0]["text"] == (
        'billing."Invoice"(user_id) -> users(id) ON UPDATE SET NULL'
    )
    assert d[("billing", "Invoice")]["foreign_keys"][0]["on_delete"] == "NO ACTION"
    assert d[("public", "users")]["column_defs"] == [["id", "integer", True], ["company_id", "integer", False]]
    assert header_lines(d[("public", "company")]) == [
        "-- Referenced by: public.users(company_id) -> company(id) ON DELETE CASCADE\n"
    ]
    assert header_lines(None) == []


def files(tables: dict[str, str], env: str) -> dict[str, str]:
    records = [Record("table", "public", n, f"{n}.sql", "current") for n in tables]
    out = {
        f"{n}.sql": f"-- Table: public.{n}\n-- Database: x (environment: {env})\n\n{body}" for n, body in tables.items()
    }
    out["_manifest.json"] = render_manifest(records, env, "x")
    return out


def test_compare_ignores_headers_and_names_each_difference() -> None:
    a = files({"users": "CREATE TABLE users (id int);\n", "only_dev": "x\n", "same": "s\n"}, "dev")
    b = files({"users": "CREATE TABLE users (id bigint);\n", "only_prod": "y\n", "same": "s\n"}, "prod")
    report = compare("dev", a, "prod", b)
    assert [i.label for i in report.only_a] == ["only_dev"] and [i.label for i in report.only_b] == ["only_prod"]
    assert [d.item.label for d in report.different] == ["users"]
    assert "-CREATE TABLE users (id int);\n+CREATE TABLE users (id bigint);" in report.different[0].diff
    data = render_data(report)
    assert data["same"] is False and data["only_in_a"] == [
        {"kind": "table", "name": "only_dev", "file": "only_dev.sql"}
    ]
    assert "only in dev: table only_dev" in render_text(report)
    assert compare(
        "dev", a, "dev2", files({k[:-4]: definition(v) for k, v in a.items() if k.endswith(".sql")}, "x")
    ).same


def test_report_data_shapes() -> None:
    host = HostConfig(name="dev", ssh="h", database="app", output=Path("/out"))
    produced = [
        NewFile("table", "public", "users", "users.sql", "x", 2),
        NewFile("views", "public", "v", "views/v.sql", "v"),
    ]
    plan = plan_changes(Previous(), produced, environment="dev", database="app", partial=False)
    data = refresh_data(RefreshResult(host=host, database="app", tables_found=1, plan=plan, commit="abc"))
    assert data["added"] == ["users"] and data["objects"]["added"] == ["views/v"] and data["commit"] == "abc"
    assert data["redacted"] == [] and data["changed"] is True and "_index.md" in data["files_written"]
    check = CheckResult(host, "app", ["a"], ["b"], [], ["views/v"], True, 0.5)
    assert check_data(check) == {
        "host": "dev",
        "database": "app",
        "stale": True,
        "added": ["a"],
        "changed": ["b"],
        "gone": [],
        "objects": ["views/v"],
        "differences": [],
        "stale_notes": [],
        "tenants": None,
        "seconds": 0.5,
        "dumped": "full",
        "dumped_why": None,
    }


def test_errors_cross_a_process_boundary_whole() -> None:
    """A sweep plans environments in worker processes: their errors come back pickled, with the
    hint and the exit code the user sees."""
    import pickle

    from schemasync.core.errors import SchemasyncError, SSHError
    from schemasync.transport.protocol import LockTableFull

    for error in (SSHError("prod: connection refused", hint="is sshd running?"), SchemasyncError("x", code=4)):
        back = pickle.loads(pickle.dumps(error))
        assert type(back) is type(error) and str(back) == str(error) and back.code == error.code
    full = pickle.loads(pickle.dumps(LockTableFull("too many locks", {"tables": [1]})))
    assert isinstance(full, LockTableFull) and full.meta == {"tables": [1]} and full.code == 4


def test_intact_files_are_recognised_as_definition_says() -> None:
    """The quick path cuts the header off by its length; it must agree with definition() on any
    header, odd line breaks included, or an unchanged database would be dumped (or worse)."""
    from schemasync.schema.incremental import is_intact
    from schemasync.schema.split import content_sha, definition

    headers = ["-- Environment: dev\n-- Database: db", "-- a\u2028b\n-- c", "-- x\nnot a comment", "-- only"]
    bodies = ["--\n-- Name: t\n--\n\nCREATE TABLE t ();\n", "--\nCREATE TABLE x ();\n\n"]
    for header in headers:
        for body in bodies:
            text = header + "\n" + body
            assert is_intact(text, header, content_sha(definition(text)))
            assert not is_intact(text, header, content_sha(body + "x"))
            assert not is_intact(text.replace("TABLE", "VIEW"), header, content_sha(definition(text)))


def test_fingerprints_that_all_held_keep_the_last_stamp() -> None:
    from schemasync.schema.incremental import Fingerprints, settled

    before = {"quick": "1:2", "global": "9", "server": 150000, "pg_dump": "15.1", "local": "k", "since": "100"}
    objects = {"t.sql": "5"}
    now = Fingerprints(dict(objects), {**before, "since": "250"})
    assert settled(now, before, objects).stamp == before  # nothing else moved: the manifest stays as it is
    assert settled(now, before, objects).objects == now.objects
    # the quick check moved where no file looks (a table in a schema not selected): the last one
    # is kept, a value at which these same fingerprints held
    elsewhere = Fingerprints(dict(objects), {**before, "quick": "1:3", "since": "250"})
    assert settled(elsewhere, before, objects).stamp == before
    # a file's fingerprint, everything else's or a version moved: this run's stamp, guess and all
    changed = Fingerprints({"t.sql": "6"}, {**before, "quick": "1:3", "since": "250"})
    assert settled(changed, before, objects) is changed
    dropped = Fingerprints({}, {**before, "quick": "1:3"})
    assert settled(dropped, before, objects) is dropped
    for key, value in (("global", "8"), ("server", 160000), ("pg_dump", "16.0"), ("local", "j")):
        moved = Fingerprints(dict(objects), {**before, key: value})
        assert settled(moved, before, objects) is moved, key
    assert settled(now, None, {}) is now
    # a manifest from before `since` existed: none is added for a number alone
    old = {k: v for k, v in before.items() if k != "since"}
    assert settled(now, old, objects).stamp == old
    # one from before the quick check: this run's, so that the next refresh can use it
    oldest = {k: v for k, v in old.items() if k != "quick"}
    assert (
        settled(
            Fingerprints(dict(objects), {k: v for k, v in now.stamp.items() if k != "quick"}), oldest, objects
        ).stamp
        == oldest
    )
    assert settled(now, oldest, objects) is now
    # files not one per fingerprint (tenants folded): only `since` moved, the last one is kept
    folded = {"tenant/t.sql": "5"}
    assert settled(now, before, folded).stamp == before
    assert settled(elsewhere, before, folded) is elsewhere  # the quick check moved: this run's
