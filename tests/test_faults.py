"""Faults on the wire, between the client and the real sshd: every cut leaves everything as it was."""

from __future__ import annotations

import os
import shlex
import subprocess
import time
from pathlib import Path

import pytest

from sandbox import LOOPBACK, pg_bindir

from .conftest import Workspace, holding_lock, remote_dirs, sessions_left, wrapped_pg_bin
from .faultproxy import FaultProxy
from .test_tunnel import PASSWORD, tunnel_role

TIMEOUT = 3  # connect_timeout and command_timeout for these runs, seconds


def wait_for_dirs(expected: set[str], seconds: float = 10) -> set[str]:
    deadline = time.monotonic() + seconds
    while remote_dirs() != expected and time.monotonic() < deadline:
        time.sleep(0.1)
    return remote_dirs()


def via_proxy(ws: Workspace, proxy: FaultProxy, database: str, tmp_path: Path) -> None:
    sb = ws.sandbox
    host_key = (sb.ssh_dir / "host_ed25519.pub").read_text().split()
    (tmp_path / "known").write_text(f"[{LOOPBACK}]:{proxy.port} {host_key[0]} {host_key[1]}\n")
    (tmp_path / "cfg").write_text(
        f"Host flaky\n    HostName {LOOPBACK}\n    Port {proxy.port}\n    User {sb.login_user}\n"
        f"    IdentityFile {sb.client_key}\n    UserKnownHostsFile {tmp_path / 'known'}\n"
    )
    ws.add_host(
        "dev", database, ssh="flaky", ssh_config=str(tmp_path / "cfg"), connect_timeout=TIMEOUT, command_timeout=TIMEOUT
    )


@pytest.fixture
def measured(workspace: Workspace, database: str, tmp_path: Path) -> tuple[int, int]:
    """Bytes each way of one clean run through the proxy, and a committed first state."""
    proxy = FaultProxy(workspace.sandbox.ssh_port, after=10**12)
    via_proxy(workspace, proxy, database, tmp_path)
    run = workspace.inv("schemas.refresh", "--host", "dev", "--json")
    proxy.close()
    assert run.code == 0, run.err
    workspace.sandbox.psql("ALTER TABLE survey_notes ADD COLUMN weather text;", database=database)
    transferred = run.json["transferred_bytes"]
    assert 0 < transferred < proxy.counted
    return proxy.counted, transferred


CUTS = [
    ("handshake: banner", "down", 10, 0.0, None),
    ("handshake: key exchange", "down", 1200, 0.0, None),
    ("client upload of the script", "up", 6000, 0.0, None),
    ("during discovery", "up", 1, 1.2, "LOCK TABLE pg_catalog.pg_namespace IN ACCESS EXCLUSIVE MODE"),
    ("during pg_dump", "up", 1, 1.2, "LOCK TABLE public.users IN ACCESS EXCLUSIVE MODE"),
    ("transfer: 10%", "down", 0.10, 0.0, None),
    ("transfer: 50%", "down", 0.50, 0.0, None),
    ("transfer: 90%", "down", 0.90, 0.0, None),
]


@pytest.mark.parametrize("mode", ["reset", "stall"])
@pytest.mark.parametrize(("phase", "direction", "after", "delay", "lock"), CUTS, ids=[c[0] for c in CUTS])
def test_a_cut_connection_loses_nothing(
    workspace: Workspace,
    database: str,
    tmp_path: Path,
    measured: tuple[int, int],
    mode: str,
    phase: str,
    direction: str,
    after: float,
    delay: float,
    lock: str | None,
) -> None:
    total_down, transferred = measured
    before = workspace.snapshot()
    commits = workspace.commits()
    dirs = remote_dirs()
    if isinstance(after, float) and after < 1:
        # within the SFTP payload: it ends shortly before the session's last bytes
        transfer_start = total_down - transferred - 2048
        offset = transfer_start + int(transferred * after)
        assert offset > 1500, "the transfer comes after the key exchange"
    else:
        offset = int(after)
    proxy = FaultProxy(workspace.sandbox.ssh_port, after=offset, mode=mode, direction=direction, delay=delay)
    via_proxy(workspace, proxy, database, tmp_path)
    try:
        # A stalled run that did not give up by itself would hit inv's timeout and fail the test.
        # --full: a whole dump, as the measured run made (an incremental one sends less)
        if lock:
            with holding_lock(workspace.sandbox, database, lock):
                run = workspace.inv("schemas.refresh", "--host", "dev", "--full", timeout=60)
        else:
            run = workspace.inv("schemas.refresh", "--host", "dev", "--full", timeout=60)
    finally:
        proxy.close()
    # (with what the run said: a run that ended before the cut says why)
    assert proxy.triggered.is_set(), f"the cut at {offset} bytes {direction} never happened: {run.code} {run.err}"
    assert run.code == 3, (run.code, run.err)
    assert any(w in run.err for w in ("connection lost", "timed out", "sent nothing", "Error reading SSH")), run.err
    assert workspace.snapshot() == before
    assert workspace.commits() == commits
    assert not [p for p in workspace.out().rglob("*") if ".schemasync-" in p.name]
    assert wait_for_dirs(dirs) == dirs, "the server kept a temporary directory"
    # nor a session: the run's held snapshot (and any pg_dump) ends with its script
    assert sessions_left(workspace.sandbox, database) == []


def test_the_next_run_removes_what_a_killed_run_left(workspace: Workspace, database: str) -> None:
    stale = Path("/tmp/schemasync.stale123")
    stale.mkdir()
    (stale / "pid").write_text("999999999\n")  # no such process
    (stale / "result").write_text("partial")
    workspace.add_host("dev", database)
    run = workspace.inv("schemas.refresh", "--host", "dev", "--no-commit")
    assert run.code == 0, run.err
    assert not stale.exists()
    assert "left by an interrupted earlier run" in run.out and str(stale) in run.out


def test_another_runs_live_directory_is_left_alone(workspace: Workspace, database: str) -> None:
    live = Path("/tmp/schemasync.live456")
    live.mkdir()
    (live / "pid").write_text(f"{os.getpid()}\n")  # this test process: alive
    try:
        workspace.add_host("dev", database)
        assert workspace.inv("schemas.refresh", "--host", "dev", "--no-commit").code == 0
        assert live.exists()
    finally:
        subprocess.run(["rm", "-rf", str(live)], check=True)


@pytest.mark.parametrize(
    "path", ["early dump", "through command_prefix", "through docker exec", "several databases", "through a tunnel"]
)
def test_run_timeout_ends_a_hung_dump_on_both_sides(
    workspace: Workspace, database: str, tmp_path: Path, path: str
) -> None:
    """A pg_dump that never ends (a database that stopped answering mid-dump): the server's
    heartbeat says the run is alive, so only run_timeout ends the wait; and the server, its
    client gone, must end that dump and every session of the run at once rather than let them
    run on (a real dump holds a lock on every table it reads). Three ways the dump is run: the
    early dump (a job), ss_dump through a command_prefix (exec'd in its job), and a host with
    several databases (each in a subshell the script waits for); and through a tunnel, where the
    step runs here and is ended by its process group (its directory holds the password file)."""
    sb = workspace.sandbox
    mark, never = tmp_path / "dumping", tmp_path / "never"
    os.mkfifo(never)
    # pg_dump connects (its session stays, idle) and reads input that never comes
    psql = shlex.quote(str(pg_bindir() / "psql"))
    bin_dir = wrapped_pg_bin(
        tmp_path,
        "pg_dump",
        f'case " $* " in *--schema-only*) echo $$ > {shlex.quote(str(mark))}; '
        f"exec {psql} -X -w -q -c 'SELECT 1' -f {shlex.quote(str(never))} ;; esac\n",
    )
    databases = [database]
    extra: dict[str, object] = {"pg_bin": str(bin_dir), "run_timeout": 4}
    if path == "through command_prefix":
        extra["command_prefix"] = "env"  # any prefix: the tools run through it, as with sudo
    if path == "through docker exec":
        # like `docker exec -i`: a client whose end (the script's TERM) leaves the command running
        # in the container, so only the server can end its session
        (bin_dir / "detached").write_text('#!/bin/sh\nexec 3<&0\n"$@" <&3 3<&- &\nwait $!\n')  # (its input kept)
        (bin_dir / "detached").chmod(0o755)
        extra["command_prefix"] = str(bin_dir / "detached")
    if path == "several databases":
        databases.append(f"{database}_b")
        sb.create_database(databases[1], "CREATE TABLE b (id int);")
    if path == "through a tunnel":  # the step runs here, its pg_dump through the forwarded port
        role = tunnel_role(sb, f"tunnel_{os.getpid()}")
        extra.update(via="tunnel", db_host=LOOPBACK, db_port=sb.pg_port, db_user=role)
        extra.update(password_env="SCHEMASYNC_TEST_DB_PASSWORD", sslmode="prefer")
    workspace.add_host("dev", databases if len(databases) > 1 else database, **extra)
    before, commits, earlier = workspace.snapshot(), workspace.commits(), remote_dirs()
    env = {"SCHEMASYNC_TEST_DB_PASSWORD": PASSWORD}
    try:
        run = workspace.inv("schemas.refresh", "--host", "dev", "--json", env=env, timeout=60)
        assert mark.exists(), run.err  # pg_dump did hang
        assert run.code != 0 and "run_timeout (4s)" in run.err + run.out, run.err  # a sweep says it in its JSON
        assert workspace.snapshot() == before and workspace.commits() == commits
        for name in databases:
            assert sessions_left(sb, name, seconds=20) == [], name
        assert wait_for_dirs(earlier) == earlier  # the script ended: its directory is gone
    finally:  # the detached fake pg_dump outlives its session, blocked opening the FIFO
        if mark.exists():
            subprocess.run(["kill", mark.read_text().strip()], capture_output=True, check=False)
