"""What a refresh changes in the output directory (pure): each produced file against the
records and the files on disk, with statuses that change only when a table does.
"""

from __future__ import annotations

from dataclasses import replace
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
) -> Plan:
    """Statuses and the files to write. Pure.

    partial: only some tables were dumped (--table, or an incremental refresh): the others keep
    their records as they were.
    fingerprints: the catalog's (stamp, file -> fp) as this run found them (incremental.py).
    incremental: only what changed was dumped; the fingerprints vouch for the rest, kept as it is.
    tenants: the tenant schemas' summary for the manifest; extra_own: more files of ours
    (`_tenants.md`), deleted like pages when a later run no longer writes them.
    """
    records: dict[str, Record] = {}
    writes: dict[str, str] = {}
    restored, overwritten, references_only = [], [], []
    before_text: dict[str, str] = {}
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
                restored.append(nf.file)  # the database did not change: put the file back, no news
            elif definition(old) == definition(nf.content):
                references_only.append(nf.file)  # a header line (`-- Referenced by`) moved, not the table
            else:
                status = UPDATED
                before_text[nf.file] = old
                if edited:
                    overwritten.append(nf.file)
            writes[nf.file] = nf.content
        if status == NEW:
            writes[nf.file] = nf.content
        if fingerprints:
            fp = fingerprints[1].get(nf.file)
        else:  # --table: the fingerprint the file was last written at holds while the file does
            fp = before.fp if before is not None and status == CURRENT and nf.file not in writes else None
        records[nf.file] = Record(nf.kind, nf.schema, nf.name, nf.file, status, nf.columns, nf.details, sha, fp)
    for file, rec in previous.records.items():
        if file in records or not previous.exists(file):
            continue  # refreshed now, or its file was removed by hand: forget it
        records[file] = rec if partial or incremental else replace(rec, status=ORPHANED)
    ordered = sorted(records.values(), key=_sort_key)
    newly_orphaned = frozenset(
        r.file for r in ordered if r.status == ORPHANED and previous.records.get(r.file, r).status != ORPHANED
    )
    forgotten = any(f not in records for f in previous.records)
    own_missing = any(previous.contents.get(f) is None for f in (*OWN_FILES, *previous.pages))
    own_missing = own_missing or previous.format != FORMAT
    versions = versions if versions is not None else previous.versions
    own_missing = own_missing or (versions != previous.versions and not partial)  # an upgrade: say so
    if partial:
        tenants = previous.tenants
    own_missing = own_missing or tenants != previous.tenants  # a tenant drifted, or came back in line
    valid_for = fingerprints[0] if fingerprints else (previous.fingerprints if partial else None)
    refingerprinted = valid_for != previous.fingerprints or any(
        previous.records.get(f) is None or previous.records[f].fp != r.fp for f, r in records.items()
    )
    changed = bool(writes) or bool(newly_orphaned) or forgotten or own_missing or refingerprinted
    produced_files = frozenset(nf.file for nf in produced)
    before_stamp, now_stamp = previous.fingerprints or {}, valid_for or {}
    extra = {
        "restamped": tuple(
            k
            for k in ("local", "server", "pg_dump")
            if before_stamp and now_stamp and now_stamp.get(k) != before_stamp.get(k)
        ),
        "restored": restored,
        "overwritten": overwritten,
        "references_only": references_only,
        "before": before_text,
        "tenants": tenants,
        "tenants_before": previous.tenants,
    }
    if not changed:
        return Plan(ordered, {}, False, produced_files, partial, newly_orphaned, **extra)
    plan = Plan(ordered, writes, True, produced_files, partial, newly_orphaned, **extra)
    news = {status: [r.label for r in plan.announced(status, "table")] for status in (NEW, UPDATED, ORPHANED)}
    news_objects = {
        status: [f"{r.kind}/{r.label}" for r in plan.announced(status, "object")] for status in (NEW, UPDATED, ORPHANED)
    }
    if not any(news.values()) and not any(news_objects.values()) and not forgotten and not own_missing:
        # only files put back or headers refreshed: the index stays as it was; the manifest too,
        # unless the catalog changed in ways the files do not show (an index rebuilt, a grant
        # given and taken back): then its fingerprints do, and its last change stays
        if refingerprinted:
            text = render_manifest(
                ordered,
                environment,
                database,
                versions=versions,
                pages=previous.pages,
                tenants=tenants,
                fingerprints=valid_for,
                last_change=previous.last_change,
                kept=previous.lines,
            )
            if previous.contents.get(MANIFEST) != text:
                writes[MANIFEST] = text
            plan.fingerprints_only = list(writes) == [MANIFEST]
        return plan
    stamp = (now or datetime.now(timezone.utc)).strftime("%Y-%m-%d %H:%M UTC")
    own = {TABLE_LIST: render_table_list(ordered), **render_index_pages(ordered, environment, database, stamp, news)}
    if partial:  # --table: the other files of ours stay as they are
        extra_own = {f: previous.contents.get(f) or "" for f in previous.pages if "/" not in f}
    own.update(extra_own or {})
    erd_pages = [p for p in previous.pages if p.startswith(ERD_PAGES + "/")]
    erd_kept = not own_missing and _erd_same(ordered, previous.records)
    if not erd_kept:  # only when what it draws changed: it is the costly one
        drawn = render_erd_pages(ordered, environment)
        own.update(drawn)
        erd_pages = [p for p in drawn if p != ERD]
    pages = sorted({*(p for p in own if p.startswith(INDEX_PAGES + "/")), *erd_pages, *(extra_own or {})})
    own[MANIFEST] = render_manifest(
        ordered,
        environment,
        database,
        news,
        news_objects,
        versions,
        pages,
        tenants,
        fingerprints=valid_for,
        kept=previous.lines,
    )
    # only what differs: adding a column leaves the table list and the diagram as they were
    writes.update({f: text for f, text in own.items() if previous.contents.get(f) != text})
    plan.removed = [p for p in previous.pages if p not in pages and previous.exists(p)]
    return plan


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
