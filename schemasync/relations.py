"""What readers ask of a schema beyond its DDL: references in and out, keys, columns, and an ER
diagram. Pure: built from discovery, stored in the manifest, rendered into markdown."""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass
from functools import lru_cache

from .discovery import Discovery, ForeignKey
from .names import display_name, escape_controls, name_part, qualified_name

ACTIONS = {"a": "", "r": "RESTRICT", "c": "CASCADE", "n": "SET NULL", "d": "SET DEFAULT"}
ERD_LIMIT = 60  # tables per diagram before it stops being readable
NEIGHBOURS = 30  # foreign keys drawn around one table; the rest are named under the diagram
STAR = 6  # foreign keys per neighbourhood diagram (measured: 30 in one row render 7,471 px wide)


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
    for t in discovery.tables:
        details[t.key] = {
            "column_defs": [[c.name, c.type, c.not_null] for c in t.column_defs],
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


# ---------------------------------------------------------------------------------------------
# ER diagram


_NOT_IN_ENTITY = re.compile(r"[^A-Za-z0-9_]")


def _entity(schema: str, name: str, home: str) -> str:
    base = name if schema == home else f"{schema}__{name}"
    return _NOT_IN_ENTITY.sub("_", base) or "_"


_SHORT_TYPES = (
    ("timestamp with time zone", "timestamptz"),
    ("timestamp without time zone", "timestamp"),
    ("time with time zone", "timetz"),
    ("time without time zone", "time"),
    ("character varying", "varchar"),
    ("double precision", "float8"),
    ("bit varying", "varbit"),
    ("character", "char"),
)


@lru_cache(maxsize=4096)  # a schema uses few types, over and over: 20,000 tables draw ~80,000 columns
def _type(text: str) -> str:
    """A column type as Mermaid takes it (one word; parentheses and brackets allowed): the short
    name PostgreSQL also accepts, without schema and without a precision list."""
    for long, short in _SHORT_TYPES:
        text = text.replace(long, short)
    text = re.sub(r"\([^)]*,[^)]*\)", "", text)  # numeric(6,2): commas are not allowed
    text = text.rsplit(".", 1)[-1] if "." in text.split("(")[0] else text  # public.project_status
    return re.sub(r"[^A-Za-z0-9_()\[\]]", "_", text) or "_"


def _entity_line(schema: str, name: str, home: str) -> str:
    """`id["real name"] {`: Mermaid shows the alias, so a table keeps its real name, schema and all."""
    ident = _entity(schema, name, home)
    shown = name if schema == home else f"{schema}.{name}"
    alias = f'["{shown.replace(chr(34), chr(39))}"]' if shown != ident else ""
    return f"    {ident}{alias} {{"


def _diagram(tables: list[dict], fks: list[dict], home: str) -> str:
    """One Mermaid erDiagram: entities with their key columns, one line per foreign key."""
    lines = ["```mermaid", "erDiagram"]
    for t in tables:
        key_cols = set(t["primary_key"]) | {c for fk in t["foreign_keys"] for c in fk["columns"]}
        lines.append(_entity_line(t["schema"], t["name"], home))
        for name, typ, _ in t["column_defs"]:
            if name in key_cols:
                marks = ",".join(
                    m
                    for m, on in (
                        ("PK", name in t["primary_key"]),
                        ("FK", any(name in fk["columns"] for fk in t["foreign_keys"])),
                    )
                    if on
                )
                ident = _entity("", name, "")
                real = f' "{escape_controls(name).replace(chr(34), chr(39))}"' if ident != name else ""
                lines.append(f"        {_type(typ)} {ident} {marks}{real}".rstrip())
        lines.append("    }")
    for fk in fks:
        child = _entity(fk["schema"], fk["table"], home)
        parent = _entity(fk["ref_schema"], fk["ref_table"], home)
        label = ", ".join(fk["columns"]).replace('"', "'")
        lines.append(f'    {child} }}o--|| {parent} : "{escape_controls(label)}"')
    lines.append("```")
    return "\n".join(lines) + "\n"


ERD = "_erd.md"
ERD_PAGES = "_erd"  # the folder of a big reference's diagram pages
PAGE_DIAGRAMS = 40  # diagrams per page: past this GitHub renders a page slowly, and nobody reads it whole


def render_erd(records: list, environment: str) -> str:
    """`_erd.md` as one page, whatever its size (tests and small references)."""
    return _one_page(environment, _schema_sections(records))


def render_erd_pages(records: list, environment: str) -> dict[str, str]:
    """The diagrams: `_erd.md` alone while it holds at most PAGE_DIAGRAMS diagrams; past that,
    `_erd.md` lists pages of up to PAGE_DIAGRAMS diagrams, one schema's to a page (several
    numbered pages for a big schema), under `_erd/`."""
    sections = _schema_sections(records)
    if sum(b.diagrams for _, blocks, _ in sections for b in blocks) <= PAGE_DIAGRAMS:
        return {ERD: _one_page(environment, sections)}
    pages: dict[str, str] = {}
    contents = [*_erd_head(environment), "\nThe diagrams are on pages, one schema's to a page:\n"]
    for schema, blocks, lonely in sections:
        chunks: list[list[_Block]] = [[]]
        for block in blocks:
            if chunks[-1] and sum(b.diagrams for b in chunks[-1]) + block.diagrams > PAGE_DIAGRAMS:
                chunks.append([])
            chunks[-1].append(block)
        contents.append(f"\n## {escape_controls(schema)}\n\n")
        for k, chunk in enumerate(chunks, 1):
            file = f"{ERD_PAGES}/{name_part(schema)}{'' if k == 1 else f'.{k}'}.md"
            of = f" (page {k} of {len(chunks)})" if len(chunks) > 1 else ""
            names = [n for b in chunk for n in b.tables]
            span = f": `{escape_controls(names[0])}` to `{escape_controls(names[-1])}`" if names else ""
            count = sum(b.diagrams for b in chunk)
            contents.append(f"- [{file}]({file}){span} ({count} diagram{'s' if count != 1 else ''})\n")
            page = [
                f"# Entity-relationship diagrams: {escape_controls(environment)}, "
                f"schema `{escape_controls(schema)}`{of}\n\n",
                "<!-- Generated by schemasync; a refresh rewrites this file. -->\n\n",
                f"All pages: [{ERD}](../{ERD}).\n\n",
                *(b.text for b in chunk),
            ]
            if k == len(chunks) and lonely:
                page.append(lonely)
            pages[file] = "".join(page)
    pages[ERD] = "".join(contents)
    return pages


def _erd_head(environment: str) -> list[str]:
    return [
        f"# Entity-relationship diagrams: {escape_controls(environment)}\n\n",
        "<!-- Generated by schemasync; a refresh rewrites this file. -->\n\n",
        "Tables with their key columns and foreign keys (`child }o--|| parent`). GitHub and most editors "
        "render these as pictures.\n",
    ]


def _one_page(environment: str, sections: list[tuple[str, list[_Block], str]]) -> str:
    out = _erd_head(environment)
    for schema, blocks, lonely in sections:
        out.append(f"\n## {escape_controls(schema)}\n\n")
        out += [b.text for b in blocks]
        out.append(lonely)
    return "".join(out)


@dataclass
class _Block:
    """A heading and its diagram(s), kept together on one page."""

    text: str
    tables: list[str]  # the tables it is about, for the page's table of contents
    diagrams: int = 1


def _schema_sections(records: list) -> list[tuple[str, list[_Block], str]]:
    """Per schema: its diagrams, and the line naming its tables without foreign keys.

    A small schema is one diagram; a big one is drawn as its connected groups of tables, and a
    group bigger than ERD_LIMIT as one neighbourhood diagram per table, never one wall."""
    tables = [
        {"schema": r.schema, "name": r.name, "file": r.file, **(r.details or {})}
        for r in records
        if r.kind == "table" and r.status != "orphaned" and r.details
    ]
    sections = []
    by_key = {(t["schema"], t["name"]): t for t in tables}
    for schema in sorted({t["schema"] for t in tables}):
        members = [t for t in tables if t["schema"] == schema]
        blocks: list[_Block] = []
        fks = [fk for t in members for fk in t["foreign_keys"]]
        if len(members) <= ERD_LIMIT:
            diagram = _diagram(members + _foreign_ends(members, fks, by_key), fks, schema)
            sections.append((schema, [_Block(diagram, [t["name"] for t in members])], ""))
            continue
        groups = _groups(members, fks)
        # sets and per-table lists, never a scan of every FK per group: this runs at 20,000 tables
        touched = {(fk["schema"], fk["table"]) for fk in fks} | {(fk["ref_schema"], fk["ref_table"]) for fk in fks}
        lonely = [g[0] for g in groups if len(g) == 1 and (g[0]["schema"], g[0]["name"]) not in touched]
        for group in groups:
            if len(group) == 1 and (group[0]["schema"], group[0]["name"]) not in touched:
                continue
            group_fks = [fk for t in group for fk in t["foreign_keys"]]
            if len(group) <= ERD_LIMIT:
                title = ", ".join(f"`{escape_controls(t['name'])}`" for t in group[:5])
                more = f" and {len(group) - 5} more" if len(group) > 5 else ""
                text = f"### {title}{more}\n\n" + _diagram(
                    group + _foreign_ends(group, group_fks, by_key), group_fks, schema
                )
                blocks.append(_Block(text, [t["name"] for t in group]))
                continue
            touching: dict[str, list[dict]] = defaultdict(list)  # a table's FKs, both ways, in one pass
            for fk in group_fks:
                if fk["schema"] == schema:
                    touching[fk["table"]].append(fk)
                if fk["ref_schema"] == schema and fk["ref_table"] != fk["table"]:
                    touching[fk["ref_table"]].append(fk)
            for t in group:
                blocks.append(_neighbourhood(t, touching[t["name"]], by_key, schema))
        line = ""
        if lonely:
            names = ", ".join(f"`{escape_controls(t['name'])}`" for t in lonely)
            line = f"Tables without foreign keys: {names}.\n"
        sections.append((schema, blocks, line))
    return sections


def _neighbourhood(t: dict, links: list[dict], by_key: dict, schema: str) -> _Block:
    """One table and the tables its foreign keys reach, both ways: up to NEIGHBOURS of them, STAR
    to a diagram (a star of many is laid out as one row thousands of pixels wide), the rest named."""
    near = links[:NEIGHBOURS]
    parts = [near[i : i + STAR] for i in range(0, len(near), STAR)] or [[]]
    out = []
    for k, part in enumerate(parts, 1):
        ends = _foreign_ends([t], part, by_key, include_children=True)
        of = f" ({k} of {len(parts)})" if len(parts) > 1 else ""
        out.append(f"### `{escape_controls(t['name'])}` and its neighbours{of}\n\n")
        out.append(_diagram([t, *ends], part, schema))
    if len(links) > len(near):
        left = sorted({_other_end(fk, t["name"]) for fk in links[NEIGHBOURS:]})
        shown = ", ".join(f"`{escape_controls(x)}`" for x in left[:20])
        more = f" and {len(left) - 20} more" if len(left) > 20 else ""
        out.append(
            f"\n{len(links) - len(near)} of its {len(links)} foreign keys are not drawn here, "
            f"to keep the diagram readable: with {shown}{more}. Its file lists them all.\n\n"
        )
    return _Block("".join(out), [t["name"]], len(parts))


def _other_end(fk: dict, name: str) -> str:
    """The table at the other end of a foreign key from `name`."""
    if fk["table"] != name:
        return f"{fk['schema']}.{fk['table']}"
    return f"{fk['ref_schema']}.{fk['ref_table']}"


def _foreign_ends(members: list[dict], fks: list[dict], by_key: dict, include_children: bool = False) -> list[dict]:
    """Tables an FK reaches that are not drawn yet (other schemas, other groups)."""
    have = {(t["schema"], t["name"]) for t in members}
    extra = []
    for fk in fks:
        ends = [(fk["ref_schema"], fk["ref_table"])]
        if include_children:
            ends.append((fk["schema"], fk["table"]))
        for key in ends:
            if key not in have:
                have.add(key)
                extra.append(
                    by_key.get(key)
                    or {"schema": key[0], "name": key[1], "primary_key": [], "column_defs": [], "foreign_keys": []}
                )
    return extra


def _groups(members: list[dict], fks: list[dict]) -> list[list[dict]]:
    """Connected groups of tables through foreign keys (union-find), biggest first."""
    parent = {(t["schema"], t["name"]): (t["schema"], t["name"]) for t in members}

    def find(k: tuple[str, str]) -> tuple[str, str]:
        while parent[k] != k:
            parent[k] = parent[parent[k]]
            k = parent[k]
        return k

    for fk in fks:
        a, b = (fk["schema"], fk["table"]), (fk["ref_schema"], fk["ref_table"])
        if a in parent and b in parent:
            parent[find(a)] = find(b)
    groups: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for t in members:
        groups[find((t["schema"], t["name"]))].append(t)
    return sorted(groups.values(), key=lambda g: (-len(g), g[0]["name"]))
