"""Every Mermaid block the tool writes renders with the real renderer (mermaid-cli in headless
Chromium), as GitHub would show it. Skipped, with the reason, where they are not installed:
Debian's `chromium`, and `npm install @mermaid-js/mermaid-cli` with PUPPETEER_SKIP_DOWNLOAD=1 (mmdc
on the PATH, or its path in $MMDC)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from schemasync.output.erd import render_erd
from schemasync.output.records import Record

from .conftest import Workspace

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
MMDC = os.environ.get("MMDC") or shutil.which("mmdc")

pytestmark = pytest.mark.skipif(
    not (CHROMIUM and MMDC),
    reason="needs Debian's chromium and mermaid-cli (PUPPETEER_SKIP_DOWNLOAD=1 npm install @mermaid-js/mermaid-cli; "
    "mmdc on the PATH or MMDC=/path/to/mmdc)",
)


def render_all(markdown: Path, tmp: Path) -> int:
    """Render every mermaid block of a markdown file; the number of pictures made."""
    config = tmp / "puppeteer.json"
    config.write_text(
        json.dumps(
            {
                "executablePath": CHROMIUM,
                "args": [
                    "--no-sandbox",
                    "--headless",
                    "--disable-gpu",
                    "--disable-background-networking",
                    "--disable-component-update",
                    "--disable-sync",
                    "--no-first-run",
                ],
            }
        )
    )
    out = tmp / "rendered.md"
    proc = subprocess.run(
        [str(MMDC), "-p", str(config), "-i", str(markdown), "-o", str(out), "-e", "svg", "-q"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return len(re.findall(r"!\[[^\]]*\]\([^)]*\.svg\)", out.read_text()))


@pytest.mark.parametrize(("database", "schemas"), [("skyfire", ["public"]), ("hardcases", ["*"])])
def test_every_diagram_of_a_refresh_renders(workspace: Workspace, database: str, schemas: list, tmp_path: Path) -> None:
    workspace.add_host("dev", database, schemas=schemas)
    assert workspace.inv("schemas.refresh", "--host", "dev", "--no-commit").code == 0
    erd = workspace.out() / "_erd.md"
    blocks = erd.read_text().count("```mermaid")
    assert blocks >= 1 and render_all(erd, tmp_path) == blocks


def test_big_neighbourhoods_and_real_names_render(tmp_path: Path) -> None:
    def record(schema: str, name: str, parent: str | None) -> Record:
        fks = [] if parent is None else [
            {"schema": schema, "table": name, "columns": ["Parent Id"], "ref_schema": "public", "ref_table": parent,
             "ref_columns": ["id"]}
        ]  # fmt: skip
        cols = [["id", "character varying(50)", True], ["Parent Id", "numeric(6,2)", False]]
        cols += [[f"own {name}", "integer", False]]  # no two shaped alike: each neighbourhood drawn
        details = {"column_defs": cols, "primary_key": ["id"], "comment": None, "foreign_keys": fks}
        return Record("table", schema, name, f"{name}.sql", "current", 2, {**details, "referenced_by": []})

    tables = [record("public", "hub", None)] + [record("public", f"spoke {i}", "hub") for i in range(80)]
    tables += [record("Other Schema", "Release Group", "hub")]
    erd = tmp_path / "_erd.md"
    erd.write_text(render_erd(tables, "big"))
    blocks = erd.read_text().count("```mermaid")
    assert blocks > 60 and render_all(erd, tmp_path) == blocks
