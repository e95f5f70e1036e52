"""What differs between two versions of a table or object, by object, not by line. Pure.

Used three ways: between two environments (`diff dev prod`), between two commits of one
environment (`history`, `changes`), and between the files before and after a refresh (commit
messages). A Change holds the two values; the phrasing depends on the question.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

from schemasync.schema.model import Column, Constraint, Index, Obj, Policy, Table, Trigger
from schemasync.schema.parse import parse_file, statement_keys
from schemasync.schema.split import kind_word

COLUMN_FIELDS = ("type", "not_null", "default", "identity", "generated", "generated_kind", "collation", "comment")
CONSTRAINT_FIELDS = (
    "kind", "columns", "expression", "ref_table", "ref_columns", "on_delete", "on_update",
    "deferrable", "initially_deferred", "validated", "enforced",
)  # fmt: skip
INDEX_FIELDS = ("columns", "unique", "method", "predicate", "include")
TABLE_FIELDS = ("kind", "rls_enabled", "rls_forced", "partition_key", "inherits", "comment")


@dataclass(frozen=True)
class Change:
    table: str  # the table or object the change is in (its label)
    what: str  # column, index, constraint, foreign key, trigger, policy, partition, table, view, ...
    name: str  # the column, index, ... name ("" for the table itself)
    field: str | None  # the attribute that differs; None: the whole thing exists on one side only
    a: Any = None  # value on the first side (None: absent)
    b: Any = None

    @property
    def added(self) -> bool:
        return self.field is None and self.a is None

    @property
    def removed(self) -> bool:
        return self.field is None and self.b is None

    def subject(self) -> str:
        if self.what == "column":
            return f"{self.table}.{self.name}"
        if self.what in ("table",) or not self.name:
            return self.table
        return f"{self.what} {self.name}"

    def between(self, a: str, b: str) -> str:
        """Two environments: `users: column email_verified only in dev`,
        `users.name: type character varying(100) in dev, character varying(200) in prod`."""
        if self.field is None:
            side = a if self.b is None else b
            where = f"{self.table}: " if self.what != "table" else ""
            return f"{where}{self.what} {self.name or self.table} only in {side}"
        own = self.what == "column" or not self.name  # `users.name`, or the object itself
        prefix = self.subject() if own else f"{self.table}: {self.subject()}"
        if self.field == "definition":
            return f"{prefix}: defined differently in {a} and {b} (--text shows how)"
        return f"{prefix}: {_phrase(self.field, self.a)} in {a}, {_phrase(self.field, self.b)} in {b}"

    def step(self) -> str:
        """One commit to the next: `+ column email_verified text`, `~ column name type: a -> b`."""
        if self.field is None:
            mark, value = ("+", self.b) if self.a is None else ("-", self.a)
            detail = f" {value}" if isinstance(value, str) and value and self.what == "column" else ""
            return f"{mark} {self.what} {self.name or self.table}{detail}"
        target = f"{self.what} {self.name}" if self.name else self.what
        if self.field == "definition":
            return f"~ {target} definition"
        return f"~ {target} {self.field}: {_value(self.a)} -> {_value(self.b)}"

    def token(self) -> str:
        """A few characters for a commit subject: `+email_verified`, `~name type`, `+index users_email_idx`."""
        if self.what == "column":
            if self.field is None:
                return f"{'+' if self.a is None else '-'}{self.name}"
            return f"~{self.name} {self.field.replace('_', ' ')}"
        mark = "+" if self.added else "-" if self.removed else "~"
        return f"{mark}{self.what} {self.name}" if self.name else f"{mark}{self.field or self.what}"

    def to_data(self, text: str) -> dict[str, Any]:
        """The change as data, with its phrasing for the question asked (`between` or `step`)."""
        return {**{f.name: getattr(self, f.name) for f in fields(self)}, "text": text}


def _value(v: Any) -> str:
    if v is None:
        return "none"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, list):
        return "(" + ", ".join(str(x) for x in v) + ")"
    return str(v)


def _phrase(field: str, v: Any) -> str:
    """A value as a sentence says it: `unique`/`not unique`, `ON DELETE CASCADE`, `NOT NULL`."""
    if field == "unique":
        return "unique" if v else "not unique"
    if field == "not_null":
        return "NOT NULL" if v else "nullable"
    if field in ("on_delete", "on_update"):
        return f"ON {field[3:].upper()} {v}"
    if field in ("rls_enabled", "rls_forced", "deferrable", "validated", "enforced", "initially_deferred"):
        return f"{field.replace('_', ' ')}" if v else f"not {field.replace('_', ' ')}"
    return f"{field.replace('_', ' ')} {_value(v)}"


def compare_tables(a: Table, b: Table, label: str) -> list[Change]:
    out: list[Change] = []
    for f in TABLE_FIELDS:
        if getattr(a, f) != getattr(b, f):
            out.append(Change(label, "table", "", f, getattr(a, f), getattr(b, f)))
    out += _by_name(label, "column", a.columns, b.columns, _column_diff, lambda c: c.type)
    fks_a = [c for c in a.constraints if c.kind == "foreign key"]
    fks_b = [c for c in b.constraints if c.kind == "foreign key"]
    out += _by_name(label, "foreign key", fks_a, fks_b, _constraint_diff)
    others_a = [c for c in a.constraints if c.kind != "foreign key"]
    others_b = [c for c in b.constraints if c.kind != "foreign key"]
    out += _by_name(label, "constraint", others_a, others_b, _constraint_diff)
    out += _by_name(label, "index", a.indexes, b.indexes, _index_diff)
    out += _by_name(label, "trigger", a.triggers, b.triggers, _keyed_diff("enabled"))
    out += _by_name(label, "policy", a.policies, b.policies, _keyed_diff())
    parts_a = {p["name"]: p["bound"] for p in a.partitions}
    parts_b = {p["name"]: p["bound"] for p in b.partitions}
    for name in sorted(parts_a.keys() | parts_b.keys()):
        if name not in parts_b:
            out.append(Change(label, "partition", name, None, parts_a[name], None))
        elif name not in parts_a:
            out.append(Change(label, "partition", name, None, None, parts_b[name]))
        elif parts_a[name] != parts_b[name]:
            out.append(Change(label, "partition", name, "bound", parts_a[name], parts_b[name]))
    if sorted(a.unparsed) != sorted(b.unparsed):
        out.append(
            Change(
                label, "statement", "not understood by the parser", "text", "\n".join(a.unparsed), "\n".join(b.unparsed)
            )
        )
    return out


def compare_objects(a: Obj, b: Obj, label: str) -> list[Change]:
    what = kind_word(a.kind)
    out = []
    if a.values != b.values:
        out.append(Change(label, what, "", "values", a.values, b.values))
    elif a.key != b.key:
        out.append(Change(label, what, "", "definition", "", ""))
    if a.comment != b.comment:
        out.append(Change(label, what, "", "comment", a.comment, b.comment))
    return out


def _by_name(label: str, what: str, xs: list, ys: list, differ: Any, shown: Any = None) -> list[Change]:
    a = {x.name: x for x in xs}
    b = {y.name: y for y in ys}
    out = []
    for name in [*a, *(n for n in b if n not in a)]:
        if name not in b:
            out.append(Change(label, what, name, None, shown(a[name]) if shown else name, None))
        elif name not in a:
            out.append(Change(label, what, name, None, None, shown(b[name]) if shown else name))
        else:
            out += [Change(label, what, name, f, va, vb) for f, va, vb in differ(a[name], b[name])]
    return out


def _column_diff(a: Column, b: Column) -> list[tuple[str, Any, Any]]:
    out = []
    for f in COLUMN_FIELDS:
        va, vb = getattr(a, f), getattr(b, f)
        # expressions: the same parse tree is the same expression, however it is written
        same_tree = (f in a.keys or f in b.keys) and a.keys.get(f) == b.keys.get(f)
        if not same_tree and va != vb:
            out.append((f, va, vb))
    return out


def _constraint_diff(a: Constraint, b: Constraint) -> list[tuple[str, Any, Any]]:
    out = []
    for f in CONSTRAINT_FIELDS:
        va, vb = getattr(a, f), getattr(b, f)
        if f == "expression" and a.key == b.key:
            continue
        if va != vb:
            out.append((f, va, vb))
    return out


def _index_diff(a: Index, b: Index) -> list[tuple[str, Any, Any]]:
    if a.key == b.key:
        return []
    out = [(f, getattr(a, f), getattr(b, f)) for f in INDEX_FIELDS if getattr(a, f) != getattr(b, f)]
    return out or [("definition", "", "")]


def _keyed_diff(*extra: str) -> Any:
    def differ(a: Trigger | Policy, b: Trigger | Policy) -> list[tuple[str, Any, Any]]:
        out = [(f, getattr(a, f), getattr(b, f)) for f in extra if getattr(a, f) != getattr(b, f)]
        if a.key != b.key:
            out.append(("definition", "", ""))
        return out

    return differ


def compare_files(kind: str, schema: str | None, name: str, label: str, a: str, b: str) -> list[Change]:
    """Two versions of one file. Empty when they say the same thing (however they are laid out);
    a `definition` change when they differ in something the model does not break down."""
    if statement_keys(a) == statement_keys(b):
        return []
    old, new = parse_file(kind, schema, name, a), parse_file(kind, schema, name, b)
    if isinstance(old, Table) and isinstance(new, Table):
        found = compare_tables(old, new, label)
    else:
        found = compare_objects(old, new, label)  # type: ignore[arg-type]
    what = kind_word(kind)
    return found or [Change(label, what, "", "definition", "", "")]


def summary_tokens(changes: list[Change], limit: int = 4) -> str:
    """`(+email_verified, ~name type)` for a commit subject; `(5 changes)` past the limit."""
    tokens = list(dict.fromkeys(c.token() for c in changes))
    if not tokens:
        return ""
    if len(tokens) > limit:
        return f"({len(tokens)} changes)"
    return "(" + ", ".join(tokens) + ")"
