"""Where a refresh is, on a terminal: one live line, drawn from a second into the run and gone
before the summary; a pipe and --json never see it."""

from __future__ import annotations

import io
import os
import pty
import select
import subprocess
import sys
import time
from pathlib import Path

from schemasync.core.progress import Transfer
from schemasync.frontends.progress import LiveLine

from .conftest import REPO, Workspace
from .test_interrupts import _git_wrapper

CLEAR = b"\r\x1b[K"


def _on_a_terminal(ws: Workspace, env: dict[str, str], *args: str) -> tuple[int, bytes]:
    """Run `inv schemas.refresh` with its stdout and stderr on a pseudo-terminal; all it wrote."""
    main, side = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "invoke", "-r", str(REPO), "schemas.refresh", "--host", "dev", *args],
        cwd=ws.path,
        env={**os.environ, "SCHEMASYNC_HOSTS": str(ws.path / "hosts.yaml"), **env},
        stdin=subprocess.DEVNULL,
        stdout=side,
        stderr=side,
    )
    os.close(side)
    out = bytearray()
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        ready, _, _ = select.select([main], [], [], 1.0)
        if ready:
            try:
                data = os.read(main, 65536)
            except OSError:  # the other side closed: everything is read
                break
            if not data:
                break
            out += data
        elif proc.poll() is not None:
            break
    os.close(main)
    return proc.wait(30), bytes(out)


def test_a_terminal_sees_where_a_refresh_is_and_a_pipe_does_not(
    workspace: Workspace, database: str, tmp_path: Path
) -> None:
    workspace.add_host("dev", database)
    slow = _git_wrapper(tmp_path / "bin", before=2.0, after=0.0)  # the commit takes two seconds
    code, out = _on_a_terminal(workspace, slow)
    assert code == 0, out
    assert CLEAR in out
    assert b"dev: committing (" in out  # the step, the host, the seconds so far
    last = out.rindex(CLEAR)
    after = out[last + len(CLEAR) :]
    assert b"\x1b" not in after and b"(" in after  # cleared, then the summary and nothing live after it

    workspace.sandbox.psql("CREATE TABLE live_line_more (id int);", database=database)
    piped = workspace.inv("schemas.refresh", "--host", "dev", env=slow)
    assert piped.code == 0, piped.err
    assert "\x1b" not in piped.out + piped.err and "committing (" not in piped.out + piped.err

    workspace.sandbox.psql("CREATE TABLE live_line_json (id int);", database=database)
    code, out = _on_a_terminal(workspace, slow, "--json")
    assert code == 0, out
    assert b"\x1b" not in out and b"committing (" not in out  # the document alone


def test_the_live_line_says_how_far_a_download_is() -> None:
    line = LiveLine(io.StringIO(), live=False, name="prod")
    line.step("discovery: 50,000 tables; dumping")
    assert line._text(3.4) == "prod: discovery: 50,000 tables; dumping (3s)"
    transfer = Transfer(48_300_000)
    line.step("receiving the dump", transfer)
    transfer.done = 12_000_000
    assert line._text(14.0) == "prod: receiving the dump 12.0 MB of 48.3 MB (14s)"
