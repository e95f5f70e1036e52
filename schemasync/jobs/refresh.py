"""The refresh, as a pipeline: fetch (over SSH) -> split -> fold tenants and redact secrets ->
render the files -> plan against what is on disk -> publish (write and commit as one unit).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from schemasync.core.config import Config, HostConfig
from schemasync.core.errors import ConfigError, DatabaseError, SplitError
from schemasync.core.names import close_names, table_file
from schemasync.core.notes import Notes, notes_for
from schemasync.core.progress import QUIET, Progress
from schemasync.jobs.fetch import Starting, fetch
from schemasync.jobs.policy import DumpPolicy, Prepare, fingerprints_hold, local_key, why_whole
from schemasync.output import gitops, manifest, records, store
from schemasync.output.guide import guide_dir
from schemasync.output.messages import commit_message, warm_message
from schemasync.output.publish import Publication
from schemasync.output.records import ORPHANED, NewFile, Plan
from schemasync.output.transaction import taken
from schemasync.schema import incremental
from schemasync.schema.discovery import Discovery
from schemasync.schema.redact import Finding, earlier_copies, redact_pieces, rules_for
from schemasync.schema.relations import header_lines
from schemasync.schema.split import Piece, SplitResult, render_piece, split_dump
from schemasync.schema.tenants import TENANTS_FILE, Tenancy, explain, fold, is_template_file, render_tenants
from schemasync.transport import session
from schemasync.transport.remote_script import (
    Mode,
    build_script,
)


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
class _Fetched:
    """What the fetch step gives the rest of the pipeline."""

    out: session.RemoteOutput
    batched: list[str] | None  # the dumps of a batched run
    prepared: Prepare  # discovery, parsed while the server dumped, and the previous files
    policy: DumpPolicy | None  # incremental: what it decided
    why_whole: str | None  # why everything was dumped (None: incremental, or --table)

    @property
    def decision(self) -> incremental.Decision | None:
        return self.policy.decision if self.policy is not None and self.out.answer is not None else None

    @property
    def kept(self) -> bool:
        """Incremental: only the changed relations were dumped; the fingerprints vouch for the rest."""
        return self.decision is not None and self.decision.kind != incremental.FULL


def plan_refresh(
    host: HostConfig,
    *,
    table: str | None = None,
    allow_empty: bool = False,
    notes: Notes | None = None,
    fetched: tuple[session.RemoteOutput, list[str] | None] | None = None,
    full: bool = False,
    prepare: Callable[[], None] | None = None,
    progress: Progress = QUIET,
) -> RefreshResult:
    """Dump, split and compare with the files: everything but writing. The caller holds the lock.
    `fetched`: the remote output already in hand (one database of a host with several).
    `prepare`: called, in an incremental refresh, once the quick check finds a change.
    Incremental unless `full`, when the manifest has fingerprints to compare (incremental.py)."""
    started = time.monotonic()
    notes = notes or Notes()
    got = _fetch_step(host, table, notes, fetched, full, prepare, progress)
    del fetched  # `got` has it; the dump goes once it is split
    discovery, previous = got.prepared.discovery, got.prepared.previous
    assert discovery is not None
    _refuse_empty(host, table, got, discovery, previous, allow_empty)
    dumped = sum(map(len, got.batched or [got.out.dump or ""]))  # the dump itself is let go once split
    if dumped:
        progress.step(f"splitting the dump ({dumped / 1e6:.1f} MB)")
    pieces, tenancy, redacted = _split_step(host, table, got, discovery)
    progress.step(f"comparing {len(pieces):,} files")
    produced = _render_step(host, pieces, tenancy, discovery, got.prepared.details, notes)
    _refuse_strays(table, got.decision, discovery, produced)
    manifest.read_more(previous, host.output, [nf.file for nf in produced])
    plan = _plan_step(host, table, got, discovery, produced, tenancy, notes)
    live = [r for r in plan.records if r.kind == "table" and r.status != ORPHANED]
    got.out.confirm()  # the remote step's exit status, awaited meanwhile: nothing is written before it
    decision = got.decision
    return RefreshResult(
        host=host,
        stale_notes=_stale_notes(table, notes, discovery, got.kept, live),
        database=discovery.database,
        tables_found=_tables_found(host, got, discovery, live),
        plan=plan,
        table=table,
        transferred=got.out.transferred,
        excluded=discovery.excluded,
        notices=got.out.notices,
        redacted=redacted,
        in_clear=earlier_copies(redacted, previous.contents),
        seconds=time.monotonic() - started,
        dumped=decision.kind if decision is not None else ("table" if table else incremental.FULL),
        dumped_why=decision.reason if decision is not None else got.why_whole,
    )


def _fetch_step(
    host: HostConfig,
    table: str | None,
    notes: Notes,
    fetched: tuple[session.RemoteOutput, list[str] | None] | None,
    full: bool,
    prepare: Callable[[], None] | None,
    progress: Progress,
) -> _Fetched:
    """Start the remote step (the handshake and the server's first step overlap the reading of
    the manifest and the files), answer its question, and parse discovery while it dumps."""
    local = local_key(host, notes)
    head = manifest.manifest_head(host.output)
    whole = why_whole(host, local, head, fetched is not None) if table is None else None
    if whole is None and table is None and full:
        whole = "--full"  # as a first refresh does: the dump starts at once, discovery takes the fingerprints
    asking = whole is None and table is None
    mode: Mode = "table" if table else "full"
    starting = None
    if fetched is None:
        # The last refresh's quick check: a server that finds another sends its fingerprints
        # without asking (one round trip fewer); build_script checks its form.
        stamp = (head.get("fingerprints") or {}) if asking else {}
        quick, since = stamp.get("quick"), stamp.get("since")
        if host.tenants is not None:
            since = None  # its guess at what changed would be dumped in vain: tenants are dumped whole
        script = build_script(
            host,
            mode,
            table,
            host.password(),
            ask=asking,
            expect_quick=quick if isinstance(quick, str) else None,
            since=since if isinstance(since, str) else None,
        )
        progress.step(f"connecting to {host.name}")
        starting = Starting(host, script)
        starting.connected.wait()
        progress.step("discovery")
    try:
        previous = manifest.read_previous(host.output, [])
        prepared = Prepare(host, table, notes, previous)
        policy = DumpPolicy(host, notes, previous, local, prepare) if asking else None
    except BaseException:
        if starting is not None:
            starting.abandon()
        raise
    if fetched is None:
        out, batched = fetch(
            host, mode, table, on_discovery=prepared, ask=policy, starting=starting, defer_exit=True, progress=progress
        )
    else:
        out, batched = fetched
    if prepared.discovery is None:  # nothing to dump, or one of several databases: parsed here
        prepared(Discovery.from_dict(out.meta), out.meta.get("fingerprints"))
        out.meta.clear()  # several times the size of what Discovery keeps (as fetch.exchange does)
    return _Fetched(out, batched, prepared, policy, whole)


def _refuse_empty(
    host: HostConfig,
    table: str | None,
    got: _Fetched,
    discovery: Discovery,
    previous: records.Previous,
    allow_empty: bool,
) -> None:
    if got.out.dump is None and got.batched is None and got.decision is None:
        _explain_nothing_to_dump(host, discovery, table, previous)
    if table is None and not got.kept and not discovery.tables and previous.tables_present() and not allow_empty:
        raise DatabaseError(
            f"{host.name}: the server reports no tables in {host.database!r} (schemas {host.schemas}), "
            f"but {host.output} documents {previous.tables_present()}; refusing to mark them all orphaned",
            hint="check database/schemas in hosts.yaml; if the tables really are gone, use --allow-empty",
        )


def _split_step(
    host: HostConfig, table: str | None, got: _Fetched, discovery: Discovery
) -> tuple[list[Piece], Tenancy | None, list[Finding]]:
    """The dump into pieces (checked complete), tenants folded, secrets redacted: before anything
    is rendered."""
    dumped = got.batched or got.out.dump
    got.out.dump = got.batched = None  # the pieces hold what is needed; the dump goes as it is split
    result = SplitResult({}) if dumped is None else split_dump(dumped, discovery)
    del dumped
    pieces = list(result.pieces.values())
    tenancy = None
    if host.tenants is not None:
        if table is not None and any(host.tenants.matches(p.schema) for p in pieces):
            raise ConfigError(
                f"{host.name}: --table {table}: a table of a tenant schema; refresh the whole host",
                hint="tenant schemas are compared with each other, so they are refreshed together",
            )
        if table is None and not got.kept:  # before redaction and rendering: the other tenants cost only a comparison
            pieces, tenancy = fold(pieces, host.tenants)
    rules = rules_for(host.redact)
    redacted = redact_pieces(pieces, rules)
    if tenancy is not None:
        # the deviants' pieces are not written, but what differs in them is said: redacted too
        others = [p for schema, files in tenancy.pieces.items() if schema != tenancy.template for p in files.values()]
        redact_pieces(others, rules)
        explain(tenancy)
    return pieces, tenancy, redacted


def _render_step(
    host: HostConfig,
    pieces: list[Piece],
    tenancy: Tenancy | None,
    discovery: Discovery,
    details: dict,
    notes: Notes,
) -> list[NewFile]:
    """Each piece as the text of its file, headers and all; the pieces are used up (taken from the
    list as they are rendered: the dump's text is not held twice)."""
    produced = []
    pieces.reverse()
    while pieces:
        p = pieces.pop()
        d = details.get(p.table.key) if p.table else None
        header = (header_lines(d) + notes.header_lines(p.schema, p.name) if p.table else []) + (
            [tenancy.note] if tenancy is not None and p.path in tenancy.written else []
        )
        produced.append(
            NewFile(
                kind=p.kind,
                schema=p.schema,
                name=p.name,
                file=p.path,
                content=render_piece(p, discovery.database, host.name, header),
                columns=p.table.columns if p.table else None,
                details=d,
            )
        )
    return produced


def _refuse_strays(
    table: str | None, decision: incremental.Decision | None, discovery: Discovery, produced: list[NewFile]
) -> None:
    """A dump of one table, or of the changed relations, holds nothing else: never written."""
    if table is not None:
        target = table_file(*discovery.matches[0])
        stray = [nf.file for nf in produced if nf.file != target]
        if stray:
            raise SplitError(f"--table {table}: the dump also held {stray[:5]}; nothing written")
    if decision is not None and decision.kind == incremental.PART:
        stray = [nf.file for nf in produced if nf.file not in decision.files]
        if stray:
            raise SplitError(f"the dump of the changed relations also held {stray[:5]}; nothing written")


def _plan_step(
    host: HostConfig,
    table: str | None,
    got: _Fetched,
    discovery: Discovery,
    produced: list[NewFile],
    tenancy: Tenancy | None,
    notes: Notes,
) -> Plan:
    """The files against what is on disk, with the fingerprints the next refresh compares."""
    previous, out = got.prepared.previous, got.out
    dumped_by = out.info.get("pg_dump", "")
    versions = {"server": discovery.server_version // 10000, "pg_dump": int(dumped_by) if dumped_by.isdigit() else None}
    tenants = tenancy.to_data() if tenancy else None
    if host.tenants is not None and got.kept:  # nothing was dumped (the quick check): as they were
        tenants = previous.tenants
    now = got.policy.now if got.policy is not None else None
    early, got.prepared.fingerprints = got.prepared.fingerprints, None  # read here, then let go
    if now is None and table is None and early and fingerprints_hold(out.info, early):
        version = out.info.get("pg_dump_version", "")
        now = incremental.fingerprints(early, discovery.server_version, version, local_key(host, notes), owners=False)
    del early
    if now is not None:
        kept_fps = {r.file: r.fp for r in previous.records.values() if r.fp and r.status != ORPHANED}
        now = incremental.settled(now, previous.fingerprints, kept_fps)
    return store.plan_changes(
        previous,
        produced,
        environment=host.name,
        database=discovery.database,
        partial=table is not None,
        incremental=got.kept,
        versions=versions if table is None else None,  # a --table run leaves them as they were
        tenants=tenants,
        extra_own={TENANTS_FILE: render_tenants(tenants, host.name)} if tenants else None,
        fingerprints=(now.stamp, now.objects) if now is not None else None,
        sizes=None if table is not None else discovery.sizes,
    )


def _tables_found(host: HostConfig, got: _Fetched, discovery: Discovery, live: list) -> int:
    if not got.kept:
        return len(discovery.tables)
    tenants = got.prepared.previous.tenants if host.tenants is not None else None
    if tenants:  # the template's files stand for all the tenants' tables
        return sum(not is_template_file(host.tenants, r.file) for r in live) + tenants.get("tables", 0)
    return len(live)


def _stale_notes(table: str | None, notes: Notes, discovery: Discovery, kept: bool, live: list) -> list[str]:
    """Notes in schema-notes.yaml for tables or columns that do not exist."""
    if table is not None or not notes.tables:  # without notes there is nothing to find stale
        return []
    columns = {t.key: {c.name for c in t.column_defs} for t in discovery.tables}
    if kept:  # the tables not discovered this time: as the manifest has them
        columns = {(r.schema or "", r.name): {c[0] for c in (r.details or {})["column_defs"]} for r in live}
    return notes.stale(columns)


def refresh(
    config: Config,
    host_name: str | None,
    *,
    table: str | None = None,
    commit: bool = True,
    allow_empty: bool = False,
    full: bool = False,
    progress: Progress = QUIET,
) -> RefreshResult:
    """Refresh one host's files and commit them. `progress` is told each step (the live line)."""
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
            prepare=lambda: pub.prepare(repo, warm_message),
            progress=progress,
        )
        res.committing = repo is not None
        res.mended = mended
        if res.plan.changed:
            progress.step(f"writing {len(res.plan.writes):,} files")
            pub.write(host.output, repo, res.plan.writes, res.plan.removed)
            res.guide_written = pub.write_guide(config, repo)
            if repo is not None:
                progress.step("committing")
                res.commit_message = commit_message(host.name, res.plan)
                res.commit = pub.commit(res.commit_message)
    res.seconds = time.monotonic() - started
    return res


def _explain_nothing_to_dump(
    host: HostConfig, discovery: Discovery, table: str | None, previous: records.Previous
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
