"""Incremental refresh: dump only what changed since the last refresh. Pure.

Discovery hashes, per file that belongs to a relation (a table with its partitions, indexes,
sequences, constraints, triggers, policies, rules and comments; a view; a sequence), the catalog
rows that file is made of, and hashes everything else a dump may print (functions, types,
schemas, extensions, roles' names, ...) as one. The manifest keeps them. The next refresh
compares: nothing differs, and nothing is dumped; some relations differ, and only they are dumped
(`pg_dump -t`), giving the files a whole dump would give; anything else, and it is a whole dump.
The decision is this module's, from the fingerprints (the server's first answer) and the
manifest; the server then dumps what it is told.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field

from schemasync.core.names import object_file, table_file
from schemasync.schema.discovery import TABLE_KINDS, Relation
from schemasync.schema.split import FOLDERS, KIND_BY_RELKIND, Piece, content_sha, definition, render_piece

# More file owners than this, and one whole dump is as quick: pg_dump looks up each -t pattern
# with a query of its own.
MAX_OWNERS = 100
FULL, NONE, PART = "full", "none", "part"
LOCAL_CHANGED = "schemasync, hosts.yaml or schema-notes.yaml changed"
# what a stamp's fingerprints are valid for: the server, the pg_dump and this tool's inputs
VALID_FOR = ("server", "pg_dump", "local")


def file_of(rel: Relation) -> str:
    """The file a file owner's statements go to (as split.py places them)."""
    if rel.relkind in TABLE_KINDS:
        return table_file(rel.schema, rel.name)
    return object_file(FOLDERS[KIND_BY_RELKIND.get(rel.relkind, "SEQUENCE")], rel.schema, rel.name)


@dataclass(frozen=True)
class Fingerprints:
    """What discovery hashed, by file, and what the hashes are valid for."""

    objects: dict[str, str]  # file -> hash of its catalog rows
    stamp: dict  # global (everything else), server, pg_dump, local (this tool and its settings)
    owners: dict[str, Relation] = field(default_factory=dict)  # file -> the relation that owns it


def fingerprints(
    doc: dict | None, server_version: int, pg_dump: str, local: str, owners: bool = True
) -> Fingerprints | None:
    """From discovery's `fingerprints` document; None when the server did not compute them.
    owners: also each file's relation (what an incremental refresh dumps; a whole one needs none)."""
    if not doc:
        return None
    objects, by_file = {}, {}
    for oid, schema, name, relkind, digest in doc["objects"]:
        rel = Relation(int(oid), schema, name, relkind, int(oid))
        file = file_of(rel)
        objects[file] = digest
        if owners:
            by_file[file] = rel
    stamp = {"global": doc["global"], "server": server_version, "pg_dump": pg_dump, "local": local}
    quick = doc.get("quick")  # computed at the fingerprints' snapshot
    if quick is not None:
        stamp["quick"] = quick  # the database-wide check the next refresh makes first
    if doc.get("since") is not None:
        stamp["since"] = doc["since"]  # where the next refresh's guess at what changed starts
    return Fingerprints(objects, stamp, by_file)


def settled(now: Fingerprints, before_stamp: dict | None, before_objects: dict[str, str]) -> Fingerprints:
    """The fingerprints to keep in the manifest. When every file's fingerprint, everything else's
    and the versions are the last refresh's, its whole stamp (quick check and `since`) is kept:
    the catalog moved only where no file looks (a table in a schema not selected, a grant the
    files do not show, a transaction that only moved `since`), and a new number in the manifest
    would be a commit that says nothing. Sound: the kept quick value is one at which these same
    fingerprints held, so the files are right whenever the quick check finds it again, and any
    other value asks for the fingerprints. (The cost: until something a file shows changes,
    each refresh computes them.) `before_objects`: the last refresh's, live files only.
    Where the files are not one per fingerprint (tenant schemas folded into one template), a stamp
    that differs only in `since` still keeps the last one's: the quick check saw nothing written."""
    if not before_stamp:
        return now
    held = all(now.stamp.get(k) == before_stamp.get(k) for k in ("global", *VALID_FOR))
    if held and "quick" in before_stamp and now.objects == before_objects:
        return Fingerprints(now.objects, dict(before_stamp), now.owners)
    stamp = {k: v for k, v in now.stamp.items() if k != "since"}
    if stamp != {k: v for k, v in before_stamp.items() if k != "since"}:
        return now  # the quick check moved, or a manifest from before it: this run's
    if "since" in before_stamp:
        stamp["since"] = before_stamp["since"]
    return Fingerprints(now.objects, stamp, now.owners)


def local_key(*parts: object) -> str:
    """A hash of this tool's own inputs (its format, the host's settings, the team's notes): when
    they change, the files may change without the database changing."""
    text = json.dumps([repr(p) for p in parts], ensure_ascii=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass
class Decision:
    kind: str  # full, none or part
    reason: str  # why a whole dump, or what is dumped
    owners: list[Relation] = field(default_factory=list)  # part: the file owners to dump

    @property
    def files(self) -> set[str]:
        return {file_of(r) for r in self.owners}

    def answer(self) -> str:
        """The line the remote step reads: `none`, `full`, or `part` and the file owners' OIDs."""
        if self.kind != PART:
            return self.kind
        return "part " + " ".join(str(r.oid) for r in self.owners)


@dataclass(frozen=True)
class Kept:
    """A file from the last refresh, as the decision needs it."""

    fp: str | None
    live: bool  # not orphaned


def quick_says_unchanged(before_stamp: dict | None, now_stamp: dict) -> bool:
    """The quick check, the versions and this tool's inputs all as at the last refresh."""
    if not before_stamp or before_stamp.get("quick") is None:
        return False
    return all(before_stamp.get(k) == now_stamp.get(k) for k in ("quick", *VALID_FOR))


def decide(
    now: Fingerprints,
    before_stamp: dict | None,
    before: dict[str, Kept],
    intact: set[str],
    edited: list[str] = (),  # type: ignore[assignment]
) -> Decision:
    """What to dump. `before`: the last refresh's files; `intact`: relation files on disk exactly as
    written; `edited`: other files (functions, types, ...) that are not: they cannot be dumped alone."""
    if not before_stamp:
        return Decision(FULL, "no fingerprints from an earlier refresh")
    for key, why in (
        ("local", LOCAL_CHANGED),
        ("server", "the server's version changed"),
        ("pg_dump", "pg_dump's version changed"),
        ("global", "something other than a table, view or sequence changed (a function, type, schema, extension, ...)"),
    ):
        if before_stamp.get(key) != now.stamp.get(key):
            return Decision(FULL, why)
    if edited:
        return Decision(FULL, f"edited by hand or removed: {', '.join(sorted(edited)[:3])}")
    live_before = {f for f, k in before.items() if k.live and _relational(f)}
    new = sorted(set(now.objects) - live_before)
    if new:
        return Decision(FULL, f"{len(new)} new: {', '.join(new[:3])}")
    gone = sorted(live_before - set(now.objects))
    if gone:
        return Decision(FULL, f"{len(gone)} gone: {', '.join(gone[:3])}")
    changed = sorted(f for f, digest in now.objects.items() if before[f].fp != digest or f not in intact)
    if not changed:
        return Decision(NONE, "nothing changed")
    if len(changed) > MAX_OWNERS:
        return Decision(FULL, f"{len(changed)} changed: one whole dump is as quick")
    return Decision(PART, f"{len(changed)} changed", [now.owners[f] for f in changed])


def _relational(file: str) -> bool:
    """Files that belong to relations: tables, views, materialized views, sequences."""
    return "/" not in file or file.split("/", 1)[0] in ("views", "materialized_views", "sequences")


def expected_header(kind: str, schema: str | None, name: str, database: str, environment: str, extra: list[str]) -> str:
    """A file's header as render_piece writes it."""
    return render_piece(Piece("", kind, schema, name), database, environment, extra)


def is_intact(text: str | None, header: str, sha: str | None) -> bool:
    """The file is exactly what the last refresh wrote: its header as it would be written now,
    then the definition whose hash the manifest keeps."""
    if text is None or sha is None or not text.startswith(header + "\n--\n"):
        return False
    lines = header.split("\n")
    if all(line.startswith("-- ") for line in lines) and len(header.splitlines()) == len(lines):
        # what definition() keeps, without splitting the whole file into lines: every header
        # line is a comment, so it starts at the "--" line
        return content_sha(text[len(header) + 1 :]) == sha
    return content_sha(definition(text)) == sha
