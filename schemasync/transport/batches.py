"""How a dump too big for one pg_dump's locks is split: the pg_dump selections of its batches, and
of the last dump that holds everything else (the answer to the script's `ASK batches`)."""

from __future__ import annotations

from collections.abc import Iterable

from schemasync.core.config import HostConfig
from schemasync.core.errors import DatabaseError
from schemasync.schema.discovery import Discovery, Relation
from schemasync.transport.remote_script import dump_pattern


def all_but(names: Iterable[str]) -> str:
    """A pg_dump name pattern matching every name except these: pg_dump passes brackets, `|` and
    backslashes outside quotes to the server's regular expressions, and has no negation, so the
    names' prefix tree is spelled out: at each node, the node itself (unless it is a name), or a
    next character that leads to no name, then anything. Characters in a class are written as
    `\\x` escapes (pg_dump folds unquoted letters to lower case); prefixes are quoted, exact."""
    tree: dict = {}
    for name in names:
        node = tree
        for ch in name:
            node = node.setdefault(ch, {})
        node[None] = {}
    alternatives: list[str] = []

    def visit(node: dict, prefix: str) -> None:
        quoted = '"' + prefix.replace('"', '""') + '"' if prefix else ""
        following = sorted(ch for ch in node if ch is not None)
        if prefix and None not in node:
            alternatives.append(quoted)
        if following:
            alternatives.append(quoted + "[^" + "".join(f"\\x{ord(ch):x}" for ch in following) + "]*")
        else:
            alternatives.append(quoted + "?*")
        for ch in following:
            visit(node[ch], prefix + ch)

    visit(tree, "")
    return "|".join(alternatives)


def plan_batches(discovery: Discovery, host: HostConfig, locks: int, whole: bool = True) -> list[list[str]]:
    """pg_dump selections for more tables than one pg_dump can lock, in batches that lock at most
    `locks` relations each, in the catalog's byte order. A schema whose relations fit in a batch,
    own each other only within it and are all selected goes whole (`-n`: all its objects, one
    pattern: pg_dump runs a query per pattern and scans each list of matches once per relation);
    the other schemas' file owners (tables, views, sequences of their own) go one by one (`-t`), a
    table's partitions with it (they share its file; its owned sequences come with it). Then, if
    `whole`, one dump of everything else: the whole schemas excluded (`-N`), and the relations of
    the others by a pattern per schema, except the tables a publication names one by one (pg_dump
    prints that only in a dump of everything that dumps the table too)."""
    by_owner: dict[int, list[Relation]] = {}
    for rel in discovery.relations.values():
        by_owner.setdefault(rel.owner, []).append(rel)
    owners = sorted(
        (r for r in discovery.relations.values() if r.owner == r.oid and r.relkind in "rpfvmS"),
        key=lambda r: (r.schema.encode(), r.name.encode()),
    )
    published = [o for o in owners if whole and any(r.oid in discovery.published for r in by_owner[o.oid])]
    last = {r.oid for o in published for r in by_owner[o.oid]}
    units: dict[str, list[list[str]]] = {}  # schema -> its file owners' selections
    held_by: dict[str, int] = {}
    for owner in owners:
        if owner.oid in last:
            continue
        members = [r for r in by_owner[owner.oid] if r.relkind in "rpf"] if owner.relkind in "rpf" else [owner]
        ordered = sorted(members, key=lambda r: (r.schema.encode(), r.name.encode()))
        units.setdefault(owner.schema, []).append(
            [arg for r in ordered for arg in ("-t", dump_pattern(r.schema, r.name))]
        )
        held_by[owner.schema] = held_by.get(owner.schema, 0) + len(members)
    kept_in: dict[str, set[str]] = {}  # schema -> names the last dump keeps
    for oid in last:
        rel = discovery.relations[oid]
        if rel.relkind in "rpfvmS":
            kept_in.setdefault(rel.schema, set()).add(rel.name)
    if sum(discovery.relations[oid].relkind in "rpf" for oid in last) > locks:
        raise DatabaseError(
            f"more tables are named one by one by publications than one pg_dump can lock ({locks:,})",
            hint="raise max_locks_per_transaction on the server, or leave those schemas out (schemas, exclude)",
        )
    whole_schemas = _whole_schemas(discovery, host, held_by, locks) - set(kept_in) if whole else set()
    batches = _packed(units, held_by, whole_schemas, locks)
    if whole:
        rest: list[str] = []
        if host.schemas != ["*"]:
            rest += [arg for schema in discovery.schemas for arg in ("-n", dump_pattern(schema))]
        for schema in discovery.schemas:
            if schema in whole_schemas:
                rest += ["-N", dump_pattern(schema)]
            else:
                names = all_but(kept_in[schema]) if schema in kept_in else "*"
                rest += ["-T", f"{dump_pattern(schema)}.{names}"]
        batches.append(rest)
    return batches


def _packed(units: dict[str, list[list[str]]], held_by: dict[str, int], whole: set[str], locks: int) -> list[list[str]]:
    """The selections in batches of at most `locks` tables: the whole schemas (-n) first, then the
    file owners (-t), each in byte order. Never both in one batch: with a -t, pg_dump ignores -n."""
    batches: list[list[str]] = []
    current: list[str] = []
    held = 0

    def add(selection: list[str], count: int) -> None:
        nonlocal current, held
        if current and (held + count > locks or current[0] != selection[0]):
            batches.append(current)
            current, held = [], 0
        held += count
        current += selection

    schemas = sorted(units, key=str.encode)
    for schema in (s for s in schemas if s in whole):
        add(["-n", dump_pattern(schema)], held_by[schema])
    for schema in (s for s in schemas if s not in whole):
        for selection in units[schema]:
            add(selection, len(selection) // 2)
    if current:
        batches.append(current)
    return batches


def _whole_schemas(discovery: Discovery, host: HostConfig, held_by: dict[str, int], locks: int) -> set[str]:
    """The schemas a batch may dump whole: nothing in them left out by `exclude`, no relation in
    them owned from another schema or owning one in another (a sequence owned by a table, a
    partition: pg_dump prints those with their owner), and few enough tables for one batch."""
    if host.exclude:
        return set()
    crossing: set[str] = set()
    for rel in discovery.relations.values():
        owner = discovery.relations.get(rel.owner)
        if owner is None or owner.schema != rel.schema:
            crossing |= {rel.schema, owner.schema if owner else rel.schema}
    return {schema for schema, held in held_by.items() if held <= locks and schema not in crossing}
