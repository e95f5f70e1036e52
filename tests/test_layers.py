"""The layers are a contract: front ends, jobs, output and transport, schema, core. No module
imports from a layer above its own (import-linter's layers contract, in pyproject.toml)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def test_no_import_points_up_a_layer() -> None:
    lint = shutil.which("lint-imports", path=str(Path(sys.executable).parent)) or shutil.which("lint-imports")
    assert lint is not None, "import-linter is a dev dependency: pip install -e '.[dev]'"
    proc = subprocess.run([lint, "--no-cache"], cwd=REPO, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert "1 kept, 0 broken" in proc.stdout


def test_the_core_imports_nothing_above_it_even_lazily() -> None:
    """config, errors and names are the floor: loading hosts.yaml pulls in no other layer."""
    code = (
        "import sys, schemasync.core.config, schemasync.core.notes;"
        "print(sorted(m for m in sys.modules if m.startswith('schemasync.') and not m.startswith('schemasync.core')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]", out
