"""Incremental refresh: dump only what changed since the last refresh. Pure.

Discovery hashes, per file that belongs to a relation (a table with its partitions, indexes,
sequences, constraints, triggers, policies, rules and comments; a view; a sequence), the catalog
rows that file is made of, and hashes everything else a dump may print (functions, types,
schemas, extensions, roles' names, ...) as one. The manifest keeps them. The next refresh
compares: nothing differs, and nothing is dumped; some relations differ, and only they are dumped
(`pg_dump -t`), giving the files a whole dump would give; anything else, and it is a whole dump.
The decision is this module's, from discovery's document and the manifest; the server only
answers it.
"""

from __future__ import annotations

import hashlib
import json
import shlex
from dataclasses import dataclass, field

from .discovery import TABLE_KINDS, Discovery, Relation
from .names import object_file, table_file
from .split import FOLDERS, KIND_BY_RELKIND, Piece, render_piece
from .store import content_sha, definition

# More relations to dump than this and one whole dump is as quick: pg_dump looks up each -t
# pattern with a query of its own.
MAX_PATTERNS = 100
FULL, NONE, PART = "full", "none", "part"
LOCAL_CHANGED = "schemasync, hosts.yaml or schema-notes.yaml changed"


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


def fingerprints(meta: dict, discovery: Discovery, pg_dump: str, local: str) -> Fingerprints | None:
    """From discovery's document; None when the server did not compute them."""
    fp = meta.get("fingerprints")
    if not fp:
        return None
    objects, owners = {}, {}
    for oid, digest in fp["objects"]:
        rel = discovery.relations.get(int(oid))
        if rel is not None:
            objects[file_of(rel)] = digest
            owners[file_of(rel)] = rel
    stamp = {"global": fp["global"], "server": discovery.server_version, "pg_dump": pg_dump, "local": local}
    return Fingerprints(objects, stamp, owners)


def local_key(*parts: object) -> str:
    """A hash of this tool's own inputs (its format, the host's settings, the team's notes): when
    they change, the files may change without the database changing."""
    text = json.dumps([repr(p) for p in parts], ensure_ascii=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass
class Decision:
    kind: str  # full, none or part
    reason: str  # why a whole dump, or what is dumped
    files: set[str] = field(default_factory=set)  # part: the files dumped
    owners: list[Relation] = field(default_factory=list)  # part: their relations

    def answer(self, discovery: Discovery) -> str:
        """The line the remote step reads: `none`, `full`, or `part` and pg_dump's -t arguments."""
        if self.kind != PART:
            return self.kind
        words = []
        for owner in self.owners:
            for rel in relations_of(discovery, owner):
                words += ["-t", _pattern(rel)]
        return "part " + " ".join(shlex.quote(w) for w in words)


def relations_of(discovery: Discovery, owner: Relation) -> list[Relation]:
    """What `pg_dump -t` must name for a file: a table and its partitions (their indexes and
    owned sequences come with them), or the view or sequence itself."""
    if owner.relkind not in TABLE_KINDS:
        return [owner]
    return [r for r in discovery.by_owner(owner.oid) if r.relkind in TABLE_KINDS]


def _pattern(rel: Relation) -> str:
    return '"' + rel.schema.replace('"', '""') + '"."' + rel.name.replace('"', '""') + '"'


@dataclass(frozen=True)
class Kept:
    """A file from the last refresh, as the decision needs it."""

    fp: str | None
    details: dict | None
    sha: str | None  # of its definition, as written
    live: bool  # not orphaned


def decide(
    discovery: Discovery,
    now: Fingerprints,
    before_stamp: dict | None,
    before: dict[str, Kept],
    details: dict[str, dict | None],
    intact: set[str],
    edited: list[str] = (),  # type: ignore[assignment]
) -> Decision:
    """What to dump. `before`: the last refresh's files; `details`: this discovery's details by
    file (for tables; None for views and sequences); `intact`: files on disk exactly as written."""
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
    changed = set()
    for file, digest in now.objects.items():
        kept = before[file]
        if kept.fp != digest or kept.details != details.get(file) or file not in intact:
            changed.add(file)
    if not changed:
        return Decision(NONE, "nothing changed")
    owners = sorted((now.owners[f] for f in changed), key=lambda r: (r.schema, r.name))
    if sum(len(relations_of(discovery, r)) for r in owners) > MAX_PATTERNS:
        return Decision(FULL, f"{len(changed)} changed: one whole dump is as quick")
    return Decision(PART, f"{len(changed)} changed", changed, owners)


def _relational(file: str) -> bool:
    """Files that belong to relations: tables, views, materialized views, sequences."""
    return "/" not in file or file.split("/", 1)[0] in ("views", "materialized_views", "sequences")


def expected_header(kind: str, schema: str | None, name: str, database: str, environment: str, extra: list[str]) -> str:
    """A file's header as render_piece writes it."""
    return render_piece(Piece("", kind, schema, name), database, environment, extra)


def is_intact(text: str | None, header: str, sha: str | None) -> bool:
    """The file is exactly what the last refresh wrote: its header as it would be written now,
    then the definition whose hash the manifest keeps."""
    return (
        text is not None
        and sha is not None
        and text.startswith(header + "\n--\n")
        and content_sha(definition(text)) == sha
    )
