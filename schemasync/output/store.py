"""The output directory: what changed (pure), and writing it so a failure leaves it as it was.

Files the tool owns: the ones listed in `_manifest.json` (its records and its `pages`), plus
`_manifest.json`, `_index.md`, `_erd.md` and `_table_list.txt`. Nothing else in the directory is
read, written or committed; the only files ever deleted are pages the manifest lists.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import NamedTuple

from schemasync.core import gcpause
from schemasync.core.errors import LocalError
from schemasync.core.names import display_name, escape_controls, name_part, qualified_name
from schemasync.output.erd import ERD, ERD_PAGES, render_erd_pages
from schemasync.output.transaction import check_inside
from schemasync.schema.split import content_sha, definition
from schemasync.schema.tenants import TENANTS_FILE

MANIFEST = "_manifest.json"
INDEX = "_index.md"
TABLE_LIST = "_table_list.txt"
OWN_FILES = (MANIFEST, INDEX, TABLE_LIST, ERD)  # and the pages the manifest lists (`pages`)
TENANTS = TENANTS_FILE  # hosts with tenant schemas (tenants.py)
OWN_PAGES = (TENANTS,)  # written by some runs only; listed in `pages` when written
# Bumped when the layout of the files above changes, so an upgrade rewrites them once.
# 3: per-row statuses are only current/orphaned (the run's changes are listed once, in
# `last_change`), and each record carries the sha of the definition written.
FORMAT = 3

NEW, UPDATED, CURRENT, ORPHANED = "new", "updated", "current", "orphaned"
MARKS = {NEW: "+", UPDATED: "~", CURRENT: "✓", ORPHANED: "⚠"}


@dataclass(frozen=True)
class Record:
    """One file of the reference: a table, or an object that belongs to no table."""

    kind: str  # "table", "views", "functions", ...
    schema: str | None
    name: str
    file: str
    status: str
    columns: int | None = None
    details: dict | None = None  # tables: column_defs, primary_key, comment, foreign_keys, referenced_by
    sha: str | None = None  # of the definition this tool wrote: tells a hand edit from a database change
    fp: str | None = None  # the catalog fingerprint it was dumped at (incremental.py); relations only

    @property
    def label(self) -> str:
        if self.schema is None:
            return escape_controls(self.name)
        if self.kind == "table":
            return display_name(self.schema, self.name)
        return qualified_name(self.schema, self.name) if self.schema != "public" else escape_controls(self.name)


@dataclass(frozen=True)
class NewFile:
    """A file this run produced, before it is compared with what is on disk."""

    kind: str
    schema: str | None
    name: str
    file: str
    content: str
    columns: int | None = None
    details: dict | None = None


@dataclass
class Plan:
    records: list[Record]  # every owned file after this run, sorted
    writes: dict[str, str]  # relative path -> new content; empty when nothing changed
    changed: bool
    produced: frozenset[str] = frozenset()  # files this run dumped
    partial: bool = False  # --table: the other records were not checked
    newly_orphaned: frozenset[str] = frozenset()  # files whose table went away since the last refresh
    restored: list[str] = field(default_factory=list)  # edited by hand, database unchanged: put back
    overwritten: list[str] = field(default_factory=list)  # edited by hand and changed in the database
    references_only: list[str] = field(default_factory=list)  # only the `-- Referenced by` header changed
    removed: list[str] = field(default_factory=list)  # pages of ours no longer needed: deleted
    tenants: dict | None = None  # the tenant schemas' picture (tenants.py), and the last refresh's
    tenants_before: dict | None = None
    before: dict[str, str] = field(default_factory=dict)  # updated files: their previous text (check shows the diff)
    fingerprints_only: bool = False  # only the manifest's catalog fingerprints changed: no file is stale
    # what the fingerprints are valid for changed: local (this tool, its settings), server, pg_dump
    restamped: tuple[str, ...] = ()

    @property
    def run_records(self) -> list[Record]:
        """What this run looked at: all records, or just the --table one."""
        return [r for r in self.records if not self.partial or r.file in self.produced]

    def tables(self, status: str | None = None) -> list[Record]:
        return [r for r in self.run_records if r.kind == "table" and (status is None or r.status == status)]

    def objects(self, status: str | None = None) -> list[Record]:
        return [r for r in self.run_records if r.kind != "table" and (status is None or r.status == status)]

    def announced(self, status: str, kind: str | None = None) -> list[Record]:
        """This run's news: new and updated records, and orphans only when they become orphans
        (an orphan kept from an earlier refresh is not news again)."""
        return [
            r
            for r in self.run_records
            if r.status == status
            and (kind is None or (r.kind == "table") == (kind == "table"))
            and (status != ORPHANED or r.file in self.newly_orphaned)
        ]

    def standing_orphans(self) -> list[Record]:
        return [r for r in self.tables(ORPHANED) if r.file not in self.newly_orphaned]


@dataclass
class Previous:
    """What the directory held before the run (read by `read_previous`)."""

    records: dict[str, Record] = field(default_factory=dict)  # by file
    contents: dict[str, str | None] = field(default_factory=dict)  # file -> text, None if absent
    present: set[str] | None = None  # files on disk; None: the ones whose contents were read

    def exists(self, file: str) -> bool:
        if self.present is not None:
            return file in self.present
        return self.contents.get(file) is not None

    format: int | None = None  # the manifest's format; None when there was none
    versions: dict = field(default_factory=dict)  # {"server": 15, "pg_dump": 15} of the last refresh
    pages: list[str] = field(default_factory=list)  # index and diagram pages the last refresh wrote
    tenants: dict | None = None  # the manifest's `tenants`
    fingerprints: dict | None = None  # the manifest's `fingerprints`: what its records' fp are valid for
    last_change: dict | None = None
    # each record's line in the manifest, by the record's id (they are kept alive in `records`):
    # an incremental refresh keeps most records as they are, and their lines need no rendering
    lines: dict[int, str] = field(default_factory=dict)

    def tables_present(self) -> int:
        """Table files the manifest lists that are still on disk."""
        return sum(1 for r in self.records.values() if r.kind == "table" and self.exists(r.file))


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


def stable_status(status: str) -> str:
    """What a row says between refreshes: the file is current, or kept for a table that is gone."""
    return ORPHANED if status == ORPHANED else CURRENT


def render_manifest(
    records: list[Record],
    environment: str,
    database: str,
    news: dict[str, list[str]] | None = None,
    news_objects: dict[str, list[str]] | None = None,
    versions: dict | None = None,
    pages: list[str] | None = None,
    tenants: dict | None = None,
    fingerprints: dict | None = None,
    last_change: dict | None = None,
    kept: dict[int, str] | None = None,
) -> str:
    """One file a line: readable, diff-friendly, and fast (the C encoder; `indent=` would not use it).
    Rows change only when their file does; what the last refresh changed is one `last_change` line.
    `kept`: lines of records read from the manifest (Previous.lines), written again as they were."""
    news, news_objects = news or {}, news_objects or {}
    last_change = last_change or {
        "added": news.get(NEW, []),
        "updated": news.get(UPDATED, []),
        "orphaned": news.get(ORPHANED, []),
        "objects": {
            "added": news_objects.get(NEW, []),
            "updated": news_objects.get(UPDATED, []),
            "orphaned": news_objects.get(ORPHANED, []),
        },
    }
    head = json.dumps(
        {
            "environment": environment,
            "database": database,
            "format": FORMAT,
            "generator": "schemasync",
            # majors only: a minor upgrade writes the same files and must not change this one
            "postgres": versions or {},
            # the index and diagram pages of a big reference: ours, so a refresh may delete them
            **({"pages": pages} if pages else {}),
            # schema-per-tenant: how many tenants, the template, and what differs in the others
            **({"tenants": tenants} if tenants else {}),
            # what the records' catalog fingerprints are valid for (incremental.py)
            **({"fingerprints": fingerprints} if fingerprints else {}),
        },
        ensure_ascii=False,
        sort_keys=True,
    )
    change = json.dumps(last_change, ensure_ascii=False, sort_keys=True)
    kept = kept or {}
    lines = [kept.get(id(r)) or json.dumps(_record_data(r), ensure_ascii=False, sort_keys=True) for r in records]
    return head[:-1] + ',\n"last_change": ' + change + _FILES_OPEN + ",\n".join(lines) + "\n" + _FILES_CLOSE


_FILES_OPEN, _FILES_CLOSE = ',\n"files": [\n', "]}\n"


def _record_data(r: Record) -> dict:
    data = {**r.__dict__, "status": stable_status(r.status)}
    if data["fp"] is None:
        del data["fp"]  # objects that are not relations have none
    return data


def render_table_list(records: list[Record]) -> str:
    names = [qualified_name(r.schema or "", r.name) for r in records if r.kind == "table" and r.status != ORPHANED]
    return "".join(f"{n}\n" for n in names)


def _code(text: str) -> str:
    """A markdown code span that survives any name (backticks, pipes) inside a table cell."""
    text = escape_controls(text).replace("|", "\\|")
    fence = "``" if "`" in text else "`"
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def _link(file: str, up: str = "") -> str:
    label = file.replace("|", "\\|").replace("[", "\\[").replace("]", "\\]")
    return f"[{label}]({up}{file})"


NEWS_LIMIT = 50  # names listed per kind of change in _index.md


def _index_row(r: Record, up: str = "") -> str:
    cols = "" if r.columns is None else str(r.columns)
    d = r.details or {}
    pk = _code(", ".join(d["primary_key"])) if d.get("primary_key") else ""
    fks_out = str(len(d["foreign_keys"])) if d else ""
    fks_in = str(len(d["referenced_by"])) if d else ""
    # the database's comment, and the team's note beside it (never in its place)
    said = [d.get("comment") or "", d.get("note") or ""]
    if d.get("tags"):
        said.append("[" + ", ".join(d["tags"]) + "]")
    comment = escape_controls(" · ".join(x for x in said if x)).replace("|", "\\|")
    return (
        f"| {MARKS[stable_status(r.status)]} | {_code(r.label)} | {_code(r.schema or '')} | {cols} | {pk} "
        f"| {fks_out} | {fks_in} | {_link(r.file, up)} | {comment} |\n"
    )


INDEX_PAGES = "_index"  # the folder of a big reference's index pages
PAGE_TABLES = 300  # tables in one `_index.md`; past this it is split into pages
PAGE_ROWS = 500  # rows per page: a page stays light on GitHub


def render_index(
    records: list[Record], environment: str, database: str, stamp: str, news: dict[str, list[str]] | None = None
) -> str:
    """`_index.md` as one page, whatever its size."""
    return "".join(_index_head(records, environment, database, stamp, news)) + "".join(_index_body(records))


def render_index_pages(
    records: list[Record], environment: str, database: str, stamp: str, news: dict[str, list[str]] | None = None
) -> dict[str, str]:
    """`_index.md` alone up to PAGE_TABLES tables. Past that it keeps the summary and the news, and
    lists pages under `_index/`: one per group of schema-notes.yaml, one per schema for the tables
    in no group, and one for the other objects, each cut every PAGE_ROWS rows."""
    tables = [r for r in records if r.kind == "table"]
    if len(tables) <= PAGE_TABLES:
        return {INDEX: render_index(records, environment, database, stamp, news)}
    sections: dict[tuple[str, str], list[Record]] = {}
    for r in tables:
        group = (r.details or {}).get("group")
        sections.setdefault(("group", group) if group else ("schema", r.schema or ""), []).append(r)
    pages: dict[str, str] = {}
    head = _index_head(records, environment, database, stamp, news)
    out = [*head, "The tables are listed on pages:\n\n| | tables | orphaned | pages |\n|---|--:|--:|---|\n"]
    for (by, name), members in sorted(sections.items(), key=lambda kv: (kv[0][0] != "group", kv[0][1])):
        label = f"group {escape_controls(name)}" if by == "group" else f"schema {_code(name)}"
        stem = f"{INDEX_PAGES}/{'group-' if by == 'group' else ''}{name_part(name)}"
        files = _pages(pages, stem, f"{environment}, {label}", members, _TABLE_HEAD, _index_row)
        orphaned = sum(1 for r in members if r.status == ORPHANED)
        links = ", ".join(f"[{k}]({f})" for k, f in enumerate(files, 1))
        out.append(f"| {label} | {len(members) - orphaned} | {orphaned} | {links} |\n")
    out.append(f"\nDiagrams of the tables and their foreign keys: {_link(ERD)}.\n")
    others = [r for r in records if r.kind != "table"]
    if others:
        files = _pages(pages, f"{INDEX_PAGES}/other-objects", environment, others, _OBJECT_HEAD, _object_row)
        links = ", ".join(f"[{k}]({f})" for k, f in enumerate(files, 1))
        out.append(f"\n{len(others)} other objects (views, functions, types, ...): pages {links}.\n")
    pages[INDEX] = "".join(out)
    return pages


def _pages(
    pages: dict[str, str], stem: str, title: str, rows: list[Record], head: str, row: Callable[[Record, str], str]
) -> list[str]:
    """Rows on pages `<stem>.md`, `<stem>.2.md`, ... (a name part never holds a dot or a dash, so
    these never meet a schema's page); the files written, in order."""
    chunks = [rows[i : i + PAGE_ROWS] for i in range(0, len(rows), PAGE_ROWS)]
    files = []
    for k, chunk in enumerate(chunks, 1):
        file = f"{stem}.md" if k == 1 else f"{stem}.{k}.md"
        of = f" (page {k} of {len(chunks)})" if len(chunks) > 1 else ""
        pages[file] = "".join(
            [
                f"# Database schema: {escape_controls(title)}{of}\n\n",
                "<!-- Generated by schemasync; a refresh rewrites this file. -->\n\n",
                f"Summary and the other pages: [{INDEX}](../{INDEX}). File links are relative to it: `../<file>`.\n\n",
                head,
                *(row(r, "../") for r in chunk),
            ]
        )
        files.append(file)
    return files


_TABLE_HEAD = (
    "| | table | schema | columns | primary key | FKs out | FKs in | file | comment / note |\n"
    "|:-:|---|---|--:|---|--:|--:|---|---|\n"
)
_OBJECT_HEAD = "| | object | kind | file |\n|:-:|---|---|---|\n"


def _object_row(r: Record, up: str = "") -> str:
    kind = r.kind.replace("_", " ")
    return f"| {MARKS[stable_status(r.status)]} | {_code(r.label)} | {kind} | {_link(r.file, up)} |\n"


def _index_head(
    records: list[Record], environment: str, database: str, stamp: str, news: dict[str, list[str]] | None
) -> list[str]:
    news = news or {}
    tables = [r for r in records if r.kind == "table"]
    orphaned = sum(1 for r in tables if r.status == ORPHANED)
    out = [
        f"# Database schema: {escape_controls(environment)}\n\n",
        "<!-- Generated by schemasync; a refresh rewrites this file. -->\n\n",
        f"Database `{escape_controls(database)}`, environment `{escape_controls(environment)}`. ",
        f"**{len(tables) - orphaned} tables**; {orphaned} orphaned (✓ current · ⚠ orphaned: the table is gone, ",
        "its file is kept).\n\n",
        f"Last changed by a refresh on {stamp}:",
    ]
    live = len(tables) - orphaned
    if len(news.get(NEW, [])) == live > 0 and not news.get(UPDATED) and not orphaned:
        out.append(f" first refresh: {live} tables.\n\n")  # every name is below: listing them as new says nothing
        return out
    said = False
    for status, word in ((NEW, "new"), (UPDATED, "updated"), (ORPHANED, "newly orphaned")):
        names = news.get(status, [])
        if names:
            shown = ", ".join(_code(n) for n in names[:NEWS_LIMIT])
            more = f" and {len(names) - NEWS_LIMIT} more" if len(names) > NEWS_LIMIT else ""
            out.append(f"\n- {MARKS[status]} {word}: {shown}{more}")
            said = True
    out.append("\n\n" if said else " no table changed (other objects, or the layout).\n\n")
    return out


def _index_body(records: list[Record]) -> list[str]:
    tables = [r for r in records if r.kind == "table"]
    out = []
    groups: dict[str | None, list[Record]] = {}
    for r in tables:  # one section per group of schema-notes.yaml, the rest after them
        groups.setdefault((r.details or {}).get("group"), []).append(r)
    for group in sorted(groups, key=lambda g: (g is None, g or "")):
        if len(groups) > 1:
            out.append(f"## {escape_controls(group) if group else 'Other tables'}\n\n")
        out.append(_TABLE_HEAD)
        out += [_index_row(r) for r in groups[group]]
        out.append("\n")
    out.append(f"Diagrams of the tables and their foreign keys: {_link(ERD)}.\n")
    others = [r for r in records if r.kind != "table"]
    if others:
        out.append("\n## Other objects\n\n" + _OBJECT_HEAD)
        out += [_object_row(r) for r in others]
    return out


# ---------------------------------------------------------------------------------------------
# I/O: reading the previous state, locking, and the atomic write.


class Manifest(NamedTuple):
    format: int | None
    records: list[Record]
    versions: dict  # PostgreSQL majors of the server and pg_dump
    pages: list[str]  # index and diagram pages, `_tenants.md`
    tenants: dict | None = None
    fingerprints: dict | None = None
    last_change: dict | None = None


def parse_manifest(text: str, path: Path) -> Manifest:
    """`_manifest.json`: the one reader of it (refresh, show, search, diff, history)."""
    try:
        with gcpause.paused():
            doc = json.loads(text)
            records = [Record(**item) for item in doc["files"]]
        pages = [str(p) for p in doc.get("pages") or []]
        return Manifest(
            doc.get("format"),
            records,
            doc.get("postgres") or {},
            pages,
            doc.get("tenants"),
            doc.get("fingerprints"),
            doc.get("last_change"),
        )
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise LocalError(
            f"{path}: unreadable ({exc})", hint="restore it from git, or remove it to start afresh"
        ) from None


def manifest_head(outdir: Path) -> dict:
    """The manifest's first line (its format and fingerprints, not the records), what a refresh
    needs to start the server's work while it reads the rest; {} without a manifest."""
    path = outdir / MANIFEST
    try:
        with open(path, encoding="utf-8") as fh:
            first = fh.readline()
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeDecodeError) as exc:
        raise LocalError(f"{path}: cannot read: {exc}") from None
    try:
        head = json.loads(first[:-2] + "}") if first.startswith("{") and first.endswith(",\n") else None
    except ValueError:
        head = None
    if isinstance(head, dict):
        return head
    whole = parse_manifest(_read(path) or "", path)  # not the layout render_manifest writes
    return {"format": whole.format, "fingerprints": whole.fingerprints}


def read_previous(outdir: Path, candidate_files: list[str]) -> Previous:
    prev = Previous()
    manifest = _read(outdir / MANIFEST)
    if manifest is not None:
        prev.format, records, prev.versions, prev.pages, prev.tenants, prev.fingerprints, prev.last_change = (
            parse_manifest(manifest, outdir / MANIFEST)
        )
        for rec in records:
            check_inside(outdir, rec.file)
            prev.records[rec.file] = rec
        if prev.format == FORMAT:
            prev.lines = _record_lines(manifest, records)
        for page in prev.pages:
            check_inside(outdir, page)
            if not page.startswith((INDEX_PAGES + "/", ERD_PAGES + "/")) and page not in OWN_PAGES:
                raise LocalError(f"{outdir / MANIFEST}: refusing page {page!r}: not an index or diagram page")
    # Contents only where they are compared (this run's files and ours); for the other records,
    # whether they exist is enough, and one walk of the directory tells.
    prev.present = _files_under(outdir)
    for file in {*candidate_files, *OWN_FILES, *prev.pages}:
        prev.contents[file] = _read(outdir / file) if file in prev.present else None
    return prev


def _record_lines(text: str, records: list[Record]) -> dict[int, str]:
    """The records' lines, as render_manifest wrote them (one a line); none in another layout."""
    start = text.find(_FILES_OPEN)
    if start < 0:
        return {}
    lines = text[start + len(_FILES_OPEN) :].split("\n", len(records))
    if len(lines) != len(records) + 1 or lines[-1] != _FILES_CLOSE:
        return {}
    found = {}
    for rec, line in zip(records, lines, strict=False):
        line = line.removesuffix(",")
        if not (line.startswith('{"') and line.endswith("}")):
            return {}
        found[id(rec)] = line
    return found


def read_more(prev: Previous, outdir: Path, files: list[str]) -> None:
    """Add the contents of files `read_previous` was not asked for (found only in the dump)."""
    base = str(outdir)  # joined as strings: an unchanged refresh reads every file
    for file in files:
        if file not in prev.contents:
            prev.contents[file] = _read(os.path.join(base, file)) if prev.exists(file) else None


def _files_under(outdir: Path) -> set[str]:
    """Relative paths of the files in outdir and its folders (the reference is two levels deep)."""
    found: set[str] = set()
    try:
        entries = list(os.scandir(outdir))
    except FileNotFoundError:
        return found
    for entry in entries:
        if entry.is_file():
            found.add(entry.name)
        elif entry.is_dir() and not entry.name.startswith("."):
            found.update(f"{entry.name}/{sub.name}" for sub in os.scandir(entry.path) if sub.is_file())
    return found


def _read(path: Path | str) -> str | None:
    try:
        with open(path, encoding="utf-8") as fh:  # as Path.read_text: newlines translated
            return fh.read()
    except FileNotFoundError:
        return None
    except NotADirectoryError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        raise LocalError(f"{path}: cannot read: {exc}") from None
