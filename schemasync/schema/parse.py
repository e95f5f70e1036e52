"""The table and object files read with PostgreSQL's own parser (pglast) into the schema
model: what `diff`, `history`, `changes`, `show --json` and the commit messages understand. Pure
(text in, model out) and cached by content; a statement the parser cannot read is kept as text.
"""

from __future__ import annotations

from functools import lru_cache

from schemasync.schema.model import CONSTRAINT_KINDS, FK_ACTIONS, Column, Constraint, Index, Obj, Policy, Table, Trigger
from schemasync.schema.refs import strings as _names
from schemasync.schema.sqlnodes import _default_names_out, _key, _qualified, _Source, _unwrap


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
