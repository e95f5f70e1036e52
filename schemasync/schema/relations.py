"""What readers ask of a schema beyond its DDL: references in and out, keys, columns, and an ER
diagram. Pure: built from discovery, stored in the manifest, rendered into markdown."""

from __future__ import annotations

from collections import defaultdict

from schemasync.core.names import display_name, escape_controls, qualified_name
from schemasync.schema.discovery import Discovery, ForeignKey

ACTIONS = {"a": "", "r": "RESTRICT", "c": "CASCADE", "n": "SET NULL", "d": "SET DEFAULT"}


def fk_text(fk: ForeignKey) -> str:
    """`public.solar_projects(company_id) -> company(id) ON DELETE CASCADE`"""
    text = (
        f"{qualified_name(fk.schema, fk.table)}({', '.join(fk.columns)}) -> "
        f"{display_name(fk.ref_schema, fk.ref_table)}({', '.join(fk.ref_columns)})"
    )
    if ACTIONS.get(fk.on_delete):
        text += f" ON DELETE {ACTIONS[fk.on_delete]}"
    if ACTIONS.get(fk.on_update):
        text += f" ON UPDATE {ACTIONS[fk.on_update]}"
    return escape_controls(text)


def _fk_dict(fk: ForeignKey) -> dict:
    return {
        "name": fk.name,
        "schema": fk.schema,
        "table": fk.table,
        "columns": list(fk.columns),
        "ref_schema": fk.ref_schema,
        "ref_table": fk.ref_table,
        "ref_columns": list(fk.ref_columns),
        "on_delete": ACTIONS.get(fk.on_delete) or "NO ACTION",
        "text": fk_text(fk),
    }


def table_details(discovery: Discovery) -> dict[tuple[str, str], dict]:
    """Per table: columns, primary key, comment, foreign keys out and in (sorted: stable files)."""
    out: dict[tuple[str, str], list[dict]] = defaultdict(list)
    into: dict[tuple[str, str], list[dict]] = defaultdict(list)
    home = discovery.file_tables()  # a partition's keys are in its partitioned table's file
    for fk in discovery.foreign_keys:
        d = _fk_dict(fk)  # once: the same dict serves both ends
        out[home.get((fk.schema, fk.table), (fk.schema, fk.table))].append(d)
        into[(fk.ref_schema, fk.ref_table)].append(d)
    details = {}
    alike: dict[tuple[str, str, bool], list] = {}  # one list for columns alike: nothing changes them
    for t in discovery.tables:
        details[t.key] = {
            "column_defs": [
                alike.setdefault((c.name, c.type, c.not_null), [c.name, c.type, c.not_null]) for c in t.column_defs
            ],
            # sparse: only the columns that have one, so the manifest stays one short line a table
            "column_comments": {c.name: c.comment for c in t.column_defs if c.comment is not None},
            # what uses the table (views, SQL-bodied functions): what a column drop would break
            "dependents": [
                {"kind": kind, "name": display_name(schema, name)}
                for kind, schema, name in discovery.dependents.get(t.oid, [])
            ],
            "primary_key": list(t.primary_key),
            "comment": t.comment,
            "foreign_keys": sorted(out[t.key], key=lambda d: d["text"]),
            "referenced_by": sorted(into[t.key], key=lambda d: d["text"]),
        }
        if t.key in (discovery.sizes or {}):  # what `review` weighs a lock by: rows and bytes, as powers of ten
            rows, size = discovery.sizes[t.key]
            details[t.key]["size"] = {"rows": rows, "bytes": size}
    return details


REFERENCES_IN_HEADER = 10  # a reader of a file's first lines must reach its CREATE TABLE
USERS_IN_HEADER = 20  # views and functions named in the `-- Used by:` line


def header_lines(details: dict | None) -> list[str]:
    """Extra header lines of a table file: who points at it (the FK itself lives in the other file),
    one line each up to REFERENCES_IN_HEADER, then one line naming the other tables."""
    if not details:
        return []
    refs = details["referenced_by"]
    lines = [f"-- Referenced by: {fk['text']}\n" for fk in refs[:REFERENCES_IN_HEADER]]
    rest = refs[REFERENCES_IN_HEADER:]
    if rest:
        tables = sorted({qualified_name(fk["schema"], fk["table"]) for fk in rest})
        lines.append(
            f"-- Referenced by {len(rest)} more foreign keys, from: {', '.join(tables)}"
            " (inv schemas.show lists them all)\n"
        )
    users = [f"{d['kind']} {d['name']}" for d in details.get("dependents", [])]
    if users:  # what dropping or changing a column would break, besides the foreign keys
        shown = users[:USERS_IN_HEADER]
        more = f" and {len(users) - len(shown)} more" if len(users) > len(shown) else ""
        lines.append(f"-- Used by: {', '.join(shown)}{more}\n")
    return lines
