"""What each kind of statement does to a catalog, as PostgreSQL does it: the checks that make it
fail, the lock it takes on each table, whether it rewrites or scans, and the change it makes.
Every rule checks first and changes the catalog only when nothing fails.

The locks are PostgreSQL's (AlterTableGetLockLevel and the commands' own): ALTER TABLE takes ACCESS
EXCLUSIVE unless a command needs less; a foreign key SHARE ROW EXCLUSIVE on both tables; CREATE
INDEX SHARE (CONCURRENTLY: SHARE UPDATE EXCLUSIVE); VALIDATE CONSTRAINT SHARE UPDATE EXCLUSIVE.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from schemasync.schema.catalog import Catalog, Relation, pg_name
from schemasync.schema.catalog_build import Reader, column_info, rel_key
from schemasync.schema.refs import strings
from schemasync.schema.review import LOCK_ORDER, Lock, Problem, Statement, StatementReview

EFFECTS = ["none", "scan", "rewrite"]

# Built-in functions whose result changes from row to row: a default that calls one is computed for
# every existing row, which rewrites the table (PostgreSQL 11+ stores any other default once).
VOLATILE_BUILTINS = frozenset(
    {"random", "clock_timestamp", "timeofday", "gen_random_uuid", "uuid_generate_v4", "uuid_generate_v1",
     "nextval", "txid_current", "random_normal", "uuidv4", "uuidv7"}
)  # fmt: skip

# Type changes PostgreSQL makes without touching a row (binary-coercible, typmod only widened).
LENGTH_TYPES = frozenset({"character varying", "bit varying"})


@dataclass
class Ctx:
    cat: Catalog
    st: Statement
    out: StatementReview

    def fail(self, message: str, deps: list | None = None) -> None:
        self.out.fails.append(Problem.about(message, deps or []))

    def lock(self, key: tuple[str, str], mode: str, effect: str = "none") -> None:
        rel = self.cat.relations.get(key)
        name = pg_name(*key)
        for lk in self.out.locks:
            if lk.table == name:
                if LOCK_ORDER.index(mode) > LOCK_ORDER.index(lk.mode):
                    lk.mode = mode
                if EFFECTS.index(effect) > EFFECTS.index(lk.effect):
                    lk.effect = effect
                return
        self.out.locks.append(Lock(name, mode, effect, rel.size if rel else None))

    def relation(self, rv: dict, missing_ok: bool = False, word: str = "relation") -> Relation | None:
        key = self.cat.resolve(rv.get("schemaname"), rv["relname"])
        rel = self.cat.relations.get(key) if key else None
        if rel is None and not missing_ok:
            self.fail(f'{word} "{_shown(rv)}" does not exist')
        return rel

    def reader(self) -> Reader:
        r = Reader(self.cat)
        r.at(self.st.file, self.st.sql, self.st.line)
        return r


def _shown(rv: dict) -> str:
    return f"{rv['schemaname']}.{rv['relname']}" if rv.get("schemaname") else rv["relname"]


def apply(cat: Catalog, st: Statement, out: StatementReview) -> None:
    from schemasync.schema.review_drops import DROP_RULES

    kind, node = next(iter(st.tree.items()))
    rule = RULES.get(kind) or DROP_RULES.get(kind)
    if rule is None:
        if kind not in QUIET:
            out.notes.append(f"{kind.removesuffix('Stmt')}: not modelled (no finding either way)")
        return
    rule(Ctx(cat, st, out), node)


QUIET = frozenset({"TransactionStmt", "CommentStmt", "VariableSetStmt", "GrantStmt", "SelectStmt", "InsertStmt",
                   "UpdateStmt", "DeleteStmt", "DoStmt"})  # fmt: skip


# --- CREATE ----------------------------------------------------------------------------------


def create_table(ctx: Ctx, node: dict) -> None:
    key = rel_key(node["relation"])
    if ctx.cat.resolve(node["relation"].get("schemaname") or "public", key[1]) is not None:
        if not node.get("if_not_exists"):
            ctx.fail(f'relation "{key[1]}" already exists')
        return
    refs = [c["Constraint"] for c in _constraints(node) if c["Constraint"]["contype"] == "CONSTR_FOREIGN"]
    for con in refs:
        if ctx.relation(con["pktable"]) is None:
            return
    for parent in node.get("inhRelations") or []:
        if ctx.relation(parent["RangeVar"]) is None:
            return
    reader = ctx.reader()
    reader.declare_table(node, node["relation"].get("location", 0))
    reader.table_deps(node, 0)
    ctx.lock(key, "ACCESS EXCLUSIVE")  # its own, new: nobody else sees it before the commit
    for con in refs:
        ctx.lock(ctx.cat.resolve(con["pktable"].get("schemaname"), con["pktable"]["relname"]), "SHARE ROW EXCLUSIVE")
    if node.get("inhRelations"):
        parent = ctx.cat.relations[rel_key(node["inhRelations"][0]["RangeVar"])]
        ctx.lock(parent.key, "ACCESS EXCLUSIVE" if node.get("partbound") else "SHARE UPDATE EXCLUSIVE")
        for con in parent.constraints if node.get("partbound") else []:  # a partition has its parent's keys
            if con.kind == "foreign key" and con.ref:
                ctx.lock(con.ref, "SHARE ROW EXCLUSIVE")


def _constraints(node: dict) -> list[dict]:
    out = []
    for elt in node.get("tableElts") or []:
        if "Constraint" in elt:
            out.append(elt)
        for c in elt.get("ColumnDef", {}).get("constraints") or []:
            out.append(c)
    return out


def create_index(ctx: Ctx, node: dict) -> None:
    rel = ctx.relation(node["relation"])
    if rel is None:
        return
    name = node.get("idxname")
    if (name and ctx.cat.resolve(rel.schema, name) is not None) or _index_exists(ctx.cat, rel.schema, name):
        if not node.get("if_not_exists"):
            ctx.fail(f'relation "{name}" already exists')
        return
    for p in node.get("indexParams", []):
        col = p["IndexElem"].get("name")
        if col and col not in rel.columns:
            ctx.fail(f'column "{col}" does not exist')
            return
    concurrent = bool(node.get("concurrent"))
    ctx.lock(rel.key, "SHARE UPDATE EXCLUSIVE" if concurrent else "SHARE", "scan")
    if concurrent:
        ctx.out.notes.append("CREATE INDEX CONCURRENTLY cannot run inside a transaction block")
    ctx.reader().index(node, 0)


def _index_exists(cat: Catalog, schema: str, name: str | None) -> bool:
    return bool(name) and any(i.name == name for r in cat.relations.values() if r.schema == schema for i in r.indexes)


def create_view(ctx: Ctx, node: dict) -> None:
    key = rel_key(node["view"])
    old = ctx.cat.relations.get(key)
    if old is not None and not node.get("replace"):
        ctx.fail(f'relation "{key[1]}" already exists')
        return
    if not _query_resolves(ctx, node["query"]):
        return
    reader = ctx.reader()
    if old is not None:
        new_cols = _view_columns(node)
        gone = [c for c in old.columns if c not in new_cols]
        if gone and len(new_cols) < len(old.columns):
            ctx.fail("cannot drop columns from view")
            return
        changed = [(a, b) for a, b in zip(old.columns, new_cols, strict=False) if a != b]
        if changed:
            ctx.fail(f'cannot change name of view column "{changed[0][0]}" to "{changed[0][1]}"')
            return
        ctx.lock(key, "ACCESS EXCLUSIVE")
        ctx.cat.dependents = [d for d in ctx.cat.dependents if not (d.owner == key and d.kind == "view")]
    reader.declare_view(key, "view", node["query"], node.get("aliases"), 0)
    reader.view(node, 0)
    ctx.lock(key, "ACCESS EXCLUSIVE")  # a new view: its own, unseen until the commit


def _view_columns(node: dict) -> list[str]:
    from schemasync.schema.catalog_build import _target_list, _target_name

    return strings(node.get("aliases")) or [n for n in (_target_name(t) for t in _target_list(node["query"])) if n]


def _query_resolves(ctx: Ctx, query: dict) -> bool:
    """A view's query names relations that exist (PostgreSQL checks when the view is created)."""
    from schemasync.schema.refs import walk

    ctes = {c["ctename"] for _, c in walk(query) if "ctename" in c}
    for kind, rv in walk(query):
        if kind == "RangeVar" and rv["relname"] not in ctes and ctx.relation(rv) is None:
            return False
    return True


def create_function(ctx: Ctx, node: dict) -> None:
    reader = ctx.reader()
    names = strings(node["funcname"])
    before = list(ctx.cat.functions.get((names[-2] if len(names) > 1 else "public", names[-1]), []))
    fn = reader.declare_function(node, 0)
    if any(f.args == fn.args for f in before) and not node.get("replace"):
        ctx.cat.functions[(fn.schema, fn.name)][:] = before
        ctx.fail(f'function "{fn.name}" already exists with same argument types')
        return
    ctx.cat.dependents = [
        d for d in ctx.cat.dependents if not (d.owner == (fn.schema, fn.name) and d.kind == "function")
    ]
    reader.function(node, 0)


def create_trigger(ctx: Ctx, node: dict) -> None:
    rel = ctx.relation(node["relation"])
    if rel is None:
        return
    fn = strings(node["funcname"])
    if not any(k[1] == fn[-1] for k in ctx.cat.functions):
        ctx.fail(f"function {fn[-1]}() does not exist")
        return
    ctx.lock(rel.key, "SHARE ROW EXCLUSIVE")
    ctx.reader().trigger(node, 0)


def create_policy(ctx: Ctx, node: dict) -> None:
    rel = ctx.relation(node["table"])
    if rel is None:
        return
    if node["policy_name"] in rel.policies:
        ctx.fail(f'policy "{node["policy_name"]}" for table "{rel.name}" already exists')
        return
    ctx.lock(rel.key, "ACCESS EXCLUSIVE")
    ctx.reader().policy(node, 0)


def alter_enum(ctx: Ctx, node: dict) -> None:
    names = strings(node.get("typeName"))
    key = (names[-2] if len(names) > 1 else "public", names[-1])
    if key not in ctx.cat.types:
        ctx.fail(f'type "{names[-1]}" does not exist')
        return
    value = node.get("newVal")
    if value is None:
        return
    if value in ctx.cat.enum_values.get(key, []):
        if not node.get("skipIfNewValExists"):
            ctx.fail(f'enum label "{value}" already exists')
        return
    ctx.cat.enum_values.setdefault(key, []).append(value)


def truncate(ctx: Ctx, node: dict) -> None:
    rels = [ctx.relation(rv["RangeVar"]) for rv in node.get("relations", [])]
    if any(r is None for r in rels):
        return
    keys = {r.key for r in rels if r}
    if node.get("behavior") != "DROP_CASCADE":
        for other in ctx.cat.relations.values():
            for con in other.constraints:
                if con.kind == "foreign key" and con.ref in keys and other.key not in keys:
                    named = [d for d in ctx.cat.dependents if d.name.startswith(f"constraint {con.name} ")]
                    ctx.fail("cannot truncate a table referenced in a foreign key constraint", named[:1])
                    return
    for key in keys:
        ctx.lock(key, "ACCESS EXCLUSIVE", "rewrite")


# --- ALTER TABLE -----------------------------------------------------------------------------


def alter_table(ctx: Ctx, node: dict) -> None:
    from schemasync.schema.review_alter import COMMANDS

    if node.get("objtype") not in ("OBJECT_TABLE", None):
        ctx.out.notes.append(f"ALTER {node.get('objtype', '').removeprefix('OBJECT_')}: not modelled")
        return
    rel = ctx.relation(node["relation"], missing_ok=bool(node.get("missing_ok")))
    if rel is None:
        return
    for cmd in node.get("cmds", []):
        c = cmd["AlterTableCmd"]
        rule = COMMANDS.get(c["subtype"])
        if rule is None:
            ctx.lock(rel.key, "ACCESS EXCLUSIVE")
            ctx.out.notes.append(f"{c['subtype'].removeprefix('AT_')}: not modelled beyond its lock")
            continue
        inherited = _inherited(rel, c)
        rule(ctx, rel, c)
        if ctx.out.fails:
            return
        if node["relation"].get("inh", True) and c["subtype"] in RECURSING:
            _recurse(ctx, rel, c, inherited)


# Commands that ALTER TABLE (without ONLY) applies to inheriting tables and partitions as well.
RECURSING = frozenset({"AT_AddColumn", "AT_DropColumn", "AT_AlterColumnType", "AT_SetNotNull", "AT_DropNotNull",
                       "AT_AddConstraint", "AT_ValidateConstraint", "AT_DropConstraint"})  # fmt: skip


def _inherited(rel: Relation, c: dict) -> bool:
    """Does the command reach tables that inherit (not partitions)? Columns and CHECKs are
    inherited; keys, foreign keys and indexes are not."""
    if c["subtype"] == "AT_AddConstraint":
        return c["def"]["Constraint"]["contype"] == "CONSTR_CHECK"
    if c["subtype"] in ("AT_DropConstraint", "AT_ValidateConstraint"):
        return any(k.name == c["name"] and k.kind == "check" for k in rel.constraints)
    return True


def _recurse(ctx: Ctx, rel: Relation, c: dict, inherited: bool = True) -> None:
    """Children take the parent's lock and its rewrite or scan, and the column it gains."""
    mine = next((lk for lk in ctx.out.locks if lk.table == pg_name(*rel.key)), None)
    for child in [r for r in ctx.cat.relations.values() if r.parent == rel.key and (inherited or r.partition)]:
        if mine is not None:
            effect = mine.effect if c["subtype"] != "AT_AddConstraint" or mine.effect != "none" else "none"
            ctx.lock(child.key, mine.mode, effect)
        if c["subtype"] == "AT_AddColumn":
            col = c["def"]["ColumnDef"]
            child.columns.setdefault(col["colname"], column_info(col))
        elif c["subtype"] == "AT_DropColumn":
            child.columns.pop(c["name"], None)
        _recurse(ctx, child, c, inherited)


def add_column_rule(ctx: Ctx, rel: Relation, c: dict) -> None:
    col = c["def"]["ColumnDef"]
    name = col["colname"]
    if name in rel.columns:
        if not c.get("missing_ok"):
            ctx.fail(f'column "{name}" of relation "{rel.name}" already exists')
        else:
            ctx.lock(rel.key, "ACCESS EXCLUSIVE")  # taken before the column is found
        return
    info = column_info(col)
    cons = [k["Constraint"] for k in col.get("constraints") or []]
    default = next((k.get("raw_expr") for k in cons if k["contype"] == "CONSTR_DEFAULT"), None)
    effect = "none"
    if _volatile(ctx.cat, default) or info.identity or _serial(col) or _stored_generated(cons) or _domain(ctx, col):
        effect = "rewrite"
    elif any(k["contype"] in ("CONSTR_CHECK", "CONSTR_FOREIGN", "CONSTR_PRIMARY", "CONSTR_UNIQUE") for k in cons):
        effect = "scan"
    rows = (rel.size or {}).get("rows")
    if info.not_null and default is None and not info.identity and not _serial(col) and not _stored_generated(cons):
        if rows:
            ctx.fail(f'column "{name}" of relation "{rel.name}" contains null values')
            return
        if rows is None:
            ctx.out.notes.append(f"NOT NULL without a default fails if {rel.name} has rows (its size is unknown)")
    for k in cons:
        if k["contype"] == "CONSTR_FOREIGN":
            ref = ctx.relation(k["pktable"])
            if ref is None:
                return
            ctx.lock(ref.key, "SHARE ROW EXCLUSIVE")
    ctx.lock(rel.key, "ACCESS EXCLUSIVE", effect)
    rel.columns[name] = info
    ctx.reader().column_deps(rel, col)


def _volatile(cat: Catalog, expr: Any) -> bool:
    from schemasync.schema.refs import walk

    for kind, node in walk(expr) if expr else []:
        if kind == "FuncCall":
            names = strings(node.get("funcname"))
            if names[-1] in VOLATILE_BUILTINS:
                return True
            fns = cat.functions.get((names[-2] if len(names) > 1 else "public", names[-1]), [])
            if any(f.volatile for f in fns):
                return True
    return False


def _serial(col: dict) -> bool:
    return strings(col["typeName"].get("names"))[-1:] in (["serial"], ["bigserial"], ["smallserial"], ["serial4"],
                                                          ["serial8"], ["serial2"])  # fmt: skip


def _stored_generated(cons: list[dict]) -> bool:
    return any(k["contype"] == "CONSTR_GENERATED" and k.get("generated_kind", "s") == "s" for k in cons)


def _domain(ctx: Ctx, col: dict) -> bool:
    """A domain's constraints are checked against every existing row's new value."""
    names = strings(col["typeName"].get("names"))
    return ctx.cat.types.get((names[-2] if len(names) > 1 else "public", names[-1])) == "domain"


def type_change_rewrites(old: str, new: str, using: Any, column: str) -> bool:
    """PostgreSQL keeps the rows when the new type is binary-coercible from the old and any length
    limit only grows: varchar(n) to varchar(m >= n) or text, numeric(p,s) to numeric(q >= p, s)."""
    if using is not None and not _plain_column(using, column):
        return True
    if old == new:
        return False
    ob, om = _split_type(old)
    nb, nm = _split_type(new)
    if ob in LENGTH_TYPES | {"text"} and nb == "text":
        return False
    if ob == "text" and nb == "character varying" and not nm:
        return False
    if ob == nb and ob in LENGTH_TYPES:
        return bool(nm) and (not om or int(nm[0]) < int(om[0]))
    if ob == nb == "numeric":
        if not nm:
            return False
        return not om or len(om) != len(nm) or om[1:] != nm[1:] or int(nm[0]) < int(om[0])
    return True


def _plain_column(expr: Any, column: str) -> bool:
    """`USING col` or `USING col::newtype`: the same as no USING."""
    inner = expr.get("TypeCast", {}).get("arg", expr)
    return strings(inner.get("ColumnRef", {}).get("fields")) == [column]


def _split_type(text: str) -> tuple[str, list[str]]:
    if "(" in text:
        base, mods = text.split("(", 1)
        return base.strip(), [m.strip() for m in mods.rstrip(")[]").split(",")]
    return text, []


RULES = {
    "CreateStmt": create_table,
    "IndexStmt": create_index,
    "ViewStmt": create_view,
    "CreateFunctionStmt": create_function,
    "CreateTrigStmt": create_trigger,
    "CreatePolicyStmt": create_policy,
    "AlterEnumStmt": alter_enum,
    "TruncateStmt": truncate,
    "AlterTableStmt": alter_table,
}
