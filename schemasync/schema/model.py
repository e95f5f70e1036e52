"""The schema model: a table (columns, keys, constraints, indexes, triggers, policies,
partitions) or another object, as parse.py reads it from the files. Plain data.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

MODEL_FORMAT = 1


FK_ACTIONS = {"a": "NO ACTION", "r": "RESTRICT", "c": "CASCADE", "n": "SET NULL", "d": "SET DEFAULT"}


CONSTRAINT_KINDS = {
    "CONSTR_PRIMARY": "primary key",
    "CONSTR_UNIQUE": "unique",
    "CONSTR_CHECK": "check",
    "CONSTR_EXCLUSION": "exclusion",
    "CONSTR_FOREIGN": "foreign key",
    "CONSTR_NOTNULL": "not null",
}


@dataclass
class Column:
    name: str
    type: str
    not_null: bool = False
    default: str | None = None
    identity: str | None = None  # "always" or "by default"
    generated: str | None = None  # the expression of a generated column
    generated_kind: str | None = None  # "stored" or "virtual"
    collation: str | None = None
    comment: str | None = None
    keys: dict[str, str] = field(default_factory=dict, repr=False, compare=False)  # parse-tree keys


@dataclass
class Constraint:
    name: str
    kind: str  # primary key, unique, check, exclusion, foreign key, not null
    columns: list[str] = field(default_factory=list)
    expression: str | None = None  # check; exclusion: its elements
    ref_table: str | None = None
    ref_columns: list[str] = field(default_factory=list)
    on_delete: str | None = None
    on_update: str | None = None
    deferrable: bool = False
    initially_deferred: bool = False
    validated: bool = True
    enforced: bool = True
    key: str = field(default="", repr=False, compare=False)


@dataclass
class Index:
    name: str
    columns: list[str]  # column names or expressions, as written
    unique: bool = False
    method: str = "btree"
    predicate: str | None = None
    include: list[str] = field(default_factory=list)
    key: str = field(default="", repr=False, compare=False)


@dataclass
class Trigger:
    name: str
    timing: str  # BEFORE, AFTER, INSTEAD OF
    events: list[str]
    level: str  # ROW or STATEMENT
    function: str
    when: str | None = None
    enabled: str = "enabled"  # enabled, disabled, replica, always
    key: str = field(default="", repr=False, compare=False)


@dataclass
class Policy:
    name: str
    command: str
    permissive: bool
    roles: list[str]
    using: str | None = None
    check: str | None = None
    key: str = field(default="", repr=False, compare=False)


@dataclass
class Table:
    schema: str
    name: str
    kind: str = "table"  # table, partitioned table, foreign table
    columns: list[Column] = field(default_factory=list)
    constraints: list[Constraint] = field(default_factory=list)
    indexes: list[Index] = field(default_factory=list)
    triggers: list[Trigger] = field(default_factory=list)
    policies: list[Policy] = field(default_factory=list)
    rls_enabled: bool = False
    rls_forced: bool = False
    partition_key: str | None = None
    partitions: list[dict[str, str]] = field(default_factory=list)  # {"name", "bound"}
    inherits: list[str] = field(default_factory=list)
    comment: str | None = None
    owned_sequences: list[str] = field(default_factory=list)
    unparsed: list[str] = field(default_factory=list)  # statements the parser does not know

    def column(self, name: str) -> Column | None:
        return next((c for c in self.columns if c.name == name), None)

    @property
    def primary_key(self) -> list[str]:
        return next((c.columns for c in self.constraints if c.kind == "primary key"), [])


@dataclass
class Obj:
    """A view, function, type or sequence: compared by its parse tree, shown by its text."""

    kind: str
    schema: str | None
    name: str
    values: list[str] = field(default_factory=list)  # an enum's labels
    comment: str | None = None
    key: str = field(default="", repr=False, compare=False)
    unparsed: list[str] = field(default_factory=list)


def to_data(item: Table | Obj) -> dict[str, Any]:
    """The documented JSON shape (README: schema model): dataclass fields, keys left out."""

    def clean(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: clean(v) for k, v in value.items() if k not in ("key", "keys")}
        if isinstance(value, list):
            return [clean(v) for v in value]
        return value

    data = clean(asdict(item))
    data["model"] = "table" if isinstance(item, Table) else "object"
    return data
