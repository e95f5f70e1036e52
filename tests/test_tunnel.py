"""`via: tunnel`: a managed database reached through a bastion. Only the database port is forwarded
through the SSH connection (host keys checked as always); psql and pg_dump run here. The files
are the ones the server-side path writes for the same database and pg_dump version."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from sandbox import Sandbox

from .conftest import Workspace, differences, without_stamp

PASSWORD = "tunnel-Pa55:word'with\\odd"


def tunnel_role(sandbox: Sandbox, name: str) -> str:
    """A role that logs in over TCP with a password (the sandbox trusts only its socket)."""
    quoted = PASSWORD.replace("'", "''")
    sandbox.psql(f"DROP ROLE IF EXISTS {name}; CREATE ROLE {name} LOGIN SUPERUSER PASSWORD '{quoted}';")
    return name


def test_a_tunnel_writes_the_same_files_as_the_server_side_path(
    workspace: Workspace, database: str, tmp_path: Path
) -> None:
    sb = workspace.sandbox
    role = tunnel_role(sb, f"tunnel_{os.getpid()}")
    env = {"SCHEMASYNC_TEST_DB_PASSWORD": PASSWORD}
    workspace.add_host(
        "dev",
        database,
        via="tunnel",
        db_host="127.0.0.1",  # as the bastion sees the database
        db_port=sb.pg_port,
        db_user=role,
        password_env="SCHEMASYNC_TEST_DB_PASSWORD",
        sslmode="prefer",
    )
    run = workspace.inv("schemas.refresh", "--host", "dev", "--json", env=env)
    assert run.code == 0, run.err
    assert run.json["tables"] == 16

    # the same database the usual way, into another repository
    other = Workspace(tmp_path / "other", sb)
    other.path.mkdir()
    subprocess.run(["git", "init", "-q", str(other.path)], check=True)
    for key, value in (("user.email", "t@example.com"), ("user.name", "T")):
        subprocess.run(["git", "-C", str(other.path), "config", key, value], check=True)
    other.add_host("dev", database, db_user=role)
    assert other.inv("schemas.refresh", "--host", "dev").code == 0
    tunnelled, direct = workspace.snapshot(), other.snapshot()
    assert len(tunnelled) > 20 and without_stamp(tunnelled) == without_stamp(direct), differences(tunnelled, direct)

    # the password reached no file, no output, no commit
    leaked = [f for f, data in tunnelled.items() if PASSWORD.encode() in data]
    assert leaked == [] and PASSWORD not in run.out + run.err
    assert PASSWORD not in workspace.git("log", "-p")

    # a change is found through the tunnel too; a wrong password is one clear error
    sb.psql("ALTER TABLE users ADD COLUMN nickname text;", database=database)
    check = workspace.inv("schemas.check", "--host", "dev", "--json", env=env)
    assert check.code == 1 and check.json["changed"] == ["users"]
    bad = workspace.inv("schemas.check", "--host", "dev", "--json", env={"SCHEMASYNC_TEST_DB_PASSWORD": "wrong"})
    assert bad.code != 0 and "password authentication failed" in bad.json["error"]
    assert bad.json["hints"] and "password" in bad.json["hints"][0]


def test_a_tunnel_refuses_what_cannot_work(workspace: Workspace, database: str) -> None:
    workspace.add_host("dev", database, via="tunnel")  # db_host is the sandbox's socket directory
    run = workspace.inv("schemas.refresh", "--host", "dev", "--json")
    assert run.code == 2 and "socket directory cannot be forwarded" in run.json["error"]


def test_nothing_runs_on_the_bastion(workspace: Workspace, database: str) -> None:
    """Through a real connection to the sandbox's sshd: the run opens no session channel (no
    command runs there), only forwarded-port channels."""
    from schemasync.core.config import load_config
    from schemasync.transport import connect, session
    from schemasync.transport.remote_script import build_script

    sb = workspace.sandbox
    role = tunnel_role(sb, f"tunnel_{os.getpid()}_b")
    workspace.add_host(
        "dev", database, via="tunnel", db_host="127.0.0.1", db_port=sb.pg_port, db_user=role, password_env="UNUSED"
    )
    host = load_config(str(workspace.path / "hosts.yaml")).host("dev")
    conn = connect.connect(host)
    kinds: list[str] = []
    transport = conn.transport
    open_session, open_channel = transport.open_session, transport.open_channel
    transport.open_session = lambda *a, **k: kinds.append("session") or open_session(*a, **k)
    transport.open_channel = lambda kind, *a, **k: kinds.append(kind) or open_channel(kind, *a, **k)
    try:
        out = session.run_remote(session.start_remote(conn, host, build_script(host, "full", None, PASSWORD)))
    finally:
        connect.close(conn)
    assert "session" not in kinds and kinds.count("direct-tcpip") >= 2  # psql, then pg_dump
    assert out.dump is not None and "CREATE TABLE public.users" in out.dump


def test_several_databases_through_one_tunnel(workspace: Workspace, database: str, tmp_path: Path) -> None:
    """A managed server with several databases: one forwarded connection, the same one run."""
    sb = workspace.sandbox
    role = tunnel_role(sb, f"tunnel_{os.getpid()}_c")
    second = f"{database}_second"
    sb.psql(f'CREATE DATABASE "{second}" TEMPLATE "{database}";')
    try:
        workspace.add_host(
            "managed",
            [database, second],
            via="tunnel",
            db_host="127.0.0.1",
            db_port=sb.pg_port,
            db_user=role,
            password_env="SCHEMASYNC_TEST_DB_PASSWORD",
        )
        run = workspace.inv(
            "schemas.refresh", "--host", "managed", "--json", env={"SCHEMASYNC_TEST_DB_PASSWORD": PASSWORD}
        )
        assert run.code == 0, run.err
        assert sorted(row["host"] for row in run.json["environments"]) == [f"managed/{database}", f"managed/{second}"]
        for name in (database, second):
            assert (workspace.out("managed") / name / "users.sql").is_file()
    finally:
        sb.psql(f'DROP DATABASE IF EXISTS "{second}" WITH (FORCE);', check=False)
