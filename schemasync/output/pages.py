"""The index pages: `_index.md` (and its pages under `_index/` past 300 tables) and
`_table_list.txt`. Pure rendering.
"""

from __future__ import annotations

from collections.abc import Callable

from schemasync.core.names import escape_controls, name_part, qualified_name
from schemasync.output.erd import ERD
from schemasync.output.records import INDEX, MARKS, NEW, ORPHANED, UPDATED, Record, stable_status


def render_table_list(records: list[Record]) -> str:
    names = [qualified_name(r.schema or "", r.name) for r in records if r.kind == "table" and r.status != ORPHANED]
    return "".join(f"{n}\n" for n in names)


def _code(text: str) -> str:
    """A markdown code span that survives any name (backticks, pipes) inside a table cell."""
    text = escape_controls(text).replace("|", "\\|")
    fence = "``" if "`" in text else "`"
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def _link(file: str, up: str = "") -> str:
    label = file.replace("|", "\\|").replace("[", "\\[").replace("]", "\\]")
    return f"[{label}]({up}{file})"


NEWS_LIMIT = 50  # names listed per kind of change in _index.md


def _index_row(r: Record, up: str = "") -> str:
    cols = "" if r.columns is None else str(r.columns)
    d = r.details or {}
    pk = _code(", ".join(d["primary_key"])) if d.get("primary_key") else ""
    fks_out = str(len(d["foreign_keys"])) if d else ""
    fks_in = str(len(d["referenced_by"])) if d else ""
    # the database's comment, and the team's note beside it (never in its place)
    said = [d.get("comment") or "", d.get("note") or ""]
    if d.get("tags"):
        said.append("[" + ", ".join(d["tags"]) + "]")
    comment = escape_controls(" · ".join(x for x in said if x)).replace("|", "\\|")
    return (
        f"| {MARKS[stable_status(r.status)]} | {_code(r.label)} | {_code(r.schema or '')} | {cols} | {pk} "
        f"| {fks_out} | {fks_in} | {_link(r.file, up)} | {comment} |\n"
    )


INDEX_PAGES = "_index"  # the folder of a big reference's index pages


PAGE_TABLES = 300  # tables in one `_index.md`; past this it is split into pages


PAGE_ROWS = 500  # rows per page: a page stays light on GitHub


def render_index(
    records: list[Record], environment: str, database: str, stamp: str, news: dict[str, list[str]] | None = None
) -> str:
    """`_index.md` as one page, whatever its size."""
    return "".join(_index_head(records, environment, database, stamp, news)) + "".join(_index_body(records))


def render_index_pages(
    records: list[Record], environment: str, database: str, stamp: str, news: dict[str, list[str]] | None = None
) -> dict[str, str]:
    """`_index.md` alone up to PAGE_TABLES tables. Past that it keeps the summary and the news, and
    lists pages under `_index/`: one per group of schema-notes.yaml, one per schema for the tables
    in no group, and one for the other objects, each cut every PAGE_ROWS rows."""
    tables = [r for r in records if r.kind == "table"]
    if len(tables) <= PAGE_TABLES:
        return {INDEX: render_index(records, environment, database, stamp, news)}
    sections: dict[tuple[str, str], list[Record]] = {}
    for r in tables:
        group = (r.details or {}).get("group")
        sections.setdefault(("group", group) if group else ("schema", r.schema or ""), []).append(r)
    pages: dict[str, str] = {}
    head = _index_head(records, environment, database, stamp, news)
    out = [*head, "The tables are listed on pages:\n\n| | tables | orphaned | pages |\n|---|--:|--:|---|\n"]
    for (by, name), members in sorted(sections.items(), key=lambda kv: (kv[0][0] != "group", kv[0][1])):
        label = f"group {escape_controls(name)}" if by == "group" else f"schema {_code(name)}"
        stem = f"{INDEX_PAGES}/{'group-' if by == 'group' else ''}{name_part(name)}"
        files = _pages(pages, stem, f"{environment}, {label}", members, _TABLE_HEAD, _index_row)
        orphaned = sum(1 for r in members if r.status == ORPHANED)
        links = ", ".join(f"[{k}]({f})" for k, f in enumerate(files, 1))
        out.append(f"| {label} | {len(members) - orphaned} | {orphaned} | {links} |\n")
    out.append(f"\nDiagrams of the tables and their foreign keys: {_link(ERD)}.\n")
    others = [r for r in records if r.kind != "table"]
    if others:
        files = _pages(pages, f"{INDEX_PAGES}/other-objects", environment, others, _OBJECT_HEAD, _object_row)
        links = ", ".join(f"[{k}]({f})" for k, f in enumerate(files, 1))
        out.append(f"\n{len(others)} other objects (views, functions, types, ...): pages {links}.\n")
    pages[INDEX] = "".join(out)
    return pages


def _pages(
    pages: dict[str, str], stem: str, title: str, rows: list[Record], head: str, row: Callable[[Record, str], str]
) -> list[str]:
    """Rows on pages `<stem>.md`, `<stem>.2.md`, ... (a name part never holds a dot or a dash, so
    these never meet a schema's page); the files written, in order."""
    chunks = [rows[i : i + PAGE_ROWS] for i in range(0, len(rows), PAGE_ROWS)]
    files = []
    for k, chunk in enumerate(chunks, 1):
        file = f"{stem}.md" if k == 1 else f"{stem}.{k}.md"
        of = f" (page {k} of {len(chunks)})" if len(chunks) > 1 else ""
        pages[file] = "".join(
            [
                f"# Database schema: {escape_controls(title)}{of}\n\n",
                "<!-- Generated by schemasync; a refresh rewrites this file. -->\n\n",
                f"Summary and the other pages: [{INDEX}](../{INDEX}). File links are relative to it: `../<file>`.\n\n",
                head,
                *(row(r, "../") for r in chunk),
            ]
        )
        files.append(file)
    return files


_TABLE_HEAD = (
    "| | table | schema | columns | primary key | FKs out | FKs in | file | comment / note |\n"
    "|:-:|---|---|--:|---|--:|--:|---|---|\n"
)


_OBJECT_HEAD = "| | object | kind | file |\n|:-:|---|---|---|\n"


def _object_row(r: Record, up: str = "") -> str:
    kind = r.kind.replace("_", " ")
    return f"| {MARKS[stable_status(r.status)]} | {_code(r.label)} | {kind} | {_link(r.file, up)} |\n"


def _index_head(
    records: list[Record], environment: str, database: str, stamp: str, news: dict[str, list[str]] | None
) -> list[str]:
    news = news or {}
    tables = [r for r in records if r.kind == "table"]
    orphaned = sum(1 for r in tables if r.status == ORPHANED)
    out = [
        f"# Database schema: {escape_controls(environment)}\n\n",
        "<!-- Generated by schemasync; a refresh rewrites this file. -->\n\n",
        f"Database `{escape_controls(database)}`, environment `{escape_controls(environment)}`. ",
        f"**{len(tables) - orphaned} tables**; {orphaned} orphaned (✓ current · ⚠ orphaned: the table is gone, ",
        "its file is kept).\n\n",
        f"Last changed by a refresh on {stamp}:",
    ]
    live = len(tables) - orphaned
    if len(news.get(NEW, [])) == live > 0 and not news.get(UPDATED) and not orphaned:
        out.append(f" first refresh: {live} tables.\n\n")  # every name is below: listing them as new says nothing
        return out
    said = False
    for status, word in ((NEW, "new"), (UPDATED, "updated"), (ORPHANED, "newly orphaned")):
        names = news.get(status, [])
        if names:
            shown = ", ".join(_code(n) for n in names[:NEWS_LIMIT])
            more = f" and {len(names) - NEWS_LIMIT} more" if len(names) > NEWS_LIMIT else ""
            out.append(f"\n- {MARKS[status]} {word}: {shown}{more}")
            said = True
    out.append("\n\n" if said else " no table changed (other objects, or the layout).\n\n")
    return out


def _index_body(records: list[Record]) -> list[str]:
    tables = [r for r in records if r.kind == "table"]
    out = []
    groups: dict[str | None, list[Record]] = {}
    for r in tables:  # one section per group of schema-notes.yaml, the rest after them
        groups.setdefault((r.details or {}).get("group"), []).append(r)
    for group in sorted(groups, key=lambda g: (g is None, g or "")):
        if len(groups) > 1:
            out.append(f"## {escape_controls(group) if group else 'Other tables'}\n\n")
        out.append(_TABLE_HEAD)
        out += [_index_row(r) for r in groups[group]]
        out.append("\n")
    out.append(f"Diagrams of the tables and their foreign keys: {_link(ERD)}.\n")
    others = [r for r in records if r.kind != "table"]
    if others:
        out.append("\n## Other objects\n\n" + _OBJECT_HEAD)
        out += [_object_row(r) for r in others]
    return out
