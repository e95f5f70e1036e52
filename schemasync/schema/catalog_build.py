"""Reading DDL statements into a Catalog: the files a refresh wrote, and (review.py) the statements
of a migration. One reader for both, so a migration's CREATE means what a file's CREATE means.

Two passes over the files: the first declares every relation, type, sequence and function (so a
name resolves wherever it is used), the second records who depends on what.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from schemasync.schema.catalog import (
    Catalog,
    ColumnInfo,
    ConstraintInfo,
    Dependent,
    Function,
    IndexInfo,
    LineOf,
    Relation,
    SourceFile,
    parse_tree,
    pg_name,
    rel_word,
    type_text,
)
from schemasync.schema.model import CONSTRAINT_KINDS
from schemasync.schema.refs import Ref, Target, expression_refs, plpgsql_refs, sql_text_refs, strings

# the model's words for constraints; NOT NULL is a column's property here
CONSTRAINT_WORDS = {k: v for k, v in CONSTRAINT_KINDS.items() if k != "CONSTR_NOTNULL"}


def rel_key(rv: dict) -> tuple[str, str]:
    return (rv.get("schemaname") or "public", rv["relname"])


class Reader:
    """Statements into a catalog. `where(offset)` gives the file and line for an offset of the
    statement's text."""

    def __init__(self, catalog: Catalog) -> None:
        self.c = catalog
        self.file = ""
        self.line_of: Callable[[int], int] = lambda _o: 0
        self.text = ""
        self.first_line = 1

    def at(self, file: str, text: str, first_line: int = 1) -> None:
        """Statements from `text`, which starts at line `first_line` of `file`."""
        self.file, self.text, self.line_of, self.first_line = file, text, LineOf(text), first_line

    # --- pass one: names -------------------------------------------------------------------

    def declare(self, stmt: dict, loc: int) -> None:
        kind, node = next(iter(stmt.items()))
        if kind in ("CreateStmt", "CreateForeignTableStmt"):
            base = node.get("base", node)
            self.declare_table(base, loc, foreign=kind == "CreateForeignTableStmt")
        elif kind == "ViewStmt":
            self.declare_view(rel_key(node["view"]), "view", node["query"], node.get("aliases"), loc)
        elif kind == "CreateTableAsStmt" and node.get("objtype") == "OBJECT_MATVIEW":
            into = node["into"]
            self.declare_view(rel_key(into["rel"]), "materialized view", node["query"], into.get("colNames"), loc)
        elif kind == "CreateSeqStmt":
            self.c.sequences[rel_key(node["sequence"])] = self.file
        elif kind == "CreateEnumStmt":
            key = _qualified(strings(node.get("typeName")))
            self.c.types[key] = "enum"
            self.c.enum_values[key] = [v["String"]["sval"] for v in node.get("vals", [])]
        elif kind == "AlterEnumStmt" and node.get("newVal"):
            self.c.enum_values.setdefault(_qualified(strings(node.get("typeName"))), []).append(node["newVal"])
        elif kind == "CreateDomainStmt":
            self.c.types[_qualified(strings(node.get("domainname")))] = "domain"
        elif kind == "CompositeTypeStmt":
            self.c.types[rel_key(node["typevar"])] = "composite"
        elif kind == "CreateRangeStmt":
            self.c.types[_qualified(strings(node.get("typeName")))] = "range"
        elif kind == "CreateFunctionStmt":
            self.declare_function(node, loc)

    def declare_table(self, node: dict, loc: int, foreign: bool = False) -> Relation:
        key = rel_key(node["relation"])
        kind = "foreign table" if foreign else ("partitioned table" if node.get("partspec") else "table")
        rel = Relation(*key, kind, self.file, self.line_of(node["relation"].get("location", loc)))
        for elt in node.get("tableElts") or []:
            if "ColumnDef" in elt:
                rel.columns[elt["ColumnDef"]["colname"]] = column_info(elt["ColumnDef"])
        parents = node.get("inhRelations") or []
        if parents:
            rel.parent = rel_key(parents[0]["RangeVar"])
            rel.partition = bool(node.get("partbound"))
            parent = self.c.relations.get(rel.parent)
            for name, col in parent.columns.items() if parent else []:
                rel.columns.setdefault(name, ColumnInfo(name, col.type, col.not_null))
        self.c.relations[key] = rel
        return rel

    def declare_view(self, key: tuple[str, str], kind: str, query: dict, aliases: list | None, loc: int) -> None:
        rel = Relation(*key, kind, self.file, self.line_of(loc))
        names = strings(aliases) or [n for n in (_target_name(t) for t in _target_list(query)) if n]
        for n in names:
            rel.columns[n] = ColumnInfo(n, "")
        self.c.relations[key] = rel

    def declare_function(self, node: dict, loc: int) -> Function:
        schema, name = _qualified(strings(node["funcname"]))
        options = {o["DefElem"]["defname"]: o["DefElem"] for o in node.get("options", []) if "DefElem" in o}
        params = [p["FunctionParameter"] for p in node.get("parameters") or []]
        args = ", ".join(
            type_text(p["argType"]) for p in params if p.get("mode") not in ("FUNC_PARAM_OUT", "FUNC_PARAM_TABLE")
        )
        language = (options.get("language", {}).get("arg") or {}).get("String", {}).get("sval", "sql")
        returns = strings((node.get("returnType") or {}).get("names"))
        fn = Function(schema, name, args, language, self.file, self.line_of(loc))
        fn.returns_trigger = returns[-1:] == ["trigger"]
        fn.atomic = node.get("sql_body") is not None
        volatility = (options.get("volatility", {}).get("arg") or {}).get("String", {}).get("sval", "volatile")
        fn.volatile = volatility == "volatile"
        existing = self.c.functions[(schema, name)]
        existing[:] = [f for f in existing if f.args != args and not f.outline] + [fn]
        return fn

    # --- pass two: dependencies ------------------------------------------------------------

    def depend(self, stmt: dict, loc: int) -> None:
        kind, node = next(iter(stmt.items()))
        handler = _DEPENDS.get(kind)
        if handler is not None:
            handler(self, node, loc)

    def add(self, kind: str, name: str, target: Target, offset: int, owner: tuple[str, str] | None,
            checked: bool = True, line: int | None = None, via: str = "") -> None:  # fmt: skip
        if target[0] == "relation" and target[1:] not in self.c.relations:
            target = ("sequence", *target[1:]) if target[1:] in self.c.sequences else target
        line = line if line is not None else self.first_line + self.line_of(offset) - 1
        self.c.dependents.append(Dependent(kind, name, target, self.file, line, owner, checked, via))

    def refs(self, tree: Any, own: tuple[str, str] | None = None, pseudo: dict | None = None) -> list[Ref]:
        return [r for r in expression_refs(tree, self.c.resolve, self.c.columns_of, own, pseudo) if self.known(r)]

    def known(self, ref: Ref) -> bool:
        """Only what this schema defines is a dependency worth naming (not `count()` or `text`)."""
        t = ref.target
        if t[0] in ("relation", "sequence"):
            return t[1:] in self.c.relations or t[1:] in self.c.sequences
        if t[0] == "column":
            return t[3] in self.c.columns_of((t[1], t[2]))
        if t[0] in ("type", "function"):
            pool = self.c.types if t[0] == "type" else self.c.functions
            return any(k[1] == t[2] and (not t[1] or k[0] == t[1]) for k in pool)
        return False

    def fix_function(self, ref: Ref) -> Ref:
        """An unqualified function or type name: the schema's one of that name, `public` first."""
        t = ref.target
        if t[0] in ("type", "function") and not t[1]:
            pool = self.c.types if t[0] == "type" else self.c.functions
            found = sorted((k for k in pool if k[1] == t[2]), key=lambda k: k[0] != "public")
            if found:
                return Ref((t[0], *found[0]), ref.offset)
        return ref

    def table_deps(self, node: dict, loc: int) -> None:
        base = node.get("base", node)
        key = rel_key(base["relation"])
        rel = self.c.relations.get(key)
        if rel is None:
            return
        tname = pg_name(*key)
        for elt in base.get("tableElts") or []:
            if "ColumnDef" in elt:
                self.column_deps(rel, elt["ColumnDef"])
            elif "Constraint" in elt:
                self.constraint(rel, elt["Constraint"])
        if rel.parent:
            word = "partition" if rel.partition else "child table"
            self.add(word, f"table {tname}", ("relation", *rel.parent), base["relation"].get("location", loc), key)

    def column_deps(self, rel: Relation, col: dict) -> None:
        tname, cname = pg_name(rel.schema, rel.name), col["colname"]
        schema_types = strings(col["typeName"].get("names"))
        if (len(schema_types) > 1 and schema_types[0] != "pg_catalog") or len(schema_types) == 1:
            ref = self.fix_function(Ref(("type", *(_qualified(schema_types))), col["typeName"].get("location", -1)))
            if self.known(ref):
                self.add("column", f"column {cname} of table {tname}", ref.target, ref.offset, rel.key)
        for c in col.get("constraints") or []:
            con = c["Constraint"]
            if con["contype"] == "CONSTR_DEFAULT":
                self.expression_deps("default", f"default value for column {cname} of table {tname}", rel,
                                     con["raw_expr"])  # fmt: skip
            elif con["contype"] == "CONSTR_GENERATED":
                self.expression_deps("generated column", f"column {cname} of table {tname}", rel, con["raw_expr"])
            elif con["contype"] in CONSTRAINT_WORDS:
                self.constraint(rel, con, [cname])

    def expression_deps(self, kind: str, name: str, rel: Relation, expr: Any, pseudo: dict | None = None) -> None:
        for ref in self.refs(expr, rel.key, pseudo):
            ref = self.fix_function(ref)
            self.add(kind, name, ref.target, ref.offset, rel.key)

    def constraint(self, rel: Relation, con: dict, columns: list[str] | None = None) -> ConstraintInfo:
        kind = CONSTRAINT_WORDS[con["contype"]]
        cols = columns or strings(con.get("keys") or con.get("fk_attrs"))
        default_name = f"{rel.name}_{'_'.join(cols)}_" + {"primary key": "pkey", "unique": "key"}.get(kind, kind)
        valid = not con.get("skip_validation") and con.get("initially_valid", True)
        info = ConstraintInfo(con.get("conname") or default_name, kind, cols, validated=valid)
        name = f"constraint {info.name} on table {pg_name(*rel.key)}"
        loc = con.get("location", -1)
        if kind == "check":
            refs = self.refs(con.get("raw_expr"), rel.key)
            info.columns = sorted({r.target[3] for r in refs if r.target[0] == "column"})
            info.not_null_check = _not_null_column(con.get("raw_expr"))
            for ref in refs:
                self.add("check", name, self.fix_function(ref).target, ref.offset, rel.key)
        elif kind == "foreign key":
            ref_rel = self.c.resolve(con["pktable"].get("schemaname"), con["pktable"]["relname"])
            info.ref = ref_rel or rel_key(con["pktable"])
            info.ref_columns = strings(con.get("pk_attrs")) or (self.primary_key(info.ref) or [])
            for c in cols:
                self.add("foreign key", name, ("column", *rel.key, c), loc, rel.key)
            for c in info.ref_columns:
                self.add("foreign key", name, ("column", *info.ref, c), loc, rel.key)
        else:
            for c in cols:
                self.add("index", f"index {con.get('indexname') or info.name}", ("column", *rel.key, c), loc, rel.key)
            rel.indexes.append(IndexInfo(con.get("indexname") or info.name, cols, True, info.name))
        rel.constraints.append(info)
        return info

    def primary_key(self, key: tuple[str, str]) -> list[str] | None:
        rel = self.c.relations.get(key)
        return next((c.columns for c in rel.constraints if c.kind == "primary key"), None) if rel else None

    def alter_table(self, node: dict, loc: int) -> None:
        key = self.c.resolve(node["relation"].get("schemaname"), node["relation"]["relname"])
        rel = self.c.relations.get(key) if key else None
        if rel is None:
            return
        for cmd in node.get("cmds", []):
            c = cmd["AlterTableCmd"]
            sub = c["subtype"]
            if sub == "AT_AddConstraint":
                self.constraint(rel, c["def"]["Constraint"])
            elif sub == "AT_ColumnDefault" and c.get("def"):
                name = f"default value for column {c['name']} of table {pg_name(*rel.key)}"
                self.expression_deps("default", name, rel, c["def"])
                if c["name"] in rel.columns:
                    rel.columns[c["name"]].default = True
            elif sub == "AT_AttachPartition":
                child = self.c.relations.get(rel_key(c["def"]["PartitionCmd"]["name"]))
                if child:
                    child.parent, child.partition = rel.key, True
                    self.add("partition", f"table {pg_name(*child.key)}", ("relation", *rel.key), loc, child.key)
            elif sub == "AT_SetNotNull" and c["name"] in rel.columns:
                rel.columns[c["name"]].not_null = True
            elif sub == "AT_AddIdentity" and c["name"] in rel.columns:
                rel.columns[c["name"]].identity = rel.columns[c["name"]].not_null = True

    def index(self, node: dict, loc: int) -> None:
        key = self.c.resolve(node["relation"].get("schemaname"), node["relation"]["relname"])
        rel = self.c.relations.get(key) if key else None
        if rel is None:
            return
        name = node.get("idxname") or f"{rel.name}_idx"
        cols: list[str] = []
        for p in node.get("indexParams", []):
            elem = p["IndexElem"]
            if elem.get("name"):
                cols.append(elem["name"])
                self.add(
                    "index", f"index {pg_name(rel.schema, name)}", ("column", *rel.key, elem["name"]), loc, rel.key
                )
        for part in [p["IndexElem"].get("expr") for p in node.get("indexParams", [])] + [node.get("whereClause")]:
            for ref in self.refs(part, rel.key) if part else []:
                cols += [ref.target[3]] if ref.target[0] == "column" else []
                self.add("index", f"index {pg_name(rel.schema, name)}", self.fix_function(ref).target, ref.offset,
                         rel.key)  # fmt: skip
        rel.indexes.append(IndexInfo(name, sorted(set(cols), key=cols.index), bool(node.get("unique"))))

    def trigger(self, node: dict, loc: int) -> None:
        key = self.c.resolve(node["relation"].get("schemaname"), node["relation"]["relname"])
        rel = self.c.relations.get(key) if key else None
        if rel is None:
            return
        name = f"trigger {node['trigname']} on table {pg_name(*rel.key)}"
        rel.triggers.append(node["trigname"])
        fn_key = _qualified(strings(node["funcname"]))
        if not strings(node["funcname"])[:-1]:
            fn_key = self.fix_function(Ref(("function", "", fn_key[1]), -1)).target[1:]  # type: ignore[assignment]
        self.add("trigger", name, ("function", *fn_key), loc, rel.key)
        for col in strings(node.get("columns")):
            self.add("trigger", name, ("column", *rel.key, col), loc, rel.key, via="update of")
        if node.get("whenClause"):
            for ref in self.refs(node["whenClause"], rel.key, {"new": rel.key, "old": rel.key}):
                self.add("trigger", name, ref.target, ref.offset, rel.key, via="when")
        self.c.trigger_functions.append((rel.key, tuple(fn_key), name, self.file, self.line_of(loc)))

    def policy(self, node: dict, loc: int) -> None:
        key = self.c.resolve(node["table"].get("schemaname"), node["table"]["relname"])
        rel = self.c.relations.get(key) if key else None
        if rel is None:
            return
        rel.policies.append(node["policy_name"])
        name = f"policy {node['policy_name']} on table {pg_name(*rel.key)}"
        for part in (node.get("qual"), node.get("with_check")):
            if part:
                self.expression_deps("policy", name, rel, part)

    def view(self, node: dict, loc: int) -> None:
        key = rel_key(node["view"] if "view" in node else node["into"]["rel"])
        rel = self.c.relations.get(key)
        if rel is None:
            return
        word = rel_word(rel.kind)
        for ref in self.refs(node["query"]):
            self.add(word, f"{word} {pg_name(*key)}", self.fix_function(ref).target, ref.offset, key)

    def matview(self, node: dict, loc: int) -> None:
        if node.get("objtype") == "OBJECT_MATVIEW":
            self.view(node, loc)

    def function(self, node: dict, loc: int) -> None:
        key = _qualified(strings(node["funcname"]))
        fn = next((f for f in self.c.functions.get(key, []) if f.file == self.file), None)
        if fn is None:
            return
        name = f"function {fn.signature}"
        body, body_at = _body(node, self.text)
        if node.get("sql_body") is not None:
            for ref in self.refs(node["sql_body"]):
                self.add("function", name, self.fix_function(ref).target, ref.offset, key, via="atomic")
        elif fn.language == "sql" and body is not None:
            first = self.line_of(body_at)
            for ref in (r for r in sql_text_refs((body, 0), self.c.resolve, self.c.columns_of) if self.known(r)):
                line = first + body[: max(ref.offset, 0)].count("\n")
                self.add("function", name, self.fix_function(ref).target, -1, key, line=line, via="text")
        elif fn.language == "plpgsql":
            self.plpgsql(fn, name, key, node, body_at, loc)

    def plpgsql(self, fn: Function, name: str, key: tuple[str, str], node: dict, body_at: int, loc: int) -> None:
        text = _statement_text(self.text, loc)
        first = self.line_of(body_at)
        got = plpgsql_refs(text, self.c.resolve, self.c.columns_of, ("", "") if fn.returns_trigger else None)
        fn.dynamic = [first + line - 1 for line in got.dynamic]
        for ref, line in got.refs:
            if ref.target[0] == "column" and ref.target[1:3] == ("", ""):
                self.c.row_columns.append((tuple(key), ref.target[3], self.file, first + line - 1, not fn.dynamic))
                continue
            ref = self.fix_function(ref)
            if self.known(ref):
                self.add("function", name, ref.target, -1, key, not fn.dynamic, first + line - 1, "text")


_DEPENDS: dict[str, Callable[[Reader, dict, int], None]] = {
    "CreateStmt": Reader.table_deps,
    "CreateForeignTableStmt": Reader.table_deps,
    "AlterTableStmt": Reader.alter_table,
    "IndexStmt": Reader.index,
    "CreateTrigStmt": Reader.trigger,
    "CreatePolicyStmt": Reader.policy,
    "ViewStmt": Reader.view,
    "CreateTableAsStmt": Reader.matview,
    "CreateFunctionStmt": Reader.function,
}


def column_info(col: dict) -> ColumnInfo:
    info = ColumnInfo(col["colname"], type_text(col["typeName"]))
    for c in col.get("constraints") or []:
        kind = c["Constraint"]["contype"]
        info.not_null |= kind in ("CONSTR_NOTNULL", "CONSTR_PRIMARY", "CONSTR_IDENTITY")
        info.default |= kind == "CONSTR_DEFAULT"
        info.generated |= kind == "CONSTR_GENERATED"
        info.identity |= kind == "CONSTR_IDENTITY"
    return info


def _qualified(names: list[str]) -> tuple[str, str]:
    return (names[-2] if len(names) > 1 else "public", names[-1])


def _target_list(query: dict) -> list:
    select = query.get("SelectStmt", {})
    while select.get("op", "SETOP_NONE") != "SETOP_NONE" and select.get("larg"):
        select = select["larg"]
    return select.get("targetList") or []


def _target_name(target: dict) -> str | None:
    res = target.get("ResTarget", {})
    if res.get("name"):
        return res["name"]
    fields = strings((res.get("val") or {}).get("ColumnRef", {}).get("fields"))
    return fields[-1] if fields else None


def _not_null_column(expr: Any) -> str | None:
    """`CHECK (col IS NOT NULL)`: PostgreSQL 12+ takes it as proof for SET NOT NULL."""
    test = (expr or {}).get("NullTest")
    if test and test.get("nulltesttype") == "IS_NOT_NULL":
        fields = strings(test["arg"].get("ColumnRef", {}).get("fields"))
        return fields[-1] if fields else None
    return None


def _body(node: dict, text: str) -> tuple[str | None, int]:
    """A function's body as written (`AS $$...$$`), and the byte offset where it starts."""
    for o in node.get("options", []):
        d = o.get("DefElem", {})
        if d.get("defname") == "as":
            items = d["arg"]["List"]["items"] if "List" in d["arg"] else [d["arg"]]
            body = items[0]["String"]["sval"]
            at = text.encode().find(body.encode(), max(d.get("location", 0), 0))
            return body, max(at, 0)
    return None, 0


def _statement_text(text: str, loc: int) -> str:
    data = text.encode()[loc:]
    return data.decode(errors="replace")


def build_catalog(files: list[SourceFile], outline: Catalog | None = None, focus: set[str] | None = None) -> Catalog:
    """The catalog of these files. With `focus` (names), only the files that name one of them are
    read, and then the files that name what those define (a view, a function) or call (a
    trigger's function), until nothing new comes: what can depend on the names. The rest is
    known from `outline` (the manifest: every table's columns, every object's name)."""
    catalog = outline or Catalog()
    reader = Reader(catalog)
    trees = [(f, parse_tree(f.text)) for f in files] if focus is None else _focused(files, focus)
    for f, stmts in trees:
        reader.at(f.file, f.text)
        for raw in stmts:
            reader.declare(raw["stmt"], raw.get("stmt_location", 0))
    for f, stmts in trees:
        reader.at(f.file, f.text)
        for raw in stmts:
            reader.depend(raw["stmt"], raw.get("stmt_location", 0))
    link_trigger_rows(catalog)
    return catalog


def _focused(files: list[SourceFile], focus: set[str]) -> list[tuple[SourceFile, list[dict]]]:
    import re

    chosen: dict[str, tuple[SourceFile, list[dict]]] = {}
    pending, asked, called = {w for w in focus if w}, set(), set()
    while pending or called:
        names = re.compile("|".join(re.escape(w) for w in sorted(pending, key=len, reverse=True)) or "(?!)")
        asked |= pending
        pending, calling = set(), called
        called = set()
        for f in files:
            if f.file in chosen:
                continue
            if not names.search(f.text) and not (f.kind == "functions" and f.name in calling):
                continue
            named = names.search(f.text) is not None
            stmts = parse_tree(f.text)
            chosen[f.file] = (f, stmts)
            if named and f.kind in ("views", "materialized_views", "functions"):
                pending.add(f.name)  # it uses a name: what uses it is affected too
            for raw in stmts:  # a trigger's function: its body, not everything else that calls it
                if "CreateTrigStmt" in raw["stmt"]:
                    called.add(strings(raw["stmt"]["CreateTrigStmt"]["funcname"])[-1])
        pending -= asked
    return list(chosen.values())


def link_trigger_rows(catalog: Catalog) -> None:
    """NEW.col in a trigger function names a column of every table whose trigger calls it."""
    by_fn: dict[tuple, list[tuple[str, str]]] = {}
    for table, fn, *_ in catalog.trigger_functions:
        by_fn.setdefault(fn, []).append(table)
    for fn_key, column, file, line, checked in catalog.row_columns:
        fn = catalog.functions.get(fn_key, [])
        name = f"function {fn[0].signature}" if fn else f"function {pg_name(*fn_key)}()"
        for table in by_fn.get(fn_key, []):
            if column in catalog.columns_of(table):
                catalog.dependents.append(
                    Dependent("function", name, ("column", *table, column), file, line, fn_key, checked, "text")
                )
