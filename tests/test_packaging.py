"""The wheel as a user installs it: built from this tree, installed into a fresh venv, and run
from there against the sandbox. A module or a data file (the sh and SQL sent to the server) left
out of the package fails here, not on a user's machine."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

from .conftest import REPO, Workspace


def test_the_wheel_installs_and_refreshes(workspace: Workspace, database: str, tmp_path: Path) -> None:
    dist = tmp_path / "dist"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--quiet",
            "--no-deps",
            "-w",
            str(dist),
            str(REPO),
        ],
        check=True,
        capture_output=True,
    )
    (wheel,) = dist.glob("schemasync-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert {"schemasync/transport/remote/refresh.sh", "schemasync/transport/remote/discover.sql"} <= set(names)
    assert not [n for n in names if n.startswith(("sandbox/", "tests/", "bench/"))]  # equipment stays out

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    install = subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", str(wheel)],
        capture_output=True,
        text=True,
    )
    assert install.returncode == 0, install.stderr[-3000:]
    helped = subprocess.run([str(venv / "bin" / "schemasync"), "--help"], capture_output=True, text=True)
    assert helped.returncode == 0 and "Usage: schemasync" in helped.stdout

    workspace.add_host("dev", database)
    run = subprocess.run(
        [str(venv / "bin" / "schemasync"), "refresh", "--host", "dev", "--json"],
        cwd=workspace.path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr
    assert (workspace.out() / "survey_notes.sql").is_file() and workspace.commits() == 1
