"""What a refresh changes in the output directory (pure): each produced file against the
records and the files on disk, with statuses that change only when a table does.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime, timezone

from schemasync.output.erd import ERD, ERD_PAGES, render_erd_pages
from schemasync.output.manifest import render_manifest
from schemasync.output.pages import INDEX_PAGES, render_index_pages, render_table_list
from schemasync.output.records import (
    CURRENT,
    FORMAT,
    MANIFEST,
    NEW,
    ORPHANED,
    OWN_FILES,
    TABLE_LIST,
    UPDATED,
    NewFile,
    Plan,
    Previous,
    Record,
)
from schemasync.schema.split import content_sha, definition


def _sort_key(r: Record) -> tuple:
    return (r.kind != "table", r.kind, r.schema or "", r.name, r.file)


@dataclass
class _Compared:
    """Each produced file against the one on disk and its record."""

    records: dict[str, Record] = field(default_factory=dict)
    writes: dict[str, str] = field(default_factory=dict)
    restored: list[str] = field(default_factory=list)  # edited by hand, the database unchanged: put back
    overwritten: list[str] = field(default_factory=list)  # edited by hand, and the database changed too
    references_only: list[str] = field(default_factory=list)  # only a header line moved
    before: dict[str, str] = field(default_factory=dict)  # the old text of each updated file


def plan_changes(
    previous: Previous,
    produced: list[NewFile],
    *,
    environment: str,
    database: str,
    partial: bool,
    now: datetime | None = None,
    versions: dict | None = None,
    tenants: dict | None = None,
    extra_own: dict[str, str] | None = None,
    fingerprints: tuple[dict, dict[str, str]] | None = None,
    incremental: bool = False,
    sizes: dict[tuple[str, str], tuple] | None = None,
) -> Plan:
    """Statuses and the files to write. Pure.

    partial: only some tables were dumped (--table, or an incremental refresh): the others keep
    their records as they were.
    fingerprints: the catalog's (stamp, file -> fp) as this run found them (incremental.py).
    incremental: only what changed was dumped; the fingerprints vouch for the rest, kept as it is.
    tenants: the tenant schemas' summary for the manifest; extra_own: more files of ours
    (`_tenants.md`), deleted like pages when a later run no longer writes them. sizes: each
    table's size class as discovery found it (none for --table).
    """
    cmp = _compare(previous, produced, fingerprints)
    records = cmp.records
    for file, rec in previous.records.items():
        if file in records or not previous.exists(file):
            continue  # refreshed now, or its file was removed by hand: forget it
        records[file] = rec if partial or incremental else replace(rec, status=ORPHANED)
    resized = sizes is not None and _resize(records, sizes, previous.records)
    ordered = sorted(records.values(), key=_sort_key)
    newly_orphaned = frozenset(
        r.file for r in ordered if r.status == ORPHANED and previous.records.get(r.file, r).status != ORPHANED
    )
    forgotten = any(f not in records for f in previous.records)
    versions = versions if versions is not None else previous.versions
    tenants = previous.tenants if partial else tenants
    own_missing = (
        any(previous.contents.get(f) is None for f in (*OWN_FILES, *previous.pages))
        or previous.format != FORMAT
        or (versions != previous.versions and not partial)  # an upgrade: say so
        or tenants != previous.tenants  # a tenant drifted, or came back in line
    )
    valid_for = fingerprints[0] if fingerprints else (previous.fingerprints if partial else None)
    refingerprinted = _refingerprinted(valid_for, previous, records)
    changed = bool(cmp.writes) or bool(newly_orphaned) or forgotten or own_missing or refingerprinted or resized
    before_stamp, now_stamp = previous.fingerprints or {}, valid_for or {}
    plan = Plan(
        ordered,
        cmp.writes if changed else {},
        changed,
        frozenset(nf.file for nf in produced),
        partial,
        newly_orphaned,
        restamped=tuple(
            k
            for k in ("local", "server", "pg_dump")
            if before_stamp and now_stamp and now_stamp.get(k) != before_stamp.get(k)
        ),
        restored=cmp.restored,
        overwritten=cmp.overwritten,
        references_only=cmp.references_only,
        before=cmp.before,
        tenants=tenants,
        tenants_before=previous.tenants,
    )
    if not changed:
        return plan
    news = {status: [r.label for r in plan.announced(status, "table")] for status in (NEW, UPDATED, ORPHANED)}
    news_objects = {
        status: [f"{r.kind}/{r.label}" for r in plan.announced(status, "object")] for status in (NEW, UPDATED, ORPHANED)
    }
    head = _ManifestHead(environment, database, versions, tenants, valid_for)
    if not any(news.values()) and not any(news_objects.values()) and not forgotten and not own_missing:
        _restamp_only(plan, previous, head, refingerprinted or resized)
        return plan
    _write_own(plan, previous, head, news, news_objects, now, extra_own, keep_erd=not own_missing)
    return plan


def _refingerprinted(valid_for: dict | None, previous: Previous, records: dict[str, Record]) -> bool:
    """The catalog's fingerprints, or a file's, are not the ones the manifest holds."""
    return valid_for != previous.fingerprints or any(
        previous.records.get(f) is None or previous.records[f].fp != r.fp for f, r in records.items()
    )


def _resize(records: dict[str, Record], sizes: dict[tuple[str, str], tuple], before: dict[str, Record]) -> bool:
    """Each live table's size class as discovery found it (kept records too; a table never
    analyzed has none): True when one is in another class than the manifest says. A size moving
    within its class changes nothing."""
    moved = False
    for file, r in records.items():
        if r.kind != "table" or r.status == ORPHANED or not r.details:
            continue
        found = sizes.get((r.schema or "", r.name))
        want = {"rows": found[0], "bytes": found[1]} if found else None
        if r.details.get("size") != want:
            details = {k: v for k, v in r.details.items() if k != "size"}
            records[file] = r = replace(r, details={**details, "size": want} if want else details)
        old = before.get(file)
        moved |= old is not None and (old.details or {}).get("size") != want
    return moved


def _compare(
    previous: Previous, produced: list[NewFile], fingerprints: tuple[dict, dict[str, str]] | None
) -> _Compared:
    """Each produced file against its text on disk and what the manifest says this tool wrote."""
    out = _Compared()
    for nf in produced:
        old = previous.contents.get(nf.file)
        sha = content_sha(definition(nf.content))  # the header's reference lines may move alone
        before = previous.records.get(nf.file)
        written = before.sha if before is not None else None  # what this tool last wrote there
        status = CURRENT
        if old is None:
            status = NEW
        elif old != nf.content:
            edited = written is not None and written != content_sha(definition(old))
            if edited and written == sha:
                out.restored.append(nf.file)  # the database did not change: put the file back, no news
            elif definition(old) == definition(nf.content):
                out.references_only.append(nf.file)  # a header line (`-- Referenced by`) moved, not the table
            else:
                status = UPDATED
                out.before[nf.file] = old
                if edited:
                    out.overwritten.append(nf.file)
            out.writes[nf.file] = nf.content
        if status == NEW:
            out.writes[nf.file] = nf.content
        if fingerprints:
            fp = fingerprints[1].get(nf.file)
        else:  # --table: the fingerprint the file was last written at holds while the file does
            fp = before.fp if before is not None and status == CURRENT and nf.file not in out.writes else None
        out.records[nf.file] = Record(nf.kind, nf.schema, nf.name, nf.file, status, nf.columns, nf.details, sha, fp)
    return out


@dataclass(frozen=True)
class _ManifestHead:
    environment: str
    database: str
    versions: dict | None
    tenants: dict | None
    fingerprints: dict | None


def _restamp_only(plan: Plan, previous: Previous, head: _ManifestHead, refingerprinted: bool) -> None:
    """Only files put back or headers refreshed: the index stays as it was; the manifest too,
    unless the catalog changed in ways the files do not show (an index rebuilt, a grant given and
    taken back): then its fingerprints do, and its last change stays."""
    if not refingerprinted:
        return
    text = render_manifest(
        plan.records,
        head.environment,
        head.database,
        versions=head.versions,
        pages=previous.pages,
        tenants=head.tenants,
        fingerprints=head.fingerprints,
        last_change=previous.last_change,
        kept=previous.lines,
    )
    if previous.contents.get(MANIFEST) != text:
        plan.writes[MANIFEST] = text
    plan.fingerprints_only = list(plan.writes) == [MANIFEST]


def _write_own(
    plan: Plan,
    previous: Previous,
    head: _ManifestHead,
    news: dict[str, list[str]],
    news_objects: dict[str, list[str]],
    now: datetime | None,
    extra_own: dict[str, str] | None,
    keep_erd: bool,
) -> None:
    """The tool's own files (index and its pages, table list, diagrams, manifest), where they differ."""
    ordered = plan.records
    stamp = (now or datetime.now(timezone.utc)).strftime("%Y-%m-%d %H:%M UTC")
    own = {
        TABLE_LIST: render_table_list(ordered),
        **render_index_pages(ordered, head.environment, head.database, stamp, news),
    }
    if plan.partial:  # --table: the other files of ours stay as they are
        extra_own = {f: previous.contents.get(f) or "" for f in previous.pages if "/" not in f}
    own.update(extra_own or {})
    erd_pages = [p for p in previous.pages if p.startswith(ERD_PAGES + "/")]
    if not (keep_erd and _erd_same(ordered, previous.records)):  # only when what it draws changed: the costly one
        drawn = render_erd_pages(ordered, head.environment)
        own.update(drawn)
        erd_pages = [p for p in drawn if p != ERD]
    pages = sorted({*(p for p in own if p.startswith(INDEX_PAGES + "/")), *erd_pages, *(extra_own or {})})
    own[MANIFEST] = render_manifest(
        ordered,
        head.environment,
        head.database,
        news,
        news_objects,
        head.versions,
        pages,
        head.tenants,
        fingerprints=head.fingerprints,
        kept=previous.lines,
    )
    # only what differs: adding a column leaves the table list and the diagram as they were
    plan.writes.update({f: text for f, text in own.items() if previous.contents.get(f) != text})
    plan.removed = [p for p in previous.pages if p not in pages and previous.exists(p)]


def _erd_same(records: list[Record], before: dict[str, Record]) -> bool:
    """The diagram draws the same as before. An incremental refresh keeps most records as they
    were (the same objects): only the others are compared, since each table gives one element."""
    if len(records) != len(before) or any(r.file not in before for r in records):
        return _erd_inputs(records) == _erd_inputs(list(before.values()))
    differing = [r for r in records if before[r.file] is not r]
    return _erd_inputs(differing) == _erd_inputs([before[r.file] for r in differing])


def _erd_inputs(records: list[Record]) -> set:
    """What the diagram shows: live tables, their keys, and the key columns' types."""
    shown = set()
    for r in records:
        if r.kind != "table" or r.status == ORPHANED or not r.details:
            continue
        d = r.details
        keys = set(d["primary_key"]) | {c for fk in d["foreign_keys"] for c in fk["columns"]}
        cols = tuple((n, t) for n, t, _ in d["column_defs"] if n in keys)
        fks = tuple((fk["ref_schema"], fk["ref_table"], tuple(fk["columns"])) for fk in d["foreign_keys"])
        shown.add((r.schema, r.name, tuple(d["primary_key"]), cols, fks))
    return shown
