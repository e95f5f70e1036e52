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
from dataclasses import dataclass, field

from schemasync.core.background import Background
from schemasync.core.config import HostConfig
from schemasync.core.errors import DatabaseError, SchemasyncError
from schemasync.core.names import close_names
from schemasync.core.progress import QUIET, Progress
from schemasync.jobs.policy import DumpPolicy
from schemasync.schema.discovery import Discovery
from schemasync.transport import connect, protocol, runners, session
from schemasync.transport.batches import plan_batches
from schemasync.transport.remote_script import (
    Mode,
    batch_boundary,
    batches_answer,
    build_script,
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


# Of the server's shared lock table, what one batch may take: the rest stays for the application
# (its own transactions fail when the table is full) and for the server's own slack.
LOCK_SHARE = 0.9


class ChangedDuringDump(DatabaseError):
    """The catalog changed between the run's snapshot and the end of its batches."""


@dataclass
class Batching:
    """How to split a dump that cannot lock every table at once (`ASK batches`)."""

    host: HostConfig
    locks: int | None = None  # per batch; None: from the server's lock table
    whole: bool = True  # the whole selection (else the relations asked for only)
    token: str = field(default_factory=lambda: secrets.token_hex(8))
    used: int = 0  # batches the server was told to dump

    def answer(self, discovery: Discovery) -> str:
        if self.locks is None:
            self.locks = max(1, int(discovery.max_locks * LOCK_SHARE))
        batches = plan_batches(discovery, self.host, self.locks, self.whole)
        self.used = len(batches)
        return batches_answer(batches, self.token)


def fetch(
    host: HostConfig,
    mode: Mode,
    table: str | None = None,
    on_discovery: Callable[[Discovery, dict | None], None] | None = None,
    ask: DumpPolicy | None = None,
    starting: Starting | None = None,
    defer_exit: bool = False,
    progress: Progress = QUIET,
) -> tuple[session.RemoteOutput, list[str] | None]:
    """Run the remote step on one connection; returns its output and, for a batched run, the dumps.
    ask: incremental; it says what to dump once discovery is in. starting: the connection and
    the remote step, started while the caller read its files (else they start here).
    defer_exit: the output's exit status may still be on its way (session.run_remote): the
    caller confirms it before writing, and the connection closes once it is in.
    A dump of more tables than the server can lock at once is made in batches at the run's
    snapshot; batches that still cannot lock their tables are made smaller, and a run whose
    catalog changed before its batches were done is made again once."""
    password = host.password()
    batching = Batching(host)
    retried = begun = False
    if starting is not None:
        conn, run = starting.result()
    else:
        conn = connect.connect(host)
        run = None
    deferred = False
    try:
        while True:
            batching.used = 0  # this attempt's, not an earlier one's
            try:
                if run is None:
                    run = session.start_remote(conn, host, build_script(host, mode, table, password))
                if ask is not None and not begun:
                    ask.begin()  # now that the script is sent (and not while it is)
                    begun = True
                events = session.remote_events(run, defer_exit=defer_exit)
                run = None
                out = exchange(events, on_discovery, ask, progress, batching)
            except protocol.LockTableFull:
                if batching.locks is None or batching.locks == 1:
                    raise
                batching.locks = max(1, batching.locks // 2)
                progress.step(f"the server's lock table is fuller than it says: batches of {batching.locks:,}")
                continue
            if not batching.used:
                deferred = out.exit is not None
                return out, None
            try:
                _check_unchanged(host, out)
            except ChangedDuringDump:
                if retried:
                    raise
                retried = True
                progress.step("the schema changed while the batches ran: dumping again")
                if out.exit is not None:  # its thread closes the connection once the script is gone
                    with contextlib.suppress(SchemasyncError):
                        out.confirm()
                    conn = connect.connect(host)
                continue
            out.notices.append(
                f"dumped in {batching.used} batches of at most {batching.locks:,} tables at one snapshot: "
                "too many tables to lock in one pg_dump (max_locks_per_transaction)"
                + ("; the schema changed while the first batches ran, so they were all dumped again" if retried else "")
            )
            deferred = out.exit is not None
            dumps = (out.dump or "").split(f"\n{batch_boundary(batching.token)}\n")
            out.dump = None  # the batches hold it: not twice
            return out, dumps
    finally:
        if not deferred:  # else the thread awaiting the exit status closes it
            connect.close(conn)


def _check_unchanged(host: HostConfig, out: session.RemoteOutput) -> None:
    """A batched dump is used only if the catalog is as it was at the run's snapshot once the
    batches are done: a table changed in between may have been dumped half old, half new."""
    at_snapshot = out.info.get("quick_at_snapshot")
    after = out.info.get("quick_after")
    if not at_snapshot or not after or at_snapshot != after:
        raise ChangedDuringDump(
            f"{host.name}: the schema changed while the dump ran in batches (a migration?); nothing was written",
            hint="run the refresh again when the migration is done",
        )


def exchange(
    events: Generator[session.Event, str | None, session.RemoteOutput],
    on_discovery: Callable[[Discovery, dict | None], None] | None = None,
    ask: DumpPolicy | None = None,
    progress: Progress = QUIET,
    batching: Batching | None = None,
) -> session.RemoteOutput:
    """Read what the remote step says, as the transport yields it: discovery's document (prepare
    while the server dumps), the quick check (get ready to commit), a question of what to dump,
    answered from the fingerprints, and one of how to batch a dump too big to lock at once; and
    where the server is, for `progress`. The output, once it is in."""
    quick_at_snapshot = None
    discovery: Discovery | None = None
    try:
        event = next(events)
        while True:
            if isinstance(event, session.Asked):
                if ask is None:
                    raise SchemasyncError("the remote step asked what to dump, and this run does not decide that")
                answer = ask(event.quick, event.fingerprints, event.pg_dump_version)
                quick_at_snapshot = event.quick.get("quick")
                if batching is not None and answer.startswith("part"):
                    batching.whole = False  # the relations asked for, nothing else
                event = events.send(answer)
                continue
            if isinstance(event, session.AskedBatches):
                if batching is None or discovery is None:
                    raise SchemasyncError("the remote step asked how to batch its dump, and this run does not batch")
                answer = batching.answer(discovery)
                progress.step(f"too many tables to lock at once: {batching.used} batches")
                event = events.send(answer)
                continue
            if isinstance(event, session.DiscoveryArrived):
                # parsed once, and the document let go: it is several times the size of what
                # Discovery keeps
                discovery = Discovery.from_dict(event.doc)
                fingerprints = event.doc.get("fingerprints")
                event.doc.clear()
                quick_at_snapshot = (fingerprints or {}).get("quick") or quick_at_snapshot
                progress.step(f"discovery: {len(discovery.tables):,} tables; dumping")
                if on_discovery is not None:
                    on_discovery(discovery, fingerprints)
            elif isinstance(event, session.QuickArrived):
                quick_at_snapshot = event.doc.get("quick")
                if ask is not None:
                    ask.quick_arrived(event.doc)
            elif isinstance(event, session.Said):
                progress.step(event.words)
            elif isinstance(event, session.Receiving):
                progress.step("receiving the dump", event.transfer)
            event = next(events)
    except StopIteration as done:
        out = done.value
        if quick_at_snapshot and "quick_at_snapshot" not in out.info:
            out.info["quick_at_snapshot"] = quick_at_snapshot
        return out
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
