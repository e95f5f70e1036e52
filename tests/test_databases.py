"""A host with several databases: one SSH connection and one remote run for all of them, a folder
per database, one commit, a failing database isolated, and every reading command on one of them."""

from __future__ import annotations

import shlex
import threading
import time
from pathlib import Path

import pytest

from .conftest import Workspace, sessions_left, wrapped_pg_bin
from .faultproxy import FaultProxy
from .test_faults import via_proxy

APP = "CREATE TABLE accounts (id int PRIMARY KEY, email text NOT NULL);"
SHARD = "CREATE TABLE events (id bigint PRIMARY KEY, account_id int, payload jsonb);"


@pytest.fixture
def several(workspace: Workspace, tmp_path: Path) -> tuple[Workspace, FaultProxy, str]:
    sb = workspace.sandbox
    prefix = f"multi{tmp_path.name[-6:].replace('-', '_')}"
    sb.create_database(f"{prefix}_app", APP)
    for n in (1, 2, 3):
        sb.create_database(f"{prefix}_shard_{n}", SHARD + f"CREATE TABLE shard_{n}_only (k int);")
    sb.create_database(f"{prefix}_other", "CREATE TABLE not_mine (x int);")
    # a role that may not read one table of shard 2: pg_dump fails there ("no permission")
    sb.psql(f"DROP ROLE IF EXISTS {prefix}_reader; CREATE ROLE {prefix}_reader LOGIN;")
    ledger = "CREATE TABLE secret_ledger (id int); REVOKE ALL ON secret_ledger FROM PUBLIC;"
    sb.psql(ledger, database=f"{prefix}_shard_2")
    for n in (1, 2, 3):
        sb.psql(f"GRANT SELECT ON ALL TABLES IN SCHEMA public TO {prefix}_reader;", database=f"{prefix}_shard_{n}")
    sb.psql(f"GRANT SELECT ON ALL TABLES IN SCHEMA public TO {prefix}_reader;", database=f"{prefix}_app")
    sb.psql(f"REVOKE SELECT ON secret_ledger FROM {prefix}_reader;", database=f"{prefix}_shard_2")
    proxy = FaultProxy(sb.ssh_port, after=10**12)
    via_proxy(workspace, proxy, f"{prefix}_app", tmp_path)
    entry = workspace.hosts["dev"]
    entry.update(
        database=[f"{prefix}_app", f"{prefix}_shard_*"],
        exclude_databases=[f"{prefix}_shard_3"],
        db_user=f"{prefix}_reader",
    )
    workspace.add_host("dev", entry.pop("database"), **{k: v for k, v in entry.items()})
    yield workspace, proxy, prefix
    proxy.close()


def test_several_databases_in_one_run_and_one_commit(several: tuple[Workspace, FaultProxy, str]) -> None:
    ws, proxy, prefix = several
    commits = ws.commits()
    run = ws.inv("schemas.refresh", "--host", "dev", "--json")
    assert proxy.connections == 1  # one SSH connection for every database
    doc = run.json
    rows = {row["host"]: row for row in doc["environments"]}
    assert set(rows) == {f"dev/{prefix}_app", f"dev/{prefix}_shard_1", f"dev/{prefix}_shard_2"}  # shard_3 excluded
    assert rows[f"dev/{prefix}_app"]["ok"] and rows[f"dev/{prefix}_shard_1"]["ok"]
    failed = rows[f"dev/{prefix}_shard_2"]
    assert not failed["ok"] and "permission denied" in failed["error"] and "secret_ledger" in failed["error"]
    assert run.code == failed["exit_code"] != 0
    out = ws.out()
    assert (out / f"{prefix}_app" / "accounts.sql").is_file()
    assert (out / f"{prefix}_shard_1" / "shard_1_only.sql").is_file()
    assert not (out / f"{prefix}_shard_2").exists()  # the failed database's folder is untouched
    assert "Database: " + prefix + "_app" in (out / f"{prefix}_app" / "accounts.sql").read_text()
    assert ws.commits() == commits + 1  # one commit names each database's changes
    subject = ws.git("log", "-1", "--format=%s")
    assert f"dev/{prefix}_app(+accounts" in subject and f"dev/{prefix}_shard_1(" in subject
    assert ws.git("status", "--porcelain", "docs") == ""

    # the failure mended: the next run adds it, leaves the others as they were
    ws.sandbox.psql(f"GRANT SELECT ON secret_ledger TO {prefix}_reader;", database=f"{prefix}_shard_2")
    again = ws.inv("schemas.refresh", "--host", "dev", "--json")
    assert again.code == 0, again.err
    rows = {row["host"]: row for row in again.json["environments"]}
    assert rows[f"dev/{prefix}_shard_2"]["added"] == ["events", "secret_ledger", "shard_2_only"]
    assert rows[f"dev/{prefix}_app"]["changed"] is False

    # the reading commands take --database (or dev/<database>)
    show = ws.inv("schemas.show", "accounts", "--database", f"{prefix}_app", "--json")
    assert show.code == 0 and show.json["name"] == "accounts"
    search = ws.inv("schemas.search", "payload", "--host", f"dev/{prefix}_shard_1", "--json")
    assert [m["table"] for m in search.json["matches"]] == ["events"]
    listed = ws.inv("schemas.list", "--database", f"{prefix}_shard_1", "--json")
    assert {t["name"] for t in listed.json["tables"]} == {"events", "shard_1_only"}
    assert "`dev`: several databases, one folder each" in ws.inv("schemas.agent-guide").out
    ambiguous = ws.inv("schemas.show", "accounts", "--json")
    assert ambiguous.code == 2 and "--database" in ambiguous.json["error"]
    assert f"{prefix}_app" in ambiguous.json["hints"][0]
    unknown = ws.inv("schemas.show", "accounts", "--database", f"{prefix}_other", "--json")
    assert unknown.code == 2 and "not one of" in unknown.json["error"]
    diff = ws.inv("schemas.diff", f"dev/{prefix}_shard_1", f"dev/{prefix}_shard_2", "--json")
    assert diff.code == 1 and diff.json["only_in_a"] and diff.json["only_in_b"]

    # check covers every database in one run; a change in one is found
    ws.sandbox.psql("ALTER TABLE accounts ADD COLUMN plan text;", database=f"{prefix}_app")
    check = ws.inv("schemas.check", "--host", "dev", "--json")
    assert check.code == 1, check.err
    stale = {row["host"]: row["stale"] for row in check.json["databases"]}
    assert stale == {f"dev/{prefix}_app": True, f"dev/{prefix}_shard_1": False, f"dev/{prefix}_shard_2": False}
    one = ws.inv("schemas.check", "--database", f"{prefix}_shard_1", "--json")
    assert one.code == 0 and one.json["stale"] is False


def test_a_single_database_in_a_list_keeps_todays_layout(workspace: Workspace, database: str) -> None:
    workspace.add_host("dev", [database])
    run = workspace.inv("schemas.refresh", "--host", "dev", "--json")
    assert run.code == 0, run.err
    assert (workspace.out() / "survey_notes.sql").is_file() and run.json["database"] == database


def test_a_failed_database_holds_no_session_while_the_next_is_dumped(workspace: Workspace, tmp_path: Path) -> None:
    """Each database runs in a subshell of the remote script, its first session holding its
    snapshot. When one fails (here its pg_dump lacks a permission), its session must end then,
    not when the whole run does: the next databases may take minutes."""
    sb = workspace.sandbox
    prefix = f"held{tmp_path.name[-6:].replace('-', '_')}"
    failing, next_one = f"{prefix}_a", f"{prefix}_b"
    for name in (failing, next_one):
        sb.create_database(name, APP)
    sb.psql(f"DROP ROLE IF EXISTS {prefix}_reader; CREATE ROLE {prefix}_reader LOGIN;")
    sb.psql(f"GRANT SELECT ON accounts TO {prefix}_reader;", database=next_one)  # not in the failing one
    started, go = tmp_path / "started", tmp_path / "go"
    # the next database's pg_dump says it started, then waits for the test
    bin_dir = wrapped_pg_bin(
        tmp_path,
        "pg_dump",
        f'if [ "$PGDATABASE" = {next_one} ] && [ ! -e {shlex.quote(str(go))} ]; then\n'
        f"    : > {shlex.quote(str(started))}\n"
        f"    n=0; while [ ! -e {shlex.quote(str(go))} ] && [ $n -lt 600 ]; do sleep 0.1; n=$((n + 1)); done\n"
        "fi\n",
    )
    workspace.add_host("dev", [failing, next_one], db_user=f"{prefix}_reader", pg_bin=str(bin_dir))
    runs: list = []
    client = threading.Thread(target=lambda: runs.append(workspace.inv("schemas.refresh", "--host", "dev", "--json")))
    client.start()
    try:
        deadline = time.monotonic() + 60
        while not started.exists() and time.monotonic() < deadline and client.is_alive():
            time.sleep(0.05)
        assert started.exists(), runs[0].err if runs else "the next database was never dumped"
        assert sessions_left(sb, failing) == []
    finally:
        go.write_text("")
        client.join(60)
    rows = {row["host"]: row for row in runs[0].json["environments"]}
    assert not rows[f"dev/{failing}"]["ok"] and "permission denied" in rows[f"dev/{failing}"]["error"]
    assert rows[f"dev/{next_one}"]["ok"]


def test_a_database_named_in_hosts_yaml_that_is_not_there_fails_alone(workspace: Workspace, tmp_path: Path) -> None:
    sb = workspace.sandbox
    prefix = f"typo{tmp_path.name[-6:].replace('-', '_')}"
    sb.create_database(f"{prefix}_app", APP)
    workspace.add_host("dev", [f"{prefix}_app", f"{prefix}_apq", f"{prefix}_nothing_*"])
    run = workspace.inv("schemas.refresh", "--host", "dev", "--json")
    assert run.code == 4, run.err
    rows = {row["host"]: row for row in run.json["environments"]}
    assert rows[f"dev/{prefix}_app"]["ok"] and run.json["commit"]  # the others are refreshed and committed
    typo = rows[f"dev/{prefix}_apq"]
    assert not typo["ok"] and typo["exit_code"] == 4
    assert f"database {prefix}_apq does not exist on dev" in typo["error"]
    assert typo["hint"].startswith(f"did you mean {prefix}_app?")
    text = workspace.inv("schemas.refresh", "--host", "dev")
    assert text.code == 4 and f"did you mean {prefix}_app?" in text.out
    glob = rows[f"dev/{prefix}_nothing_*"]
    assert not glob["ok"] and f"no database on dev matches {prefix}_nothing_*" in glob["error"]
    check = workspace.inv("schemas.check", "--host", "dev", "--json")
    assert check.code == 4, check.err
    assert f"{prefix}_apq does not exist" in check.out
