"""The jobs: refresh and list. Data flows one way: config -> remote -> split -> store -> git -> report."""

from __future__ import annotations

import contextlib
import secrets
import threading
import time
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from pathlib import Path

from schemasync import __version__
from schemasync.core.background import Background
from schemasync.core.config import Config, HostConfig
from schemasync.core.errors import ConfigError, DatabaseError, SchemasyncError, SplitError
from schemasync.core.names import close_names, table_file
from schemasync.core.notes import Notes, add_notes, notes_for
from schemasync.jobs.diff import text_diff
from schemasync.jobs.query import TableQuery, page
from schemasync.output import gitops, store
from schemasync.output.guide import guide_dir
from schemasync.output.messages import commit_message, warm_message
from schemasync.output.publish import Publication
from schemasync.output.store import NEW, ORPHANED, UPDATED, NewFile, Plan
from schemasync.output.transaction import lock_outputs, taken
from schemasync.schema import incremental
from schemasync.schema.changes import Change, compare_files
from schemasync.schema.discovery import Discovery
from schemasync.schema.redact import Finding, earlier_copies, redact_pieces, redact_text, rules_for
from schemasync.schema.relations import header_lines, table_details
from schemasync.schema.split import SplitResult, render_piece, split_dump
from schemasync.schema.tenants import TENANTS_FILE, explain, fold, render_tenants
from schemasync.transport import connect, protocol, runners, session
from schemasync.transport.remote_script import (
    DISCOVERY_FORMAT,
    Mode,
    batches_function,
    build_script,
    owners_selection,
    plan_batches,
)

# New files from which a refresh writes them ahead, while it plans (Publication.write_ahead):
# fewer take less time to write than a process takes to start.
WRITE_AHEAD_FROM = 100


@dataclass
class RefreshResult:
    host: HostConfig
    database: str
    tables_found: int
    plan: Plan
    commit: str | None = None
    commit_message: str | None = None
    seconds: float = 0.0
    table: str | None = None
    transferred: int = 0
    excluded: list[tuple[str, str]] = field(default_factory=list)
    notices: list[str] = field(default_factory=list)
    mended: list[str] = field(default_factory=list)  # what killed runs had left, put right first
    committing: bool = False  # a commit was asked for (None in `commit` then means: nothing new to commit)
    guide_written: Path | None = None  # docs/schemas/README.md, when this run rewrote it
    redacted: list[Finding] = field(default_factory=list)  # secrets removed from the files
    in_clear: list[str] = field(default_factory=list)  # files whose version on disk held one
    stale_notes: list[str] = field(default_factory=list)  # schema-notes.yaml entries for what does not exist
    dumped: str = "full"  # full, part (incremental: the changed relations), none (nothing changed), table
    dumped_why: str | None = None  # incremental: why a whole dump, or what was dumped


@dataclass
class ListedTable:
    schema: str
    name: str
    file: str
    status: str  # current (file exists), new (no file yet), orphaned (file, but no table)
    columns: int | None
    primary_key: list[str] = field(default_factory=list)
    group: str | None = None  # from schema-notes.yaml
    note: str | None = None  # the team's note, else the database comment


@dataclass
class ListResult:
    host: HostConfig
    database: str
    tables: list[ListedTable]  # this page
    total: int = 0  # matching the filter, all pages
    offset: int = 0
    next_offset: int | None = None
    live: int = 0  # tables on the server
    filtered: bool = False  # by schema, pattern, group or tag
    tenant_schemas: int = 0  # schemas matching `tenants:` on the server now (their tables are not rows)
    tenants: dict | None = None  # the tenants as the last refresh found them (the manifest)


class _Starting:
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


def _fetch(
    host: HostConfig,
    mode: Mode,
    table: str | None = None,
    on_discovery: Callable[[dict], None] | None = None,
    ask: _Ask | None = None,
    starting: _Starting | None = None,
    defer_exit: bool = False,
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
            out = exchange(session.remote_events(run, defer_exit=defer_exit), on_discovery, ask)
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
                try:
                    out = exchange(session.remote_events(session.start_remote(conn, host, script)), on_discovery)
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
    ask: _Ask | None = None,
) -> session.RemoteOutput:
    """Read what the remote step says, as the transport yields it: discovery's document (prepare
    while the server dumps), the quick check (get ready to commit), and a question of what to
    dump, answered from the fingerprints. The output, once it is in."""
    try:
        event = next(events)
        while True:
            if isinstance(event, session.Asked):
                if ask is None:
                    raise SchemasyncError("the remote step asked what to dump, and this run does not decide that")
                event = events.send(ask(event.quick, event.fingerprints, event.pg_dump_version))
                continue
            if isinstance(event, session.DiscoveryArrived) and on_discovery is not None:
                on_discovery(event.doc)
            elif isinstance(event, session.QuickArrived) and ask is not None:
                ask.quick_arrived(event.doc)
            event = next(events)
    except StopIteration as done:
        return done.value
    finally:
        events.close()  # a job that stopped reading ends the run (its channel closes)


class _Early:
    """What can be done with discovery's document while the server is still dumping: the
    catalog details, and reading the files this run will compare."""

    def __init__(self, host: HostConfig, table: str | None, notes: Notes, previous: store.Previous) -> None:
        self.host, self.table, self.notes, self.previous = host, table, notes, previous
        self.discovery: Discovery | None = None
        self.details: dict = {}
        self.fingerprints: dict | None = None  # as discovery computed them (incremental.py)

    def __call__(self, meta: dict) -> None:
        discovery = Discovery.from_dict(meta)
        self.fingerprints = meta.get("fingerprints")
        meta.clear()  # the parsed JSON is several times the size of what Discovery keeps
        if self.table is not None:
            files = [table_file(*discovery.matches[0])] if discovery.matches else []
        else:
            files = [table_file(t.schema, t.name) for t in discovery.tables]
        self.details = table_details(discovery)
        # Comments go into _index.md and the manifest too: the same secrets come out (they are
        # counted where the files hold them).
        rules = rules_for(self.host.redact)
        if rules.texts:
            for d in self.details.values():
                if d["comment"]:
                    d["comment"] = redact_text(d["comment"], rules, "")[0]
                if d["column_comments"]:
                    d["column_comments"] = {c: redact_text(t, rules, "")[0] for c, t in d["column_comments"].items()}
        for t in discovery.tables:  # the team's notes stand beside the database's comments
            add_notes(self.details[t.key], self.notes, t.schema, t.name)
        store.read_more(self.previous, self.host.output, files)
        self.discovery = discovery


def _why_whole(host: HostConfig, local: str, head: dict, several: bool) -> str | None:
    """Why this refresh dumps everything without comparing fingerprints; None: it compares. What
    can be known before connecting is decided here, from the manifest's head: the server then
    dumps while discovery runs."""
    fingerprints = head.get("fingerprints")
    if several:
        return "a host with several databases is dumped whole"
    if host.tenants is not None:
        return "tenant schemas are compared with each other, so they are dumped together"
    if head.get("format") is None:
        return "a first refresh"  # the server dumps while discovery runs
    if head.get("format") != store.FORMAT:
        return "the manifest's format changed"
    if fingerprints and fingerprints.get("local") != local:
        return incremental.LOCAL_CHANGED
    # no fingerprints yet (the first refresh dumped while discovery ran, so its fingerprints might
    # be newer than its dump): this one takes them first, then dumps everything
    return None


def _fingerprints_hold(info: dict[str, str], doc: dict) -> bool:
    """A dump that started before discovery is described by discovery's fingerprints if it
    imported the snapshot discovery's session exported (refresh.sh ss_export_first); where the
    server could not share one, only if the quick check taken before it started is discovery's."""
    if info.get("early") != "used" or info.get("early_snapshot") == "shared":
        return True
    return info.get("quick_before") == doc.get("quick")


def _local_key(host: HostConfig, notes: Notes) -> str:
    """What this tool's own inputs are (its format and version, the host's selection and
    settings, the team's notes): the files may change when they do, the database unchanged."""
    return incremental.local_key(
        store.FORMAT,
        DISCOVERY_FORMAT,
        __version__,
        host.name,
        host.database,
        host.schemas,
        host.exclude,
        host.privileges,
        host.redact,
        host.tenants,
        notes,
    )


class _Ask:
    """The incremental decision, made when the script asks: the fingerprints against the
    manifest's, and the files on disk against what the manifest says was written."""

    def __init__(
        self,
        host: HostConfig,
        notes: Notes,
        previous: store.Previous,
        local: str,
        prepare: Callable[[], None] | None = None,
    ) -> None:
        self.host, self.notes, self.previous, self.local = host, notes, previous, local
        self.prepare = prepare  # called when the quick check finds a change: files will likely follow
        self.now: incremental.Fingerprints | None = None
        self.decision: incremental.Decision | None = None
        self.quick: str | None = None
        self.intact: set[str] = set()  # files exactly as the last refresh wrote them
        self.edited: list[str] = []  # files that are not, and are not a relation's
        # the header names the database, as the server will (checked again if it names another)
        self.checked_for = host.database
        self.checking: Background[None] | None = None

    def begin(self) -> None:
        """Check the files while the server runs its quick check. Not before the script is
        sent: checking holds the GIL most of the time, and would slow the handshake and the
        round trips of starting the script down."""
        self.checking = Background(lambda: self._check_files(self.checked_for))

    def quick_arrived(self, quick_doc: dict) -> None:
        """Not the last refresh's quick check: while the server works on the fingerprints (and
        the client has nothing to do), get ready to write and commit."""
        if self.prepare is not None and quick_doc.get("quick") != (self.previous.fingerprints or {}).get("quick"):
            self.prepare()
            self.prepare = None

    def __call__(self, quick_doc: dict, doc: dict | None, pg_dump_version: str) -> str:
        """quick_doc: the quick check; doc: the fingerprints, once the server sent them."""
        previous, local = self.previous, self.local
        if self.quick is None:  # the files are checked by now
            self.quick = quick_doc.get("quick")
            assert self.checking is not None, "_fetch begins the check once the script is sent"
            self.checking.result()
            if quick_doc.get("database", "") != self.checked_for:
                self.intact, self.edited = set(), []
                self._check_files(quick_doc.get("database", ""))
        if doc is None:  # the quick check alone: equal, and the files as written, is enough
            records = previous.records.values()
            stamp = {
                "quick": self.quick,
                "server": int(quick_doc["version"]),
                "pg_dump": pg_dump_version,
                "local": local,
            }
            all_intact = not self.edited and all(r.file in self.intact for r in records if r.status != ORPHANED)
            if all_intact and incremental.quick_says_unchanged(previous.fingerprints, stamp):
                kept = {r.file: r.fp for r in records if r.fp}
                self.now = incremental.Fingerprints(kept, dict(previous.fingerprints or {}))
                self.decision = incremental.Decision(incremental.NONE, "nothing changed (the quick check)")
                return self.decision.answer()
            return "more"
        # with the quick check at their own snapshot (not the first step's: something may have
        # changed between the two, and been undone by the next refresh)
        now = incremental.fingerprints(doc.get("fingerprints"), int(doc["version"]), pg_dump_version, local)
        if now is None:
            self.decision = incremental.Decision(incremental.FULL, "the server computed no fingerprints")
            return self.decision.answer()
        self.now = now
        kept = {f: incremental.Kept(r.fp, r.status != ORPHANED) for f, r in previous.records.items()}
        # a relation's file edited by hand or removed is dumped again; another one (a function's,
        # a type's: they cannot be dumped one by one) means a whole dump
        edited = [f for f in self.edited if f not in now.owners]
        self.decision = incremental.decide(now, previous.fingerprints, kept, self.intact, edited)
        answer = self.decision.answer()
        if self.decision.kind == incremental.PART:
            # and the selection discovery will most likely give: the server dumps it meanwhile
            guess = "" if self.host.command_prefix else owners_selection(self.decision.owners)
            answer += "\n" + ("" if "\n" in guess else guess)
        return answer

    def _check_files(self, database: str) -> None:
        """Which of our files are exactly as the last refresh wrote them."""
        previous, records = self.previous, self.previous.records
        store.read_more(previous, self.host.output, [f for f, r in records.items() if r.status != ORPHANED])
        for file, rec in records.items():
            if rec.status == ORPHANED:
                continue
            extra = []
            if rec.kind == "table":
                extra = header_lines(rec.details) + self.notes.header_lines(rec.schema, rec.name)
            header = incremental.expected_header(rec.kind, rec.schema, rec.name, database, self.host.name, extra)
            if incremental.is_intact(previous.contents.get(file), header, rec.sha):
                self.intact.add(file)
            else:
                self.edited.append(file)


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


def plan_refresh(
    host: HostConfig,
    *,
    table: str | None = None,
    allow_empty: bool = False,
    notes: Notes | None = None,
    fetched: tuple[session.RemoteOutput, list[str] | None] | None = None,
    full: bool = False,
    write_ahead: Callable[[dict[str, str]], None] | None = None,
    prepare: Callable[[], None] | None = None,
) -> RefreshResult:
    """Dump, split and compare with the files: everything but writing. The caller holds the lock.
    `fetched`: the remote output already in hand (one database of a host with several).
    `write_ahead`: given the files that do not exist yet, when there are many (Publication.write_ahead).
    `prepare`: called, in an incremental refresh, once the quick check finds a change.
    Incremental unless `full`, when the manifest has fingerprints to compare (incremental.py)."""
    started = time.monotonic()
    notes = notes or Notes()
    local = _local_key(host, notes)
    head = store.manifest_head(host.output)
    why_whole = _why_whole(host, local, head, fetched is not None) if table is None else None
    if why_whole is None and table is None and full:
        # as a first refresh does: the dump starts at once, discovery takes the fingerprints
        why_whole = "--full"
    asking = why_whole is None and table is None
    mode: Mode = "table" if table else "full"
    starting = None
    if fetched is None:
        # The handshake and the server's first step overlap the reading of the manifest and the
        # files. The last refresh's quick check: a server that finds another sends its
        # fingerprints without asking (one round trip fewer); build_script checks its form.
        stamp = (head.get("fingerprints") or {}) if asking else {}
        quick, since = stamp.get("quick"), stamp.get("since")
        script = build_script(
            host,
            mode,
            table,
            host.password(),
            ask=asking,
            expect_quick=quick if isinstance(quick, str) else None,
            since=since if isinstance(since, str) else None,
        )
        starting = _Starting(host, script)
        starting.connected.wait()
    try:
        previous = store.read_previous(host.output, [])
        early = _Early(host, table, notes, previous)
        ask = _Ask(host, notes, previous, local, prepare) if asking else None
    except BaseException:
        if starting is not None:
            starting.abandon()
        raise
    if fetched is None:
        out, batched = _fetch(host, mode, table, on_discovery=early, ask=ask, starting=starting, defer_exit=True)
    else:
        out, batched = fetched
    if early.discovery is None:  # nothing to dump: discovery came on its own, at the end
        early(out.meta)
    discovery, details = early.discovery, early.details
    assert discovery is not None
    decision = ask.decision if ask is not None and out.answer is not None else None
    # incremental: only the changed file owners were discovered and dumped; the fingerprints
    # vouch for the rest, kept as they are
    kept = decision is not None and decision.kind != incremental.FULL
    if out.dump is None and decision is None:
        _explain_nothing_to_dump(host, discovery, table, previous)
    if table is None and not kept and not discovery.tables and previous.tables_present() and not allow_empty:
        raise DatabaseError(
            f"{host.name}: the server reports no tables in {host.database!r} (schemas {host.schemas}), "
            f"but {host.output} documents {previous.tables_present()}; refusing to mark them all orphaned",
            hint="check database/schemas in hosts.yaml; if the tables really are gone, use --allow-empty",
        )
    result = SplitResult({}) if out.dump is None else split_dump(batched or out.dump, discovery)
    out.dump = batched = None  # the pieces hold what is needed; the whole dump can go
    pieces = list(result.pieces.values())
    tenancy = None
    if host.tenants is not None:
        if table is not None and any(host.tenants.matches(p.schema) for p in pieces):
            raise ConfigError(
                f"{host.name}: --table {table}: a table of a tenant schema; refresh the whole host",
                hint="tenant schemas are compared with each other, so they are refreshed together",
            )
        if table is None:  # before redaction and rendering: the other tenants cost only a comparison
            pieces, tenancy = fold(pieces, host.tenants)
    rules = rules_for(host.redact)
    redacted = redact_pieces(pieces, rules)  # before anything is rendered
    if tenancy is not None:
        # the deviants' pieces are not written, but what differs in them is said: redacted too
        others = [p for schema, files in tenancy.pieces.items() if schema != tenancy.template for p in files.values()]
        redact_pieces(others, rules)
        explain(tenancy)
    produced = []
    for p in pieces:
        d = details.get(p.table.key) if p.table else None
        produced.append(
            NewFile(
                kind=p.kind,
                schema=p.schema,
                name=p.name,
                file=p.path,
                content=render_piece(
                    p,
                    discovery.database,
                    host.name,
                    (header_lines(d) + notes.header_lines(p.schema, p.name) if p.table else [])
                    + ([tenancy.note] if tenancy is not None and p.path in tenancy.written else []),
                ),
                columns=p.table.columns if p.table else None,
                details=d,
            )
        )
    del result, pieces  # the rendered texts are all that is needed of the pieces from here on
    if table is not None:
        target = table_file(*discovery.matches[0])
        stray = [nf.file for nf in produced if nf.file != target]
        if stray:
            raise SplitError(f"--table {table}: the dump also held {stray[:5]}; nothing written")
    if decision is not None and decision.kind == incremental.PART:
        stray = [nf.file for nf in produced if nf.file not in decision.files]
        if stray:
            raise SplitError(f"the dump of the changed relations also held {stray[:5]}; nothing written")
    store.read_more(previous, host.output, [nf.file for nf in produced])
    if write_ahead is not None:  # new files are written whatever the plan says about the rest
        new = {nf.file: nf.content for nf in produced if previous.contents.get(nf.file) is None}
        if len(new) >= WRITE_AHEAD_FROM:
            write_ahead(new)
    in_clear = earlier_copies(redacted, previous.contents)
    dumped_by = out.info.get("pg_dump", "")
    versions = {"server": discovery.server_version // 10000, "pg_dump": int(dumped_by) if dumped_by.isdigit() else None}
    tenants = tenancy.to_data() if tenancy else None
    now = ask.now if ask is not None else None
    if now is None and table is None and early.fingerprints and _fingerprints_hold(out.info, early.fingerprints):
        version = out.info.get("pg_dump_version", "")
        now = incremental.fingerprints(early.fingerprints, discovery.server_version, version, local)
    if now is not None:
        kept_fps = {r.file: r.fp for r in previous.records.values() if r.fp and r.status != ORPHANED}
        now = incremental.settled(now, previous.fingerprints, kept_fps)
    plan = store.plan_changes(
        previous,
        produced,
        environment=host.name,
        database=discovery.database,
        partial=table is not None,
        incremental=kept,
        versions=versions if table is None else None,  # a --table run leaves them as they were
        tenants=tenants,
        extra_own={TENANTS_FILE: render_tenants(tenants, host.name)} if tenants else None,
        fingerprints=(now.stamp, now.objects) if now is not None else None,
    )
    live = [r for r in plan.records if r.kind == "table" and r.status != ORPHANED]
    stale_notes: list[str] = []
    if table is None and notes.tables:  # without notes there is nothing to find stale
        columns = {t.key: {c.name for c in t.column_defs} for t in discovery.tables}
        if kept:  # the tables not discovered this time: as the manifest has them
            columns = {(r.schema or "", r.name): {c[0] for c in (r.details or {})["column_defs"]} for r in live}
        stale_notes = notes.stale(columns)
    out.confirm()  # the remote step's exit status, awaited meanwhile: nothing is written before it
    return RefreshResult(
        host=host,
        stale_notes=stale_notes,
        database=discovery.database,
        tables_found=len(live) if kept else len(discovery.tables),
        plan=plan,
        table=table,
        transferred=out.transferred,
        excluded=discovery.excluded,
        notices=out.notices,
        redacted=redacted,
        in_clear=in_clear,
        seconds=time.monotonic() - started,
        dumped=decision.kind if decision is not None else ("table" if table else incremental.FULL),
        dumped_why=decision.reason if decision is not None else why_whole,
    )


def refresh(
    config: Config,
    host_name: str | None,
    *,
    table: str | None = None,
    commit: bool = True,
    allow_empty: bool = False,
    full: bool = False,
) -> RefreshResult:
    started = time.monotonic()
    host = config.host(host_name)
    host.password()  # a missing variable is a configuration error, found before connecting
    repo = gitops.require_repo(host.output) if commit else None
    with taken([host.output], beside=[guide_dir(config)]) as mended, Publication(commit) as pub:
        res = plan_refresh(
            host,
            table=table,
            allow_empty=allow_empty,
            notes=notes_for(config, host),
            full=full,
            write_ahead=lambda files: pub.write_ahead(host.output, repo, files),
            prepare=lambda: pub.prepare(repo, warm_message),
        )
        res.committing = repo is not None
        res.mended = mended
        if res.plan.changed:
            pub.write(host.output, repo, res.plan.writes, res.plan.removed)
            res.guide_written = pub.write_guide(config, repo)
            if repo is not None:
                res.commit_message = commit_message(host.name, res.plan)
                res.commit = pub.commit(res.commit_message)
    res.seconds = time.monotonic() - started
    return res


@dataclass
class Difference:
    name: str
    file: str
    diff: str  # unified diff of the definitions
    changes: list[Change]  # the same, by object (the words `diff` uses)


@dataclass
class CheckResult:
    host: HostConfig
    database: str
    added: list[str]
    changed: list[str]
    gone: list[str]
    objects: list[str]  # views, functions, ... added, changed or gone
    stale: bool
    seconds: float
    differences: list[Difference] = field(default_factory=list)  # what changed in each changed file
    stale_notes: list[str] = field(default_factory=list)
    tenants: dict | None = None  # the tenant schemas as the database has them now
    dumped: str = "full"  # as RefreshResult.dumped: full, part, none
    dumped_why: str | None = None


def check(config: Config, host_name: str | None, full: bool = False) -> CheckResult | list[CheckResult | CheckFailure]:
    """Dump as refresh does, compare with the files, write nothing: the fingerprints first, then
    a dump of what they say changed (a whole dump with `full`). A host with several databases:
    one remote run, and one result per database (or why it failed)."""
    started = time.monotonic()
    host = config.host(host_name, whole=True)
    host.password()
    with lock_outputs([host.output]):
        if not host.several:
            return _check_result(host, plan_refresh(host, notes=notes_for(config, host), full=full), started)
        run = fetch_several(host)
        results: list[CheckResult | CheckFailure] = []
        for name in run.databases:
            sub = host.for_database(name)
            if name in run.failures:
                results.append(CheckFailure(sub, run.failures[name]))
                continue
            try:
                res = plan_refresh(sub, notes=notes_for(config, sub), fetched=(run.outputs[name], None))
            except SchemasyncError as exc:
                results.append(CheckFailure(sub, exc))
                continue
            results.append(_check_result(sub, res, started))
        return results


@dataclass
class CheckFailure:
    """One database of several that could not be checked."""

    host: HostConfig
    error: SchemasyncError


def _check_result(host: HostConfig, res: RefreshResult, started: float) -> CheckResult:
    plan = res.plan
    # folder/name, as the refresh reports them
    objects = [f"{r.kind}/{r.label}" for s in (NEW, UPDATED, ORPHANED) for r in plan.announced(s, "object")]
    differences = [
        Difference(
            r.label,
            r.file,
            text_diff(plan.before[r.file], plan.writes[r.file], f"files/{r.file}", f"database/{r.file}"),
            compare_files(r.kind, r.schema, r.name, r.label, plan.before[r.file], plan.writes[r.file]),
        )
        for r in plan.run_records
        if r.status == UPDATED and r.file in plan.before
    ]
    return CheckResult(
        host=host,
        database=res.database,
        added=[r.label for r in plan.announced(NEW, "table")],
        changed=[r.label for r in plan.announced(UPDATED, "table")],
        gone=[r.label for r in plan.announced(ORPHANED, "table")],
        objects=objects,
        stale=plan.changed and not plan.fingerprints_only,
        seconds=time.monotonic() - started,
        differences=differences,
        stale_notes=res.stale_notes,
        tenants=plan.tenants,
        dumped=res.dumped,
        dumped_why=res.dumped_why,
    )


def _explain_nothing_to_dump(
    host: HostConfig, discovery: Discovery, table: str | None, previous: store.Previous
) -> None:
    if table is None:
        return  # no schema matched: handled as an empty discovery
    if not discovery.matches:
        known = [r.label for r in previous.records.values() if r.kind == "table"]
        close = close_names(table, known)
        raise ConfigError(
            f"{host.name}: no table {table!r} in database {discovery.database!r} (schemas {', '.join(host.schemas)})",
            hint=("did you mean: " + ", ".join(close) + "; " if close else "")
            + "see `inv schemas.list --host "
            + host.name
            + "`; names are case-sensitive",
        )
    names = ", ".join(f"{s}.{n}" for s, n in discovery.matches)
    raise ConfigError(f"{host.name}: --table {table!r} is ambiguous: {names}", hint="qualify it as schema.table")


def list_tables(config: Config, host_name: str | None, want: TableQuery | None = None) -> ListResult:
    want = want or TableQuery()
    host = config.host(host_name)
    notes = notes_for(config, host)
    out, _ = _fetch(host, "list")
    discovery = Discovery.from_dict(out.meta)
    previous = store.read_previous(host.output, [])
    tables = []
    seen = set()
    rules = rules_for(host.redact)  # a comment read from the catalog may hold what the files redact
    comments = {t.key: redact_text(t.comment, rules, "")[0] if t.comment else None for t in discovery.tables}
    tenant_schemas: set[str] = set()
    for t in discovery.tables:
        if host.tenants is not None and host.tenants.matches(t.schema):
            tenant_schemas.add(t.schema)  # summarised: their tables are written once, as the template's
            continue
        file = table_file(t.schema, t.name)
        seen.add(file)
        exists = (host.output / file).is_file()
        status = "current" if exists else "new"
        tables.append(ListedTable(t.schema, t.name, file, status, t.columns, list(t.primary_key)))
    for rec in previous.records.values():
        if host.tenants is not None and host.tenants.matches(rec.schema):
            continue  # the template's files: the tenants' summary stands for them
        if rec.kind == "table" and rec.file not in seen and previous.exists(rec.file):
            pk = list((rec.details or {}).get("primary_key", []))
            tables.append(ListedTable(rec.schema or "", rec.name, rec.file, ORPHANED, rec.columns, pk))
            comments[(rec.schema or "", rec.name)] = (rec.details or {}).get("comment")
    chosen = sorted((t for t in tables if want.wants(t.schema, t.name, notes)), key=lambda t: (t.schema, t.name))
    for t in chosen:
        n = notes.for_table(t.schema, t.name)
        t.group = notes.group_of(t.schema, t.name)
        t.note = (n.note.description if n else None) or comments.get((t.schema, t.name))
    shown = page(chosen, want.offset, want.limit)
    return ListResult(
        host=host,
        database=discovery.database,
        tables=shown.rows,
        total=shown.total,
        offset=shown.offset,
        next_offset=shown.next_offset,
        live=sum(1 for t in tables if t.status != ORPHANED),
        filtered=want.filtered,
        tenant_schemas=len(tenant_schemas),
        tenants=previous.tenants,
    )
