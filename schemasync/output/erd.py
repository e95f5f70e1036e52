"""The entity-relationship diagrams (`_erd.md`, and its pages for a big reference), in Mermaid as
GitHub renders it: an overview of the whole database, then each schema's tables with their key
columns and foreign keys, drawn so that no diagram becomes a wall."""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from dataclasses import dataclass
from functools import lru_cache

from schemasync.core.names import escape_controls, name_part

ERD_LIMIT = 60  # tables per diagram before it stops being readable
NEIGHBOURS = 30  # foreign keys drawn around one table; the rest are named under the diagram
STAR = 6  # foreign keys per neighbourhood diagram (a star of many is laid out as one row, thousands of px wide)
FOLD_FROM = 3  # leaf tables shaped alike (same columns, same kinds of keys) drawn once from this many
OVERVIEW_PARTS = 30  # boxes in the overview; the smallest schemas beyond it are one box


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
    return _one_page(environment, _schema_sections(records), _overview(_drawn_tables(records)))


def render_erd_pages(records: list, environment: str) -> dict[str, str]:
    """The diagrams: `_erd.md` alone while it holds at most PAGE_DIAGRAMS diagrams; past that,
    `_erd.md` lists pages of up to PAGE_DIAGRAMS diagrams, one schema's to a page (several
    numbered pages for a big schema), under `_erd/`."""
    sections = _schema_sections(records)
    overview = _overview(_drawn_tables(records))
    if sum(b.diagrams for _, blocks, _ in sections for b in blocks) <= PAGE_DIAGRAMS:
        return {ERD: _one_page(environment, sections, overview)}
    pages: dict[str, str] = {}
    contents = [*_erd_head(environment, overview), "\nThe diagrams are on pages, one schema's to a page:\n"]
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


def _erd_head(environment: str, overview: str) -> list[str]:
    return [
        f"# Entity-relationship diagrams: {escape_controls(environment)}\n\n",
        "<!-- Generated by schemasync; a refresh rewrites this file. -->\n\n",
        "Tables with their key columns and foreign keys (`child }o--|| parent`). GitHub and most editors "
        "render these as pictures.\n",
        overview,
    ]


def _one_page(environment: str, sections: list[tuple[str, list[_Block], str]], overview: str) -> str:
    out = _erd_head(environment, overview)
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


def _drawn_tables(records: list) -> list[dict]:
    return [
        {"schema": r.schema, "name": r.name, "file": r.file, **(r.details or {})}
        for r in records
        if r.kind == "table" and r.status != "orphaned" and r.details
    ]


def _overview(tables: list[dict]) -> str:
    """The whole database in one diagram that fits a page's width: a box per schema (in a
    database of one schema, per group of schema-notes.yaml) with its tables, and an arrow with
    the number of foreign keys from one to another. Nothing when there is one box."""
    schemas = {t["schema"] for t in tables}
    by_group = len(schemas) == 1

    def part(t: dict) -> str:
        return (t.get("group") or "other tables") if by_group else t["schema"]

    sizes = Counter(part(t) for t in tables)
    if len(sizes) < 2:
        return ""
    kept = {p for p, _ in sorted(sizes.items(), key=lambda kv: (-kv[1], kv[0]))[: OVERVIEW_PARTS - 1]}
    rest = f"{len(sizes) - len(kept)} other {'groups' if by_group else 'schemas'}"
    if len(sizes) <= OVERVIEW_PARTS:
        kept = set(sizes)
    where = {(t["schema"], t["name"]): (part(t) if part(t) in kept else rest) for t in tables}
    tables_in: Counter = Counter(where.values())
    inside: Counter = Counter()
    between: Counter = Counter()
    for t in tables:
        for fk in t["foreign_keys"]:
            a, b = where[(t["schema"], t["name"])], where.get((fk["ref_schema"], fk["ref_table"]))
            if b is None:
                continue
            if a == b:
                inside[a] += 1
            else:
                between[(a, b)] += 1
    ids = {p: f"p{i}" for i, p in enumerate(sorted(tables_in))}
    lines = ["\n## Overview\n\n", "```mermaid\n", "flowchart LR\n"]
    for p in sorted(tables_in):
        n = tables_in[p]
        label = f"{p}<br/>{n} table{'s' if n != 1 else ''}" + (f", {inside[p]} FKs inside" if inside[p] else "")
        lines.append(f'    {ids[p]}["{escape_controls(label).replace(chr(34), chr(39))}"]\n')
    for (a, b), n in sorted(between.items()):
        lines.append(f'    {ids[a]} -- "{n} FK{"s" if n != 1 else ""}" --> {ids[b]}\n')
    lines.append("```\n")
    return "".join(lines)


def _schema_sections(records: list) -> list[tuple[str, list[_Block], str]]:
    """Per schema: its diagrams, and the line naming its tables without foreign keys.

    A small schema is one diagram; a big one is drawn as its connected groups of tables, and a
    group bigger than ERD_LIMIT as one neighbourhood diagram per table, never one wall."""
    tables = _drawn_tables(records)
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
            blocks += _neighbourhoods(group, touching, by_key, schema)
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


def _neighbourhoods(group: list[dict], touching: dict[str, list[dict]], by_key: dict, schema: str) -> list[_Block]:
    """A neighbourhood diagram per table, except that leaf tables shaped alike (the same columns,
    the same foreign keys out, each to a table of its own, and none in) are drawn once and named.
    A table that others reference is always drawn: its diagram is where they meet."""
    shapes = {t["name"]: _shape(t, touching[t["name"]]) for t in group}
    alike: dict[tuple, list[dict]] = defaultdict(list)
    for t in group:
        if shapes[t["name"]] is not None:
            alike[shapes[t["name"]]].append(t)
    blocks = []
    for t in group:
        same = alike.get(shapes[t["name"]], []) if shapes[t["name"]] is not None else []
        if len(same) < FOLD_FROM:
            blocks.append(_neighbourhood(t, touching[t["name"]], by_key, schema))
        elif same[0] is t:
            first = _neighbourhood(t, touching[t["name"]], by_key, schema)
            others = ", ".join(f"`{escape_controls(o['name'])}`" for o in same[1:])
            note = (
                f"\n{len(same) - 1} more tables are shaped like `{escape_controls(t['name'])}` (the same columns "
                f"and foreign keys, each with tables of its own), and not drawn again: {others}.\n\n"
            )
            blocks.append(_Block(first.text + note, [o["name"] for o in same], first.diagrams))
    return blocks


def _shape(t: dict, links: list[dict]) -> tuple | None:
    """What a leaf table's neighbourhood diagram shows of it, without the names of the tables it
    points at; None for a table that others reference."""
    me = (t["schema"], t["name"])
    if any((fk["ref_schema"], fk["ref_table"]) == me for fk in links):
        return None
    keys = sorted((tuple(fk["columns"]), tuple(fk["ref_columns"])) for fk in links)
    return (tuple((c[0], c[1]) for c in t["column_defs"]), tuple(t["primary_key"]), tuple(keys))


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
