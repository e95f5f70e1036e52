"""DROP and RENAME, and what PostgreSQL does about what depends on the dropped thing.

PostgreSQL records most dependencies (pg_depend): a view's columns, a foreign key, a policy, a
trigger, a default, a generated column, a BEGIN ATOMIC body. Dropping what they depend on fails
without CASCADE, naming them all (DETAIL), and with CASCADE drops them all (NOTICE). A table's own
indexes, constraints and defaults go with it. Bodies written as text (PL/pgSQL, `AS $$` SQL) are
not recorded: PostgreSQL lets the drop or rename through, and the function fails when it runs.
"""

from __future__ import annotations

from schemasync.schema.catalog import Catalog, Dependent, impact_targets, pg_name
from schemasync.schema.refs import Target, strings
from schemasync.schema.review import Problem
from schemasync.schema.review_rules import Ctx

# A table's own parts: dropped with the table or the column, never in the way.
OWN_PARTS = frozenset({"index", "check", "default", "column"})


def tracked(cat: Catalog, d: Dependent) -> bool:
    """Does PostgreSQL record this dependency? Not for a body it keeps as text."""
    return d.via != "text"


def in_the_way(
    cat: Catalog, targets: list[Target], owner: tuple[str, str] | None, whole: bool = True
) -> list[Dependent]:
    """What PostgreSQL would list for dropping `targets`: every recorded dependent, and what depends
    on those, transitively; but not the parts of `owner` that go with it (all of them when the
    whole of it is dropped; its indexes, constraints and defaults when a column is)."""
    index: dict[Target, list[Dependent]] = {}
    for d in cat.dependents:
        index.setdefault(d.target, []).append(d)
    out: list[Dependent] = []
    seen: set[str] = set()
    frontier = list(targets)
    dropped_owners: set[tuple[str, str]] = {owner} if owner and whole else set()
    while frontier:
        t = frontier.pop(0)
        for d in index.get(t, []):
            if not tracked(cat, d) or d.name in seen:
                continue
            if d.owner in dropped_owners or (d.owner == owner and d.kind in OWN_PARTS | {"foreign key"}):
                continue
            if d.kind == "partition" and t[0] == "relation":
                continue  # partitions go with their partitioned table
            seen.add(d.name)
            out.append(d)
            if d.kind in ("view", "materialized view", "child table") and d.owner:
                dropped_owners.add(d.owner)
                frontier.extend(impact_targets(cat, ("relation", *d.owner)))
            elif d.kind == "function" and d.owner:
                frontier.append(("function", *d.owner))
    # a column that goes takes its table's own parts with it: PostgreSQL names the column alone
    losing = {d.owner for d in out if d.kind == "column"}
    return [d for d in out if not (d.owner in losing and d.kind in OWN_PARTS - {"column"})]


def untracked(cat: Catalog, targets: list[Target], exclude: set[tuple[str, str]] | None = None) -> list[Dependent]:
    """Bodies that name a target in text: a drop or rename leaves them to fail when they run."""
    keys = set(targets)
    return [d for d in cat.dependents if d.target in keys and d.via == "text" and d.owner not in (exclude or set())]


def report_drop(
    ctx: Ctx, what: str, targets: list[Target], owner: tuple[str, str] | None, cascade: bool, whole: bool = True
) -> bool:
    """Fail (RESTRICT) or list the cascade; True when the drop goes ahead."""
    deps = in_the_way(ctx.cat, targets, owner, whole)
    if deps and not cascade:
        ctx.fail(f"cannot drop {what} because other objects depend on it", deps)
        return False
    ctx.out.cascades.extend(d.name for d in deps)
    for d in deps:  # what goes with it is locked as it goes: views, tables, those holding the keys
        if d.kind in ("foreign key", "view", "materialized view", "child table", "policy", "trigger") and d.owner:
            ctx.lock(d.owner, "ACCESS EXCLUSIVE")
    broken = untracked(ctx.cat, targets, {d.owner for d in deps if d.owner})
    if broken:
        message = f"{what} is dropped, and these still name it: they fail when they run"
        ctx.out.breaks.append(Problem.about(message, broken))
    remove(ctx.cat, targets, deps)
    return True


def remove(cat: Catalog, targets: list[Target], dropped: list[Dependent]) -> None:
    """The catalog without the dropped objects and the dependencies they held."""
    gone_owners = {d.owner for d in dropped if d.kind in ("view", "materialized view", "child table")}
    for owner in gone_owners:
        cat.relations.pop(owner, None)
    dropped_names = {d.name for d in dropped}
    gone = set(targets)
    cat.dependents = [
        d for d in cat.dependents
        if d.name not in dropped_names and d.owner not in gone_owners and (d.target not in gone or d.via == "text")
    ]  # fmt: skip


def drop(ctx: Ctx, node: dict) -> None:
    kind = node["removeType"]
    cascade = node.get("behavior") == "DROP_CASCADE"
    for obj in node.get("objects", []):
        names = _object_names(obj)
        DROPS.get(kind, _drop_other)(ctx, node, names, cascade)
        if ctx.out.fails:
            return


def _object_names(obj: dict) -> list[str]:
    if "List" in obj:
        return strings(obj["List"]["items"])
    if "ObjectWithArgs" in obj:
        return strings(obj["ObjectWithArgs"].get("objname"))
    if "TypeName" in obj:
        return strings(obj["TypeName"].get("names"))
    return [obj["String"]["sval"]] if "String" in obj else []


def _drop_relation(ctx: Ctx, node: dict, names: list[str], cascade: bool) -> None:
    word = {"OBJECT_TABLE": "table", "OBJECT_VIEW": "view", "OBJECT_MATVIEW": "materialized view"}[node["removeType"]]
    key = ctx.cat.resolve(names[-2] if len(names) > 1 else None, names[-1])
    rel = ctx.cat.relations.get(key) if key else None
    if rel is None or _word(rel.kind) != word:
        if not node.get("missing_ok"):
            ctx.fail(f'{word} "{names[-1]}" does not exist')
        return
    ctx.lock(rel.key, "ACCESS EXCLUSIVE")
    parts = [r for r in ctx.cat.relations.values() if r.parent == rel.key and r.partition]
    for other in parts:
        ctx.lock(other.key, "ACCESS EXCLUSIVE")
    for r in [rel, *parts]:  # its foreign keys' triggers on the tables they reference go too
        for con in r.constraints:
            if con.kind == "foreign key" and con.ref and con.ref != rel.key:
                ctx.lock(con.ref, "ACCESS EXCLUSIVE")
    if report_drop(
        ctx, f"{word} {pg_name(*rel.key)}", impact_targets(ctx.cat, ("relation", *rel.key)), rel.key, cascade
    ):
        parts = [k for k, r in ctx.cat.relations.items() if r.parent == rel.key and r.partition]
        for k in [rel.key, *parts]:
            ctx.cat.relations.pop(k, None)
        ctx.cat.dependents = [d for d in ctx.cat.dependents if d.owner not in (rel.key, *parts) or d.via == "text"]


def _word(kind: str) -> str:
    return "table" if kind in ("table", "partitioned table") else kind


def _drop_index(ctx: Ctx, node: dict, names: list[str], cascade: bool) -> None:
    name = names[-1]
    rel = next((r for r in ctx.cat.relations.values() if any(i.name == name for i in r.indexes)), None)
    if rel is None:
        if not node.get("missing_ok"):
            ctx.fail(f'index "{name}" does not exist')
        return
    index = next(i for i in rel.indexes if i.name == name)
    if index.constraint:
        ctx.fail(f"cannot drop index {name} because constraint {index.constraint} on table {pg_name(*rel.key)} "
                 "requires it")  # fmt: skip
        return
    ctx.lock(rel.key, "SHARE UPDATE EXCLUSIVE" if node.get("concurrent") else "ACCESS EXCLUSIVE")
    rel.indexes.remove(index)
    ctx.cat.dependents = [d for d in ctx.cat.dependents if d.name != f"index {pg_name(rel.schema, name)}"]


def _drop_named(kind: str, word: str):
    def rule(ctx: Ctx, node: dict, names: list[str], cascade: bool) -> None:
        schema = names[-2] if len(names) > 1 else None
        pool = {"type": ctx.cat.types, "sequence": ctx.cat.sequences, "function": ctx.cat.functions}[kind]
        key = next((k for k in pool if k[1] == names[-1] and (schema is None or k[0] == schema)), None)
        if key is None:
            if not node.get("missing_ok"):
                ctx.fail(f'{word} "{names[-1]}" does not exist' if kind != "function"
                         else f"function {names[-1]} does not exist")  # fmt: skip
            return
        what = f"{word} {pg_name(*key)}"
        if kind == "function":
            fn = ctx.cat.functions[key][0]
            what = f"function {fn.signature}"
        if report_drop(ctx, what, [(kind, *key)], key, cascade):
            pool.pop(key, None)

    return rule


def _drop_other(ctx: Ctx, node: dict, names: list[str], cascade: bool) -> None:
    ctx.out.notes.append(f"DROP {node['removeType'].removeprefix('OBJECT_')}: not modelled")


DROPS = {
    "OBJECT_TABLE": _drop_relation,
    "OBJECT_VIEW": _drop_relation,
    "OBJECT_MATVIEW": _drop_relation,
    "OBJECT_INDEX": _drop_index,
    "OBJECT_TYPE": _drop_named("type", "type"),
    "OBJECT_DOMAIN": _drop_named("type", "type"),
    "OBJECT_SEQUENCE": _drop_named("sequence", "sequence"),
    "OBJECT_FUNCTION": _drop_named("function", "function"),
}


def rename(ctx: Ctx, node: dict) -> None:
    kind = node["renameType"]
    if kind == "OBJECT_COLUMN":
        _rename_column(ctx, node)
    elif kind in ("OBJECT_TABLE", "OBJECT_VIEW", "OBJECT_MATVIEW"):
        _rename_relation(ctx, node)
    else:
        ctx.out.notes.append(f"RENAME {kind.removeprefix('OBJECT_')}: not modelled")


def _rename_column(ctx: Ctx, node: dict) -> None:
    rel = ctx.relation(node["relation"], missing_ok=bool(node.get("missing_ok")))
    if rel is None:
        return
    old, new = node["subname"], node["newname"]
    if old not in rel.columns:
        ctx.fail(f'column "{old}" does not exist')
        return
    if new in rel.columns:
        ctx.fail(f'column "{new}" of relation "{rel.name}" already exists')
        return
    ctx.lock(rel.key, "ACCESS EXCLUSIVE")
    if node["relation"].get("inh", True):
        for child in (r for r in ctx.cat.relations.values() if r.parent == rel.key):
            ctx.lock(child.key, "ACCESS EXCLUSIVE")
            if old in child.columns:
                child.columns = {(new if k == old else k): v for k, v in child.columns.items()}
    target = ("column", *rel.key, old)
    broken = untracked(ctx.cat, [target])
    if broken:
        ctx.out.breaks.append(Problem.about(
            f"column {old} of table {pg_name(*rel.key)} is renamed to {new}; "
            f"these still name {old} and fail when they run", broken))  # fmt: skip
    rel.columns = {(new if k == old else k): v for k, v in rel.columns.items()}
    rel.columns[new].name = new
    for d in ctx.cat.dependents:
        if d.target == target and d.via != "text":
            d.target = ("column", *rel.key, new)
    for i in rel.indexes:
        i.columns = [new if c == old else c for c in i.columns]
    for c in rel.constraints:
        c.columns = [new if x == old else x for x in c.columns]


def _rename_relation(ctx: Ctx, node: dict) -> None:
    rel = ctx.relation(node["relation"], missing_ok=bool(node.get("missing_ok")))
    if rel is None:
        return
    new = node["newname"]
    if (rel.schema, new) in ctx.cat.relations or (rel.schema, new) in ctx.cat.sequences:
        ctx.fail(f'relation "{new}" already exists')
        return
    ctx.lock(rel.key, "ACCESS EXCLUSIVE")
    old_key, new_key = rel.key, (rel.schema, new)
    targets = set(impact_targets(ctx.cat, ("relation", *old_key)))
    broken = untracked(ctx.cat, list(targets))
    if broken:
        ctx.out.breaks.append(
            Problem.about(
                f"{pg_name(*old_key)} is renamed to {new}; these still name {old_key[1]} and fail when they run", broken
            )
        )
    del ctx.cat.relations[old_key]
    rel.name = new
    ctx.cat.relations[new_key] = rel
    for d in ctx.cat.dependents:
        if d.target in targets and d.via != "text":
            d.target = (d.target[0], *new_key, *d.target[3:])
        if d.owner == old_key:
            d.owner = new_key
    for r in ctx.cat.relations.values():
        if r.parent == old_key:
            r.parent = new_key
        for c in r.constraints:
            if c.ref == old_key:
                c.ref = new_key


DROP_RULES = {"DropStmt": drop, "RenameStmt": rename}
