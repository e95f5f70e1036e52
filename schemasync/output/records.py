"""What the output directory holds, as data: the records of the files the tool owns, a
run's plan, and what the last refresh left (Previous). The names of the tool's own files.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from schemasync.core.names import display_name, escape_controls, qualified_name
from schemasync.output.erd import ERD
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


@dataclass(frozen=True, slots=True)
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


@dataclass(frozen=True, slots=True)
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


def stable_status(status: str) -> str:
    """What a row says between refreshes: the file is current, or kept for a table that is gone."""
    return ORPHANED if status == ORPHANED else CURRENT
