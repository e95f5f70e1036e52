"""A big reference is written as pages: `_index.md` and `_erd.md` stay light, every link resolves,
and pages that are no longer needed are deleted from the directory and from git."""

from __future__ import annotations

import json
import re
from pathlib import Path

from schemasync.output.erd import PAGE_DIAGRAMS
from schemasync.output.pages import PAGE_TABLES

from .conftest import Workspace


def _schema(name: str, n: int) -> str:
    """n tables in one connected group: each references the hub and the one before it."""
    sql = [f"CREATE SCHEMA {name};", f"CREATE TABLE {name}.hub (id int PRIMARY KEY);"]
    for i in range(n - 1):
        prev = f"t{i - 1:03d}" if i else "hub"
        sql.append(
            f"CREATE TABLE {name}.t{i:03d} (id int PRIMARY KEY, hub_id int REFERENCES {name}.hub, "
            f"prev_id int REFERENCES {name}.{prev});"
        )
    return "\n".join(sql)


def _links(page: Path) -> list[Path]:
    return [page.parent / target for target in re.findall(r"\]\(([^)]+)\)", page.read_text())]


def test_a_big_reference_is_paged_and_pages_no_longer_needed_are_deleted(workspace: Workspace) -> None:
    ws = workspace
    ws.sandbox.create_database("paged", _schema("big", 200) + "\n" + _schema("other", 150))
    ws.add_host("dev", "paged", schemas=["big", "other"])
    run = ws.inv("schemas.refresh", "--host", "dev", "--json")
    assert run.code == 0, run.err
    out = ws.out()
    manifest = json.loads((out / "_manifest.json").read_text())
    pages = manifest["pages"]
    on_disk = sorted(str(p.relative_to(out)) for d in ("_index", "_erd") for p in (out / d).glob("*.md"))
    assert pages == on_disk
    assert {"_index/big.md", "_index/other.md", "_erd/big.md", "_erd/other.md"} <= set(pages)
    committed = set(ws.git("ls-files", "docs/schemas/dev").split())
    assert {f"docs/schemas/dev/{p}" for p in pages} <= committed

    # every link of every page resolves; every table is on exactly one index page
    for page in [out / "_index.md", out / "_erd.md", *(out / p for p in pages)]:
        for target in _links(page):
            assert target.resolve().is_file(), (page, target)
    rows = [
        line
        for p in pages
        if p.startswith("_index/") and "other-objects" not in p
        for line in (out / p).read_text().splitlines()
        if line.startswith("| ✓")
    ]
    assert len(rows) == 350 > PAGE_TABLES
    assert "| ✓" not in (out / "_index.md").read_text()  # the summary lists pages, not tables
    diagrams = {p: (out / p).read_text().count("```mermaid") for p in pages if p.startswith("_erd/")}
    assert all(0 < n <= PAGE_DIAGRAMS for n in diagrams.values()) and sum(diagrams.values()) >= 350
    summary = (out / "_erd.md").read_text()  # the pages, and one overview of the schemas: no table diagram
    assert summary.count("```mermaid") == 1 and "flowchart LR" in summary and "erDiagram" not in summary

    # a schema goes away: its diagram pages are deleted (its tables' files are kept as orphans,
    # so its index page stays), in the same commit as the rest
    ws.sandbox.psql("DROP SCHEMA other CASCADE;", database="paged")
    run = ws.inv("schemas.refresh", "--host", "dev", "--json")
    assert run.code == 0, run.err
    removed = run.json["files_removed"]
    assert removed and all(p.startswith("_erd/other") for p in removed)
    assert not any((out / p).exists() for p in removed)
    assert not (set(ws.git("ls-files", "docs/schemas/dev").split()) & {f"docs/schemas/dev/{p}" for p in removed})
    assert "_index/other.md" in json.loads((out / "_manifest.json").read_text())["pages"]
    assert ws.git("status", "--porcelain", "docs/schemas") == ""

    # the orphans are removed by hand: the reference fits one page again, and every page goes
    orphans = [p.name for p in out.glob("other.*.sql")]
    assert len(orphans) == 150
    ws.git("rm", "-q", *(f"docs/schemas/dev/{f}" for f in orphans))
    ws.git("commit", "-q", "-m", "drop the orphans")
    run = ws.inv("schemas.refresh", "--host", "dev", "--json")
    assert run.code == 0, run.err
    pages = json.loads((out / "_manifest.json").read_text())["pages"]
    assert not (out / "_index").exists() and pages and all(p.startswith("_erd/big") for p in pages)
    assert (out / "_index.md").read_text().count(" | `big` | ") == 200
    assert not [f for f in ws.git("ls-files", "docs/schemas/dev").split() if "/_index/" in f]
    assert ws.git("status", "--porcelain", "docs/schemas") == ""


def _table(schema: str, name: str, columns: list[str], fks: list[tuple[str, str, str]], group: str | None = None):
    """A table's record as a refresh keeps it: fks are (column, parent schema, parent table) to parent.id."""
    from schemasync.output.records import Record

    keys = [
        {"name": f"{name}_{c}_fk", "schema": schema, "table": name, "columns": [c], "ref_schema": ps,
         "ref_table": pt, "ref_columns": ["id"], "on_delete": "NO ACTION", "text": ""}
        for c, ps, pt in fks
    ]  # fmt: skip
    details = {
        "column_defs": [[c, "integer", c == "id"] for c in columns],
        "primary_key": ["id"],
        "foreign_keys": keys,
        "referenced_by": [],
        **({"group": group} if group else {}),
    }
    return Record("table", schema, name, f"{schema}.{name}.sql", "current", len(columns), details)


def test_the_erd_opens_with_an_overview_of_the_schemas() -> None:
    from schemasync.output.erd import render_erd

    records = [
        _table("sales", "orders", ["id", "customer_id"], [("customer_id", "crm", "customers")]),
        _table("sales", "lines", ["id", "order_id"], [("order_id", "sales", "orders")]),
        _table("crm", "customers", ["id"], []),
        _table("crm", "contacts", ["id", "customer_id"], [("customer_id", "crm", "customers")]),
    ]
    text = render_erd(records, "dev")
    overview = text.split("## Overview", 1)[1].split("```", 2)[1]
    assert "flowchart LR" in overview
    assert '["crm<br/>2 tables, 1 FKs inside"]' in overview and '["sales<br/>2 tables, 1 FKs inside"]' in overview
    assert '-- "1 FK" -->' in overview  # sales -> crm
    assert text.index("## Overview") < text.index("## crm")
    # one schema without groups: no overview, a single box says nothing
    assert "## Overview" not in render_erd(records[2:], "dev")
    # one schema with the groups of schema-notes.yaml: a box per group
    grouped = [
        _table("public", "a", ["id"], [], "billing"),
        _table("public", "b", ["id", "a_id"], [("a_id", "public", "a")]),
    ]
    assert '["billing<br/>1 table"]' in render_erd(grouped, "dev") and "other tables<br/>1 table" in render_erd(
        grouped, "dev"
    )


def test_leaf_tables_shaped_alike_are_drawn_once_and_named() -> None:
    from schemasync.output.erd import ERD_LIMIT, render_erd

    records = [_table("doc", "hub", ["id"], [])]
    for i in range(ERD_LIMIT):  # one connected group, too big for one diagram: neighbourhoods
        records.append(_table("doc", f"l_{i:02d}", ["id", "hub_id"], [("hub_id", "doc", "hub")]))
        if i < 12:
            records.append(_table("doc", f"l_{i:02d}_example", ["id", "published"], [("id", "doc", f"l_{i:02d}")]))
    text = render_erd(records, "dev")
    assert "11 more tables are shaped like `l_00_example`" in text and "`l_11_example`" in text
    assert "### `l_00_example` and its neighbours" in text and "### `l_05_example` and its neighbours" not in text
    # l_00 to l_11 are referenced (by their example): each is drawn; so are those shaped alike that
    # nothing references, but their diagrams differ only in which table they point at
    assert "### `l_05` and its neighbours" in text
