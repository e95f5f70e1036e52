"""The SSH side: one Fabric connection with verified host keys, the remote step, one SFTP fetch.

Fabric accepts any host key by default and ignores known_hosts; here every hop (ProxyJump
included) gets paramiko's checks against the known_hosts files OpenSSH would read, and a policy
that refuses unknown keys (or records them, with `host_key: accept-new`). A changed key is always
refused.
"""

from __future__ import annotations

import base64
import contextlib
import gzip
import hashlib
import json
import logging
import os
import re
import signal
import socket
import subprocess
import threading
import time
import zlib
from collections.abc import Callable, Generator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from enum import IntEnum
from pathlib import Path

import paramiko
from fabric import Config as FabricConfig
from fabric import Connection

from schemasync.core import gcpause
from schemasync.core.background import Background
from schemasync.core.config import HostConfig
from schemasync.core.errors import ConfigError, DatabaseError, SchemasyncError, SSHError

REMOTE_COMMAND = "sh -s"


class RemoteExit(IntEnum):
    """The remote step's exit codes; remote/refresh.sh names the same numbers SS_EXIT_*."""

    NO_PSQL = 20
    NO_PG_DUMP = 21  # missing, or older than the server
    DISCOVERY = 22
    PG_DUMP = 23
    NO_TMPDIR = 24
    NOTHING_TO_DUMP = 25  # META says why
    LOCK_WAIT = 26
    LOCK_TABLE_FULL = 27  # META follows: schemasync retries in batches


# Lines the remote step prints on stdout ("." is a heartbeat).
INLINE = "-"  # the path of a file sent on stdout, right after its line (remote_script.INLINE_MAX)
META, DISCOVERY, RESULT = "SCHEMASYNC META ", "SCHEMASYNC DISCOVERY ", "SCHEMASYNC RESULT "
INFO = "SCHEMASYNC INFO "
QUICK = "SCHEMASYNC QUICK "  # incremental: the quick check, first
FINGERPRINTS = "SCHEMASYNC FINGERPRINTS "  # then, if asked for, the fingerprints
ASK = "SCHEMASYNC ASK"  # then the script waits for one line saying what to dump
# A host with several databases: the list, then each one's lines after DATABASE <k>.
DATABASES, DATABASE = "SCHEMASYNC DATABASES ", "SCHEMASYNC DATABASE "
FAILED, END = "SCHEMASYNC FAILED ", "SCHEMASYNC END"
_MAX_LINE = 64 * 1024 * 1024


class LockTableFull(DatabaseError):
    """One pg_dump cannot lock every table: the caller retries in batches (it has the discovery)."""

    def __init__(self, message: str, meta: dict) -> None:
        super().__init__(message)
        self.meta = meta

    def __reduce__(self) -> tuple:
        return (type(self), (self.message, self.meta))


class UnknownHostKeyError(paramiko.SSHException):
    def __init__(self, hostname: str, key: paramiko.PKey, known_hosts: Path | None) -> None:
        super().__init__(f"unknown host key for {hostname}")
        self.hostname = hostname
        self.key = key
        self.known_hosts = known_hosts  # the file this host's keys are read from first (None: none)


def fingerprint(key: paramiko.PKey) -> str:
    digest = hashlib.sha256(key.asbytes()).digest()
    return f"{key.get_name()} SHA256:{base64.b64encode(digest).decode().rstrip('=')}"


class VerifyHostKey(paramiko.MissingHostKeyPolicy):
    """Called only for keys known_hosts does not have; a mismatch never reaches a policy."""

    def __init__(self, mode: str, save_to: Path | None) -> None:
        self.mode = mode
        self.save_to = save_to

    def missing_host_key(self, client: paramiko.SSHClient, hostname: str, key: paramiko.PKey) -> None:
        if self.mode != "accept-new" or self.save_to is None:
            raise UnknownHostKeyError(hostname, key, self.save_to)
        self.save_to.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        with open(self.save_to, "a", encoding="ascii") as fh:
            fh.write(f"{hostname} {key.get_name()} {key.get_base64()}\n")
        client.get_host_keys().add(hostname, key.get_name(), key)


def _known_hosts_files(ssh_config: dict) -> tuple[list[Path], list[Path]]:
    """(user files, global files) as OpenSSH reads them for this host."""

    def paths(value: str | list[str] | None, default: list[str]) -> list[Path]:
        if value is None:
            items = default
        elif isinstance(value, str):
            items = value.split()
        else:
            items = [p for v in value for p in v.split()]
        return [Path(os.path.expanduser(p)) for p in items if p.lower() != "none"]

    user = paths(ssh_config.get("userknownhostsfile"), ["~/.ssh/known_hosts", "~/.ssh/known_hosts2"])
    system = paths(ssh_config.get("globalknownhostsfile"), ["/etc/ssh/ssh_known_hosts", "/etc/ssh/ssh_known_hosts2"])
    return user, system


def _secure(conn: Connection, mode: str) -> None:
    client = conn.client
    user_files, global_files = _known_hosts_files(conn.ssh_config)
    for path in global_files + user_files[1:]:
        if path.is_file():
            client.load_system_host_keys(str(path))
    save_to = user_files[0] if user_files else None
    if save_to is not None and save_to.is_file():
        client.load_host_keys(str(save_to))
    client.set_missing_host_key_policy(VerifyHostKey(mode, save_to))


def _known_hosts_name(conn: Connection, exc: paramiko.BadHostKeyException) -> str:
    """The known_hosts name of the hop whose key changed: paramiko's exception names its host
    without the port, which known_hosts (and ssh-keygen -R) need. That hop is the one whose
    handshake began and never finished: a hop after it was never reached, one before it got in."""
    hop: object = conn
    while isinstance(hop, Connection):
        transport = hop.client.get_transport()
        if hop.host == exc.hostname and transport is not None and not transport.is_authenticated():
            return hop.host if int(hop.port) == 22 else f"[{hop.host}]:{hop.port}"
        hop = hop.gateway
    return exc.hostname


# paramiko logs a traceback of every failed handshake from its transport thread; with no handler
# configured, Python prints it on stderr before our one-line error. The error is reported once, by us.
logging.getLogger("paramiko").addHandler(logging.NullHandler())


def _transport(sock: socket.socket | paramiko.Channel, **kwargs: object) -> paramiko.Transport:
    """paramiko's Transport, on a socket that sends each SSH packet at once: with Nagle's
    algorithm a packet that follows another waits for its acknowledgement, which the server
    delays (the handshake took 0.07 s on loopback instead of 0.03)."""
    if isinstance(sock, socket.socket) and sock.family in (socket.AF_INET, socket.AF_INET6):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return paramiko.Transport(sock, **kwargs)  # type: ignore[arg-type]


def connect(host: HostConfig) -> Connection:
    """Open the one SSH connection of a run, every hop's host key verified."""
    if host.ssh_config is not None and not host.ssh_config.exists():
        raise ConfigError(f"hosts.{host.name}.ssh_config: {host.ssh_config}: no such file")
    config = FabricConfig(runtime_ssh_path=str(host.ssh_config)) if host.ssh_config else FabricConfig()
    config.timeouts.connect = host.connect_timeout
    config.connect_kwargs.banner_timeout = host.connect_timeout
    config.connect_kwargs.auth_timeout = host.connect_timeout
    config.connect_kwargs.transport_factory = _transport
    try:
        conn = Connection(host.ssh, config=config)
    except (ValueError, paramiko.SSHException) as exc:
        raise SSHError(f"{host.name}: bad ssh target {host.ssh!r}: {exc}") from None
    hop: object = conn
    while isinstance(hop, Connection):
        _secure(hop, host.host_key)
        hop = hop.gateway
    started = time.monotonic()
    try:
        conn.open()
    except BaseException as exc:
        # paramiko's client gives up on a silent server when the timeout comes, whichever of its
        # threads notices first: tell the time-out from a closed connection by the clock
        waited = time.monotonic() - started >= host.connect_timeout * 0.9
        no_banner = _no_banner(conn)
        # made before close: it reads the hops' state
        error = None if isinstance(exc, KeyboardInterrupt) else _connect_error(host, conn, exc)
        close(conn)
        if error is None:
            raise
        if no_banner and waited:
            raise SSHError(
                f"{host.name} ({_target(conn)}): timed out after {host.connect_timeout}s waiting for the server's "
                "SSH banner (the port accepted the connection, then said nothing)",
                hint=f"is port {conn.port} an SSH server, and is it overloaded? connect_timeout in hosts.yaml "
                "sets how long to wait",
            ) from None
        raise error from None
    return conn


def close(conn: Connection) -> None:
    """Close the connection and every ProxyJump hop behind it."""
    hop: object = conn
    while isinstance(hop, Connection):
        with contextlib.suppress(Exception):  # closing after a failure: nothing more to report
            hop.close()
        hop = hop.gateway


def _target(conn: Connection) -> str:
    port = "" if int(conn.port) == 22 else f" port {conn.port}"
    return f"{conn.user}@{conn.host}{port}"


def _no_banner(conn: Connection) -> bool:
    """Whether the SSH connection got as far as TCP and no further (the server sent no banner)."""
    transport = conn.client.get_transport() if conn.client is not None else None
    return transport is not None and not transport.remote_version


def _home_relative(path: Path) -> str:
    home = Path.home()
    return f"~/{path.relative_to(home)}" if path.is_relative_to(home) else str(path)


def _connect_error(host: HostConfig, conn: Connection, exc: BaseException) -> SchemasyncError:
    where = f"{host.name} ({_target(conn)})"
    port_flag = "" if int(conn.port) == 22 else f"-p {conn.port} "
    if isinstance(exc, UnknownHostKeyError):
        # the file the check reads: UserKnownHostsFile when the SSH config sets it
        add = (
            f"add the key with: ssh-keyscan {port_flag}{conn.host} >> {_home_relative(exc.known_hosts)}"
            if exc.known_hosts is not None
            else f"add the key to a file in GlobalKnownHostsFile (UserKnownHostsFile is none for {conn.host})"
        )
        return SSHError(
            f"{where}: unknown host key for {exc.hostname}: {fingerprint(exc.key)}",
            hint=(
                f"verify the fingerprint with the server's administrator, then {add}   "
                "(or set host_key: accept-new for this host to trust a first-seen key)"
            ),
        )
    if isinstance(exc, paramiko.BadHostKeyException):
        name = _known_hosts_name(conn, exc)
        return SSHError(
            f"{where}: HOST KEY CHANGED for {name}: the server offered {fingerprint(exc.key)}, "
            f"known_hosts has {fingerprint(exc.expected_key)}",
            hint="this may be an attack; if the server was really reinstalled, remove the old key with: "
            f"ssh-keygen -R '{name}', then add the new one",
        )
    no_methods = isinstance(exc, paramiko.SSHException) and "No authentication methods available" in str(exc)
    if isinstance(exc, paramiko.AuthenticationException) or no_methods:
        return SSHError(
            f"{where}: SSH authentication failed"
            + (": no key to offer (no ssh-agent key, no IdentityFile, no ~/.ssh/id_*)" if no_methods else ""),
            hint=f"check that `ssh {port_flag}{conn.user}@{conn.host}` works without a prompt "
            "(key in ssh-agent or IdentityFile in ~/.ssh/config); schemasync never asks for passwords",
        )
    if isinstance(exc, (TimeoutError, socket.timeout)):
        return SSHError(f"{where}: timed out after {host.connect_timeout}s connecting")
    if isinstance(exc, (ConnectionRefusedError, paramiko.ssh_exception.NoValidConnectionsError)):
        return SSHError(f"{where}: connection refused (is sshd running on port {conn.port}?)")
    if isinstance(exc, socket.gaierror):
        return SSHError(f"{where}: cannot resolve host name {conn.host!r}")
    if "Error reading SSH protocol banner" in str(exc):
        return SSHError(
            f"{where}: connection lost before the server's SSH banner (Error reading SSH protocol banner)",
            hint=f"is port {conn.port} an SSH server? Another service there (PostgreSQL, a web server) closes "
            "the connection like this; check the port in `ssh:` or in your SSH config",
        )
    lost_markers = ("No existing session", "SSH session not active")
    if isinstance(exc, (EOFError, ConnectionResetError, BrokenPipeError)) or any(m in str(exc) for m in lost_markers):
        return SSHError(f"{where}: connection lost during the SSH handshake ({type(exc).__name__}: {exc})")
    if isinstance(exc, paramiko.SSHException):
        text = str(exc)
        hint = ""
        if "ncompatible" in text or "no acceptable" in text:
            hint = "paramiko 5 needs OpenSSH 7.2 or newer on the server (no ssh-rsa SHA-1, DSA or SHA-1 kex)"
        return SSHError(f"{where}: SSH error: {text}", hint=hint)
    if isinstance(exc, FileNotFoundError) and exc.filename:
        keys = conn.ssh_config.get("identityfile") or []
        source = f"IdentityFile in {host.ssh_config or '~/.ssh/config'}" if exc.filename in keys else "key_filename"
        return SSHError(
            f"{where}: the SSH key {exc.filename} does not exist ({source})",
            hint="fix the path, or remove the line to use ssh-agent and ~/.ssh/id_*",
        )
    if isinstance(exc, OSError):
        return SSHError(f"{where}: cannot connect: {exc.strerror or exc}")
    return SSHError(f"{where}: cannot connect: {type(exc).__name__}: {exc}")


@dataclass
class RemoteOutput:
    meta: dict  # discovery document
    dump: str | None  # pg_dump text, None when nothing was dumped
    status: int  # remote exit code: 0, or RemoteExit.NOTHING_TO_DUMP
    transferred: int = 0  # bytes fetched over SFTP
    notices: list[str] = field(default_factory=list)  # what the server said on stderr on success
    info: dict[str, str] = field(default_factory=dict)  # SCHEMASYNC INFO lines: {"pg_dump": "15"}
    answer: str | None = None  # incremental: what the script was told to dump (none, full, part ...)
    # run_remote(defer_exit=True): the exit status, still on its way (its notices once it is in)
    exit: Background[list[str]] | None = None

    def confirm(self) -> None:
        """Wait for the remote step's exit status, if it was not waited for: raises its failure.
        Before anything is written: the output is whole, but only a status of 0 vouches for it."""
        if self.exit is not None:
            pending, self.exit = self.exit, None
            self.notices = pending.result()


class _Watchdog:
    """Closes the transport (or kills the local step) when no progress was seen for `seconds`,
    or once the whole run has taken `deadline` seconds (the server's heartbeat is progress, so a
    step that hangs on the server would otherwise be waited for for ever): unblocks any stuck
    read. Closing the connection also stops the server's work (refresh.sh's heartbeat)."""

    def __init__(self, stop_all: Callable[[], object], seconds: float, deadline: float) -> None:
        self.stop_all = stop_all
        self.seconds = seconds
        self.fired = False
        self.past_deadline = False
        self._timer: threading.Timer | None = None
        self._deadline = threading.Timer(deadline, self._end)
        self._deadline.daemon = True
        self._deadline.start()
        self.kick()

    def _end(self) -> None:
        self.past_deadline = True
        self._fire()

    def kick(self, *_: object) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer = threading.Timer(self.seconds, self._fire)
        self._timer.daemon = True
        self._timer.start()

    def _fire(self) -> None:
        self.fired = True
        self.stop_all()

    def stop(self) -> None:
        self._deadline.cancel()
        if self._timer is not None:
            self._timer.cancel()


@contextmanager
def _remote_errors(host: HostConfig, conn: Connection, watchdog: _Watchdog) -> Iterator[None]:
    try:
        yield
    except SchemasyncError:
        raise
    except (TimeoutError, EOFError, OSError, paramiko.SSHException) as exc:
        if watchdog.past_deadline:
            raise SSHError(
                f"{host.name} ({_target(conn)}): the run took longer than run_timeout ({host.run_timeout}s); "
                "abandoned (the server stops its work)",
                hint="raise run_timeout in hosts.yaml if the database is just that large or slow",
            ) from None
        if isinstance(exc, TimeoutError):
            raise SSHError(
                f"{host.name} ({_target(conn)}): the server sent nothing for {host.command_timeout}s; "
                "connection abandoned",
                hint="raise command_timeout in hosts.yaml if the server is just slow",
            ) from None
        why = f"no progress for {host.command_timeout}s" if watchdog.fired else f"{type(exc).__name__}: {exc}"
        raise SSHError(f"{host.name} ({_target(conn)}): connection lost ({why})") from None


class _SSHRun:
    """The remote step on an SSH channel; its files fetched over SFTP."""

    def __init__(self, conn: Connection, host: HostConfig) -> None:
        self.conn, self.host = conn, host
        self.watchdog = _Watchdog(conn.transport.close, host.command_timeout, host.run_timeout)
        self.puller = _Puller(conn, host, self.watchdog)
        self.chan: paramiko.Channel | None = None
        self.out: _Output | None = None

    def errors(self) -> contextlib.AbstractContextManager[None]:
        return _remote_errors(self.host, self.conn, self.watchdog)

    def start(self, script: str) -> None:
        chan = self.chan = self.conn.transport.open_session(timeout=self.host.connect_timeout)
        chan.settimeout(self.host.command_timeout)
        chan.exec_command(REMOTE_COMMAND)
        chan.sendall(script.encode("utf-8"))
        self.out = _Output(chan, self.watchdog)
        self.puller.start()

    def lines(self) -> Iterator[str]:
        assert self.out is not None
        return self.out.lines()

    def get(self, path: str, size: int, then_end_input: bool = False) -> bytes:
        """The file: sent inline after its line (INLINE), or over SFTP. With then_end_input, our
        input ends as soon as the file is open: the script removes its directory and exits while
        the file is read (the open handle still reads it), instead of after."""
        assert self.chan is not None and self.out is not None
        end = self.chan.shutdown_write if then_end_input else None
        if path == INLINE:
            data = self.out.read(size)
            if len(data) != size:
                raise SSHError(f"{self.host.name}: transfer incomplete ({len(data)} of {size} bytes); connection lost")
            if end is not None:
                end()
            return data
        return self.puller.get(path, size, end)

    def send(self, line: str) -> None:
        assert self.chan is not None
        self.chan.sendall((line + "\n").encode("utf-8"))

    def finish(self) -> int:
        """End our input (the script then removes its directory) and wait for its exit status."""
        assert self.chan is not None
        self.chan.shutdown_write()
        return _exit_status(self.chan, self.host, self.watchdog)

    def stderr(self) -> str:
        assert self.chan is not None
        return _stderr(self.chan)

    def close(self) -> None:
        self.puller.close()
        self.watchdog.stop()


LOCAL = "127.0.0.1"


class _Forward:
    """A local port forwarded to the database through the SSH connection (direct-tcpip, as
    `ssh -L` does): only the port; nothing is installed or run on the bastion."""

    def __init__(self, transport: paramiko.Transport, target: tuple[str, int], timeout: float) -> None:
        self.transport, self.target, self.timeout = transport, target, timeout
        self.listener = socket.socket()
        self.listener.bind((LOCAL, 0))  # loopback only: nobody else reaches the forwarded port
        self.listener.listen(16)
        self.port = self.listener.getsockname()[1]
        self.closed = threading.Event()
        self.sockets: list[socket.socket | paramiko.Channel] = []
        threading.Thread(target=self._accept, name="schemasync-forward", daemon=True).start()

    def _accept(self) -> None:
        while not self.closed.is_set():
            try:
                client, peer = self.listener.accept()
            except OSError:
                return
            try:
                chan = self.transport.open_channel("direct-tcpip", self.target, peer, timeout=self.timeout)
            except (paramiko.SSHException, OSError, EOFError):
                client.close()  # libpq reports the refused connection, with db_host/db_port
                continue
            self.sockets += [client, chan]
            for src, dst in ((client, chan), (chan, client)):
                threading.Thread(target=self._pump, args=(src, dst), daemon=True).start()

    @staticmethod
    def _pump(src: socket.socket | paramiko.Channel, dst: socket.socket | paramiko.Channel) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except (OSError, EOFError, paramiko.SSHException):
            pass
        with contextlib.suppress(OSError, EOFError, paramiko.SSHException):
            dst.shutdown(socket.SHUT_WR) if isinstance(dst, socket.socket) else dst.shutdown_write()

    def close(self) -> None:
        self.closed.set()
        for sock in [self.listener, *self.sockets]:
            with contextlib.suppress(Exception):
                sock.close()


class _LocalRun:
    """`via: tunnel`: the same remote step, run here by `sh` against the forwarded port; its files
    are local. The environment is built from scratch: no PG* variable of the user's shell leaks in."""

    def __init__(self, conn: Connection, host: HostConfig) -> None:
        self.conn, self.host = conn, host
        self.forward: _Forward | None = None
        self.proc: subprocess.Popen | None = None
        self.err: list[bytes] = []
        self.err_reader: threading.Thread | None = None
        self.watchdog = _Watchdog(self._kill, host.command_timeout, host.run_timeout)

    def errors(self) -> contextlib.AbstractContextManager[None]:
        return _remote_errors(self.host, self.conn, self.watchdog)

    def start(self, script: str) -> None:
        target = self.host.db_host or "localhost"
        self.forward = _Forward(self.conn.transport, (target, self.host.db_port), self.host.connect_timeout)
        env = {k: os.environ[k] for k in ("PATH", "HOME", "TMPDIR", "LANG") if k in os.environ}
        # libpq connects to the forwarded port, and checks a certificate against the name the
        # bastion uses (sslmode=verify-full works as it would from the bastion)
        env.update(PGHOST=target, PGHOSTADDR=LOCAL, PGPORT=str(self.forward.port))
        self.proc = subprocess.Popen(
            ["sh", "-s"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            start_new_session=True,  # its pg_dump is killed with it
        )
        assert self.proc.stdin is not None and self.proc.stderr is not None
        stderr = self.proc.stderr
        self.err_reader = threading.Thread(target=lambda: self.err.append(stderr.read()), daemon=True)
        self.err_reader.start()
        self.proc.stdin.write(script.encode("utf-8"))
        self.proc.stdin.flush()

    def lines(self) -> Iterator[str]:
        assert self.proc is not None and self.proc.stdout is not None
        for raw in self.proc.stdout:
            self.watchdog.kick()
            yield raw.decode("utf-8", "replace").rstrip("\n")

    def get(self, path: str, size: int, then_end_input: bool = False) -> bytes:
        assert self.proc is not None and self.proc.stdout is not None
        # inline: the bytes after the line, read from the same buffered stream as the lines
        data = self.proc.stdout.read(size) if path == INLINE else Path(path).read_bytes()
        self.watchdog.kick()
        if len(data) != size:
            raise SSHError(f"{self.host.name}: {path}: {len(data)} bytes, expected {size}")
        return data

    def send(self, line: str) -> None:
        assert self.proc is not None and self.proc.stdin is not None
        self.proc.stdin.write((line + "\n").encode("utf-8"))
        self.proc.stdin.flush()

    def finish(self) -> int:
        assert self.proc is not None and self.proc.stdin is not None
        with contextlib.suppress(OSError):
            self.proc.stdin.close()
        try:
            status = self.proc.wait(self.host.command_timeout)
        except subprocess.TimeoutExpired:
            raise TimeoutError from None
        if self.watchdog.fired:
            raise TimeoutError
        return status

    def stderr(self) -> str:
        if self.err_reader is not None:
            self.err_reader.join(self.host.command_timeout)
        return b"".join(self.err).decode("utf-8", "replace").strip()

    def _kill(self) -> None:
        """The local step's whole process group: TERM first, so that the script's trap removes
        its directory (the password file in it) as the server's does; KILL what is left."""
        if self.proc is not None and self.proc.poll() is None:
            with contextlib.suppress(OSError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(2)
            with contextlib.suppress(OSError):
                os.killpg(self.proc.pid, signal.SIGKILL)

    def close(self) -> None:
        self.watchdog.stop()
        self._kill()
        if self.proc is not None:
            self.proc.wait()
        if self.forward is not None:
            self.forward.close()


def _runner(conn: Connection, host: HostConfig) -> _SSHRun | _LocalRun:
    return _LocalRun(conn, host) if host.via == "tunnel" else _SSHRun(conn, host)


class _FileGone(SSHError):
    """Discovery's file could not be fetched: the script may have ended meanwhile (a failed
    pg_dump), and then its exit status says why."""


@dataclass
class _Said:
    """What the remote step has said of one database so far: META, DISCOVERY (fetched at once,
    while pg_dump runs) and INFO lines. Shared by the one-database and several-database runs."""

    meta_line: str | None = None
    meta: dict | None = None
    quick: dict | None = None  # incremental: the quick check
    fingerprints: dict | None = None  # and the fingerprints, if asked for
    info: dict[str, str] = field(default_factory=dict)
    fetched: int = 0  # bytes fetched over SFTP

    def take(self, line: str, run: _SSHRun | _LocalRun) -> bool:
        """Note the line if it is one of those; False if it is not."""
        if line.startswith(META):
            self.meta_line = line[len(META) :]
        elif line.startswith(QUICK):
            self.quick = _json(line[len(QUICK) :])
        elif line.startswith((DISCOVERY, FINGERPRINTS)):
            prefix = DISCOVERY if line.startswith(DISCOVERY) else FINGERPRINTS
            fmt, size, path = file_line(line, prefix)
            try:
                payload = run.get(path, size)
            except (OSError, SSHError) as exc:
                raise _FileGone(f"{run.host.name}: fetching {path}: {exc}") from exc
            self.fetched += len(payload)
            if prefix == FINGERPRINTS:
                self.fingerprints = _json(_decode(payload, fmt))
            else:
                self.meta = _json(_decode(payload, fmt))
        elif line.startswith(INFO):
            key, _, value = line[len(INFO) :].partition(" ")
            self.info[key] = value
        else:
            return False
        return True


Run = _SSHRun | _LocalRun


def start_remote(conn: Connection, host: HostConfig, script: str) -> Run:
    """Send the remote step: it runs while the caller goes on; run_remote reads what it says."""
    run = _runner(conn, host)
    try:
        with run.errors():
            run.start(script)
    except BaseException:
        run.close()
        raise
    return run


@dataclass(frozen=True)
class DiscoveryArrived:
    """Discovery's document, while pg_dump still runs: the job can prepare meanwhile."""

    doc: dict


@dataclass(frozen=True)
class QuickArrived:
    """Incremental: the server's quick check, as soon as it comes."""

    doc: dict


@dataclass(frozen=True)
class Asked:
    """Incremental: the script waits for what to dump. The job answers by sending the answer
    into the event stream (`events.send(answer)`), which then goes on."""

    quick: dict
    fingerprints: dict | None  # once the job answered "more" and the server sent them
    pg_dump_version: str


Event = DiscoveryArrived | QuickArrived | Asked


def remote_events(run: Run, defer_exit: bool = False) -> Generator[Event, str | None, RemoteOutput]:
    """Read the started remote step's lines, fetch its files, let the server remove its temp dir:
    what arrives is yielded as it arrives, and the output is the generator's return value. The
    transport never calls into a job: the job reads the events, and answers an `Asked` by
    sending the answer. With `via: tunnel` the same step runs here, against the database port
    forwarded through the SSH connection.
    defer_exit: once the dump is in, its exit status (a round trip away on a far link) is
    awaited in a thread, which then closes the connection: the caller splits the dump meanwhile,
    and calls `confirm()` on the output before it writes anything."""
    conn, host = run.conn, run.host
    handed_over = False
    try:
        with run.errors():
            said = _Said()
            result: tuple[str, int, str] | None = None
            answer: str | None = None
            for line in run.lines():
                if line.startswith(RESULT):
                    result = file_line(line, RESULT)
                    break
                if line == ASK and said.quick is not None:
                    answer = yield Asked(said.quick, said.fingerprints, said.info.get("pg_dump_version", ""))
                    if answer is None:
                        raise SchemasyncError(f"{host.name}: the remote step asked what to dump, and nothing answered")
                    run.send(answer)
                    continue
                try:
                    said.take(line, run)
                except _FileGone:
                    break  # the script ended meanwhile (a failed pg_dump): its exit status says why
                if line.startswith(DISCOVERY) and said.meta is not None:
                    yield DiscoveryArrived(said.meta)
                elif line.startswith(QUICK) and said.quick is not None:
                    yield QuickArrived(said.quick)
            meta_line, meta = said.meta_line, said.meta
            if result is None and answer == "none" and said.quick is not None:
                status = run.finish()
                if status != 0:
                    raise _remote_failure(host, conn, status, run.stderr())
                return RemoteOutput(
                    meta=said.fingerprints or said.quick,
                    dump=None,
                    status=0,
                    transferred=said.fetched,
                    notices=_notices(run.stderr()),
                    info=said.info,
                    answer=answer,
                )
            if result is None or meta is None:
                status = run.finish()
                if meta_line is not None and status in (0, RemoteExit.NOTHING_TO_DUMP):
                    return RemoteOutput(meta=_json(meta_line), dump=None, status=status, notices=_notices(run.stderr()))
                if meta_line is not None and status == RemoteExit.LOCK_TABLE_FULL:
                    raise LockTableFull(f"{host.name}: too many tables for one pg_dump", _json(meta_line))
                if status == 0:
                    raise SSHError(f"{host.name}: the remote step ended without sending its results")
                raise _remote_failure(host, conn, status, run.stderr())
            payload = run.get(result[2], result[1], then_end_input=True)
            output = RemoteOutput(
                meta=meta,
                dump=_decode(payload, result[0]),
                status=0,
                transferred=said.fetched + len(payload),
                info=said.info,
                answer=answer,
            )
            if defer_exit:
                output.exit = Background(lambda: _settle(run), name="schemasync-exit")
                handed_over = True
            else:
                output.notices = _exited(run)
            return output
    finally:
        if not handed_over:
            run.close()


def run_remote(run: Run, defer_exit: bool = False) -> RemoteOutput:
    """remote_events, for a step that asks nothing, its events left unread: the output."""
    events = remote_events(run, defer_exit)
    try:
        while True:
            event = next(events)
            if isinstance(event, Asked):
                raise SchemasyncError(f"{run.host.name}: the remote step asked what to dump, and nothing answers")
    except StopIteration as done:
        return done.value
    finally:
        events.close()


def _exited(run: Run) -> list[str]:
    """The script has its input's end, removes its directory and exits: its notices, or its failure."""
    with run.errors():
        status = run.finish()
        if status != 0:
            raise _remote_failure(run.host, run.conn, status, run.stderr())
        return _notices(run.stderr())


def _settle(run: Run) -> list[str]:
    """_exited, in the thread run_remote(defer_exit=True) hands the run to; then the connection goes."""
    try:
        return _exited(run)
    finally:
        run.close()
        close(run.conn)


@dataclass
class SeveralOutput:
    """The run of a several-database host: each database's output, or why it failed."""

    databases: list[str]
    present: list[str] = field(default_factory=list)  # every database on the server but templates
    outputs: dict[str, RemoteOutput] = field(default_factory=dict)
    failures: dict[str, SchemasyncError] = field(default_factory=dict)
    notices: list[str] = field(default_factory=list)


def run_remote_several(conn: Connection, host: HostConfig, script: str) -> SeveralOutput:
    """The remote step of a host with several databases: one run lists them and dumps each in
    turn; each file is fetched as soon as it is announced, while the server goes on."""
    run_ = _runner(conn, host)
    try:
        with run_.errors():
            run_.start(script)
            run: SeveralOutput | None = None
            current: str | None = None
            said: dict[str, _Said] = {}
            done = False
            for line in run_.lines():
                if line.startswith(DATABASES):
                    listed = json.loads(line[len(DATABASES) :])
                    run = SeveralOutput([str(n) for n in listed["chosen"]], present=[str(n) for n in listed["present"]])
                elif line.startswith(DATABASE) and run is not None:
                    current = run.databases[int(line[len(DATABASE) :]) - 1]
                    said[current] = _Said()
                elif current is None or run is None or said[current].take(line, run_):
                    continue
                elif line.startswith(RESULT):
                    fmt, size, path = file_line(line, RESULT)
                    payload = run_.get(path, size)
                    run.outputs[current] = RemoteOutput(
                        meta=said[current].meta or {},
                        dump=_decode(payload, fmt),
                        status=0,
                        transferred=said[current].fetched + len(payload),
                        info=said[current].info,
                    )
                elif line.startswith(FAILED):
                    k, status, message = [*line[len(FAILED) :].split(" ", 2), ""][:3]
                    name = run.databases[int(k) - 1]
                    meta_line = said[name].meta_line if name in said else None
                    if int(status) == RemoteExit.NOTHING_TO_DUMP and meta_line:
                        run.outputs[name] = RemoteOutput(meta=_json(meta_line), dump=None, status=int(status))
                    else:
                        text = "\n".join(part for part in message.split("\x1f") if part.strip())
                        run.failures[name] = _remote_failure(host.for_database(name), conn, int(status), text)
                elif line == END:
                    done = True
                    break
            status = run_.finish()
            if not done or run is None or status != 0:
                if status == 0:
                    raise SSHError(f"{host.name}: the remote step ended without sending its results")
                raise _remote_failure(host, conn, status, run_.stderr())
            run.notices = _notices(run_.stderr())
            return run
    finally:
        run_.close()


def file_line(line: str, prefix: str) -> tuple[str, int, str]:
    """`<gzip|plain> <bytes> <path>` after the prefix."""
    fmt, size, path = line[len(prefix) :].split(" ", 2)
    return fmt, int(size), path


class _Output:
    """The remote step's stdout: protocol lines, and a small file's bytes right after its line."""

    def __init__(self, chan: paramiko.Channel, watchdog: _Watchdog) -> None:
        self.chan, self.watchdog = chan, watchdog
        self.buf = bytearray()  # appends and front deletions without copying the rest
        self.ended = False

    def _more(self) -> bool:
        data = b"" if self.ended else self.chan.recv(65536)
        if not data:
            self.ended = True
            return False
        self.watchdog.kick()
        self.buf += data
        return True

    def lines(self) -> Iterator[str]:
        seen = 0  # bytes of buf known to hold no newline
        while True:
            end = self.buf.find(b"\n", seen)
            if end >= 0:
                line = self.buf[:end].decode("utf-8", "replace")
                del self.buf[: end + 1]
                seen = 0
                yield line  # the caller may read() a file's bytes now
                continue
            seen = len(self.buf)
            if seen > _MAX_LINE:
                raise SSHError("the server sent an unexpectedly long line")
            if not self._more():
                if self.buf:
                    line = self.buf.decode("utf-8", "replace")
                    self.buf.clear()
                    yield line
                return

    def read(self, size: int) -> bytes:
        while len(self.buf) < size and self._more():
            pass
        data = bytes(self.buf[:size])
        del self.buf[:size]
        return data


def _exit_status(chan: paramiko.Channel, host: HostConfig, watchdog: _Watchdog) -> int:
    if not chan.status_event.wait(host.command_timeout):
        raise TimeoutError
    if watchdog.fired:
        raise EOFError("connection closed")
    return chan.recv_exit_status()


def _stderr(chan: paramiko.Channel, wait: float = 10.0) -> str:
    """What the remote step said on stderr, to its end: sshd may send the exit status before the
    last of it, so this reads until the channel's end of file (or `wait` seconds of silence)."""
    out = []
    before = chan.gettimeout()
    chan.settimeout(wait)
    try:
        while data := chan.recv_stderr(65536):
            out.append(data)
    except (TimeoutError, OSError, EOFError):
        pass  # what came is what there is
    finally:
        with contextlib.suppress(Exception):
            chan.settimeout(before)
    return b"".join(out).decode("utf-8", "replace").strip()


def _notices(stderr: str) -> list[str]:
    prefix = "schemasync-remote: "
    return [line[len(prefix) :] for line in stderr.splitlines() if line.startswith(prefix)]


class _Puller:
    """The run's files over one SFTP session. The session is opened in the background as soon as
    the remote step starts, so its round trips (channel, subsystem, version) overlap the server's
    work instead of following it."""

    CHUNK = 1 << 20

    def __init__(self, conn: Connection, host: HostConfig, watchdog: _Watchdog) -> None:
        self.conn, self.host, self.watchdog = conn, host, watchdog
        self.sftp: paramiko.SFTPClient | None = None
        self.error: BaseException | None = None
        self.opening: threading.Thread | None = None
        self.used = False  # a file was asked for

    def start(self) -> None:
        if self.opening is None:
            self.opening = threading.Thread(target=self._open, name="schemasync-sftp", daemon=True)
            self.opening.start()

    def _open(self) -> None:
        try:
            sftp = self.conn.client.open_sftp()
            sftp.get_channel().settimeout(self.host.command_timeout)
            self.sftp = sftp
        except BaseException as exc:  # raised where the file is wanted
            self.error = exc

    def get(self, path: str, size: int, opened: Callable[[], object] | None = None) -> bytes:
        self.used = True
        self.start()
        assert self.opening is not None
        self.opening.join()
        if self.error is not None:
            raise self.error
        assert self.sftp is not None
        # the size is known from the protocol line: no stat; prefetch pipelines the reads
        remote = self.sftp.open(path, "rb")
        try:
            remote.prefetch(size)
            if opened is not None:
                opened()
            parts, got = [], 0
            while got < size:
                part = remote.read(min(self.CHUNK, size - got))
                if not part:
                    break
                parts.append(part)
                got += len(part)
                self.watchdog.kick()
        finally:
            with contextlib.suppress(Exception):  # the connection may be gone already
                remote.close()
        data = b"".join(parts)
        if len(data) != size:
            raise SSHError(f"{self.host.name}: transfer incomplete ({len(data)} of {size} bytes); connection lost")
        return data

    def close(self) -> None:
        if self.opening is not None and self.used:
            self.opening.join(self.host.connect_timeout)
        # never used (an unchanged database needs no file): not waited for; closing the
        # connection ends its opening
        if self.sftp is not None:
            with contextlib.suppress(Exception):  # the connection may be gone already
                self.sftp.close()


def _decode(payload: bytes, fmt: str) -> str:
    try:
        raw = gzip.decompress(payload) if fmt == "gzip" else payload
        return raw.decode("utf-8")
    except (OSError, EOFError, zlib.error, UnicodeDecodeError) as exc:
        raise SSHError(f"the fetched dump is damaged ({exc}); nothing was written") from None


def _json(text: str) -> dict:
    try:
        with gcpause.paused():
            value = json.loads(text)
    except ValueError as exc:
        raise DatabaseError(f"the server's discovery output is not valid JSON: {exc}") from None
    if not isinstance(value, dict):
        raise DatabaseError("the server's discovery output is not a JSON object")
    return value


# the first pattern found in the remote step's stderr gives the hint
_HINTS = {
    "no password supplied": "set password_env in hosts.yaml, or put the password in ~/.pgpass on the server",
    "password authentication failed": "check the password (password_env) and db_user",
    r'database "[^"]*" does not exist': "check database in hosts.yaml",
    r'role "[^"]*" does not exist': "check db_user in hosts.yaml",
    "Connection refused": "check db_host/db_port: is PostgreSQL listening there, as seen from the server?",
    "No such file or directory": "check db_host/db_port: is PostgreSQL running on the server's socket?",
    # pg_dump's ACCESS SHARE lock on each table needs SELECT (README: A database role of its own)
    "permission denied for table": "pg_dump locks each table it dumps, which needs SELECT on it:"
    " GRANT pg_read_all_data TO the role (PostgreSQL 14+), or SELECT on the tables",
    "permission denied for schema": "the role needs USAGE on the schemas it dumps:"
    " GRANT pg_read_all_data TO the role (PostgreSQL 14+), or USAGE ON SCHEMA",
    "permission denied": "the database role needs to read the catalog and the tables' definitions",
    "needs PostgreSQL 11 or later": "PostgreSQL 10 and older are not supported (their support ended in 2022)",
}


def _remote_failure(host: HostConfig, conn: Connection, status: int | None, stderr: str) -> SchemasyncError:
    where = f"{host.name} ({_target(conn)})"
    detail = "\n".join("  " + line for line in stderr.splitlines()[-20:])
    detail = f"\n{detail}" if detail else ""
    if status is None or status < 0:
        return SSHError(f"{where}: connection lost while the remote step ran{detail}")
    hint = next((h for pattern, h in _HINTS.items() if re.search(pattern, stderr)), "")
    if status == RemoteExit.NO_PSQL:
        return DatabaseError(f"{where}: psql not found on the server{detail}", hint="set pg_bin in hosts.yaml")
    if status == RemoteExit.NO_PG_DUMP:
        return DatabaseError(f"{where}: no suitable pg_dump on the server{detail}", hint="set pg_bin in hosts.yaml")
    if status == RemoteExit.DISCOVERY:
        return DatabaseError(f"{where}: could not query database {host.database!r}{detail}", hint=hint)
    if status == RemoteExit.PG_DUMP:
        return DatabaseError(f"{where}: pg_dump failed{detail}", hint=hint)
    if status == RemoteExit.NO_TMPDIR:
        return DatabaseError(f"{where}: the server has no writable temporary directory{detail}")
    if status == RemoteExit.LOCK_WAIT:
        return DatabaseError(
            f"{where}: pg_dump waited {host.lock_wait_timeout}s for a table lock and gave up{detail}",
            hint="another session holds an exclusive lock (a migration?); retry, or raise lock_wait_timeout",
        )
    if status == RemoteExit.LOCK_TABLE_FULL:  # only reaches here for one database of several
        return DatabaseError(
            f"{where}: too many tables to lock in one pg_dump (max_locks_per_transaction){detail}",
            hint="give this database a host entry of its own: there the dump is retried in batches",
        )
    if status == 127:
        return SSHError(f"{where}: the server has no `sh` on its PATH{detail}")
    return SSHError(f"{where}: the remote step failed (exit {status}){detail}")
