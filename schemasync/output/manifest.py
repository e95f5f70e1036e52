"""`_manifest.json`: written one record a line (diff-friendly, and quick to write and read),
read back whole or, before a refresh, its first line alone; and the files on disk it names.
"""

from __future__ import annotations

import json
import os
from dataclasses import fields
from operator import attrgetter
from pathlib import Path
from typing import NamedTuple

from schemasync.core import gcpause
from schemasync.core.errors import LocalError
from schemasync.output.erd import ERD_PAGES
from schemasync.output.pages import INDEX_PAGES
from schemasync.output.records import (
    FORMAT,
    MANIFEST,
    NEW,
    ORPHANED,
    OWN_FILES,
    OWN_PAGES,
    UPDATED,
    Previous,
    Record,
    stable_status,
)
from schemasync.output.transaction import check_inside


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
    parts = [head[:-1], ',\n"last_change": ', change, _FILES_OPEN]
    for i, r in enumerate(records):
        if i:
            parts.append(",\n")
        parts.append(kept.get(id(r)) or json.dumps(_record_data(r), ensure_ascii=False, sort_keys=True))
    parts += ["\n", _FILES_CLOSE]
    return "".join(parts)  # one join: the text is made once (a + b + ... would copy it at each +)


_FILES_OPEN, _FILES_CLOSE = ',\n"files": [\n', "]}\n"


_RECORD_FIELDS = tuple(f.name for f in fields(Record))
_record_values = attrgetter(*_RECORD_FIELDS)


def _record_data(r: Record) -> dict:
    data = dict(zip(_RECORD_FIELDS, _record_values(r), strict=True))
    data["status"] = stable_status(r.status)
    if data["fp"] is None:
        del data["fp"]  # objects that are not relations have none
    return data


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
