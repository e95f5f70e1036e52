"""Wrong targets, concurrent runs, privileges, bad input, odd server layouts."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import paramiko

from sandbox import LOOPBACK, pg_bindir

from .conftest import REPO, Workspace, differences, holding_lock, without_stamp, wrapped_pg_bin


def test_an_empty_discovery_does_not_orphan_everything(workspace: Workspace, database: str) -> None:
    workspace.add_host("dev", database)
    assert workspace.inv("schemas.refresh", "--host", "dev").code == 0
    before = workspace.snapshot()
    workspace.add_host("dev", database, schemas=["no_such_schema"])
    run = workspace.inv("schemas.refresh", "--host", "dev")
    assert run.code == 4 and "refusing to mark them all orphaned" in run.err and "--allow-empty" in run.err
    assert workspace.snapshot() == before and workspace.commits() == 1
    forced = workspace.inv("schemas.refresh", "--host", "dev", "--allow-empty", "--json")
    assert forced.code == 0, forced.err
    assert len(forced.json["orphaned"]) == 16 and forced.json["tables"] == 0
    assert (workspace.out() / "users.sql").read_bytes() == before["users.sql"]  # kept, flagged


def test_one_run_at_a_time(workspace: Workspace, database: str) -> None:
    sb = workspace.sandbox
    workspace.add_host("dev", database, lock_wait_timeout=30)
    env = {**os.environ, "SCHEMASYNC_HOSTS": str(workspace.path / "hosts.yaml")}
    with holding_lock(sb, database, "LOCK TABLE users IN ACCESS EXCLUSIVE MODE"):
        first = subprocess.Popen(
            [sys.executable, "-m", "invoke", "-r", str(REPO), "schemas.refresh", "--host", "dev"],
            cwd=workspace.path,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        time.sleep(1.5)  # the first run now holds the output lock and waits in pg_dump
        second = workspace.inv("schemas.refresh", "--host", "dev")
        assert second.code == 5 and "another schemasync run" in second.err
    out, err = first.communicate(timeout=60)
    assert first.returncode == 0, err
    assert workspace.commits() == 1 and "16 new" in out


def test_privileges_are_opt_in_and_owners_never_appear(workspace: Workspace, database: str) -> None:
    sb = workspace.sandbox
    sb.psql(
        "DO $$BEGIN CREATE ROLE app_reader; EXCEPTION WHEN duplicate_object THEN NULL; END$$;"
        "GRANT SELECT ON users TO app_reader;",
        database=database,
    )
    workspace.add_host("dev", database)
    assert workspace.inv("schemas.refresh", "--host", "dev", "--no-commit").code == 0
    files = workspace.snapshot()
    assert not any(b"GRANT " in text or b"OWNER TO" in text for text in files.values())
    workspace.add_host("dev", database, privileges=True)
    run = workspace.inv("schemas.refresh", "--host", "dev", "--no-commit", "--json")
    assert run.code == 0, run.err
    assert "users" in run.json["updated"]
    assert "GRANT SELECT ON TABLE public.users TO app_reader;" in (workspace.out() / "users.sql").read_text()
    assert not any(b"OWNER TO" in text for text in workspace.snapshot().values())


def test_a_role_of_its_own_needs_only_pg_read_all_data(workspace: Workspace, database: str) -> None:
    """README, "A database role of its own": without SELECT, pg_dump's lock is refused and the hint
    names the grant; with pg_read_all_data alone, the files are the superuser's."""
    sb, role = workspace.sandbox, f"ro_{os.getpid()}_{database}"
    sb.psql(f"DROP ROLE IF EXISTS {role}; CREATE ROLE {role} LOGIN")
    try:
        workspace.add_host("dev", database)
        assert workspace.inv("schemas.refresh", "--host", "dev", "--no-commit").code == 0
        as_superuser = workspace.snapshot()
        shutil.rmtree(workspace.out())
        workspace.add_host("dev", database, db_user=role)
        denied = workspace.inv("schemas.refresh", "--host", "dev", "--json")
        assert denied.code == 4 and "permission denied for table" in denied.err, denied.err
        assert "GRANT pg_read_all_data TO the role" in denied.json["hints"][0], denied.out
        assert not workspace.out().exists() and workspace.commits() == 0
        sb.psql(f"GRANT pg_read_all_data TO {role}")
        run = workspace.inv("schemas.refresh", "--host", "dev", "--no-commit")
        assert run.code == 0, run.err
        mine = workspace.snapshot()
        # the same files; the manifest's fingerprints hold a hash of the host's settings (db_user)
        manifests = [json.loads(files.pop("_manifest.json"))["files"] for files in (mine, as_superuser)]
        assert manifests[0] == manifests[1]
        assert without_stamp(mine) == without_stamp(as_superuser), differences(mine, as_superuser)
    finally:
        sb.psql(f"DROP ROLE IF EXISTS {role}", check=False)


def test_unreachable_host(workspace: Workspace, database: str) -> None:
    from sandbox import free_port

    workspace.add_host("dev", database, ssh=f"{LOOPBACK}:{free_port()}", ssh_config=None, connect_timeout=3)
    run = workspace.inv("schemas.refresh", "--host", "dev")
    assert run.code == 3 and "connection refused" in run.err
    assert not workspace.out().exists()


def test_wrong_ssh_key(workspace: Workspace, database: str, tmp_path: Path) -> None:
    sb = workspace.sandbox
    key = tmp_path / "other_key"
    paramiko.Ed25519Key  # noqa: B018 - the type exists in paramiko 5
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    cfg = tmp_path / "cfg"
    cfg.write_text(sb.ssh_config.read_text().replace(str(sb.client_key), str(key)))
    workspace.add_host("dev", database, ssh_config=str(cfg))
    run = workspace.inv("schemas.refresh", "--host", "dev", env={"SSH_AUTH_SOCK": ""})
    assert run.code == 3 and "authentication failed" in run.err


def test_missing_password_variable_touches_nothing(workspace: Workspace, database: str) -> None:
    workspace.add_host("dev", database, password_env="SCHEMASYNC_TEST_UNSET_PW")
    env = {k: v for k, v in os.environ.items() if k != "SCHEMASYNC_TEST_UNSET_PW"}
    proc = subprocess.run(
        [sys.executable, "-m", "invoke", "-r", str(REPO), "schemas.refresh", "--host", "dev"],
        cwd=workspace.path,
        capture_output=True,
        text=True,
        env={**env, "SCHEMASYNC_HOSTS": str(workspace.path / "hosts.yaml")},
    )
    assert proc.returncode == 2 and "SCHEMASYNC_TEST_UNSET_PW is not set" in proc.stderr
    assert not workspace.out().exists()


def test_pg_bin_outside_path(workspace: Workspace, database: str, tmp_path: Path) -> None:
    odd = tmp_path / "opt" / "pg" / "bin"
    odd.mkdir(parents=True)
    for tool in ("psql", "pg_dump"):
        (odd / tool).symlink_to(pg_bindir() / tool)
    os.chmod(tmp_path, 0o755)
    workspace.add_host("dev", database, pg_bin=str(odd))
    run = workspace.inv("schemas.refresh", "--host", "dev", "--no-commit")
    assert run.code == 0, run.err


def test_no_postgresql_needed_on_the_workstation(workspace: Workspace, database: str, tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    git = subprocess.run(["sh", "-c", "command -v git"], capture_output=True, text=True).stdout.strip()
    (bin_dir / "git").symlink_to(git)
    workspace.add_host("dev", database)
    run = workspace.inv("schemas.refresh", "--host", "dev", env={"PATH": str(bin_dir)})
    assert run.code == 0, run.err
    local = subprocess.run(["/bin/sh", "-c", "command -v psql || command -v pg_dump"], env={"PATH": str(bin_dir)})
    assert local.returncode != 0


def test_command_prefix_runs_the_tools_as_another_user(workspace: Workspace, database: str) -> None:
    import pytest

    if os.geteuid() != 0:
        pytest.skip("needs root to switch users with runuser (sudo -u in real life)")
    workspace.add_host("dev", database, command_prefix="runuser -u postgres --", db_user=None)
    run = workspace.inv("schemas.refresh", "--host", "dev", "--no-commit", "--json")
    assert run.code == 0, run.err
    assert run.json["tables"] == 16
    workspace.add_host("dev", database, command_prefix="runuser -u postgres --", password_env="X")
    bad = workspace.inv("schemas.refresh", "--host", "dev")
    assert bad.code == 2 and "not supported with command_prefix" in bad.err


def test_a_server_without_gzip_or_a_usable_tmpdir(workspace: Workspace, database: str, tmp_path: Path) -> None:
    """The remote step falls back to an uncompressed transfer and to another temporary directory."""
    import shutil

    sb = workspace.sandbox
    bare = tmp_path / "bare-bin"
    bare.mkdir()
    for tool in ("sh", "mktemp", "cat", "sed", "rm", "wc", "tr", "sleep", "find", "grep", "tail", "dirname", "env"):
        found = shutil.which(tool)
        assert found, tool
        (bare / tool).symlink_to(found)
    os.chmod(tmp_path, 0o755)
    port, known = sb.start_extra_sshd("bare", f"SetEnv PATH={bare} TMPDIR=/nonexistent-tmp\n")
    (tmp_path / "known").write_text(known + "\n")
    (tmp_path / "cfg").write_text(
        f"Host bare\n    HostName {LOOPBACK}\n    Port {port}\n    User {sb.login_user}\n"
        f"    IdentityFile {sb.client_key}\n    UserKnownHostsFile {tmp_path / 'known'}\n"
    )
    workspace.add_host("dev", database, ssh="bare", ssh_config=str(tmp_path / "cfg"), pg_bin=str(pg_bindir()))
    run = workspace.inv("schemas.refresh", "--host", "dev", "--no-commit", "--json")
    assert run.code == 0, run.err
    assert run.json["tables"] == 16
    plain = workspace.snapshot()
    # the same files as through a normal server, which compresses the transfer
    workspace.add_host("dev", database)
    normal = workspace.inv("schemas.refresh", "--host", "dev", "--no-commit", "--json")
    assert normal.code == 0
    assert without_stamp(workspace.snapshot()) == without_stamp(plain), differences(workspace.snapshot(), plain)
    assert run.json["transferred_bytes"] > 3 * normal.json["transferred_bytes"]  # the bare server sent it raw


def logging_pg_bin(tmp_path: Path) -> tuple[Path, Path]:
    """A pg_bin whose pg_dump notes each dump it is asked for (the selection arguments)."""
    log = tmp_path / "dumps.log"
    bin_dir = wrapped_pg_bin(
        tmp_path, "pg_dump", f'[ "$1" = --version ] || printf "%s\\n" "$*" >> {log}\n', name="logbin"
    )
    return bin_dir, log


def test_the_early_dump_is_used_only_when_discovery_selects_the_same(workspace: Workspace, tmp_path: Path) -> None:
    """The server starts pg_dump on a guessed selection while discovery runs; a wrong guess (a
    partitioned table's partitions, a configured schema that does not exist) costs a second dump,
    never a wrong file."""
    bin_dir, log = logging_pg_bin(tmp_path)

    def dumps(*args: str) -> list[str]:
        log.unlink(missing_ok=True)
        run = workspace.inv("schemas.refresh", *args, "--no-commit")
        assert run.code == 0, run.err
        # (a dump after discovery imports its snapshot: --snapshot=..., left out here)
        words = [line.split("--lock-wait-timeout=")[1].partition(" ")[2] for line in log.read_text().splitlines()]
        return [re.sub(r"^--snapshot=[0-9A-F-]+ ?", "", w) for w in words]

    workspace.add_host("hard", "hardcases", schemas=["*"], pg_bin=str(bin_dir))
    assert dumps("--host", "hard", "--table", "MixedCase") == ['-t "public"."MixedCase"']
    assert dumps("--host", "hard") == [""]  # every schema: no selection arguments
    whole = (workspace.out("hard") / "audit.events.sql").read_text()
    partitioned = dumps("--host", "hard", "--table", "audit.events")
    assert partitioned[0] == '-t "audit"."events"' and len(partitioned) == 2
    assert '-t "audit"."events_2026"' in partitioned[1]
    assert (workspace.out("hard") / "audit.events.sql").read_text() == whole
    workspace.add_host("hard", "hardcases", schemas=["audit", "no_such_schema"], pg_bin=str(bin_dir))
    assert dumps("--host", "hard") == ['-n "audit" -n "no_such_schema"', '-n "audit"']
    assert (workspace.out("hard") / "audit.events.sql").read_text() == whole
