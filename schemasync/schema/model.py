"""The schema files parsed into tables, columns, keys and indexes. Pure: text in, objects out.

Built with PostgreSQL's own parser (pglast, libpg_query) from the files a refresh wrote, never
with regular expressions over DDL. The parse tree says what each statement is; the text shown for
an expression or a type is the one pg_dump wrote (found through the lexer's token offsets), and two
expressions are the same when their parse trees are (locations aside), so pg_dump versions that
write the same thing differently do not look like drift.

A statement the parser does not understand (a server newer than the parser) never breaks
anything: it is kept in `unparsed`, and comparisons fall back to its text.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from functools import lru_cache
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


# ---------------------------------------------------------------------------------------------
# Parsing


def parse_table(text: str, schema: str, name: str) -> Table:
    """One table file: CREATE TABLE and every statement that belongs to it."""
    return _parse_table_cached(text, schema, name)


@lru_cache(maxsize=4096)
def _parse_table_cached(text: str, schema: str, name: str) -> Table:
    table = Table(schema=schema, name=name)
    src = _Source(text)
    for stmt, raw in src.statements(table.unparsed):
        kind, node = next(iter(stmt.items()))
        handler = _TABLE_HANDLERS.get(kind)
        if handler is not None:
            try:
                handler(table, node, src)
            except (KeyError, TypeError, IndexError, ValueError, AttributeError):
                table.unparsed.append(raw)  # a shape this parser version does not know: kept as text
    # constraints the file declares NOT NULL by name (pg_dump 18) are a column property here
    for c in table.constraints:
        if c.kind == "not null":
            for col in c.columns:
                if (column := table.column(col)) is not None:
                    column.not_null = True
    table.constraints = [c for c in table.constraints if c.kind != "not null" or not _default_notnull_name(table, c)]
    return table


def parse_object(text: str, kind: str, schema: str | None, name: str) -> Obj:
    return _parse_object_cached(text, kind, schema, name)


@lru_cache(maxsize=4096)
def _parse_object_cached(text: str, kind: str, schema: str | None, name: str) -> Obj:
    obj = Obj(kind=kind, schema=schema, name=name)
    src = _Source(text)
    keys = []
    for stmt, _raw in src.statements(obj.unparsed):
        stmt_kind, node = next(iter(stmt.items()))
        if stmt_kind == "CommentStmt":
            obj.comment = node.get("comment")
            continue
        if stmt_kind == "CreateEnumStmt":
            obj.values = [v["String"]["sval"] for v in node.get("vals", [])]
        elif stmt_kind == "AlterEnumStmt" and node.get("newVal"):
            obj.values.append(node["newVal"])
        keys.append(_key({stmt_kind: node}))
    obj.key = "\n".join(keys) + "\n" + "\n".join(obj.unparsed)
    return obj


def _default_notnull_name(table: Table, c: Constraint) -> bool:
    """PostgreSQL 18 names NOT NULL constraints <table>_<column>_not_null by default: no news."""
    return len(c.columns) == 1 and c.name in ("", f"{table.name}_{c.columns[0]}_not_null")


class _Source:
    """A file's text with its lexer tokens, for the text of expressions and types."""

    def __init__(self, text: str) -> None:
        self.text = text
        self._tokens: list | None = None

    @property
    def tokens(self) -> list:
        if self._tokens is None:
            from pglast.parser import scan

            self._tokens = scan(self.text)
            self._starts = {t.start: i for i, t in enumerate(self._tokens)}
        return self._tokens

    def statements(self, unparsed: list[str]) -> Iterator[tuple[dict, str]]:
        """Each statement's parse tree and text; what does not parse goes to `unparsed`."""
        from pglast.parser import ParseError, parse_sql_json, split

        try:
            doc = json.loads(parse_sql_json(self.text))
            for raw in doc.get("stmts", []):
                start = raw.get("stmt_location", 0)
                yield (
                    raw["stmt"],
                    self.text[start : start + raw["stmt_len"]] if raw.get("stmt_len") else self.text[start:],
                )
            return
        except ParseError:
            pass
        # one statement the parser does not know: parse the others one by one
        try:
            pieces = split(self.text, with_parser=False)
        except ParseError:
            unparsed.append(self.text.strip())
            return
        offset = 0
        for piece in pieces:
            try:
                doc = json.loads(parse_sql_json(piece))
            except ParseError:
                unparsed.append(piece.strip())
                continue
            for raw in doc.get("stmts", []):
                yield _shift(raw["stmt"], self.text.find(piece, offset)), piece.strip()
            offset = self.text.find(piece, offset) + len(piece)

    def span(self, node: Any, stop_words: frozenset[str] = frozenset()) -> str:
        """The text pg_dump wrote for an expression (or a type): from its first token to where the
        enclosing list or clause goes on (a comma, a closing parenthesis, `;`, or a stop word)."""
        start = _min_location(node)
        if start is None:
            return ""
        tokens = self.tokens
        i = self._starts.get(start)
        if i is None:
            return ""
        j = _walk(tokens, i, stop_words)
        # The first token may sit inside parentheses that belong to the expression: `(a + b) * c`.
        # Such a group ends where the walk stopped, and an operator follows it.
        while (
            i > 0
            and tokens[i - 1].name == "ASCII_40"
            and j + 1 < len(tokens)
            and tokens[j].name == "ASCII_41"
            and tokens[j + 1].name in _CONTINUES
        ):
            i -= 1
            j = _walk(tokens, j + 1, stop_words)
        text = self.text[tokens[i].start : tokens[j - 1].end + 1] if j > i else ""
        return _strip_parens(text)


# Tokens after a parenthesised group that make it part of a longer expression.
_CONTINUES = frozenset(
    {"Op", "ASCII_42", "ASCII_43", "ASCII_45", "ASCII_47", "ASCII_37", "ASCII_94", "ASCII_60", "ASCII_62",
     "ASCII_61", "TYPECAST", "LESS_EQUALS", "GREATER_EQUALS", "NOT_EQUALS", "AND", "OR", "IS", "IN_P", "LIKE",
     "ILIKE", "SIMILAR", "BETWEEN", "AT", "ASCII_91"}
)  # fmt: skip


def _walk(tokens: list, i: int, stop_words: frozenset[str]) -> int:
    """Index of the first token after the expression starting at i (depth-aware)."""
    depth, j = 0, i
    while j < len(tokens):
        t = tokens[j]
        if t.name in ("ASCII_40", "ASCII_91"):
            depth += 1
        elif t.name in ("ASCII_41", "ASCII_93"):
            if depth == 0:
                break
            depth -= 1
        elif depth == 0 and (t.name in ("ASCII_44", "ASCII_59") or t.name in stop_words):
            break
        j += 1
    return j


def _strip_parens(text: str) -> str:
    """Parentheses that wrap the whole expression are pg_dump's layout, not part of it."""
    while text.startswith("(") and text.endswith(")"):
        depth = 0
        for k, ch in enumerate(text):
            depth += ch == "("
            depth -= ch == ")"
            if depth == 0 and k < len(text) - 1:
                return text
        text = text[1:-1].strip()
    return text


def _min_location(node: Any) -> int | None:
    best = None
    stack = [node]
    while stack:
        n = stack.pop()
        if isinstance(n, dict):
            for k, v in n.items():
                if k == "location" and isinstance(v, int) and v >= 0:
                    best = v if best is None else min(best, v)
                elif isinstance(v, (dict, list)):
                    stack.append(v)
        elif isinstance(n, list):
            stack.extend(n)
    return best


def _shift(node: Any, by: int) -> Any:
    if isinstance(node, dict):
        return {
            k: (v + by if k in _POSITIONS and isinstance(v, int) and v >= 0 else _shift(v, by)) for k, v in node.items()
        }
    if isinstance(node, list):
        return [_shift(v, by) for v in node]
    return node


# Fields of the parse tree that are offsets into the text, not meaning.
_POSITIONS = frozenset({"location", "arg_location", "list_start", "list_end"})
_OFFSETS = _POSITIONS | {"stmt_location", "stmt_len"}


def _unqualified_single_table(select: dict) -> dict:
    select = {k: _default_names_out(v) for k, v in select.items()}
    from_clause = select.get("fromClause") or []
    if len(from_clause) != 1 or "RangeVar" not in from_clause[0]:
        return select
    rel = from_clause[0]["RangeVar"]
    name = (rel.get("alias") or {}).get("aliasname") or rel.get("relname")

    def strip(n: Any) -> Any:
        if isinstance(n, list):
            return [strip(v) for v in n]
        if not isinstance(n, dict):
            return n
        if "SelectStmt" in n:
            return n  # a subquery: its own FROM decides
        if "ColumnRef" in n:
            fields = n["ColumnRef"].get("fields", [])
            if len(fields) == 2 and fields[0].get("String", {}).get("sval") == name:
                return {"ColumnRef": {**n["ColumnRef"], "fields": fields[1:]}}
        return {k: strip(v) for k, v in n.items()}

    return {k: (v if k == "fromClause" else strip(v)) for k, v in select.items()}


def _key(node: Any) -> str:
    """A parse tree without locations: equal for the same SQL however it is laid out."""

    def strip(n: Any) -> Any:
        if isinstance(n, dict):
            return {k: strip(v) for k, v in n.items() if k not in _OFFSETS}
        if isinstance(n, list):
            return [strip(v) for v in n]
        return n

    return json.dumps(strip(node), sort_keys=True, separators=(",", ":"))


def _unwrap(node: dict, name: str) -> dict:
    """A node, whether the tree wraps it in its type name or not (it varies by field)."""
    return node.get(name, node)


def _names(items: list | None) -> list[str]:
    return [i["String"]["sval"] for i in items or [] if "String" in i]


def _qualified(rel: dict) -> str:
    schema = rel.get("schemaname")
    return f"{schema}.{rel['relname']}" if schema else rel["relname"]


_COLUMN_STOP = frozenset(
    {"NOT", "NULL_P", "CONSTRAINT", "CHECK", "DEFAULT", "UNIQUE", "PRIMARY", "REFERENCES", "GENERATED", "COLLATE",
     "STORED", "VIRTUAL", "OPTIONS", "STORAGE", "COMPRESSION"}
)  # fmt: skip


def _column(node: dict, src: _Source) -> Column:
    col = Column(name=node["colname"], type=src.span(node["typeName"], _COLUMN_STOP))
    if "collClause" in node:
        col.collation = ".".join(_names(_unwrap(node["collClause"], "CollateClause").get("collname")))
    for item in node.get("constraints", []):
        c = item["Constraint"]
        kind = c["contype"]
        if kind == "CONSTR_NOTNULL":
            col.not_null = True
        elif kind == "CONSTR_DEFAULT":
            col.default = src.span(c["raw_expr"], _COLUMN_STOP)
            col.keys["default"] = _key(c["raw_expr"])
        elif kind == "CONSTR_IDENTITY":
            col.identity = "always" if c.get("generated_when") == "a" else "by default"
        elif kind == "CONSTR_GENERATED":
            col.generated = src.span(c["raw_expr"], _COLUMN_STOP)
            col.keys["generated"] = _key(c["raw_expr"])
            col.generated_kind = "virtual" if c.get("generated_kind") == "v" else "stored"
    return col


def _constraint(c: dict, src: _Source, column: str | None = None) -> Constraint | None:
    kind = CONSTRAINT_KINDS.get(c["contype"])
    if kind is None:
        return None
    out = Constraint(
        name=c.get("conname", ""),
        kind=kind,
        columns=_names(c.get("keys")) or _names(c.get("fk_attrs")) or ([column] if column else []),
        deferrable=bool(c.get("deferrable")),
        initially_deferred=bool(c.get("initdeferred")),
        validated=not c.get("skip_validation", False),
        # the tree leaves false out: a check or foreign key without is_enforced is NOT ENFORCED
        enforced=bool(c.get("is_enforced")) if c["contype"] in ("CONSTR_CHECK", "CONSTR_FOREIGN") else True,
        key=_key({k: v for k, v in c.items() if k not in ("conname", "skip_validation", "initially_valid")}),
    )
    if kind == "check":
        out.expression = src.span(c["raw_expr"])
    elif kind == "exclusion":
        elements = []
        for pair in c.get("exclusions", []):
            elem, operator = pair["List"]["items"]
            idx = elem["IndexElem"]
            what = idx.get("name") or f"({src.span(idx.get('expr'))})"
            elements.append(f"{what} WITH {'.'.join(_names(operator['List']['items']))}")
        out.expression = ", ".join(elements) + (f" USING {c['access_method']}" if c.get("access_method") else "")
        out.columns = []
    elif kind == "foreign key":
        out.ref_table = _qualified(c["pktable"])
        out.ref_columns = _names(c.get("pk_attrs"))
        out.on_delete = FK_ACTIONS.get(c.get("fk_del_action", "a"), "NO ACTION")
        out.on_update = FK_ACTIONS.get(c.get("fk_upd_action", "a"), "NO ACTION")
    return out


def _on_create(table: Table, node: dict, src: _Source) -> None:
    rel = node["relation"]
    if (rel.get("schemaname"), rel["relname"]) != (table.schema, table.name):
        # a partition, folded into its parent's file
        table.partitions.append({"name": _qualified(rel), "bound": ""})
        return
    if node.get("partspec"):
        table.kind = "partitioned table"
        spec = _unwrap(node["partspec"], "PartitionSpec")
        params = [_unwrap(p, "PartitionElem") for p in spec.get("partParams", [])]
        cols = [p.get("name") or src.span(p.get("expr")) for p in params]
        table.partition_key = f"{spec.get('strategy', '').replace('PARTITION_STRATEGY_', '')} ({', '.join(cols)})"
    table.inherits = [_qualified(r["RangeVar"]) for r in node.get("inhRelations", [])]
    for elt in node.get("tableElts", []):
        if "ColumnDef" in elt:
            cdef = elt["ColumnDef"]
            table.columns.append(_column(cdef, src))
            for item in cdef.get("constraints", []):
                c = item["Constraint"]
                if c["contype"] in ("CONSTR_CHECK", "CONSTR_PRIMARY", "CONSTR_UNIQUE", "CONSTR_FOREIGN") or (
                    c["contype"] == "CONSTR_NOTNULL" and c.get("conname")
                ):
                    made = _constraint(c, src, cdef["colname"])
                    if made is not None:
                        table.constraints.append(made)
        elif "Constraint" in elt:
            made = _constraint(elt["Constraint"], src)
            if made is not None:
                table.constraints.append(made)


def _on_foreign_create(table: Table, node: dict, src: _Source) -> None:
    _on_create(table, node["base"], src)
    table.kind = "foreign table"


_ENABLE = {
    "AT_EnableTrig": "enabled",
    "AT_DisableTrig": "disabled",
    "AT_EnableReplicaTrig": "replica",
    "AT_EnableAlwaysTrig": "always",
}


def _on_alter(table: Table, node: dict, src: _Source) -> None:
    rel = node["relation"]
    own = (rel.get("schemaname"), rel["relname"]) == (table.schema, table.name)
    for item in node.get("cmds", []):
        cmd = item["AlterTableCmd"]
        sub = cmd["subtype"]
        if sub == "AT_AttachPartition" and own:
            part = cmd["def"]["PartitionCmd"]
            name = _qualified(part["name"])
            bound = _bound_text(part.get("bound"), src)
            for p in table.partitions:
                if p["name"] == name:
                    p["bound"] = bound
                    break
            else:
                table.partitions.append({"name": name, "bound": bound})
            continue
        if not own:
            continue  # a partition's own indexes, defaults and constraints: part of the parent's story
        if sub == "AT_AddConstraint":
            made = _constraint(cmd["def"]["Constraint"], src)
            if made is not None:
                table.constraints.append(made)
        elif sub == "AT_ColumnDefault" and (column := table.column(cmd["name"])) is not None:
            column.default = src.span(cmd["def"]) if cmd.get("def") else None
            column.keys["default"] = _key(cmd.get("def"))
        elif sub == "AT_AddIdentity" and (column := table.column(cmd["name"])) is not None:
            c = cmd["def"]["Constraint"]
            column.identity = "always" if c.get("generated_when") == "a" else "by default"
        elif sub == "AT_SetNotNull" and (column := table.column(cmd["name"])) is not None:
            column.not_null = True
        elif sub == "AT_EnableRowSecurity":
            table.rls_enabled = True
        elif sub == "AT_ForceRowSecurity":
            table.rls_forced = True
        elif sub in _ENABLE:
            for trig in table.triggers:
                if trig.name == cmd.get("name"):
                    trig.enabled = _ENABLE[sub]


def _bound_text(bound: dict | None, src: _Source) -> str:
    if not bound:
        return ""
    b = bound.get("PartitionBoundSpec", bound)
    if b.get("is_default"):
        return "DEFAULT"
    parts = []
    if b.get("listdatums"):
        parts.append("IN (" + ", ".join(src.span(d) for d in b["listdatums"]) + ")")
    if b.get("lowerdatums"):
        low = ", ".join(src.span(d) for d in b["lowerdatums"])
        high = ", ".join(src.span(d) for d in b.get("upperdatums", []))
        parts.append(f"FROM ({low}) TO ({high})")
    if b.get("modulus"):
        parts.append(f"WITH (modulus {b['modulus']}, remainder {b.get('remainder', 0)})")
    return " ".join(parts)


def _on_index(table: Table, node: dict, src: _Source) -> None:
    rel = node["relation"]
    if (rel.get("schemaname"), rel["relname"]) != (table.schema, table.name):
        return  # a partition's index, attached to the parent's
    cols = []
    for p in node.get("indexParams", []):
        elem = p["IndexElem"]
        text = elem.get("name") or f"({src.span(elem.get('expr'))})"
        if elem.get("ordering") == "SORTBY_DESC":
            text += " DESC"
        cols.append(text)
    table.indexes.append(
        Index(
            name=node.get("idxname", ""),
            columns=cols,
            unique=bool(node.get("unique")),
            method=node.get("accessMethod", "btree"),
            predicate=src.span(node["whereClause"]) if node.get("whereClause") else None,
            include=[p["IndexElem"].get("name", "") for p in node.get("indexIncludingParams", [])],
            key=_key({k: v for k, v in node.items() if k not in ("idxname", "relation")}),
        )
    )


_TIMING = {2: "BEFORE", 0: "AFTER", 64: "INSTEAD OF"}
_EVENTS = ((4, "INSERT"), (8, "DELETE"), (16, "UPDATE"), (32, "TRUNCATE"))


def _on_trigger(table: Table, node: dict, src: _Source) -> None:
    events = node.get("events", 0)
    table.triggers.append(
        Trigger(
            name=node["trigname"],
            timing=_TIMING.get(node.get("timing", 0) & 66, "AFTER"),
            events=[word for bit, word in _EVENTS if events & bit],
            level="ROW" if node.get("row") else "STATEMENT",
            function=".".join(_names(node.get("funcname"))),
            when=src.span(node["whenClause"]) if node.get("whenClause") else None,
            key=_key({k: v for k, v in node.items() if k not in ("trigname", "relation")}),
        )
    )


def _on_policy(table: Table, node: dict, src: _Source) -> None:
    roles = [r["RoleSpec"].get("rolename", "public").lower() if "rolename" in r["RoleSpec"] else "public"
             for r in node.get("roles", [])]  # fmt: skip
    table.policies.append(
        Policy(
            name=node["policy_name"],
            command=node.get("cmd_name", "all").upper(),
            permissive=node.get("permissive", False),
            roles=roles,
            using=src.span(node["qual"]) if node.get("qual") else None,
            check=src.span(node["with_check"]) if node.get("with_check") else None,
            key=_key({k: v for k, v in node.items() if k not in ("policy_name", "table")}),
        )
    )


def _on_comment(table: Table, node: dict, src: _Source) -> None:
    objtype, obj, text = node.get("objtype"), node.get("object"), node.get("comment")
    if objtype == "OBJECT_TABLE" or objtype == "OBJECT_FOREIGN_TABLE":
        table.comment = text
    elif objtype == "OBJECT_COLUMN":
        names = _names(obj["List"]["items"]) if "List" in obj else []
        if names and (column := table.column(names[-1])) is not None:
            column.comment = text


def _on_sequence(table: Table, node: dict, src: _Source) -> None:
    table.owned_sequences.append(_qualified(node["sequence"]))


_TABLE_HANDLERS = {
    "CreateStmt": _on_create,
    "CreateForeignTableStmt": _on_foreign_create,
    "AlterTableStmt": _on_alter,
    "IndexStmt": _on_index,
    "CreateTrigStmt": _on_trigger,
    "CreatePolicyStmt": _on_policy,
    "CommentStmt": _on_comment,
    "CreateSeqStmt": _on_sequence,
}


def parse_file(kind: str, schema: str | None, name: str, text: str) -> Table | Obj:
    """A file of the reference, by the kind its manifest record gives."""
    if kind == "table":
        return parse_table(text, schema or "public", name)
    return parse_object(text, kind, schema, name)


def statement_keys(text: str) -> list[str]:
    """Every statement's parse tree (locations aside), or its text where it does not parse: two
    files with the same keys say the same thing, however pg_dump laid them out."""
    unparsed: list[str] = []
    keys = sorted(_key(_default_names_out(stmt)) for stmt, _raw in _Source(text).statements(unparsed))
    return keys + sorted(" ".join(u.split()) for u in unparsed)


def _default_names_out(node: Any) -> Any:
    """What server versions write differently for the same thing, made alike:
    - NOT NULL constraints named `<table>_<column>_not_null`, the default name, as unnamed (pg_dump
      18 writes the name on partitions, which inherit the parent's; older ones never do);
    - in a query over one table, `users.id` and `id` (PostgreSQL 16 stopped qualifying columns in
      view definitions when the query reads a single table)."""
    if isinstance(node, list):
        return [_default_names_out(v) for v in node]
    if not isinstance(node, dict):
        return node
    if "SelectStmt" in node:
        return {"SelectStmt": _unqualified_single_table(node["SelectStmt"])}
    if "ColumnDef" in node:
        col = node["ColumnDef"]
        suffix = f"_{col.get('colname')}_not_null"
        cons = [
            {"Constraint": {k: v for k, v in c["Constraint"].items() if k != "conname"}}
            if c.get("Constraint", {}).get("contype") == "CONSTR_NOTNULL"
            and str(c["Constraint"].get("conname", "")).endswith(suffix)
            else c
            for c in col.get("constraints", [])
        ]
        return {"ColumnDef": {**col, "constraints": cons}} if cons else node
    return {k: _default_names_out(v) for k, v in node.items()}
