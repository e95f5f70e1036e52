"""refresh and list end to end: the real CLI, through the real sshd, against the real PostgreSQL."""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
import time

import pytest

from sandbox import LOOPBACK
from schemasync.core.config import load_config
from schemasync.core.errors import DatabaseError
from schemasync.jobs.refresh import refresh
from schemasync.transport import remote_script

from .conftest import Workspace, differences, holding_lock, remote_dirs, without_stamp


def test_first_refresh_writes_and_commits_every_table(workspace: Workspace, database: str) -> None:
    workspace.add_host("dev", database)
    run = workspace.inv("schemas.refresh", "--host", "dev")
    assert run.code == 0, run.err
    out = workspace.out()
    for table in ["company", "users", "solar_projects", "project_system_details", "survey_notes"]:
        assert (out / f"{table}.sql").is_file()
    assert "CREATE TABLE public.survey_notes" in (out / "survey_notes.sql").read_text()
    assert (out / "views" / "open_projects.sql").is_file()
    assert "production_readings_2026_10" in (out / "production_readings.sql").read_text()
    assert not (out / "production_readings_2026_10.sql").exists()
    assert "+ survey_notes" in run.out and "16 new" in run.out
    table_list = (out / "_table_list.txt").read_text().splitlines()
    assert table_list == sorted(table_list) and "public.survey_notes" in table_list and len(table_list) == 16
    index = (out / "_index.md").read_text()
    assert "| ✓ | `survey_notes` | `public` | 7 |" in index  # rows: current or orphaned, stable across runs
    # a first refresh says so, and nothing else: every name is in the table below
    assert "UTC: first refresh: 16 tables.\n" in index and "- + new: " not in index
    assert workspace.commits() == 1
    subject = workspace.git("log", "-1", "--format=%s").strip()
    assert subject.startswith("schemas(dev): ")
    committed = workspace.git("show", "--name-only", "--format=", "HEAD").split()
    assert committed and all(p.startswith("docs/schemas/dev/") for p in committed if p != "docs/schemas/README.md")
    assert "docs/schemas/README.md" in committed  # the generated guide for agents
    assert "hosts.yaml" not in committed


def test_unchanged_database_changes_nothing(workspace: Workspace, database: str) -> None:
    workspace.add_host("dev", database)
    assert workspace.inv("schemas.refresh", "--host", "dev").code == 0
    before = workspace.snapshot()
    mtimes = {p: p.stat().st_mtime_ns for p in workspace.out().rglob("*")}
    run = workspace.inv("schemas.refresh", "--host", "dev")
    assert run.code == 0, run.err
    assert "no changes" in run.out
    assert workspace.snapshot() == before
    assert {p: p.stat().st_mtime_ns for p in workspace.out().rglob("*")} == mtimes
    assert workspace.commits() == 1


def test_changes_show_as_new_updated_and_orphaned(workspace: Workspace, database: str) -> None:
    sb = workspace.sandbox
    workspace.add_host("dev", database)
    assert workspace.inv("schemas.refresh", "--host", "dev").code == 0
    sb.psql(
        "ALTER TABLE survey_notes ADD COLUMN weather text; CREATE TABLE roof_types (id int PRIMARY KEY);"
        "DROP TABLE site_photos;",
        database=database,
    )
    before = workspace.snapshot()
    run = workspace.inv("schemas.refresh", "--host", "dev", "--json")
    assert run.code == 0, run.err
    data = run.json
    assert data["added"] == ["roof_types"] and data["updated"] == ["survey_notes"]
    assert data["orphaned"] == ["site_photos"] and data["tables"] == 16
    after = workspace.snapshot()
    changed = {k for k in after if before.get(k) != after[k]}
    own = {"_index.md", "_manifest.json", "_table_list.txt", "_erd.md"}
    assert changed == {"survey_notes.sql", "roof_types.sql"} | own
    assert after["site_photos.sql"] == before["site_photos.sql"]  # orphaned files are kept
    assert "| ⚠ | `site_photos`" in after["_index.md"].decode()
    subject = workspace.git("log", "-1", "--format=%s").strip()
    assert subject == "schemas(dev): +roof_types ~survey_notes(+weather) ⚠site_photos"
    assert data["commit"] == workspace.git("rev-parse", "HEAD").strip()


def test_single_table_refresh_matches_the_full_refresh(workspace: Workspace, database: str) -> None:
    sb = workspace.sandbox
    workspace.add_host("dev", database)
    assert workspace.inv("schemas.refresh", "--host", "dev").code == 0
    sb.psql(
        "ALTER TABLE survey_notes ADD COLUMN weather text; ALTER TABLE users ADD COLUMN x int;"
        "CREATE INDEX ON survey_notes (weather);",
        database=database,
    )
    run = workspace.inv("schemas.refresh", "--host", "dev", "--table", "survey_notes", "--json")
    assert run.code == 0, run.err
    assert run.json["updated"] == ["survey_notes"] and run.json["added"] == []
    one = workspace.snapshot()
    assert (
        "weather" in one["survey_notes.sql"].decode() and "survey_notes_weather_idx" in one["survey_notes.sql"].decode()
    )
    assert "ADD COLUMN x" not in one["users.sql"].decode() and " x integer" not in one["users.sql"].decode()
    full = workspace.inv("schemas.refresh", "--host", "dev", "--json")
    assert full.code == 0
    assert full.json["updated"] == ["users"]  # survey_notes was already exactly right
    assert workspace.snapshot()["survey_notes.sql"] == one["survey_notes.sql"]


def test_single_table_quoting_and_errors(workspace: Workspace) -> None:
    workspace.add_host("hard", "hardcases", schemas=["*"])
    ok = workspace.inv("schemas.refresh", "--host", "hard", "--table", "MixedCase", "--json")
    assert ok.code == 0, ok.err
    assert ok.json["added"] == ['"MixedCase"']
    part = workspace.inv("schemas.refresh", "--host", "hard", "--table", "audit.events", "--no-commit")
    assert part.code == 0, part.err
    text = (workspace.out("hard") / "audit.events.sql").read_text()
    assert "ATTACH PARTITION audit.events_2026" in text
    ambiguous = workspace.inv("schemas.refresh", "--host", "hard", "--table", "users")
    assert ambiguous.code == 2 and "ambiguous" in ambiguous.err and "app.users" in ambiguous.err
    missing = workspace.inv("schemas.refresh", "--host", "hard", "--table", "nope")
    assert missing.code == 2 and "no table 'nope'" in missing.err


def test_list_shows_status_against_local_files(workspace: Workspace, database: str) -> None:
    sb = workspace.sandbox
    workspace.add_host("dev", database)
    assert workspace.inv("schemas.refresh", "--host", "dev").code == 0
    sb.psql("CREATE TABLE roof_types (id int); DROP TABLE site_photos;", database=database)
    before = workspace.snapshot()
    run = workspace.inv("schemas.list", "--json")  # the only host is the default
    assert run.code == 0, run.err
    status = {t["name"]: t["status"] for t in run.json["tables"]}
    assert status["roof_types"] == "new" and status["site_photos"] == "orphaned" and status["users"] == "current"
    assert set(run.json) >= {"host", "tables"} and run.json["host"] == "dev"
    assert workspace.snapshot() == before and workspace.commits() == 1
    text = workspace.inv("schemas.list", "--host", "dev")
    assert "+ roof_types" in text.out and "⚠ site_photos" in text.out


def test_not_a_git_repository(tmp_path, sandbox, database) -> None:
    plain = tmp_path / "plain"
    plain.mkdir()
    ws = Workspace(plain, sandbox)
    ws.add_host("dev", database)
    run = ws.inv("schemas.refresh", "--host", "dev")
    assert run.code == 5 and "not inside a git repository" in run.err
    assert not (plain / "docs").exists()
    ok = ws.inv("schemas.refresh", "--host", "dev", "--no-commit")
    assert ok.code == 0 and (plain / "docs/schemas/dev/users.sql").is_file()


def test_only_the_tools_files_are_committed(workspace: Workspace, database: str) -> None:
    workspace.add_host("dev", database)
    (workspace.path / "app.py").write_text("print('work in progress')\n")
    workspace.git("add", "app.py")
    (workspace.out()).mkdir(parents=True)
    (workspace.out() / "NOTES.md").write_text("my notes\n")
    assert workspace.inv("schemas.refresh", "--host", "dev").code == 0
    committed = workspace.git("show", "--name-only", "--format=", "HEAD").split()
    assert "app.py" not in committed and "docs/schemas/dev/NOTES.md" not in committed
    assert workspace.git("diff", "--cached", "--name-only").split() == ["app.py"]  # still staged


def test_no_commit_leaves_files_uncommitted(workspace: Workspace, database: str) -> None:
    workspace.add_host("dev", database)
    run = workspace.inv("schemas.refresh", "--host", "dev", "--no-commit", "--json")
    assert run.code == 0 and run.json["commit"] is None
    assert workspace.commits() == 0 and (workspace.out() / "users.sql").is_file()


def test_a_failed_run_leaves_the_output_exactly_as_it_was(workspace: Workspace, database: str) -> None:
    sb = workspace.sandbox
    workspace.add_host("dev", database)
    assert workspace.inv("schemas.refresh", "--host", "dev").code == 0
    sb.psql("ALTER TABLE users ADD COLUMN y int;", database=database)
    before = workspace.snapshot()
    workspace.add_host("dev", database + "_missing")
    run = workspace.inv("schemas.refresh", "--host", "dev")
    assert run.code == 4 and "does not exist" in run.err and "hint: check database in hosts.yaml" in run.err
    workspace.add_host("dev", database, db_user="no_such_role")
    run = workspace.inv("schemas.refresh", "--host", "dev")
    assert run.code == 4 and "hint: check db_user in hosts.yaml" in run.err, run.err
    workspace.add_host("dev", database, pg_bin="/nonexistent/bin")
    run = workspace.inv("schemas.refresh", "--host", "dev")
    assert run.code == 4 and "psql not found in pg_bin" in run.err
    assert workspace.snapshot() == before and workspace.commits() == 1


def test_remote_temp_directories_are_removed(workspace: Workspace, database: str) -> None:
    workspace.add_host("dev", database)
    before = remote_dirs()
    assert workspace.inv("schemas.refresh", "--host", "dev", "--no-commit").code == 0
    workspace.add_host("dev", database + "_missing")
    assert workspace.inv("schemas.refresh", "--host", "dev", "--no-commit").code == 4
    assert remote_dirs() == before


def test_host_keys_are_verified(workspace: Workspace, database: str, tmp_path) -> None:
    sb = workspace.sandbox
    empty = tmp_path / "known_hosts_empty"
    cfg = tmp_path / "ssh_config"
    cfg.write_text(sb.ssh_config.read_text().replace(str(sb.known_hosts), str(empty)))
    workspace.add_host("dev", database, ssh_config=str(cfg))
    run = workspace.inv("schemas.refresh", "--host", "dev")
    assert run.code == 3
    assert "unknown host key" in run.err and "SHA256:" in run.err
    assert f"ssh-keyscan -p {sb.ssh_port} {LOOPBACK}" in run.err
    assert not workspace.out().exists()

    workspace.add_host("dev", database, ssh_config=str(cfg), host_key="accept-new")
    run = workspace.inv("schemas.refresh", "--host", "dev")
    assert run.code == 0, run.err
    assert f"[{LOOPBACK}]:{sb.ssh_port} ssh-ed25519" in empty.read_text()

    # Same address, different key: refused even with accept-new.
    import paramiko

    other = paramiko.Ed25519Key.from_private_key_file(str(sb.client_key))  # any other ed25519 key
    empty.write_text(f"[{LOOPBACK}]:{sb.ssh_port} ssh-ed25519 {other.get_base64()}\n")
    run = workspace.inv("schemas.refresh", "--host", "dev")
    assert run.code == 3 and "HOST KEY CHANGED" in run.err


def test_password_travels_on_stdin_and_never_shows(workspace: Workspace, database: str) -> None:
    sb = workspace.sandbox
    secret = "pw-" + os.urandom(6).hex() + ":x\\y"
    sb.psql(
        f"DROP ROLE IF EXISTS reader; CREATE ROLE reader LOGIN PASSWORD '{secret.replace(chr(39), chr(39) * 2)}';"
        f'GRANT CONNECT ON DATABASE "{database}" TO reader; GRANT pg_read_all_data TO reader;'
    )
    workspace.add_host("dev", database, db_host=LOOPBACK, db_user="reader", password_env="TEST_DB_PW")
    seen: list[str] = []
    stop = threading.Event()

    def watch() -> None:
        while not stop.is_set():
            seen.append(subprocess.run(["ps", "-eww", "-o", "args="], capture_output=True, text=True).stdout)
            time.sleep(0.02)

    t = threading.Thread(target=watch)
    t.start()
    try:
        run = workspace.inv("schemas.refresh", "--host", "dev", "--no-commit", env={"TEST_DB_PW": secret})
    finally:
        stop.set()
        t.join()
    assert run.code == 0, run.err
    assert len(seen) > 3 and not any(secret in s for s in seen)
    assert secret not in run.out + run.err
    wrong = workspace.inv("schemas.refresh", "--host", "dev", "--no-commit", env={"TEST_DB_PW": "wrong"})
    assert wrong.code == 4 and "password authentication failed" in wrong.err
    assert "wrong" not in wrong.err.replace("wrong password", "")
    missing = workspace.inv("schemas.refresh", "--host", "dev", env={"TEST_DB_PW": ""} | {})
    assert missing.code in (0, 4)
    unset = workspace.inv("schemas.refresh", "--host", "dev", env={"TEST_DB_PW_UNUSED": "1"})
    assert unset.code in (2, 4)


def test_a_lock_wait_fails_cleanly_and_changes_nothing(workspace: Workspace, database: str) -> None:
    sb = workspace.sandbox
    workspace.add_host("dev", database)
    assert workspace.inv("schemas.refresh", "--host", "dev").code == 0
    sb.psql("ALTER TABLE users ADD COLUMN z int;", database=database)
    before = workspace.snapshot()
    with holding_lock(sb, database, "LOCK TABLE users IN ACCESS EXCLUSIVE MODE"):
        workspace.add_host("dev", database, lock_wait_timeout=1)
        # the lock is held until this block ends: a run that waited for it would hit inv's timeout
        run = workspace.inv("schemas.refresh", "--host", "dev", timeout=90)
    assert run.code == 4 and "table lock" in run.err
    assert workspace.snapshot() == before and workspace.commits() == 1


def test_proxyjump_with_every_hop_verified(workspace: Workspace, database: str, tmp_path) -> None:
    sb = workspace.sandbox
    jump_port, jump_known = sb.start_extra_sshd("jump")
    target_known = sb.known_hosts.read_text()
    known = tmp_path / "known_hosts"
    cfg = tmp_path / "ssh_config"
    cfg.write_text(
        f"Host jump\n    HostName {LOOPBACK}\n    Port {jump_port}\n    User {sb.login_user}\n"
        f"    IdentityFile {sb.client_key}\n    UserKnownHostsFile {known}\n"
        f"Host target\n    HostName {LOOPBACK}\n    Port {sb.ssh_port}\n    User {sb.login_user}\n"
        f"    IdentityFile {sb.client_key}\n    UserKnownHostsFile {known}\n    ProxyJump jump\n"
    )
    workspace.add_host("dev", database, ssh="target", ssh_config=str(cfg))
    known.write_text(target_known)  # the jump host's key is unknown
    run = workspace.inv("schemas.refresh", "--host", "dev", "--no-commit")
    assert run.code == 3 and f"[{LOOPBACK}]:{jump_port}" in run.err and "unknown host key" in run.err
    known.write_text(target_known + jump_known + "\n")
    run = workspace.inv("schemas.refresh", "--host", "dev", "--no-commit")
    assert run.code == 0, run.err
    assert (workspace.out() / "survey_notes.sql").is_file()
    # The jump host's key changes: refused even with accept-new, and nothing is recorded.
    other_key = (sb.ssh_dir / "host_ed25519.pub").read_text().split()[1]  # the target's key, not the jump's
    known.write_text(target_known + f"[{LOOPBACK}]:{jump_port} ssh-ed25519 {other_key}\n")
    workspace.add_host("dev", database, ssh="target", ssh_config=str(cfg), host_key="accept-new")
    run = workspace.inv("schemas.refresh", "--host", "dev", "--no-commit")
    assert run.code == 3 and "HOST KEY CHANGED" in run.err and f"[{LOOPBACK}]:{jump_port}" in run.err


def test_discovery_arrives_while_pg_dump_is_still_running(workspace: Workspace, database: str) -> None:
    """The client prepares (reads the old files) during the dump: discovery's document must reach
    it before pg_dump is done. Here pg_dump never finishes (a table is locked), discovery still arrives."""
    from schemasync.core.config import load_config
    from schemasync.core.errors import DatabaseError
    from schemasync.transport import connect, session
    from schemasync.transport.remote_script import build_script

    sb = workspace.sandbox
    workspace.add_host("dev", database, lock_wait_timeout=2)
    host = load_config(str(workspace.path / "hosts.yaml")).host("dev")
    seen: list[list[str]] = []
    with holding_lock(sb, database, "LOCK TABLE users IN ACCESS EXCLUSIVE MODE"):
        conn = connect.connect(host)
        try:
            with pytest.raises(DatabaseError, match="table lock"):
                script = build_script(host, "full")
                run = session.start_remote(conn, host, script)
                for event in session.remote_events(run):
                    if isinstance(event, session.DiscoveryArrived):
                        seen.append([t.name for t in event.doc["tables"]])
        finally:
            connect.close(conn)
    assert len(seen) == 1 and "users" in seen[0] and "survey_notes" in seen[0]


@pytest.mark.parametrize("status", [0, 23])
def test_the_exit_status_is_awaited_while_the_dump_is_used_and_still_decides(
    workspace: Workspace, database: str, status: int
) -> None:
    """A refresh does not wait a round trip for the remote step's exit status before it splits the
    dump (run_remote(defer_exit=True)): the status comes in a thread, which then closes the
    connection, and `confirm()` (before anything is written) gives the notices or raises the
    failure. Here a step that sends its result and then fails (which refresh.sh never does: its
    last words are its exit) over a real sshd."""
    from schemasync.transport import connect, session

    workspace.add_host("dev", database)
    host = load_config(str(workspace.path / "hosts.yaml")).host("dev")
    doc = '{"tables": []}'
    script = (
        f"printf 'SCHEMASYNC DISCOVERY plain {len(doc)} -\\n%s' '{doc}'\n"
        "printf 'SCHEMASYNC RESULT plain 5 -\\nhello'\n"
        "cat > /dev/null\n"  # until schemasync ends our input: it has the file
        "printf 'schemasync-remote: said on the way out\\n' >&2\n"
        f"exit {status}\n"
    )
    for defer in (True, False):
        conn = connect.connect(host)
        try:
            run = session.start_remote(conn, host, script)
            if not defer and status:
                with pytest.raises(DatabaseError, match="pg_dump failed"):
                    session.run_remote(run)
                continue
            out = session.run_remote(run, defer_exit=defer)
            assert out.dump == "hello" and out.meta == {"tables": []}
            assert (out.exit is not None) is defer
            if status:
                with pytest.raises(DatabaseError, match="pg_dump failed"):
                    out.confirm()
            else:
                out.confirm()
                assert out.notices == ["said on the way out"]
            if defer:  # the thread that awaited the status closed the connection
                assert not conn.is_connected
        finally:
            connect.close(conn)


def test_a_first_refresh_of_many_tables_commits_exactly_what_it_writes(workspace: Workspace) -> None:
    count = 120  # enough for git fast-import to build the commit while the files are written
    workspace.sandbox.create_database(
        "many", "\n".join(f"CREATE TABLE t{i} (id int PRIMARY KEY, v text);" for i in range(count))
    )
    workspace.add_host("dev", "many")
    run = workspace.inv("schemas.refresh", "--host", "dev", "--json")
    assert run.code == 0, run.err
    assert len(run.json["added"]) == count
    files = workspace.snapshot()
    assert sum(1 for f in files if f.startswith("t") and f.endswith(".sql")) == count
    assert not [f for f in files if ".schemasync-" in f]  # no staging left behind
    tree = workspace.git("ls-tree", "-r", "--name-only", "HEAD", "--", "docs/schemas/dev").split()
    assert sorted(f.removeprefix("docs/schemas/dev/") for f in tree) == sorted(files)
    assert workspace.git("status", "--porcelain", "--", "docs") == ""  # on disk: what was committed
    assert workspace.git("show", "HEAD:docs/schemas/dev/t7.sql").encode() == files["t7.sql"]


def test_small_files_come_on_the_channel_and_big_ones_over_sftp_alike(
    workspace: Workspace, database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from schemasync.core.config import load_config
    from schemasync.jobs import refresh
    from schemasync.transport import remote_script, runners

    fetched: list[str] = []
    sftp_get = runners._Puller.get

    def noting_get(self: runners._Puller, path: str, size: int, opened=None, transfer=None) -> bytes:  # noted
        fetched.append(path)
        return sftp_get(self, path, size, opened, transfer)

    monkeypatch.setattr(runners._Puller, "get", noting_get)
    workspace.add_host("dev", database)
    config = load_config(str(workspace.path / "hosts.yaml"))
    refresh.refresh(config, "dev", commit=False)
    inline = workspace.snapshot()
    assert fetched == []  # discovery and the dump were small: no SFTP round trips
    shutil.rmtree(workspace.out())
    workspace.sandbox.psql("SELECT txid_current();")  # a transaction in between moves the manifest's `since`
    monkeypatch.setattr(remote_script, "INLINE_MAX", 0)
    refresh.refresh(config, "dev", commit=False)
    assert [path.rsplit("/", 1)[1] for path in fetched] == ["discovery.out", "result"]
    over_sftp = workspace.snapshot()
    assert over_sftp.keys() == inline.keys()
    assert without_stamp(over_sftp) == without_stamp(inline), differences(over_sftp, inline)


def test_a_server_older_than_11_is_named_as_such(
    workspace: Workspace, database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """PostgreSQL 10 and older fail the catalog queries in words that say nothing of the version
    (an unknown setting, jit); discovery names the version first. Simulated on the real server by
    raising the least version in the SQL the tool sends. Nothing written, nothing committed."""
    workspace.add_host("dev", database)
    assert workspace.inv("schemas.refresh", "--host", "dev").code == 0
    before, commits = workspace.snapshot(), workspace.commits()
    real = remote_script._remote_text
    raised = real("discover.sql").replace("server_version_num')::int < 110000", "server_version_num')::int < 990000")
    assert raised != real("discover.sql")
    monkeypatch.setattr(remote_script, "_remote_text", lambda name: raised if name == "discover.sql" else real(name))
    config = load_config(str(workspace.path / "hosts.yaml"))
    for full in (False, True):
        with pytest.raises(DatabaseError) as caught:
            refresh(config, "dev", full=full)
        assert "schemasync needs PostgreSQL 11 or later; this server is 1" in caught.value.message
        assert caught.value.hint.startswith("PostgreSQL 10 and older are not supported")
    assert workspace.snapshot() == before and workspace.commits() == commits


def test_the_plain_path_writes_what_the_speed_tricks_write(workspace: Workspace, database: str) -> None:
    """Every trick of core/speed.py off (SCHEMASYNC_PLAIN=all): the same files, a cold refresh (of
    a hundred tables more) and an incremental one alike."""
    extra = "\n".join(f"CREATE TABLE plain_{i} (id int PRIMARY KEY);" for i in range(100))
    workspace.sandbox.psql(extra, database=database)
    workspace.add_host("dev", database)
    plain = Workspace(workspace.path.parent / "plain", workspace.sandbox)
    plain.path.mkdir()
    subprocess.run(["git", "init", "-q", "-b", "main", str(plain.path)], check=True)
    for key, value in (("user.email", "t@example.com"), ("user.name", "T")):
        plain.git("config", key, value)
    plain.add_host("dev", database)
    for step in ("cold", "one changed"):
        if step == "one changed":
            workspace.sandbox.psql("ALTER TABLE users ADD COLUMN plain_note text;", database=database)
        fast = workspace.inv("schemas.refresh", "--host", "dev", "--json")
        slow = plain.inv("schemas.refresh", "--host", "dev", "--json", env={"SCHEMASYNC_PLAIN": "all"})
        assert fast.code == 0 and slow.code == 0, (fast.err, slow.err)
        assert without_stamp(plain.snapshot()) == without_stamp(workspace.snapshot()), step
        assert plain.git("status", "--porcelain", "docs") == workspace.git("status", "--porcelain", "docs") == "", step
    assert slow.json["dumped"] == fast.json["dumped"] == "part"
