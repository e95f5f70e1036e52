"""A migration applied, statement by statement, to one environment's catalog: what fails there,
what a statement that succeeds leaves broken or takes with it, and the lock each statement takes
and whether it rewrites or scans the table. Pure: SQL and a catalog in, findings out.

PostgreSQL is the reference for every prediction here (tests/test_review_oracle.py applies each
migration of a corpus to a real server and compares).
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from typing import Any

from schemasync.core.errors import ConfigError
from schemasync.schema.catalog import Catalog, Dependent

LOCK_ORDER = [
    "ACCESS SHARE", "ROW SHARE", "ROW EXCLUSIVE", "SHARE UPDATE EXCLUSIVE", "SHARE", "SHARE ROW EXCLUSIVE",
    "EXCLUSIVE", "ACCESS EXCLUSIVE",
]  # fmt: skip
BLOCKS_WRITES = "SHARE"  # from this mode up, INSERT/UPDATE/DELETE wait
BLOCKS_READS = "ACCESS EXCLUSIVE"


class MigrationSyntaxError(ConfigError):
    """The migration does not parse: where, and the statement (exit 2, as any unusable input)."""

    def __init__(self, message: str, line: int, column: int, statement: str) -> None:
        super().__init__(message, hint=f"the statement: {statement[:200]}")
        self.line, self.column, self.statement = line, column, statement


@dataclass
class Lock:
    table: str
    mode: str
    effect: str = "none"  # rewrite, scan, none
    size: dict[str, int] | None = None

    def data(self) -> dict[str, Any]:
        return {"table": self.table, "mode": self.mode, "effect": self.effect, "size": self.size,
                "weight": weight(self)}  # fmt: skip


def weight(lock: Lock) -> str:
    """How much a lock hurts, by the table's size class: a rewrite or scan under a lock that blocks
    writes lasts as long as the table is big."""
    blocking = LOCK_ORDER.index(lock.mode) >= LOCK_ORDER.index(BLOCKS_WRITES)
    if not blocking:
        return "low"
    rows = (lock.size or {}).get("rows")
    size_bytes = (lock.size or {}).get("bytes")
    if lock.effect == "none":
        return "low"
    if rows is None and size_bytes is None:
        return "unknown size"
    if (rows or 0) >= 10**6 or (size_bytes or 0) >= 10**9:
        return "high"
    if (rows or 0) >= 10**4 or (size_bytes or 0) >= 10**7:
        return "medium"
    return "low"


@dataclass
class Problem:
    """A failure or a breakage: PostgreSQL's message where it gives one, and the objects named."""

    message: str
    objects: list[str] = field(default_factory=list)  # PostgreSQL's words: `view open_projects`
    places: list[dict[str, Any]] = field(default_factory=list)  # file and line of each, as the files say

    @classmethod
    def about(cls, message: str, deps: list[Dependent]) -> Problem:
        """The message, naming each dependent once, with where the files name it."""
        return cls(message, list(dict.fromkeys(d.name for d in deps)), places(deps))

    def data(self) -> dict[str, Any]:
        return {"message": self.message, "objects": self.objects, "places": self.places}


@dataclass
class StatementReview:
    index: int  # 1-based, over the whole migration
    sql: str
    file: str
    line: int
    fails: list[Problem] = field(default_factory=list)
    breaks: list[Problem] = field(default_factory=list)
    locks: list[Lock] = field(default_factory=list)
    cascades: list[str] = field(default_factory=list)  # what CASCADE drops, in PostgreSQL's words
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.fails and not self.breaks

    def data(self) -> dict[str, Any]:
        return {
            "index": self.index, "sql": self.sql, "file": self.file, "line": self.line,
            "fails": [p.data() for p in self.fails], "breaks": [p.data() for p in self.breaks],
            "locks": [lk.data() for lk in self.locks], "cascades": self.cascades, "notes": self.notes,
        }  # fmt: skip


@dataclass
class Statement:
    tree: dict
    sql: str
    file: str
    line: int
    index: int


def parse_migration(sources: list[tuple[str, str]]) -> list[Statement]:
    """Each (file name, text), in order, into statements; a syntax error names file, line and column."""
    from pglast.parser import ParseError, parse_sql_json

    out: list[Statement] = []
    for name, text in sources:
        try:
            doc = json.loads(parse_sql_json(text))
        except ParseError as exc:
            raise _syntax_error(name, text, exc) from None
        data = text.encode()
        for raw in doc.get("stmts", []):
            start = raw.get("stmt_location", 0)
            end = start + raw["stmt_len"] if raw.get("stmt_len") else len(data)
            sql = data[start:end].decode(errors="replace")
            lead = len(sql) - len(sql.lstrip())
            line = data[: start + lead].count(b"\n") + 1
            out.append(Statement(raw["stmt"], sql.strip(), name, line, len(out) + 1))
    return out


# Fields of a statement's parse tree that name a relation, index, type, function or sequence.
NAME_FIELDS = frozenset({"relname", "idxname", "newname", "ctename"})
# ... and those that hold a qualified name as a list: types, functions, dropped objects
LIST_NAMES = frozenset({"names", "funcname", "objname", "typeName", "domainname"})


def focus_words(statements: list[Statement], known: set[str] | None = None) -> set[str]:
    """The names a migration uses (not its column names: what depends on a column names its
    table too): the files that can depend on them are the ones `review` needs to read. A type or
    function name counts only if `known` (the schema's own names) has it: `text` is not news."""
    from schemasync.schema.refs import strings

    words: set[str] = set()
    stack: list = [st.tree for st in statements]
    while stack:
        node = stack.pop()
        if isinstance(node, list):
            stack.extend(node)
            continue
        if not isinstance(node, dict):
            continue
        if "removeType" in node:  # DROP: whatever it names, an index too (the manifest has no index names)
            words |= {strings(o["List"]["items"])[-1] for o in node.get("objects", []) if "List" in o}
        for key, value in node.items():
            if key in NAME_FIELDS and isinstance(value, str):
                words.add(value)
            elif key in LIST_NAMES and isinstance(value, list):
                names = strings(value)[-1:]
                if known is None or set(names) <= known:
                    words |= set(names)
            if isinstance(value, (dict, list)):
                stack.append(value)
    return words


def _syntax_error(name: str, text: str, exc: Exception) -> MigrationSyntaxError:
    """Where the parser stopped (its offset counts bytes), and the statement around it."""
    data = text.encode()
    pos = min(int(exc.args[1]), len(data)) if len(exc.args) > 1 and isinstance(exc.args[1], int) else 0
    line = data[:pos].count(b"\n") + 1
    column = pos - (data.rfind(b"\n", 0, pos) + 1) + 1
    start = data.rfind(b";", 0, pos) + 1
    end = data.find(b";", pos)
    statement = data[start : end if end >= 0 else len(data)].decode(errors="replace").strip()
    return MigrationSyntaxError(f"{name}:{line}:{column}: {exc.args[0]}", line, column, statement)


def review(catalog: Catalog, statements: list[Statement], keep: bool = True) -> tuple[list[StatementReview], Catalog]:
    """Every statement against the catalog as the ones before it left it. A statement that fails
    changes nothing (as a migration tool that stops, or a savepoint, would leave it). `keep`: leave
    the catalog given as it was (a copy is changed); otherwise it is changed in place."""
    from schemasync.schema.review_rules import apply

    state = copy.deepcopy(catalog) if keep else catalog
    out = []
    for st in statements:
        result = StatementReview(st.index, st.sql, st.file, st.line)
        trial = copy.deepcopy(state) if _may_fail(st) else state
        apply(trial, st, result)
        if not result.fails:
            state = trial
        out.append(result)
    return out, state


def _may_fail(st: Statement) -> bool:
    """Rules check before they change anything; a statement of several commands could fail after
    its first has changed the catalog, so it runs on a copy."""
    kind, node = next(iter(st.tree.items()))
    return kind == "AlterTableStmt" and len(node.get("cmds", [])) > 1


def places(deps: list[Dependent]) -> list[dict[str, Any]]:
    seen, out = set(), []
    for d in deps:
        if (d.name, d.file) in seen:
            continue
        seen.add((d.name, d.file))
        out.append({"object": d.name, "file": d.file, "line": d.line})
    return out
