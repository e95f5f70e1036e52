"""What the server's discovery query returned: the selected tables and a map from every catalog
object pg_dump will print to the relation that owns it."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cached_property
from sys import intern

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
        try:
            raw = json.loads(text)
        except ValueError as exc:
            raise SplitError(f"the server's discovery output could not be read: {exc}") from exc
        return cls.from_dict(raw)

    @classmethod
    def from_dict(cls, raw: dict) -> Discovery:
        # Schema names, column names and types recur on every table: one string each (interned),
        # not one per occurrence: at 50,000 tables they are most of what this document holds.
        try:
            return cls(
                server_version=int(raw["version"]),
                database=raw["database"],
                user=raw["user"],
                tables=[_table(row) for row in raw["tables"]],
                foreign_keys=[
                    ForeignKey(s, t, tuple(c or ()), rs, rt, tuple(rc or ()), d, u, n)
                    for s, t, c, rs, rt, rc, d, u, n in raw.get("foreign_keys", [])
                ],
                relations={int(o): Relation(int(o), intern(s), n, k, int(w)) for o, s, n, k, w in raw["relations"]},
                subobjects={subobject_key(int(c), int(o)): int(r) for c, o, r in raw["subobjects"]},
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


def _table(row: list) -> Table:
    oid, schema, name, kind, count = row[:5]
    cols = tuple(Column(intern(c[0]), intern(c[1]), bool(c[2]), *c[3:4]) for c in (row[5] if len(row) > 5 else []))
    pk = tuple(row[6]) if len(row) > 6 else ()
    comment = row[7] if len(row) > 7 else None
    return Table(int(oid), intern(schema), name, kind, int(count), cols, pk, comment)
