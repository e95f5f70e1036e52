"""One environment's schema as a catalog that knows who depends on what: relations and their
columns, constraints, indexes, triggers and policies; functions, types and sequences; and every
dependency, with the file and line where the dependent names what it depends on. Built from the
files a refresh wrote (PostgreSQL's own parser reads them); `impact` and `review` query it. Pure.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from schemasync.schema.refs import Target, strings

REL_KINDS = {"table": "table", "partitioned table": "table", "view": "view", "materialized view": "materialized view"}


@dataclass
class Dependent:
    """Something that names `target`: what it is, PostgreSQL's words for it, and where it says so."""

    kind: str  # view, materialized view, function, trigger, policy, check, default, generated column,
    #            foreign key, index, partition, child table, column
    name: str  # as PostgreSQL describes it: `view open_projects`, `constraint x on table t`
    target: Target
    file: str
    line: int
    owner: tuple[str, str] | None = None  # the relation it belongs to (goes with that relation)
    checked: bool = True  # False: a body that builds SQL at run time names it, or may
    via: str = ""  # how: `when` (a trigger's WHEN), `update of` (its column list), `atomic` (a body
    #                PostgreSQL tracks), `text` (a body it does not: a rename or drop breaks it)

    def data(self) -> dict[str, Any]:
        return {"kind": self.kind, "name": self.name, "file": self.file, "line": self.line, "checked": self.checked}


@dataclass
class ColumnInfo:
    name: str
    type: str
    not_null: bool = False
    default: bool = False
    generated: bool = False
    identity: bool = False


@dataclass
class ConstraintInfo:
    name: str
    kind: str  # primary key, unique, check, foreign key, exclusion
    columns: list[str]
    ref: tuple[str, str] | None = None
    ref_columns: list[str] = field(default_factory=list)
    validated: bool = True
    not_null_check: str | None = None  # a CHECK (col IS NOT NULL): the column it proves


@dataclass
class IndexInfo:
    name: str
    columns: list[str]  # every column it reads: keys, expressions, predicate
    unique: bool = False
    constraint: str | None = None  # the primary key or unique constraint it implements


@dataclass
class Relation:
    schema: str
    name: str
    kind: str  # table, partitioned table, view, materialized view, foreign table
    file: str
    line: int
    columns: dict[str, ColumnInfo] = field(default_factory=dict)
    constraints: list[ConstraintInfo] = field(default_factory=list)
    indexes: list[IndexInfo] = field(default_factory=list)
    triggers: list[str] = field(default_factory=list)
    policies: list[str] = field(default_factory=list)
    parent: tuple[str, str] | None = None  # partition of, or first parent it inherits from
    partition: bool = False
    size: dict[str, int] | None = None  # size class: {"rows": 10**k, "bytes": 10**k}

    @property
    def key(self) -> tuple[str, str]:
        return (self.schema, self.name)


@dataclass
class Function:
    schema: str
    name: str
    args: str  # PostgreSQL's words for its argument types: `integer, text`
    language: str
    file: str
    line: int
    returns_trigger: bool = False
    volatile: bool = True  # PostgreSQL's default; STABLE and IMMUTABLE say otherwise
    atomic: bool = False  # BEGIN ATOMIC: PostgreSQL tracks what it uses, and follows renames
    dynamic: list[int] = field(default_factory=list)  # lines that build SQL at run time
    outline: bool = False  # known by name only (its file was not read): what it does is not known

    @property
    def signature(self) -> str:
        return f"{pg_name(self.schema, self.name)}({self.args})"


@dataclass
class Catalog:
    relations: dict[tuple[str, str], Relation] = field(default_factory=dict)
    functions: dict[tuple[str, str], list[Function]] = field(default_factory=lambda: defaultdict(list))
    types: dict[tuple[str, str], str] = field(default_factory=dict)  # enum, domain, composite, range
    enum_values: dict[tuple[str, str], list[str]] = field(default_factory=dict)
    sequences: dict[tuple[str, str], str] = field(default_factory=dict)  # -> file
    dependents: list[Dependent] = field(default_factory=list)
    # (table, function, trigger's words, file, line): which tables' rows a trigger function sees
    trigger_functions: list[tuple] = field(default_factory=list)
    # (function, column, file, line): NEW.col / OLD.col in a trigger function's body
    row_columns: list[tuple] = field(default_factory=list)

    def resolve(self, schema: str | None, name: str) -> tuple[str, str] | None:
        """A relation or sequence as named in SQL: qualified, or looked up on `public` first."""
        if schema:
            key = (schema, name)
            return key if key in self.relations or key in self.sequences else None
        for key in (("public", name), *(k for k in self.relations if k[1] == name)):
            if key in self.relations or key in self.sequences:
                return key
        return None

    def columns_of(self, rel: tuple[str, str]) -> frozenset[str]:
        r = self.relations.get(rel)
        return frozenset(r.columns) if r else frozenset()


def pg_name(schema: str | None, name: str) -> str:
    """How PostgreSQL's messages name an object: unqualified when it is on the search path."""
    return name if schema in (None, "public", "") else f"{schema}.{name}"


def rel_word(kind: str) -> str:
    return {"partitioned table": "table", "foreign table": "foreign table"}.get(kind, kind)


TYPE_WORDS = {
    "int4": "integer", "int8": "bigint", "int2": "smallint", "float8": "double precision", "float4": "real",
    "bool": "boolean", "varchar": "character varying", "bpchar": "character", "timestamptz":
    "timestamp with time zone", "timestamp": "timestamp without time zone", "timetz": "time with time zone",
    "time": "time without time zone",
}  # fmt: skip


def type_text(type_name: dict) -> str:
    """A TypeName as PostgreSQL's messages write it: `integer`, `character varying(80)`, `project_status`."""
    names = strings(type_name.get("names"))
    schema, base = (names[-2] if len(names) > 1 else None), names[-1]
    word = TYPE_WORDS.get(base, base) if schema in (None, "pg_catalog") else pg_name(schema, base)
    mods = [str(m["A_Const"]["ival"].get("ival", 0)) for m in type_name.get("typmods") or [] if "A_Const" in m]
    text = f"{word}({','.join(mods)})" if mods else word
    return text + "[]" * len(type_name.get("arrayBounds") or [])


@dataclass
class SourceFile:
    """A file of the reference, as the manifest lists it."""

    kind: str  # table, views, functions, types, sequences, materialized_views, other
    schema: str | None
    name: str
    file: str
    text: str


def parse_tree(text: str) -> list[dict]:
    from pglast.parser import ParseError, parse_sql_json

    try:
        return json.loads(parse_sql_json(text)).get("stmts", [])
    except ParseError:
        return []


class LineOf:
    """Offsets in a file's text (bytes, as the parser counts them) to line numbers: counted when
    asked, since most statements of a file are never asked about."""

    def __init__(self, text: str) -> None:
        self.data = text.encode()

    def __call__(self, offset: int) -> int:
        return self.data.count(b"\n", 0, max(offset, 0)) + 1


def impact_targets(catalog: Catalog, target: Target) -> list[Target]:
    """What a target stands for: a table's columns count as the table, a view's as the view."""
    if target[0] == "relation":
        return [target] + [("column", target[1], target[2], c) for c in catalog.columns_of((target[1], target[2]))]
    return [target]


def dependents_of(catalog: Catalog, target: Target, transitive: bool = True) -> list[tuple[Dependent, int]]:
    """Everything that depends on target, with its depth (1: names it directly). A view or function
    that depends on it is followed: what depends on them depends on the target too."""
    index: dict[Target, list[Dependent]] = defaultdict(list)
    for d in catalog.dependents:
        index[d.target].append(d)
    seen: set[tuple[str, str, int]] = set()
    out: list[tuple[Dependent, int]] = []
    frontier = [(t, 1) for t in impact_targets(catalog, target)]
    while frontier:
        t, depth = frontier.pop(0)
        for d in index.get(t, []):
            key = (d.name, d.file, d.line)
            if key in seen:
                continue
            seen.add(key)
            out.append((d, depth))
            follow = _followed(d)
            if transitive and follow:
                frontier.extend((ft, depth + 1) for ft in impact_targets(catalog, follow))
    return out


def _followed(d: Dependent) -> Target | None:
    if d.kind in ("view", "materialized view") and d.owner:
        return ("relation", *d.owner)
    if d.kind == "function" and d.owner:
        return ("function", *d.owner)
    return None


def target_of(catalog: Catalog, name: str) -> Target | None:
    """`users`, `public.users`, `users.email`, `project_status`, `touch_updated_at`: what it names."""
    parts = _split_name(name)
    candidates: list[Target] = []
    if len(parts) <= 2:
        rel = catalog.resolve(parts[0] if len(parts) == 2 else None, parts[-1])
        if rel and rel in catalog.relations:
            candidates.append(("relation", *rel))
        elif rel:
            candidates.append(("sequence", *rel))
        schema = parts[0] if len(parts) == 2 else None
        for kind, pool in (("type", catalog.types), ("function", catalog.functions)):
            found = [k for k in pool if k[1] == parts[-1] and (schema is None or k[0] == schema)]
            candidates += [(kind, *k) for k in found[:1]]
    if not candidates and len(parts) in (2, 3):
        rel = catalog.resolve(parts[0] if len(parts) == 3 else None, parts[-2])
        if rel and parts[-1] in catalog.columns_of(rel):
            candidates.append(("column", *rel, parts[-1]))
    return candidates[0] if candidates else None


def _split_name(name: str) -> list[str]:
    out, cur, quoted = [], "", False
    for ch in name.strip():
        if ch == '"':
            quoted = not quoted
        elif ch == "." and not quoted:
            out.append(cur)
            cur = ""
        else:
            cur += ch
    return [*out, cur]
