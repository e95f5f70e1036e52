"""ALTER TABLE's commands: each one's checks, lock, rewrite or scan, and change to the catalog."""

from __future__ import annotations

from schemasync.schema.catalog import ConstraintInfo, Relation, pg_name, type_text
from schemasync.schema.catalog_build import rel_key
from schemasync.schema.refs import strings
from schemasync.schema.review import Problem, places
from schemasync.schema.review_drops import in_the_way, report_drop, untracked
from schemasync.schema.review_rules import Ctx, add_column_rule, type_change_rewrites

AE = "ACCESS EXCLUSIVE"


def _column(ctx: Ctx, rel: Relation, name: str) -> bool:
    if name not in rel.columns:
        ctx.fail(f'column "{name}" of relation "{rel.name}" does not exist')
        return False
    return True


def drop_column(ctx: Ctx, rel: Relation, c: dict) -> None:
    name = c["name"]
    if name not in rel.columns:
        if not c.get("missing_ok"):
            ctx.fail(f'column "{name}" of relation "{rel.name}" does not exist')
        return
    ctx.lock(rel.key, AE)
    what = f"column {name} of table {pg_name(*rel.key)}"
    target = ("column", *rel.key, name)
    if report_drop(ctx, what, [target], rel.key, c.get("behavior") == "DROP_CASCADE", whole=False):
        del rel.columns[name]
        rel.indexes = [i for i in rel.indexes if name not in i.columns]
        rel.constraints = [k for k in rel.constraints if name not in k.columns]
        ctx.cat.dependents = [d for d in ctx.cat.dependents if d.owner != rel.key or d.target != target]


# What PostgreSQL says when a column's type cannot change under a dependent (ATExecAlterColumnType).
TYPE_BLOCKERS = {
    "view": "cannot alter type of a column used by a view or rule",
    "materialized view": "cannot alter type of a column used by a view or rule",
    "policy": "cannot alter type of a column used in a policy definition",
    "generated column": "cannot alter type of a column used by a generated column",
}


def alter_type(ctx: Ctx, rel: Relation, c: dict) -> None:
    name = c["name"]
    if not _column(ctx, rel, name):
        return
    col_def = c["def"]["ColumnDef"]
    new = type_text(col_def["typeName"])
    target = ("column", *rel.key, name)
    for d in ctx.cat.dependents:
        if d.target != target or d.via == "text":
            continue
        message = TYPE_BLOCKERS.get(d.kind) or (
            "cannot alter type of a column used in a trigger definition" if d.via == "when" else None
        )
        if message:
            shown = f"rule _RETURN on {d.name}" if d.kind in ("view", "materialized view") else d.name
            ctx.out.fails.append(Problem(message, [shown], places([d])))
            return
    old = rel.columns[name].type
    rewrite = type_change_rewrites(old, new, col_def.get("raw_default"), name)
    ctx.lock(rel.key, AE, "rewrite" if rewrite else "none")
    indexes = [i.name for i in rel.indexes if name in i.columns]
    if indexes and rewrite:
        ctx.out.notes.append(f"rebuilds {', '.join(indexes)}")
    breaks = untracked(ctx.cat, [target])
    if breaks:
        ctx.out.breaks.append(Problem.about(
            f"column {name} of table {pg_name(*rel.key)} changes from {old} to {new}; these read it in text "
            "and are not checked again until they run", breaks))  # fmt: skip
    rel.columns[name].type = new


def set_not_null(ctx: Ctx, rel: Relation, c: dict) -> None:
    name = c["name"]
    if not _column(ctx, rel, name):
        return
    col = rel.columns[name]
    proven = any(k.kind == "check" and k.validated and k.not_null_check == name for k in rel.constraints)
    effect = "none" if col.not_null or proven else "scan"
    ctx.lock(rel.key, AE, effect)
    if proven and not col.not_null:
        ctx.out.notes.append(f"a valid CHECK ({name} IS NOT NULL) spares the scan")
    col.not_null = True


def drop_not_null(ctx: Ctx, rel: Relation, c: dict) -> None:
    name = c["name"]
    if not _column(ctx, rel, name):
        return
    if rel.columns[name].identity:
        ctx.fail(f'column "{name}" of relation "{rel.name}" is an identity column')
        return
    if any(k.kind == "primary key" and name in k.columns for k in rel.constraints):
        ctx.fail(f'column "{name}" is in a primary key')
        return
    ctx.lock(rel.key, AE)
    rel.columns[name].not_null = False


def column_default(ctx: Ctx, rel: Relation, c: dict) -> None:
    name = c["name"]
    if not _column(ctx, rel, name):
        return
    ctx.lock(rel.key, AE)
    target_name = f"default value for column {name} of table {pg_name(*rel.key)}"
    ctx.cat.dependents = [d for d in ctx.cat.dependents if d.name != target_name]
    if c.get("def"):
        ctx.reader().expression_deps("default", target_name, rel, c["def"])
    rel.columns[name].default = bool(c.get("def"))


def add_constraint(ctx: Ctx, rel: Relation, c: dict) -> None:
    con = c["def"]["Constraint"]
    kind = con["contype"]
    name = con.get("conname")
    if name and any(k.name == name for k in rel.constraints):
        ctx.fail(f'constraint "{name}" for relation "{rel.name}" already exists')
        return
    not_valid = bool(con.get("skip_validation"))
    if kind == "CONSTR_FOREIGN":
        _add_foreign_key(ctx, rel, con, not_valid)
        return
    if kind == "CONSTR_PRIMARY" and any(k.kind == "primary key" for k in rel.constraints):
        ctx.fail(f'multiple primary keys for table "{rel.name}" are not allowed')
        return
    for col in strings(con.get("keys")):
        if not _column(ctx, rel, col):
            return
    effect = "none" if not_valid or con.get("indexname") else "scan"
    ctx.lock(rel.key, AE, effect)
    ctx.reader().constraint(rel, con)
    if kind == "CONSTR_PRIMARY":
        for col in strings(con.get("keys")):
            rel.columns[col].not_null = True


def _add_foreign_key(ctx: Ctx, rel: Relation, con: dict, not_valid: bool) -> None:
    ref = ctx.relation(con["pktable"])
    if ref is None:
        return
    for col in strings(con.get("fk_attrs")):
        if col not in rel.columns:
            ctx.fail(f'column "{col}" referenced in foreign key constraint does not exist')
            return
    ref_cols = strings(con.get("pk_attrs")) or next((k.columns for k in ref.constraints if k.kind == "primary key"), [])
    for col in ref_cols:
        if col not in ref.columns:
            ctx.fail(f'column "{col}" referenced in foreign key constraint does not exist')
            return
    if not any(sorted(i.columns) == sorted(ref_cols) and i.unique for i in ref.indexes):
        ctx.fail(f'there is no unique constraint matching given keys for referenced table "{ref.name}"')
        return
    ctx.lock(rel.key, "SHARE ROW EXCLUSIVE", "none" if not_valid else "scan")
    ctx.lock(ref.key, "SHARE ROW EXCLUSIVE")
    ctx.reader().constraint(rel, con)


def validate_constraint(ctx: Ctx, rel: Relation, c: dict) -> None:
    con = next((k for k in rel.constraints if k.name == c["name"]), None)
    if con is None:
        ctx.fail(f'constraint "{c["name"]}" of relation "{rel.name}" does not exist')
        return
    ctx.lock(rel.key, "SHARE UPDATE EXCLUSIVE", "none" if con.validated else "scan")
    if con.kind == "foreign key" and con.ref and not con.validated:
        ctx.lock(con.ref, "ROW SHARE")
    con.validated = True


def drop_constraint(ctx: Ctx, rel: Relation, c: dict) -> None:
    con = next((k for k in rel.constraints if k.name == c["name"]), None)
    if con is None:
        if not c.get("missing_ok"):
            ctx.fail(f'constraint "{c["name"]}" of relation "{rel.name}" does not exist')
        return
    ctx.lock(rel.key, AE)
    cascade = c.get("behavior") == "DROP_CASCADE"
    if con.kind in ("primary key", "unique"):
        fks = _foreign_keys_on(ctx, rel, con)
        if fks and not cascade:
            what = f"constraint {con.name} on table {pg_name(*rel.key)}"
            ctx.fail(f"cannot drop {what} because other objects depend on it",
                     fks)  # fmt: skip
            return
        ctx.out.cascades.extend(d.name for d in fks)
        for d in fks:
            ctx.lock(d.owner, AE)
        ctx.cat.dependents = [d for d in ctx.cat.dependents if d not in fks]
        rel.indexes = [i for i in rel.indexes if i.constraint != con.name]
    if con.kind == "foreign key" and con.ref:
        ctx.lock(con.ref, AE)
    words = f"constraint {con.name} on table {pg_name(*rel.key)}"
    ctx.cat.dependents = [d for d in ctx.cat.dependents if d.name != words]
    rel.constraints.remove(con)


def _foreign_keys_on(ctx: Ctx, rel: Relation, con: ConstraintInfo) -> list:
    targets = [("column", *rel.key, col) for col in con.columns]
    keyed = {
        (other.key, k.name)
        for other in ctx.cat.relations.values() for k in other.constraints
        if k.kind == "foreign key" and k.ref == rel.key and sorted(k.ref_columns) == sorted(con.columns)
    }  # fmt: skip
    return [
        d
        for d in in_the_way(ctx.cat, targets, rel.key, whole=False)
        if d.kind == "foreign key" and any(d.name == f"constraint {n} on table {pg_name(*o)}" for o, n in keyed)
    ]


def row_security(ctx: Ctx, rel: Relation, c: dict) -> None:
    ctx.lock(rel.key, AE)


def attach_partition(ctx: Ctx, rel: Relation, c: dict) -> None:
    part = ctx.relation(c["def"]["PartitionCmd"]["name"])
    if part is None:
        return
    ctx.lock(rel.key, "SHARE UPDATE EXCLUSIVE")
    ctx.lock(part.key, AE, "scan")
    _referenced(ctx, rel)
    part.parent, part.partition = rel.key, True


def detach_partition(ctx: Ctx, rel: Relation, c: dict) -> None:
    key = rel_key(c["def"]["PartitionCmd"]["name"])
    part = ctx.cat.relations.get(key)
    if part is None or part.parent != rel.key:
        ctx.fail(f'relation "{key[1]}" is not a partition of relation "{rel.name}"')
        return
    concurrent = bool(c["def"]["PartitionCmd"].get("concurrent"))
    ctx.lock(rel.key, "SHARE UPDATE EXCLUSIVE" if concurrent else AE)
    ctx.lock(part.key, AE)
    _referenced(ctx, rel)
    part.parent, part.partition = None, False


def _referenced(ctx: Ctx, rel: Relation) -> None:
    """Attaching or detaching a partition adds or drops its copies of the parent's foreign keys."""
    for con in rel.constraints:
        if con.kind == "foreign key" and con.ref:
            ctx.lock(con.ref, "SHARE ROW EXCLUSIVE")


COMMANDS = {
    "AT_AddColumn": add_column_rule,
    "AT_DropColumn": drop_column,
    "AT_AlterColumnType": alter_type,
    "AT_SetNotNull": set_not_null,
    "AT_DropNotNull": drop_not_null,
    "AT_ColumnDefault": column_default,
    "AT_AddConstraint": add_constraint,
    "AT_ValidateConstraint": validate_constraint,
    "AT_DropConstraint": drop_constraint,
    "AT_EnableRowSecurity": row_security,
    "AT_DisableRowSecurity": row_security,
    "AT_ForceRowSecurity": row_security,
    "AT_AttachPartition": attach_partition,
    "AT_DetachPartition": detach_partition,
}
