"""A run of the remote step, read as events: what it says arrives as `DiscoveryArrived`,
`QuickArrived` and `Asked` (a job answers), and the output is the return value. A host with
several databases is read in one run.
"""

from __future__ import annotations

import json
from collections.abc import Generator
from dataclasses import dataclass, field

from fabric import Connection

from schemasync.core.background import Background
from schemasync.core.config import HostConfig
from schemasync.core.errors import SchemasyncError, SSHError
from schemasync.core.progress import Transfer
from schemasync.schema.discovery import read_document
from schemasync.transport.connect import close
from schemasync.transport.protocol import (
    ASK,
    ASK_BATCHES,
    DATABASE,
    DATABASES,
    DISCOVERY,
    END,
    FAILED,
    FINGERPRINTS,
    INFO,
    META,
    QUICK,
    RESULT,
    STEP,
    Asked,
    AskedBatches,
    DiscoveryArrived,
    Event,
    LockTableFull,
    QuickArrived,
    Receiving,
    RemoteExit,
    Said,
    _decode,
    _json,
    _notices,
    _remote_failure,
    file_line,
)
from schemasync.transport.runners import Run, _LocalRun, _runner, _SSHRun

# paramiko logs a traceback of every failed handshake from its transport thread; with no handler
# configured, Python prints it on stderr before our one-line error. The error is reported once, by us.


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
            self.notices = [*pending.result(), *self.notices]


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
            else:  # its big arrays read row by row into what Discovery keeps
                self.meta = read_document(_decode(payload, fmt))
        elif line.startswith(INFO):
            key, _, value = line[len(INFO) :].partition(" ")
            self.info[key] = value
        else:
            return False
        return True


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


def remote_events(run: Run, defer_exit: bool = False) -> Generator[Event, str | None, RemoteOutput]:
    """Read the started remote step's lines, fetch its files, let the server remove its temp dir:
    what arrives is yielded as it arrives, and the output is the generator's return value. The
    transport never calls into a job: the job reads the events, and answers an `Asked` by
    sending the answer. With `via: tunnel` the same step runs here, against the database port
    forwarded through the SSH connection.
    defer_exit: once the dump is in, its exit status (a round trip away on a far link) is
    awaited in a thread, which then closes the connection: the caller splits the dump meanwhile,
    and calls `confirm()` on the output before it writes anything."""
    host = run.host
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
                if line == ASK_BATCHES and said.meta is not None:
                    answer_batches = yield AskedBatches(said.meta)
                    if answer_batches is None:
                        raise SchemasyncError(f"{host.name}: the remote step asked how to batch, and nothing answered")
                    run.send(answer_batches)
                    continue
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
                elif line.startswith(STEP):
                    yield Said(line[len(STEP) :])
            if result is None or said.meta is None:
                return _ended(run, said, answer)
            transfer = Transfer(result[1])
            yield Receiving(transfer)
            payload = run.get(result[2], result[1], then_end_input=True, transfer=transfer)
            output = RemoteOutput(
                meta=said.meta,
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


def _ended(run: Run, said: _Said, answer: str | None) -> RemoteOutput:
    """The script ended without a dump: nothing changed (incremental), nothing to dump, or it
    failed (a batch that cannot lock its tables is LockTableFull)."""
    host = run.host
    status = run.finish()
    if answer == "none" and said.quick is not None:
        if status != 0:
            raise _remote_failure(host, run.conn, status, run.stderr())
        return RemoteOutput(
            meta=said.fingerprints or said.quick,
            dump=None,
            status=0,
            transferred=said.fetched,
            notices=_notices(run.stderr()),
            info=said.info,
            answer=answer,
        )
    if said.meta_line is not None and status in (0, RemoteExit.NOTHING_TO_DUMP):
        return RemoteOutput(meta=_json(said.meta_line), dump=None, status=status, notices=_notices(run.stderr()))
    if said.meta is not None and status == RemoteExit.LOCK_TABLE_FULL:
        raise LockTableFull(f"{host.name}: too many tables for one pg_dump", said.meta)
    if status == 0:
        raise SSHError(f"{host.name}: the remote step ended without sending its results")
    raise _remote_failure(host, run.conn, status, run.stderr())


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
