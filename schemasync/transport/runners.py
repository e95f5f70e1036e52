"""Running the remote step: over an SSH channel (`sh -s`), or here against a database port
forwarded through the connection (`via: tunnel`); its lines, its files (on the channel or over
SFTP), its exit status, and the watchdog that times the server's silence.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import paramiko
from fabric import Connection

from schemasync.core.config import HostConfig
from schemasync.core.errors import SchemasyncError, SSHError
from schemasync.core.progress import Transfer
from schemasync.transport.protocol import _MAX_LINE, INLINE, REMOTE_COMMAND, _target


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

    def get(self, path: str, size: int, then_end_input: bool = False, transfer: Transfer | None = None) -> bytes:
        """The file: sent inline after its line (INLINE), or over SFTP. With then_end_input, our
        input ends as soon as the file is open: the script removes its directory and exits while
        the file is read (the open handle still reads it), instead of after. `transfer` counts
        the bytes of a file fetched over SFTP as they arrive."""
        assert self.chan is not None and self.out is not None
        end = self.chan.shutdown_write if then_end_input else None
        if path == INLINE:
            data = self.out.read(size)
            if len(data) != size:
                raise SSHError(f"{self.host.name}: transfer incomplete ({len(data)} of {size} bytes); connection lost")
            if end is not None:
                end()
            return data
        return self.puller.get(path, size, end, transfer)

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

    def get(self, path: str, size: int, then_end_input: bool = False, transfer: Transfer | None = None) -> bytes:
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


Run = _SSHRun | _LocalRun


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

    def get(
        self, path: str, size: int, opened: Callable[[], object] | None = None, transfer: Transfer | None = None
    ) -> bytes:
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
                if transfer is not None:
                    transfer.done = got
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
