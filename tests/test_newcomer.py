"""What a new user hits first, tried as they would: honest change reports, one error contract,
usage errors that CI can tell from drift. Against the real sshd and PostgreSQL."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import yaml

from .conftest import REPO, Run, Workspace


def inv_plain(ws: Workspace, *args: str, cwd: Path | None = None, env: dict[str, str] | None = None) -> Run:
    """`inv` as a user types it: no SCHEMASYNC_HOSTS, hosts.yaml found from the directory."""
    environ = {k: v for k, v in os.environ.items() if k != "SCHEMASYNC_HOSTS"} | (env or {})
    proc = subprocess.run(
        [sys.executable, "-m", "invoke", "-r", str(REPO), *args],
        cwd=cwd or ws.path,
        capture_output=True,
        text=True,
        timeout=120,
        env=environ,
    )
    return Run(proc.returncode, proc.stdout, proc.stderr)


def test_a_hand_edit_is_put_back_and_said_so_not_reported_as_a_change(workspace: Workspace, database: str) -> None:
    workspace.add_host("dev", database)
    assert workspace.inv("schemas.refresh", "--host", "dev").code == 0
    users = workspace.out() / "users.sql"
    original = users.read_text()
    users.write_text(original + "-- edit\n")
    run = workspace.inv("schemas.refresh", "--host", "dev")
    assert run.code == 0, run.err
    assert users.read_text() == original
    assert "restored users.sql: it had been edited by hand, and the database did not change" in run.out
    assert "~ users" not in run.out and "0 updated" in run.out
    assert "nothing to commit" in run.out and workspace.commits() == 1  # the file is as committed
    # an edit that was committed is put back by a commit that says so, not by "~users"
    users.write_text(original + "-- edit\n")
    workspace.git("commit", "-qam", "my edit")
    run = workspace.inv("schemas.refresh", "--host", "dev", "--json")
    assert run.json["restored"] == ["users.sql"] and run.json["updated"] == []
    assert workspace.git("log", "-1", "--format=%s").strip() == "schemas(dev): restore 1 file edited by hand"
    assert workspace.git("show", "--name-only", "--format=", "HEAD").split() == ["docs/schemas/dev/users.sql"]


def test_an_orphan_is_announced_once_and_listed_after(workspace: Workspace, database: str) -> None:
    sb = workspace.sandbox
    workspace.add_host("dev", database)
    assert workspace.inv("schemas.refresh", "--host", "dev").code == 0
    sb.psql("DROP TABLE site_photos;", database=database)
    first = workspace.inv("schemas.refresh", "--host", "dev")
    assert "⚠ site_photos" in first.out and "⚠site_photos" in workspace.git("log", "-1", "--format=%s")
    sb.psql("ALTER TABLE users ADD COLUMN x int;", database=database)
    later = workspace.inv("schemas.refresh", "--host", "dev")
    assert later.code == 0, later.err
    assert "⚠ site_photos" not in later.out and "0 orphaned" in later.out and "1 orphaned earlier, kept" in later.out
    assert workspace.git("log", "-1", "--format=%s").strip() == "schemas(dev): ~users(+x)"
    unchanged = workspace.inv("schemas.refresh", "--host", "dev")
    assert "no changes" in unchanged.out and "⚠" not in unchanged.out
    listed = workspace.inv("schemas.list", "--host", "dev", "--json").json["tables"]
    assert {t["name"]: t["status"] for t in listed}["site_photos"] == "orphaned"
    assert "| ⚠ | `site_photos`" in (workspace.out() / "_index.md").read_text()


def test_a_port_that_is_not_ssh_gives_one_line(workspace: Workspace) -> None:
    sb = workspace.sandbox
    workspace.hosts["pg"] = {"ssh": f"127.0.0.1:{sb.pg_port}", "database": "skyfire", "connect_timeout": 5}
    (workspace.path / "hosts.yaml").write_text(yaml.safe_dump({"hosts": workspace.hosts}))
    run = workspace.inv("schemas.list", "--host", "pg")
    assert run.code == 3
    assert "Traceback" not in run.err and len(run.err.strip().splitlines()) == 2, run.err
    assert f"is port {sb.pg_port} an SSH server?" in run.err


def test_no_usable_key_says_authentication_failed(workspace: Workspace, database: str, tmp_path: Path) -> None:
    sb = workspace.sandbox
    cfg = tmp_path / "ssh_config"
    cfg.write_text(
        f"Host nokey\n    HostName 127.0.0.1\n    Port {sb.ssh_port}\n    User {sb.login_user}\n"
        f"    UserKnownHostsFile {sb.known_hosts}\n"
    )
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True)
    workspace.add_host("dev", database, ssh="nokey", ssh_config=str(cfg))
    run = workspace.inv("schemas.list", "--host", "dev", env={"HOME": str(home), "SSH_AUTH_SOCK": ""})
    assert run.code == 3 and "SSH authentication failed: no key to offer" in run.err, run.err
    assert "hint: check that `ssh" in run.err


def test_ssh_messages_point_the_right_way(workspace: Workspace, database: str, tmp_path: Path) -> None:
    import socket

    sb = workspace.sandbox
    # a missing IdentityFile: its path, and where it was set
    cfg = tmp_path / "ssh_config"
    cfg.write_text(
        f"Host nokeyfile\n    HostName 127.0.0.1\n    Port {sb.ssh_port}\n    User {sb.login_user}\n"
        f"    IdentityFile {tmp_path}/no_such_key\n    UserKnownHostsFile {sb.known_hosts}\n"
    )
    workspace.add_host("dev", database, ssh="nokeyfile", ssh_config=str(cfg))
    run = workspace.inv("schemas.list", "--host", "dev")
    assert run.code == 3, run.err
    assert f"the SSH key {tmp_path}/no_such_key does not exist (IdentityFile in {cfg})" in run.err
    # an unknown host key: the hint names the known_hosts file the check reads
    known = tmp_path / "team_known_hosts"
    cfg.write_text(sb.ssh_config.read_text().replace(str(sb.known_hosts), str(known)))
    workspace.add_host("dev", database, ssh_config=str(cfg))
    run = workspace.inv("schemas.list", "--host", "dev")
    assert run.code == 3 and f">> {known}" in run.err and "~/.ssh/known_hosts" not in run.err, run.err
    # a port that accepts and then says nothing: a time-out waiting for the banner
    with socket.create_server(("127.0.0.1", 0)) as silent:
        silent.listen()
        port = silent.getsockname()[1]
        workspace.hosts["mute"] = {"ssh": f"127.0.0.1:{port}", "database": "skyfire", "connect_timeout": 2}
        (workspace.path / "hosts.yaml").write_text(yaml.safe_dump({"hosts": workspace.hosts}))
        run = workspace.inv("schemas.list", "--host", "mute")
    assert run.code == 3
    assert "timed out after 2s waiting for the server's SSH banner" in run.err, run.err


def test_usage_errors_exit_2_and_json_errors_are_json(workspace: Workspace, database: str) -> None:
    workspace.add_host("dev", database)
    # the `schemasync` command parses its own command lines: a typo is a usage error, exit 2
    typo = workspace.cli("check", "--hots", "staging")
    assert typo.code == 2 and "No idea what '--hots' is!" in typo.err
    missing = workspace.cli("diff", "dev")
    assert missing.code == 2 and "did not receive required positional arguments" in missing.err
    as_json = workspace.cli("check", "--hots", "staging", "--json")
    assert as_json.code == 2 and as_json.json["exit_code"] == 2 and "--hots" in as_json.json["error"]
    untagged = workspace.cli("search", "--tag", "pii", "--json")  # PATTERN may be left out there
    assert untagged.code == 5 and "no schema files" in untagged.json["error"]  # parsed; nothing refreshed yet
    # `inv` is Invoke's program, whose parse errors are its own (exit 1), as the README says
    assert workspace.inv("schemas.check", "--hots", "staging").code == 1
    helped = workspace.inv("schemas.show", "--help")
    assert helped.code == 0 and "Usage:" in helped.out and "--hosts-file" in helped.out
    assert "environment name from hosts.yaml" in helped.out  # each option with what it means
    unknown = workspace.inv("schemas.show", "nope", "--json")
    assert unknown.code == 5 or unknown.code == 2
    doc = json.loads(unknown.out)
    assert doc["exit_code"] == unknown.code and doc["error"] and isinstance(doc["hints"], list)
    guide = workspace.inv("schemas.agent-guide", "--json")
    assert guide.code == 0 and guide.json["guide"].startswith("## Database schema")


def test_outside_git_diff_does_not_suggest_no_commit(workspace: Workspace, tmp_path: Path) -> None:
    plain = tmp_path / "plain"
    plain.mkdir()
    hosts = {"dev": workspace.sandbox.hosts_entry("skyfire"), "prod": {"ssh": "x", "database": "y"}}
    (plain / "hosts.yaml").write_text(yaml.safe_dump({"hosts": hosts}))
    run = inv_plain(workspace, "schemas.diff", "dev", "prod", cwd=plain)
    assert run.code == 5 and "is not inside a git repository" in run.err and "--no-commit" not in run.err
    show = inv_plain(workspace, "schemas.show", "users", "--host", "dev", cwd=plain)
    assert "--no-commit" not in show.err and "inv schemas.refresh --host dev" in show.err


def test_invokes_own_config_flag_is_refused_and_hosts_yaml_is_found_upward(workspace: Workspace, database: str) -> None:
    workspace.add_host("dev", database)
    assert workspace.inv("schemas.refresh", "--host", "dev").code == 0
    other = workspace.path / "other.yaml"
    other.write_text((workspace.path / "hosts.yaml").read_text())
    mixed = inv_plain(workspace, "--config", str(other), "schemas.show", "company")
    assert mixed.code == 2 and "Invoke's own option" in mixed.err and "--hosts-file" in mixed.err
    right = inv_plain(workspace, "schemas.show", "company", "--hosts-file", str(other))
    assert right.code == 0 and "CREATE TABLE public.company" in right.out
    deep = workspace.path / "app" / "src"
    deep.mkdir(parents=True)
    found = inv_plain(workspace, "schemas.show", "company", cwd=deep)
    assert found.code == 0, found.err


def test_the_smaller_ones(workspace: Workspace, database: str) -> None:
    sb = workspace.sandbox
    workspace.add_host("dev", database)
    workspace.add_host("prod", database)  # no files yet
    first = workspace.inv("schemas.refresh", "--host", "dev")
    assert first.code == 0, first.err
    guide = (workspace.path / "docs" / "schemas" / "README.md").read_text()
    assert "(dev/_index.md)" in guide and "prod/_index.md" not in guide and "not refreshed yet" in guide
    # "wrote N files" counts what the commit holds
    committed = workspace.git("show", "--name-only", "--format=", "HEAD").split()
    assert f"wrote {len(committed)} files" in first.out
    # the commit body keeps an object's kind
    sb.psql("CREATE TYPE roof_pitch AS ENUM ('flat', 'steep');", database=database)
    typed = workspace.inv("schemas.refresh", "--host", "dev")
    assert typed.code == 0 and "+ type roof_pitch" in workspace.git("log", "-1", "--format=%b")
    # --table: the index says what that refresh changed, and rows keep their marks
    sb.psql("ALTER TABLE survey_notes ADD COLUMN weather text;", database=database)
    assert workspace.inv("schemas.refresh", "--host", "dev", "--table", "survey_notes").code == 0
    index = (workspace.out() / "_index.md").read_text()
    assert "- ~ updated: `survey_notes`" in index and "- + new" not in index
    assert "| + |" not in index and "| ~ |" not in index
    # only a `-- Referenced by` header changed: said as such, not as a change of the table
    sb.psql("CREATE TABLE panel_notes (id int PRIMARY KEY, company_id int REFERENCES company(id));", database=database)
    run = workspace.inv("schemas.refresh", "--host", "dev", "--json")
    assert run.json["added"] == ["panel_notes"] and "company" not in run.json["updated"]
    assert run.json["references_only"] == ["company.sql"]


def test_a_sweep_error_line_names_the_host_once(workspace: Workspace, database: str) -> None:
    workspace.add_host("dev", database)
    workspace.hosts["broken"] = {"ssh": "127.0.0.1:1", "database": "x", "connect_timeout": 3}
    (workspace.path / "hosts.yaml").write_text(yaml.safe_dump({"hosts": workspace.hosts}))
    run = workspace.inv("schemas.sweep")
    assert run.code == 3
    lines = [line for line in run.out.splitlines() if line.startswith("broken")]
    assert lines and all("broken: broken" not in line for line in lines), run.out


def test_show_and_search_cover_objects_defaults_comments_and_indexes(workspace: Workspace, database: str) -> None:
    sql = "ALTER TABLE company ADD COLUMN website text; COMMENT ON COLUMN company.website IS 'public URL';"
    workspace.sandbox.psql(sql, database=database)
    workspace.add_host("dev", database)
    assert workspace.inv("schemas.refresh", "--host", "dev").code == 0
    view = workspace.inv("schemas.show", "open_projects", "--json")
    assert view.code == 0 and view.json["kind"] == "view" and "CREATE VIEW" in view.json["definition"]
    enum = workspace.inv("schemas.show", "project_status", "--json")
    assert enum.json["kind"] == "type" and enum.json["values"][:2] == ["lead", "surveyed"]
    users = workspace.inv("schemas.show", "users", "--json").json
    cols = {c["name"]: c for c in users["columns"]}
    assert cols["role"]["default"] == "'sales'::text" and cols["id"]["default"].startswith("nextval(")
    idx = {i["name"]: i for i in users["index_details"]}
    assert idx["users_email_lower_idx"]["unique"] and idx["users_email_lower_idx"]["columns"] == ["(lower(email))"]
    assert idx["users_pkey"]["constraint"] and idx["users_company_id_idx"]["unique"] is False
    by_comment = workspace.inv("schemas.search", "public URL", "--json").json["matches"]
    assert [(m["table"], m["column"], m["comment"]) for m in by_comment] == [("company", "website", "public URL")]
    assert "company.website text  -- public URL" in workspace.inv("schemas.search", "website").out
    # what uses a table: the views (and SQL-bodied functions) a column drop would break
    projects = workspace.inv("schemas.show", "solar_projects", "--json").json
    assert {"kind": "view", "name": "open_projects"} in projects["dependents"]
    live = workspace.sandbox.psql(
        "SELECT DISTINCT v.relname FROM pg_depend d JOIN pg_rewrite r ON r.oid = d.objid "
        "JOIN pg_class v ON v.oid = r.ev_class WHERE d.refobjid = 'solar_projects'::regclass AND v.relname <> "
        "'solar_projects'",
        database=database,
    ).split()
    assert sorted(x["name"] for x in projects["dependents"] if x["kind"] == "view") == sorted(live)
    wrong_case = workspace.inv("schemas.refresh", "--host", "dev", "--table", "Company")
    assert wrong_case.code == 2 and "did you mean: company" in wrong_case.err


def test_check_says_what_changed_in_the_words_of_diff(workspace: Workspace, database: str) -> None:
    workspace.add_host("dev", database)
    assert workspace.inv("schemas.refresh", "--host", "dev").code == 0
    workspace.sandbox.psql("ALTER TABLE users ADD COLUMN nickname text;", database=database)
    run = workspace.inv("schemas.check", "--host", "dev")
    assert run.code == 1 and "~ users" in run.out
    assert "users: column nickname only in the database" in run.out
    data = workspace.inv("schemas.check", "--host", "dev", "--json").json
    assert [c["text"] for c in data["differences"][0]["changes"]] == ["users: column nickname only in database"]


def test_a_reader_that_goes_away_and_a_mistyped_task(workspace: Workspace, database: str) -> None:
    workspace.add_host("dev", database)
    assert workspace.inv("schemas.refresh", "--host", "dev").code == 0
    for argv in (
        [sys.executable, "-m", "invoke", "-r", str(REPO), "schemas.list", "--host", "dev"],
        [str(Path(sys.executable).parent / "schemasync"), "list", "--host", "dev"],
    ):
        read, write = os.pipe()
        os.close(read)  # `| head` that has already gone
        proc = subprocess.run(
            argv,
            cwd=workspace.path,
            stdout=write,
            stderr=subprocess.PIPE,
            text=True,
            timeout=120,
            env={**os.environ, "SCHEMASYNC_HOSTS": str(workspace.path / "hosts.yaml")},
        )
        os.close(write)
        assert "Traceback" not in proc.stderr and "BrokenPipe" not in proc.stderr, proc.stderr
    typo = subprocess.run(
        [str(Path(sys.executable).parent / "schemasync"), "refrsh"], capture_output=True, text=True, timeout=60
    )
    assert typo.returncode == 2 and "did you mean refresh?" in typo.stderr, typo.stderr


def test_foreign_keys_declared_on_partitions_count_for_their_table(workspace: Workspace, database: str) -> None:
    workspace.sandbox.psql(
        "CREATE TABLE meter_events (project_id int, at date NOT NULL) PARTITION BY RANGE (at);"
        "CREATE TABLE meter_events_2026 PARTITION OF meter_events FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');"
        "ALTER TABLE meter_events_2026 ADD CONSTRAINT meter_events_2026_project_fk "
        "FOREIGN KEY (project_id) REFERENCES solar_projects(id);",
        database=database,
    )
    workspace.add_host("dev", database)
    assert workspace.inv("schemas.refresh", "--host", "dev").code == 0
    shown = workspace.inv("schemas.show", "meter_events", "--json").json
    assert [fk["name"] for fk in shown["foreign_keys"]] == ["meter_events_2026_project_fk"]
    text = workspace.inv("schemas.show", "meter_events").out
    assert "Foreign keys out: none" not in text and "meter_events_2026(project_id) -> solar_projects(id)" in text
    assert "FOREIGN KEY (project_id)" in (workspace.out() / "meter_events.sql").read_text()  # as the file holds it
    index = (workspace.out() / "_index.md").read_text().splitlines()
    row = next(line for line in index if line.startswith("| ") and "`meter_events`" in line)
    assert row.split("|")[6].strip() == "1", row  # FKs out
    into = workspace.inv("schemas.show", "solar_projects", "--json").json["referenced_by"]
    assert "public.meter_events_2026(project_id) -> (id)" in into


def test_a_much_referenced_table_shows_its_definition_first(workspace: Workspace, database: str) -> None:
    refs = "".join(
        f"CREATE TABLE ref_{i:02d} (id int PRIMARY KEY, company_id int REFERENCES company(id));" for i in range(15)
    )
    workspace.sandbox.psql(refs, database=database)
    workspace.add_host("dev", database)
    assert workspace.inv("schemas.refresh", "--host", "dev").code == 0
    lines = (workspace.out() / "company.sql").read_text().splitlines()
    create = next(i for i, line in enumerate(lines) if line.startswith("CREATE TABLE"))
    assert create < 25, lines[:create]  # an agent that reads the first lines sees the columns
    full = [line for line in lines if line.startswith("-- Referenced by: ")]
    assert len(full) == 10
    rest = next(line for line in lines if line.startswith("-- Referenced by ") and "more foreign keys" in line)
    assert "public.ref_14" in rest and "inv schemas.show" in rest
    assert len(workspace.inv("schemas.show", "company", "--json").json["referenced_by"]) == 18  # all of them there
    # the views and functions that use a table are named in its header too
    projects = (workspace.out() / "solar_projects.sql").read_text()
    assert "-- Used by: " in projects and "view open_projects" in projects.split("-- Used by: ")[1].splitlines()[0]


def test_show_gives_the_summary_first_and_json_within_budget(workspace: Workspace, database: str) -> None:
    workspace.add_host("dev", database)
    assert workspace.inv("schemas.refresh", "--host", "dev").code == 0
    text = workspace.inv("schemas.show", "solar_projects").out.splitlines()
    assert text[0].startswith("-- table solar_projects in dev") and "-- Primary key: id" in text[:10]
    assert text.index("-- Foreign keys out:") < next(
        i for i, line in enumerate(text) if line.startswith("CREATE TABLE")
    )
    doc = workspace.inv("schemas.show", "solar_projects", "--json")
    file_size = (workspace.out() / "solar_projects.sql").stat().st_size
    assert len(doc.out) < file_size * 1.5, (len(doc.out), file_size)  # about the file's size, not four times
    assert ": null" not in doc.out and "definition" not in doc.json
    part = workspace.inv("schemas.show", "solar_projects", "--part", "dependents", "--json").json
    assert part["dependents"] and "columns" not in part
    bad = workspace.inv("schemas.show", "solar_projects", "--part", "colums", "--json")
    assert bad.code == 2 and "not one of columns" in bad.json["error"]


def test_search_exact_in_a_schema_or_table_with_a_count(workspace: Workspace, database: str) -> None:
    workspace.sandbox.psql("CREATE TABLE editor_log (id int, editor text);", database=database)
    workspace.add_host("dev", database)
    assert workspace.inv("schemas.refresh", "--host", "dev").code == 0
    loose = workspace.inv("schemas.search", "company_id", "--json").json
    tables = {m["table"] for m in loose["matches"]}
    assert loose["count"] == len(loose["matches"]) > 1 and loose["tables"] == len(tables)
    exact = workspace.inv("schemas.search", "editor", "--exact", "--json").json
    assert [(m["table"], m["column"]) for m in exact["matches"]] == [("editor_log", "editor")]  # not editor_log.id
    one = workspace.inv("schemas.search", "id", "--exact", "--table", "users", "--json").json
    assert [(m["table"], m["column"]) for m in one["matches"]] == [("users", "id")]
    assert workspace.inv("schemas.search", "id", "--schema", "nope", "--json").json["count"] == 0
    text = workspace.inv("schemas.search", "company_id").out.splitlines()
    assert text[-1] == f"{loose['count']} columns in {loose['tables']} tables"
