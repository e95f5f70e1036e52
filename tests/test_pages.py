"""A big reference is written as pages: `_index.md` and `_erd.md` stay light, every link resolves,
and pages that are no longer needed are deleted from the directory and from git."""

from __future__ import annotations

import json
import re
from pathlib import Path

from schemasync.relations import PAGE_DIAGRAMS
from schemasync.store import PAGE_TABLES

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
    assert "```mermaid" not in (out / "_erd.md").read_text()

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
