"""pg_dump plain text (made with `-v`) into one piece per table and per free-standing object.

Pure: text and discovery in, file contents out. Linear in the size of the dump.

Ownership comes from the catalog, not from parsing names: `pg_dump -v` heads every entry with
`-- TOC entry N (class C OID O)`, and discovery maps (C, O) to the relation that owns it. Entries
without a catalog identity (comments, OWNED BY, ATTACH) follow the entry they depend on, or for
ATTACH the parent named in the statement. The `-- Name:` header is only used for objects that
belong to no table, and never to decide where a table's statements go.

The result is checked before anything is written: the parsed pieces must put the dump back
together byte for byte, every discovered table must have its CREATE, and every entry must land in
exactly one file. The one stated exception comes after the split: secrets in entries' bodies are
replaced by a marker (redact.py) before anything is rendered.
"""

from __future__ import annotations

import hashlib
import re
import sys
from dataclasses import dataclass, field

from schemasync.core.errors import SplitError
from schemasync.core.names import display_name, escape_controls, object_file, other_file, qualified_name, table_file
from schemasync.schema.discovery import TABLE_KINDS, Discovery, Table, subobject_key

PG_CLASS = 1259
# Catalogs whose rows belong to one relation, as mapped by discovery's "subobjects".
RELATION_CHILD_CLASSES = frozenset({2604, 2606, 2618, 2620, 3256})  # attrdef, constraint, rule, trigger, policy
# Entry types that are part of another entry and follow it through their dependencies.
ATTACHED_TYPES = frozenset(
    {
        "COMMENT",
        "SECURITY LABEL",
        "ACL",
        "SEQUENCE OWNED BY",
        "ROW SECURITY",
        "DEFAULT",
        "CONSTRAINT",
        "CHECK CONSTRAINT",
        "FK CONSTRAINT",
        "INDEX",
        "TRIGGER",
        "POLICY",
        "RULE",
        "TABLE ATTACH",
        "INDEX ATTACH",
    }
)
FOLDERS = {
    "VIEW": "views",
    "MATERIALIZED VIEW": "materialized_views",
    "FUNCTION": "functions",
    "PROCEDURE": "functions",
    "AGGREGATE": "functions",
    "TYPE": "types",
    "DOMAIN": "types",
    "SEQUENCE": "sequences",
}
KIND_LABELS = {
    "table": "table",
    "views": "view",
    "materialized_views": "materialized view",
    "functions": "function",
    "types": "type",
    "sequences": "sequence",
    "other": "",
}
KIND_BY_RELKIND = {"v": "VIEW", "m": "MATERIALIZED VIEW", "S": "SEQUENCE"}


def kind_word(kind: str) -> str:
    """`table`, `view`, `type`, ... for a record's kind (its folder); `object` for other/."""
    return KIND_LABELS.get(kind) or "object"


_TOC = re.compile(r"-- TOC entry (\d+) \(class (\d+) OID (\d+)\)\n")
_DEPS = re.compile(r"-- Dependencies: ([\d ]+)\n")
_NAME = re.compile(r"-- Name: (.*); Type: (.*?); Schema: (.*?); Owner: (.*)\n")
# Session settings pg_dump prints between entries when they change; they describe the session,
# and which entry they precede depends on dump order, so they are tracked, not copied.
_SESSION_SET = re.compile(r"SET (default_tablespace|default_table_access_method) = (.*);\n")
_DEFAULT_SETTINGS = {"default_tablespace": "''", "default_table_access_method": "heap"}
_PREAMBLE_LINE = re.compile(
    r"(--.*|\\restrict .*|SET [a-z_]+ = .*;|SELECT pg_catalog\.set_config\('search_path', '', false\);)?\n"
)
_TRAILER_LINE = re.compile(r"(--.*|\\unrestrict .*)?\n")


@dataclass(slots=True)
class Entry:
    dump_id: int
    classid: int
    oid: int
    deps: tuple[int, ...]
    tag: str
    type: str
    schema: str | None
    name_line: str  # the `-- Name:` line, kept in the output for readers
    body: str  # the statements, without surrounding blank lines
    settings: tuple[tuple[str, str], ...] = ()  # non-default session settings in force for it


@dataclass
class Piece:
    """One output file: a table with everything that belongs to it, or one free-standing object."""

    path: str
    kind: str  # "table" or the folder name for other objects
    schema: str | None
    name: str
    entries: list[Entry] = field(default_factory=list)
    table: Table | None = None


@dataclass
class SplitResult:
    pieces: dict[str, Piece]  # path -> piece


_ENTRY_START = re.compile(r"^--\n-- TOC entry ", re.M)
_ENTRY_HEADER = re.compile(
    r"--\n-- TOC entry (\d+) \(class (\d+) OID (\d+)\)\n(?:-- Dependencies: ([\d ]+)\n)?(-- Name: .*\n)--\n"
)


def parse_dump(text: str) -> list[Entry]:
    """Cut the dump into entries; fail if anything outside them is not known session noise.

    Works on offsets into the text: only the preamble, the trailer and the few lines around each
    entry's header are looked at line by line (a list of every line would triple the memory)."""
    if not text.endswith("\n"):
        raise SplitError("the dump is truncated (it does not end with a newline)")
    starts = [m.start() for m in _ENTRY_START.finditer(text)]
    last_start = starts[-1] if starts else 0
    tail = text[last_start:].splitlines(keepends=True)
    end = last_start + sum(len(line) for line in tail[: _trailer_start(tail, 0)])
    preamble = text[: starts[0] if starts else end].splitlines(keepends=True)
    for line in preamble:
        if not _PREAMBLE_LINE.fullmatch(line):
            raise SplitError(f"unexpected line before the first dump entry: {line[:80]!r}")
    trailer = text[end:].splitlines(keepends=True)
    for line in trailer:
        if not _TRAILER_LINE.fullmatch(line):
            raise SplitError(f"unexpected line after the last dump entry: {line[:80]!r}")
    if not any(line.startswith("-- PostgreSQL database dump complete") for line in trailer):
        raise SplitError("the dump is incomplete: pg_dump's closing line is missing")

    settings = dict(_DEFAULT_SETTINGS)
    _apply_settings(preamble, settings)
    entries: list[Entry] = []
    for k, start in enumerate(starts):
        stop = starts[k + 1] if k + 1 < len(starts) else end
        entry, trailing = _parse_entry(text, start, stop, settings)
        entries.append(entry)
        _apply_settings(trailing, settings)
    return entries


def _trailer_start(lines: list[str], last_start: int) -> int:
    """Index of the first line after the last entry: pg_dump's closing comments."""
    marker = None
    for i in range(len(lines) - 1, last_start, -1):
        if lines[i].startswith("-- Completed on "):  # -v only; comes first, so it wins
            marker = i
            break
        if marker is None and lines[i] == "--\n" and lines[i + 1 : i + 2] == ["-- PostgreSQL database dump complete\n"]:
            marker = i
    if marker is None:
        raise SplitError("the dump is incomplete: pg_dump's closing lines are missing")
    while marker > last_start and lines[marker - 1] == "\n":
        marker -= 1
    return marker


def _apply_settings(lines: list[str], settings: dict[str, str]) -> None:
    for line in lines:
        m = _SESSION_SET.fullmatch(line)
        if m:
            settings[m.group(1)] = m.group(2)


def _parse_entry(text: str, start: int, stop: int, settings: dict[str, str]) -> tuple[Entry, list[str]]:
    """The entry in text[start:stop], which begins with "--\n-- TOC entry "."""
    header = _ENTRY_HEADER.match(text, start, stop)
    if not header or not _NAME.fullmatch(header.group(5)):
        _header_error(text, start, stop)
    assert header is not None
    name_line = header.group(5)
    deps = tuple(int(d) for d in header.group(4).split()) if header.group(4) else ()
    tag, etype, schema, _owner = _split_name_line(name_line)
    # Trailing session settings belong to the next entry; blank lines are layout.
    first, last = header.end(), stop
    while last > first:
        if text[last - 1] == "\n" and (last - 1 == first or text[last - 2] == "\n"):
            last -= 1  # a blank line
            continue
        line_start = max(text.rfind("\n", first, last - 1) + 1, first)
        if not (text.startswith("SET ", line_start) and _SESSION_SET.fullmatch(text, line_start, last)):
            break
        last = line_start
    trailing = text[last:stop].splitlines(keepends=True) if "SET " in text[last:stop] else []
    while first < last and text[first] == "\n":
        first += 1
    relevant = ("default_tablespace", "default_table_access_method")
    entry = Entry(
        dump_id=int(header.group(1)),
        classid=int(header.group(2)),
        oid=int(header.group(3)),
        deps=deps,
        tag=tag,
        type=sys.intern(etype),  # a few words, each on hundreds of thousands of entries
        schema=None if schema == "-" else sys.intern(schema),
        name_line=name_line,
        body=text[first:last],
        settings=tuple((k, settings[k]) for k in relevant if settings[k] != _DEFAULT_SETTINGS[k]),
    )
    return entry, trailing


def _header_error(text: str, start: int, stop: int) -> None:
    """Say what is wrong with an entry header that `_ENTRY_HEADER` did not match."""
    lines = text[start : min(stop, start + 4096)].splitlines(keepends=True)[1:4]
    if not lines or not _TOC.fullmatch(lines[0]):
        raise SplitError(f"bad TOC line: {(lines or [''])[0][:80]!r}")
    name = lines[2] if len(lines) > 2 and _DEPS.fullmatch(lines[1]) else lines[1] if len(lines) > 1 else ""
    raise SplitError(f"bad entry header near: {name[:80]!r}")


def _split_name_line(line: str) -> tuple[str, str, str, str]:
    # Split from the right: a tag may contain "; Type: " but the fields after it come from
    # pg_dump's fixed vocabulary (type, schema name, "-").
    rest = line[len("-- Name: ") : -1]
    rest, _, owner = rest.rpartition("; Owner: ")
    rest, _, schema = rest.rpartition("; Schema: ")
    tag, _, etype = rest.rpartition("; Type: ")
    return tag, etype, schema, owner


class _Resolver:
    """Decides which piece each entry belongs to."""

    def __init__(self, entries: list[Entry], discovery: Discovery, pieces: dict[str, Piece]) -> None:
        self.d = discovery
        self.by_id = {e.dump_id: e for e in entries}
        self.tables = {t.oid: t for t in discovery.tables}
        self.by_name = {(r.schema, r.name): r for r in discovery.relations.values()}
        self.pieces = pieces  # shared by the dumps of a batched run
        self.memo: dict[int, Piece] = {}

    def piece_for_relation(self, oid: int) -> Piece:
        rel = self.d.relations.get(oid)
        if rel is None:
            raise SplitError(
                f"the dump holds relation OID {oid}, which discovery did not see",
                hint="the schema changed while the refresh ran; run it again",
            )
        owner = self.d.relations.get(rel.owner, rel)
        table = self.tables.get(owner.oid)
        if table is not None:
            path = table_file(table.schema, table.name)
            return self._piece(path, "table", table.schema, table.name, table)
        if owner.relkind in TABLE_KINDS:
            raise SplitError(f"{qualified_name(owner.schema, owner.name)} is in the dump but was not selected")
        kind = KIND_BY_RELKIND.get(owner.relkind, "SEQUENCE")
        folder = FOLDERS[kind]
        return self._piece(object_file(folder, owner.schema, owner.name), folder, owner.schema, owner.name)

    def _piece(self, path: str, kind: str, schema: str | None, name: str, table: Table | None = None) -> Piece:
        piece = self.pieces.get(path)
        if piece is None:
            piece = self.pieces[path] = Piece(path, kind, schema, name, table=table)
        return piece

    def resolve(self, entry: Entry, depth: int = 0) -> Piece:
        cached = self.memo.get(entry.dump_id)
        if cached is not None:
            return cached
        if depth > 50:
            raise SplitError(f"dependency loop at dump entry {entry.dump_id}")
        piece = self._resolve(entry, depth)
        self.memo[entry.dump_id] = piece
        return piece

    def _resolve(self, entry: Entry, depth: int) -> Piece:
        if entry.classid == PG_CLASS:
            return self.piece_for_relation(entry.oid)
        if entry.classid in RELATION_CHILD_CLASSES:
            relid = self.d.subobjects.get(subobject_key(entry.classid, entry.oid))
            if relid is not None:
                return self.piece_for_relation(relid)
        if entry.type in ATTACHED_TYPES:
            for dep in entry.deps:
                target = self.by_id.get(dep)
                if target is not None:
                    return self.resolve(target, depth + 1)
            if entry.type in ("TABLE ATTACH", "INDEX ATTACH"):
                return self.piece_for_relation(self._attach_parent(entry))
            raise SplitError(f"cannot tell what {entry.type} {escape_controls(entry.tag)!r} belongs to")
        folder = FOLDERS.get(entry.type, "other")
        if folder == "other":
            name = f"{entry.type.lower()} {entry.tag}"
            return self._piece(other_file(entry.type, entry.schema, entry.tag), folder, entry.schema, name)
        name = entry.tag
        if folder == "functions":
            # Overloads share one file: readers look for functions/<name>.sql.
            name = entry.tag.split("(", 1)[0]
        return self._piece(object_file(folder, entry.schema, name), folder, entry.schema, name)

    def _attach_parent(self, entry: Entry) -> int:
        # "ALTER TABLE ONLY parent ATTACH PARTITION child ..." / "ALTER INDEX parent ATTACH PARTITION child;"
        m = re.match(r"ALTER (?:TABLE ONLY|INDEX) ", entry.body)
        if not m:
            raise SplitError(f"unexpected {entry.type} statement: {entry.body[:80]!r}")
        schema, name, _ = parse_qualified(entry.body, m.end())
        rel = self.by_name.get((schema, name))
        if rel is None:
            raise SplitError(
                f"{entry.type}: parent {qualified_name(schema, name)} is not among the discovered relations"
            )
        return rel.oid


def parse_qualified(text: str, pos: int) -> tuple[str, str, int]:
    """Read `schema.name` (each part plain or double-quoted) at pos; return both and the end."""
    parts = []
    for _ in range(2):
        if text.startswith('"', pos):
            end = pos + 1
            out = []
            while True:
                q = text.find('"', end)
                if q < 0:
                    raise SplitError("unterminated quoted identifier in the dump")
                out.append(text[end:q])
                if text.startswith('"', q + 1):
                    out.append('"')
                    end = q + 2
                    continue
                pos = q + 1
                break
            parts.append("".join(out))
        else:
            m = re.compile(r"[A-Za-z_\x80-\U0010ffff][A-Za-z0-9_$\x80-\U0010ffff]*").match(text, pos)
            if not m:
                raise SplitError(f"expected an identifier in: {text[pos : pos + 60]!r}")
            parts.append(m.group(0).lower())
            pos = m.end()
        if len(parts) == 1:
            if not text.startswith(".", pos):
                raise SplitError(f"expected a schema-qualified name in: {text[:80]!r}")
            pos += 1
    return parts[0], parts[1], pos


def split_dump(text: str | list[str], discovery: Discovery) -> SplitResult:
    """Split one dump, or the dumps of a batched run (each with its own TOC numbering; the list
    is used up)."""
    texts = [text] if isinstance(text, str) else text
    texts.reverse()
    pieces: dict[str, Piece] = {}
    entries: list[Entry] = []
    while texts:  # taken from the list: each dump's text goes once its entries hold what they need
        parsed = parse_dump(texts.pop())
        resolver = _Resolver(parsed, discovery, pieces)
        for entry in parsed:
            resolver.resolve(entry).entries.append(entry)
        entries += parsed

    seen_tables = {e.oid for e in entries if e.classid == PG_CLASS and e.type in ("TABLE", "FOREIGN TABLE")}
    missing = [t for t in discovery.tables if t.oid not in seen_tables]
    if missing:
        names = ", ".join(display_name(t.schema, t.name) for t in missing[:10])
        raise SplitError(
            f"{len(missing)} selected table(s) are missing from the dump: {names}",
            hint="the schema changed while the refresh ran, or pg_dump skipped them; run it again",
        )
    return SplitResult(pieces)


def content_sha(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def definition(text: str) -> str:
    """A file without its header (which names the table, environment, database and references)."""
    lines = text.splitlines(keepends=True)
    i = 0
    while i < len(lines) and lines[i].startswith("-- "):
        i += 1
    return "".join(lines[i:]).lstrip("\n")


def render_piece(piece: Piece, database: str, environment: str, extra_header: list[str] | None = None) -> str:
    """A file's text: a short stable header, then the entries in dump order."""
    if piece.kind == "table":
        title = f"-- Table: {qualified_name(piece.schema or 'public', piece.name)}\n"
    else:
        name = qualified_name(piece.schema, piece.name) if piece.schema else escape_controls(piece.name)
        title = f"-- {KIND_LABELS[piece.kind].capitalize() or 'Object'}: {name}\n"
    out = [
        title,
        f"-- Database: {escape_controls(database)} (environment: {escape_controls(environment)})\n",
        "-- Generated by schemasync from pg_dump --schema-only; a refresh overwrites this file.\n",
        *(extra_header or []),
    ]
    for entry in piece.entries:
        out.append("\n--\n")
        out.append(entry.name_line)
        out.append("--\n\n")
        for key, value in entry.settings:
            out.append(f"SET {key} = {value};\n")
        out.append(entry.body)
    return "".join(out)
