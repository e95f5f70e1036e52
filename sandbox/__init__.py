"""A throwaway PostgreSQL and a real OpenSSH sshd on free loopback ports: the demo's and the tests' server.

Everything lives under one directory: the database cluster, sshd's config and host key, a client
key, an ssh_config with a `Host` alias, and a known_hosts file holding the sandbox's host key.
As root, PostgreSQL runs as an unprivileged user (it refuses root) and sshd lets root log in with
the sandbox's key only. As a normal user, both run as that user.
"""

from __future__ import annotations

import contextlib
import getpass
import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from schemasync.transport.pgbin import embedded_bindir as embedded_bindir  # where tests find it

LOOPBACK = "127.0.0.1"


class SandboxError(RuntimeError):
    pass


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((LOOPBACK, 0))
        return s.getsockname()[1]


def sql_text(name: str) -> str:
    return resources.files("sandbox").joinpath("sql", name).read_text(encoding="utf-8")


def pg_bindir() -> Path:
    candidates = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parts[-3]), reverse=True
    )
    if candidates:
        return Path(candidates[0]).parent
    found = shutil.which("initdb")
    if found:
        return Path(found).resolve().parent
    raise SandboxError("PostgreSQL server binaries (initdb) not found: apt-get install postgresql")


def _sbin(tool: str) -> str:
    """A root-only tool: on the PATH, or in /usr/sbin (not on every PATH, e.g. after `su` without -)."""
    return shutil.which(tool) or f"/usr/sbin/{tool}"


def sshd_path() -> Path:
    for p in ("/usr/sbin/sshd", shutil.which("sshd") or ""):
        if p and Path(p).is_file():
            return Path(p)
    raise SandboxError("OpenSSH server (sshd) not found: apt-get install openssh-server")


@dataclass
class Sandbox:
    root: Path
    ssh_port: int = 0
    pg_port: int = 0
    pg_options: str = ""  # extra server settings, e.g. "-c max_locks_per_transaction=1024"
    bindir: Path | None = None  # PostgreSQL's binaries; default: the newest distro install
    _extra: list[subprocess.Popen] = field(default_factory=list)

    # -- paths -------------------------------------------------------------------------------
    @property
    def pg_data(self) -> Path:
        return self.root / "pg" / "data"

    @property
    def pg_socket_dir(self) -> Path:
        return self.root / "pg" / "run"

    @property
    def ssh_dir(self) -> Path:
        return self.root / "ssh"

    @property
    def ssh_config(self) -> Path:
        return self.ssh_dir / "ssh_config"

    @property
    def known_hosts(self) -> Path:
        return self.ssh_dir / "known_hosts"

    @property
    def client_key(self) -> Path:
        return self.ssh_dir / "client_ed25519"

    @property
    def login_user(self) -> str:
        return getpass.getuser()

    @property
    def pg_bin(self) -> Path:
        return self.bindir or pg_bindir()

    @property
    def is_root(self) -> bool:
        return os.geteuid() == 0

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self) -> Sandbox:
        self.root.mkdir(parents=True, exist_ok=True)
        os.chmod(self.root, 0o755)  # the unprivileged postgres user must reach its data dir
        self.ssh_port = self.ssh_port or free_port()
        self.pg_port = self.pg_port or free_port()
        self._start_postgres(self.pg_options)
        self._start_sshd()
        return self

    def stop(self) -> None:
        self.stop_sshd()
        if (self.pg_data / "postmaster.pid").exists():
            self._as_pg(
                [str(self.pg_bin / "pg_ctl"), "-D", str(self.pg_data), "-m", "immediate", "-w", "stop"], check=False
            )

    def _pg_user(self) -> str | None:
        if not self.is_root:
            return None
        for name in ("postgres", "nobody"):
            try:
                pwd.getpwnam(name)
                return name
            except KeyError:
                continue
        raise SandboxError("running as root, but there is no unprivileged user to run PostgreSQL as")

    def _as_pg(self, cmd: list[str], check: bool = True) -> subprocess.CompletedProcess:
        user = self._pg_user()
        if user:
            cmd = [_sbin("runuser"), "-u", user, "--", *cmd]
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if check and proc.returncode != 0:
            raise SandboxError(f"{' '.join(cmd)} failed:\n{proc.stdout}\n{proc.stderr}")
        return proc

    def start_postgres(self, extra_options: str = "") -> Sandbox:
        """Only the database (e.g. a second cluster with other settings)."""
        self.root.mkdir(parents=True, exist_ok=True)
        os.chmod(self.root, 0o755)
        self.pg_port = self.pg_port or free_port()
        self._start_postgres(extra_options)
        return self

    def _start_postgres(self, extra_options: str = "") -> None:
        pg_root = self.root / "pg"
        pg_root.mkdir(exist_ok=True)
        self.pg_socket_dir.mkdir(exist_ok=True)
        user = self._pg_user()
        if user:
            uid = pwd.getpwnam(user).pw_uid
            for p in (pg_root, self.pg_socket_dir):
                os.chown(p, uid, -1)
        os.chmod(self.pg_socket_dir, 0o755)
        bindir = self.pg_bin
        if not (self.pg_data / "PG_VERSION").exists():
            pwfile = pg_root / "pwfile"
            pwfile.write_text("sandbox-superuser\n")
            if user:
                os.chown(pwfile, pwd.getpwnam(user).pw_uid, -1)
            self._as_pg(
                [
                    str(bindir / "initdb"),
                    "-D",
                    str(self.pg_data),
                    "-U",
                    "postgres",
                    "--pwfile",
                    str(pwfile),
                    "-A",
                    "trust",
                    "--no-sync",
                    "-E",
                    "UTF8",
                    "--locale",
                    "C",
                ]
            )
            pwfile.unlink()
            hba = self.pg_data / "pg_hba.conf"
            hba.write_text(f"local all all trust\nhost all all {LOOPBACK}/32 scram-sha-256\n")
        opts = (
            f"-p {self.pg_port} -k {self.pg_socket_dir} -c listen_addresses={LOOPBACK} -c fsync=off "
            "-c max_connections=40 -c shared_buffers=32MB " + extra_options
        )
        self._as_pg(
            [
                str(bindir / "pg_ctl"),
                "-D",
                str(self.pg_data),
                "-o",
                opts,
                "-l",
                str(pg_root / "postgres.log"),
                "-w",
                "-t",
                "60",
                "start",
            ]
        )

    def client(self, tool: str, database: str, *args: str) -> list[str]:
        """argv for psql/pg_dump as the superuser over the sandbox's socket (setup and checks only)."""
        return [
            str(self.pg_bin / tool),
            "-h",
            str(self.pg_socket_dir),
            "-p",
            str(self.pg_port),
            "-U",
            "postgres",
            "-d",
            database,
            *args,
        ]

    def psql(self, sql: str, database: str = "postgres", check: bool = True) -> str:
        """Run SQL as the superuser (setup only; never the tool's path)."""
        cmd = self.client("psql", database, "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1")
        proc = subprocess.run(cmd, input=sql, capture_output=True, text=True, check=False)
        if check and proc.returncode != 0:
            raise SandboxError(f"psql failed: {proc.stderr}")
        return proc.stdout

    def create_database(self, name: str, sql: str) -> None:
        self.psql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE);\nCREATE DATABASE "{name}";')
        self.psql(sql, database=name)

    def _start_sshd(self) -> None:
        d = self.ssh_dir
        d.mkdir(exist_ok=True)
        os.chmod(d, 0o700)
        for key in (d / "host_ed25519", self.client_key):
            if not key.exists():
                subprocess.run(
                    ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "schemasync-sandbox", "-f", str(key)],
                    check=True,
                )
        shutil.copy(self.client_key.with_suffix(".pub"), d / "authorized_keys")
        host_pub = (d / "host_ed25519.pub").read_text().split()
        self.known_hosts.write_text(f"[{LOOPBACK}]:{self.ssh_port} {host_pub[0]} {host_pub[1]}\n")
        if self.is_root:
            Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # privilege separation directory
            _ensure_login_allowed(self.login_user)
        (d / "sshd_config").write_text(
            f"Port {self.ssh_port}\n"
            f"ListenAddress {LOOPBACK}\n"
            f"HostKey {d / 'host_ed25519'}\n"
            f"PidFile {d / 'sshd.pid'}\n"
            f"AuthorizedKeysFile {d / 'authorized_keys'}\n"
            f"AllowUsers {self.login_user}\n"
            "StrictModes no\n"
            "UsePAM no\n"
            "PasswordAuthentication no\n"
            "KbdInteractiveAuthentication no\n"
            "PubkeyAuthentication yes\n"
            "PermitRootLogin prohibit-password\n"
            "Subsystem sftp internal-sftp\n"
            "LogLevel ERROR\n"
            "MaxStartups 50:30:100\n"
            "MaxSessions 20\n"
        )
        self.start_sshd()
        self.ssh_config.write_text(
            "Host sandbox\n"
            f"    HostName {LOOPBACK}\n"
            f"    Port {self.ssh_port}\n"
            f"    User {self.login_user}\n"
            f"    IdentityFile {self.client_key}\n"
            "    IdentitiesOnly yes\n"
            f"    UserKnownHostsFile {self.known_hosts}\n"
        )

    def start_extra_sshd(self, name: str, extra_config: str = "") -> tuple[int, str]:
        """A second sshd (e.g. a jump host) with its own host key; returns (port, known_hosts line)."""
        d = self.ssh_dir / name
        d.mkdir(exist_ok=True)
        key = d / "host_ed25519"
        if not key.exists():
            subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
        port = free_port()
        config = (self.ssh_dir / "sshd_config").read_text()
        config = config.replace(f"Port {self.ssh_port}\n", f"Port {port}\n")
        config = config.replace(f"HostKey {self.ssh_dir / 'host_ed25519'}", f"HostKey {key}")
        config = config.replace(f"PidFile {self.ssh_dir / 'sshd.pid'}", f"PidFile {d / 'sshd.pid'}")
        (d / "sshd_config").write_text(config + extra_config)
        proc = self._spawn_sshd(d / "sshd_config", d / "sshd.log", port)
        self._extra.append(proc)
        pub = (d / "host_ed25519.pub").read_text().split()
        return port, f"[{LOOPBACK}]:{port} {pub[0]} {pub[1]}"

    def start_sshd(self) -> None:
        d = self.ssh_dir
        self._sshd = self._spawn_sshd(d / "sshd_config", d / "sshd.log", self.ssh_port)

    def _spawn_sshd(self, config: Path, log_path: Path, port: int) -> subprocess.Popen:
        log = open(log_path, "ab")  # noqa: SIM115 - handed to the daemon
        proc = subprocess.Popen(
            [str(sshd_path()), "-D", "-e", "-f", str(config)],
            stdout=log,
            stderr=log,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise SandboxError(f"sshd exited: {log_path.read_text()[-2000:]}")
            try:
                with socket.create_connection((LOOPBACK, port), timeout=1) as s:
                    if s.recv(4).startswith(b"SSH-"):
                        return proc
            except OSError:
                time.sleep(0.05)
        raise SandboxError("sshd did not start listening")

    def stop_sshd(self) -> None:
        for extra in self._extra:
            if extra.poll() is None:
                extra.terminate()
                extra.wait(10)
        self._extra.clear()
        proc = getattr(self, "_sshd", None)
        pidfile = self.ssh_dir / "sshd.pid"
        if proc is not None and proc.poll() is None:
            proc.terminate()
            proc.wait(10)
        elif pidfile.exists():
            with contextlib.suppress(ValueError, ProcessLookupError, PermissionError):
                os.kill(int(pidfile.read_text().strip()), signal.SIGTERM)
        pidfile.unlink(missing_ok=True)

    def hosts_entry(self, database: str, **extra: object) -> dict:
        """A hosts.yaml entry that reaches this sandbox through its ssh_config alias."""
        entry: dict[str, object] = {
            "ssh": "sandbox",
            "ssh_config": str(self.ssh_config),
            "database": database,
            "db_user": "postgres",
            "db_host": str(self.pg_socket_dir),
            "db_port": self.pg_port,
        }
        entry.update(extra)
        return entry


def _ensure_login_allowed(user: str) -> None:
    """sshd with UsePAM no refuses accounts whose password field is locked ('!'); '*' is not."""
    try:
        with open("/etc/shadow", encoding="utf-8") as fh:
            for line in fh:
                name, pw, *_ = line.split(":")
                if name == user and pw.startswith("!"):
                    subprocess.run([_sbin("usermod"), "-p", "*", user], check=True)
                    return
    except FileNotFoundError:
        return
