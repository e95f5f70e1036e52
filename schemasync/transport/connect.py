"""One SSH connection, with verified host keys on every hop.

Fabric accepts any host key by default and ignores known_hosts; here every hop (ProxyJump
included) gets paramiko's checks against the known_hosts files OpenSSH would read, and a policy
that refuses unknown keys (or records them, with `host_key: accept-new`). A changed key is always
refused. Every failure to connect becomes one sentence that says what to do.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import logging
import os
import socket
import time
from pathlib import Path

import paramiko
from fabric import Config as FabricConfig
from fabric import Connection

from schemasync.core.config import HostConfig
from schemasync.core.errors import ConfigError, SchemasyncError, SSHError
from schemasync.transport.protocol import _target


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


SSH_LOG = "schemasync.ssh"  # paramiko's log of our transports: a logger of ours that keeps it


def _transport(sock: socket.socket | paramiko.Channel, **kwargs: object) -> paramiko.Transport:
    """paramiko's Transport, on a socket that sends each SSH packet at once: with Nagle's
    algorithm a packet that follows another waits for its acknowledgement, which the server
    delays, which slows every round trip of the handshake."""
    if isinstance(sock, socket.socket) and sock.family in (socket.AF_INET, socket.AF_INET6):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    transport = paramiko.Transport(sock, **kwargs)  # type: ignore[arg-type]
    # paramiko logs a traceback of every failed handshake from its transport thread; the error is
    # reported once, by us: its log goes to a logger of ours that keeps it to itself
    log = logging.getLogger(SSH_LOG)
    if not log.handlers:
        log.addHandler(logging.NullHandler())
        log.propagate = False
    transport.set_log_channel(SSH_LOG)
    return transport


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
