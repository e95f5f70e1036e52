"""What the server's discovery query returned: the selected tables and a map from every catalog
object pg_dump will print to the relation that owns it."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from json.decoder import scanstring
from sys import intern
from typing import Any

from schemasync.core import gcpause
from schemasync.core.errors import SplitError

TABLE_KINDS = frozenset("rpf")  # table, partitioned table, foreign table


@dataclass(frozen=True, slots=True)
class Relation:
    oid: int
    schema: str
    name: str
    relkind: str
    owner: int  # oid of the relation whose file holds this one (itself for tables and views)


@dataclass(frozen=True, slots=True)
class Column:
    name: str
    type: str
    not_null: bool
    comment: str | None = None


@dataclass(frozen=True, slots=True)
class ForeignKey:
    schema: str
    table: str
    columns: tuple[str, ...]
    ref_schema: str
    ref_table: str
    ref_columns: tuple[str, ...]
    on_delete: str  # pg_constraint.confdeltype: a no action, r restrict, c cascade, n set null, d set default
    on_update: str
    name: str


@dataclass(frozen=True, slots=True)
class Table:
    oid: int
    schema: str
    name: str
    relkind: str
    columns: int
    column_defs: tuple[Column, ...] = ()
    primary_key: tuple[str, ...] = ()
    comment: str | None = None

    @property
    def key(self) -> tuple[str, str]:
        return (self.schema, self.name)


@dataclass
class Discovery:
    server_version: int
    database: str
    user: str
    tables: list[Table]
    relations: dict[int, Relation]
    subobjects: dict[int, int]  # subobject_key(catalog class oid, object oid) -> relation oid
    excluded: list[tuple[str, str]] = field(default_factory=list)
    matches: list[tuple[str, str]] = field(default_factory=list)  # --table: the tables that matched
    schemas: list[str] = field(default_factory=list)  # the selected schemas
    foreign_keys: list[ForeignKey] = field(default_factory=list)  # from or to the selected tables
    max_locks: int = 0  # size of the server's shared lock table
    published: frozenset[int] = frozenset()  # relations a publication names one by one
    dependents: dict[int, list[tuple[str, str, str]]] = field(default_factory=dict)  # table oid -> (kind, schema, name)
    # every table's size class (rows, bytes: powers of ten), analyzed ones only, whatever was
    # dumped; None: the document did not say (a run the quick check ended)
    sizes: dict[tuple[str, str], tuple[int, int]] | None = None

    @cached_property
    def _by_owner(self) -> dict[int, list[Relation]]:
        index: dict[int, list[Relation]] = {}
        for rel in sorted(self.relations.values(), key=lambda r: (r.schema, r.name)):
            index.setdefault(rel.owner, []).append(rel)
        return index

    def owned_sequences(self, table: Table) -> list[Relation]:
        return [r for r in self._by_owner.get(table.oid, []) if r.relkind == "S"]

    def file_tables(self) -> dict[tuple[str, str], tuple[str, str]]:
        """(schema, name) of each partition -> that of the table whose file holds it."""
        out = {}
        for rel in self.relations.values():
            if rel.owner != rel.oid and rel.relkind in TABLE_KINDS and rel.owner in self.relations:
                owner = self.relations[rel.owner]
                out[(rel.schema, rel.name)] = (owner.schema, owner.name)
        return out

    def members(self, table: Table) -> list[Relation]:
        """The table and its partitions: what pg_dump must lock for it."""
        return [r for r in self._by_owner.get(table.oid, []) if r.relkind in TABLE_KINDS]

    @classmethod
    def from_json(cls, text: str) -> Discovery:
        return cls.from_dict(read_document(text))

    @classmethod
    def from_dict(cls, raw: dict) -> Discovery:
        # Schema names, column names and types recur on every table: one string each (interned),
        # not one per occurrence: at 50,000 tables they are most of what this document holds.
        columns: dict[tuple, Column] = {}
        try:
            return cls(
                server_version=int(raw["version"]),
                database=raw["database"],
                user=raw["user"],
                tables=[row if isinstance(row, Table) else _table(row, columns) for row in raw["tables"]],
                foreign_keys=[
                    ForeignKey(s, t, tuple(c or ()), rs, rt, tuple(rc or ()), d, u, n)
                    for s, t, c, rs, rt, rc, d, u, n in raw.get("foreign_keys", [])
                ],
                relations=_rows(raw["relations"], _relation),
                subobjects=_rows(raw["subobjects"], _subobject),
                excluded=[(s, n) for s, n in raw.get("excluded", [])],
                matches=[(s, n) for s, n in raw.get("matches", [])],
                schemas=list(raw.get("schemas", [])),
                max_locks=int(raw.get("max_locks", 0)),
                published=frozenset(int(o) for o in raw.get("published", [])),
                dependents=_dependents(raw.get("dependents", [])),
                sizes=None if raw.get("sizes") is None else {(s, n): (int(r), int(b)) for s, n, r, b in raw["sizes"]},
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise SplitError(f"the server's discovery output could not be read: {exc}") from exc


def subobject_key(classid: int, oid: int) -> int:
    """One int for a catalog object's (class, oid): a tuple of two would cost three objects."""
    return classid << 32 | oid


def _dependents(rows: list) -> dict[int, list[tuple[str, str, str]]]:
    out: dict[int, list[tuple[str, str, str]]] = {}
    for oid, kind, schema, name in rows:
        out.setdefault(int(oid), []).append((kind, schema, name))
    for deps in out.values():
        deps.sort(key=lambda d: (d[1], d[2], d[0]))
    return out


def _table(row: list, columns: dict[tuple, Column] | None = None) -> Table:
    """columns: the document's columns so far; alike ones are one Column (they are frozen)."""
    oid, schema, name, kind, count = row[:5]
    seen = {} if columns is None else columns
    cols = []
    for c in row[5] if len(row) > 5 else []:
        key = (c[0], c[1], bool(c[2]), *c[3:4])  # name, type, not null, comment
        column = seen.get(key)
        if column is None:
            column = seen[key] = Column(intern(c[0]), intern(c[1]), *key[2:])
        cols.append(column)
    pk = tuple(row[6]) if len(row) > 6 else ()
    comment = row[7] if len(row) > 7 else None
    return Table(int(oid), intern(schema), name, kind, int(count), tuple(cols), pk, comment)


# The document's big arrays: read row by row into what Discovery keeps (read_document).
def _relation(row: list) -> tuple[int, Relation]:
    oid, schema, name, relkind, owner = row
    return int(oid), Relation(int(oid), intern(schema), name, relkind, int(owner))


def _subobject(row: list) -> tuple[int, int]:
    classid, oid, relation = row
    return subobject_key(int(classid), int(oid)), int(relation)


def _rows(value: list | dict, convert: Callable[[list], tuple[int, Any]]) -> dict:
    return value if isinstance(value, dict) else dict(convert(row) for row in value)


_BLANK = re.compile(r"[ \t\n\r]*")
_DECODER = json.JSONDecoder()


def read_document(text: str) -> dict[str, Any]:
    """Discovery's document as json.loads reads it, except that its big arrays are read row by
    row into what Discovery keeps (`tables` a list of Table, `relations` and `subobjects` dicts):
    the parsed rows never exist all at once. At 50,000 tables they would be 250 MB of small
    objects, and the process keeps such memory once it has it."""
    doc: dict[str, Any] = {}
    columns: dict[tuple, Column] = {}
    rows_of: dict[str, Callable[[list], Any]] = {
        "tables": lambda row: _table(row, columns),
        "relations": _relation,
        "subobjects": _subobject,
    }
    try:
        with gcpause.paused():
            at = _expect(text, _BLANK.match(text).end(), "{")  # type: ignore[union-attr]
            while text[at] != "}":
                if doc:
                    at = _expect(text, at, ",")
                key, at = scanstring(text, _expect(text, at, '"'))
                at = _expect(text, _BLANK.match(text, at).end(), ":")  # type: ignore[union-attr]
                convert = rows_of.get(key)
                if convert is not None and text.startswith("[", at):
                    rows, at = _array(text, at, convert)
                    doc[key] = rows if key == "tables" else dict(rows)
                else:
                    doc[key], at = _DECODER.raw_decode(text, at)
                at = _BLANK.match(text, at).end()  # type: ignore[union-attr]
            if text[at + 1 :].strip():
                raise ValueError(f"extra data at {at + 1}")
    except (ValueError, IndexError, KeyError, TypeError) as exc:  # a row of the wrong shape too
        raise SplitError(f"the server's discovery output could not be read: {exc}") from exc
    return doc


def _expect(text: str, at: int, char: str) -> int:
    """Past `char` at `at` and the blanks after it."""
    if text[at] != char:
        raise ValueError(f"expected {char!r} at {at}")
    return _BLANK.match(text, at + 1).end()  # type: ignore[union-attr]


def _array(text: str, at: int, convert: Callable[[list], Any]) -> tuple[list, int]:
    out: list = []
    at = _expect(text, at, "[")
    while text[at] != "]":
        if out:
            at = _expect(text, at, ",")
        row, at = _DECODER.raw_decode(text, at)
        out.append(convert(row))
        at = _BLANK.match(text, at).end()  # type: ignore[union-attr]
    return out, at + 1
