"""Getting the remote step's output: connect and send the script while the caller reads its
files (`Starting`), read what the step says as events and answer its question (`exchange`),
retry in batches when one pg_dump cannot lock every table, and the one run of a host with
several databases.
"""

from __future__ import annotations

import contextlib
import secrets
import threading
from collections.abc import Callable, Generator

from schemasync.core.background import Background
from schemasync.core.config import HostConfig
from schemasync.core.errors import DatabaseError, SchemasyncError
from schemasync.core.names import close_names
from schemasync.core.progress import QUIET, Progress
from schemasync.jobs.policy import DumpPolicy
from schemasync.schema.discovery import Discovery
from schemasync.transport import connect, protocol, runners, session
from schemasync.transport.remote_script import (
    Mode,
    batches_function,
    build_script,
    plan_batches,
)


class Starting:
    """Connect, then send the remote step, in a thread of its own. The caller reads its files
    once the handshake is done, not during it (reading holds the GIL, and each step of the
    handshake would wait for it), while the first channel opens and the script goes out."""

    def __init__(self, host: HostConfig, script: str) -> None:
        self.host, self.script = host, script
        self.connected = threading.Event()
        self._background = Background(self._start)

    def _start(self) -> tuple[connect.Connection, runners.Run]:
        try:
            conn = connect.connect(self.host)
        finally:
            self.connected.set()
        try:
            return conn, session.start_remote(conn, self.host, self.script)
        except BaseException:
            connect.close(conn)
            raise

    def result(self) -> tuple[connect.Connection, runners.Run]:
        return self._background.result()

    def abandon(self) -> None:
        with contextlib.suppress(Exception):
            conn, run = self.result()
            run.close()
            connect.close(conn)


def fetch(
    host: HostConfig,
    mode: Mode,
    table: str | None = None,
    on_discovery: Callable[[dict], None] | None = None,
    ask: DumpPolicy | None = None,
    starting: Starting | None = None,
    defer_exit: bool = False,
    progress: Progress = QUIET,
) -> tuple[session.RemoteOutput, list[str] | None]:
    """Run the remote step on one connection; returns its output and, for a batched run, the dumps.
    ask: incremental; it says what to dump once discovery is in. starting: the connection and
    the remote step, started while the caller read its files (else they start here).
    defer_exit: the output's exit status may still be on its way (session.run_remote): the
    caller confirms it before writing, and the connection closes once it is in."""
    password = host.password()
    run: runners.Run | None = None
    deferred = False
    if starting is not None:
        conn, run = starting.result()
    else:
        conn = connect.connect(host)
    try:
        try:
            if run is None:
                script = build_script(host, mode, table, password)
                run = session.start_remote(conn, host, script)
            if ask is not None:
                ask.begin()  # now that the script is sent (and not while it is)
            out = exchange(session.remote_events(run, defer_exit=defer_exit), on_discovery, ask, progress)
            deferred = out.exit is not None
            return out, None
        except protocol.LockTableFull as full:
            if table is not None:
                raise
            discovery = Discovery.from_dict(full.meta)
            size = max(1, discovery.max_locks // 4)
            while True:
                boundary = f"-- schemasync: next batch {secrets.token_hex(8)}"
                batches = plan_batches(discovery, host, size)
                script = build_script(host, mode, None, password, batches=batches_function(batches, boundary))
                progress.step(f"too many tables to lock in one pg_dump: {len(batches)} batches")
                try:
                    events = session.remote_events(session.start_remote(conn, host, script))
                    out = exchange(events, on_discovery, progress=progress)
                except protocol.LockTableFull:
                    if size == 1:
                        raise
                    size = max(1, size // 4)
                    continue
                out.notices.append(
                    f"dumped in {len(batches)} batches: too many tables to lock in one pg_dump "
                    "(max_locks_per_transaction); each batch is consistent on its own"
                )
                return out, (out.dump or "").split(f"\n{boundary}\n")
    finally:
        if not deferred:  # else the thread awaiting the exit status closes it
            connect.close(conn)


def exchange(
    events: Generator[session.Event, str | None, session.RemoteOutput],
    on_discovery: Callable[[dict], None] | None = None,
    ask: DumpPolicy | None = None,
    progress: Progress = QUIET,
) -> session.RemoteOutput:
    """Read what the remote step says, as the transport yields it: discovery's document (prepare
    while the server dumps), the quick check (get ready to commit), and a question of what to
    dump, answered from the fingerprints; and where the server is, for `progress`. The output,
    once it is in."""
    try:
        event = next(events)
        while True:
            if isinstance(event, session.Asked):
                if ask is None:
                    raise SchemasyncError("the remote step asked what to dump, and this run does not decide that")
                event = events.send(ask(event.quick, event.fingerprints, event.pg_dump_version))
                continue
            if isinstance(event, session.DiscoveryArrived):
                progress.step(f"discovery: {len(event.doc.get('tables') or []):,} tables; dumping")
                if on_discovery is not None:
                    on_discovery(event.doc)
            elif isinstance(event, session.Said):
                progress.step(event.words)
            elif isinstance(event, session.Receiving):
                progress.step("receiving the dump", event.transfer)
            elif isinstance(event, session.QuickArrived) and ask is not None:
                ask.quick_arrived(event.doc)
            event = next(events)
    except StopIteration as done:
        return done.value
    finally:
        events.close()  # a job that stopped reading ends the run (its channel closes)


def fetch_several(host: HostConfig) -> session.SeveralOutput:
    """One connection and one remote run for every database of a host with several. A name in
    `database:` that matches no database is a failure of its own, beside the others."""
    password = host.password()
    conn = connect.connect(host)
    try:
        run = session.run_remote_several(conn, host, build_script(host, "full", None, password))
    finally:
        connect.close(conn)
    for pattern, error in unmatched_databases(host, run.databases, run.present).items():
        run.databases.append(pattern)
        run.failures[pattern] = error
    return run


def unmatched_databases(host: HostConfig, chosen: list[str], present: list[str]) -> dict[str, DatabaseError]:
    """The names and patterns of `database:` that chose no database, and why, unless
    `exclude_databases:` left out what they match (that is what the user asked for)."""
    import fnmatch

    def matches(pattern: str, names: list[str]) -> list[str]:
        return [n for n in names if fnmatch.fnmatchcase(n, pattern)]

    out = {}
    for pattern in host.databases:
        if matches(pattern, chosen):
            continue
        found = [n for n in matches(pattern, present) if not any(matches(x, [n]) for x in host.exclude_databases)]
        if matches(pattern, present) and not found:
            continue  # only what exclude_databases leaves out
        glob = any(ch in pattern for ch in "*?[")
        if found:
            what = f"database {pattern}" if not glob else f"{pattern} matches {', '.join(found[:5])}, but"
            out[pattern] = DatabaseError(
                f"{what} on {host.name}: the role may not connect to it (no CONNECT privilege, or connections off)",
                hint="GRANT CONNECT ON DATABASE ... TO the role in `db_user:`, or leave it out of `database:`",
            )
            continue
        near = close_names(pattern, present) if not glob else []
        listed = ", ".join(present[:20]) + (" ..." if len(present) > 20 else "")
        out[pattern] = DatabaseError(
            f"database {pattern} does not exist on {host.name}"
            if not glob
            else f"no database on {host.name} matches {pattern}",
            hint=(f"did you mean {' or '.join(near)}? " if near else "") + f"the databases there: {listed or 'none'}",
        )
    return out
