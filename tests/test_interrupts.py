"""Ctrl-C and kill -9 anywhere in a refresh: the old files and HEAD, or the new files and the commit
that names them, never a mix; and the next run mends what a killed run left and says so.

Real sshd, real PostgreSQL, real git. `git` on the run's PATH is a wrapper that runs the real one
and waits a moment around moving the branch, so that the few milliseconds between "files written"
and "commit made" and "run knows it" are wide enough for the spread of signals to land in.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from schemasync.output import transaction

from .conftest import REPO, Workspace, differences, without_stamp

EXTRA_TABLES = 130  # enough files that a signal can land while they are written and committed
POINTS = 12  # per scenario; the signal alternates, so each scenario gets both at six points


def _git_wrapper(folder: Path, before: float, after: float, stop_at: str = "") -> dict[str, str]:
    """PATH for a run whose git waits `before` seconds before moving a branch and `after` seconds
    after (`stop_at`: a git command before which it waits forever)."""
    folder.mkdir(exist_ok=True)
    real = shutil.which("git")
    script = folder / "git"
    script.write_text(
        "#!/bin/sh\n"
        f'case " $* " in *" {stop_at or "-never-"} "*) exec sleep 1000;; esac\n'
        f'case " $* " in *" update-ref "*|*" commit "*) sleep {before};; esac\n'
        f'{real} "$@"; rc=$?\n'
        f'case " $* " in *" update-ref "*|*" commit "*) sleep {after};; esac\n'
        "exit $rc\n"
    )
    script.chmod(0o755)
    return {"PATH": f"{folder}{os.pathsep}{os.environ['PATH']}"}


def _start(ws: Workspace, env: dict[str, str], *args: str) -> subprocess.Popen:
    # a session of its own, as a terminal's foreground job is a process group of its own
    return subprocess.Popen(
        [sys.executable, "-m", "invoke", "-r", str(REPO), "schemas.refresh", "--host", "dev", *args],
        cwd=ws.path,
        env={**os.environ, "SCHEMASYNC_HOSTS": str(ws.path / "hosts.yaml"), **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def _wait_for_gone(marker: str, seconds: float = 10) -> None:
    """Until no process has `marker` on its command line (a killed run's children live on)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if subprocess.run(["pgrep", "-f", marker], capture_output=True).returncode != 0:
            return
        time.sleep(0.05)


def _status(ws: Workspace) -> str:
    return ws.git("status", "--porcelain", "--ignored", "--untracked-files=all", "--", "docs")


def _head(ws: Workspace) -> str:
    return ws.git("rev-parse", "HEAD").strip()


def _reset(ws: Workspace, base: str) -> None:
    ws.git("reset", "-q", "--hard", base)
    ws.git("clean", "-q", "-fdx", "--", "docs")
    assert _status(ws) == ""


def _timed(ws: Workspace, env: dict[str, str]) -> float:
    started = time.monotonic()
    proc = _start(ws, env)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    return time.monotonic() - started


def _startup(env: dict[str, str]) -> float:
    """How long the interpreter takes to load Invoke and the task's modules, before it connects:
    the timeline of the issue starts at the connection."""
    started = time.monotonic()
    modules = ", ".join(
        [
            "invoke",
            "schemasync.frontends.tasks",
            "schemasync.jobs.refresh",
            "schemasync.jobs.sweep",
            "schemasync.frontends.report",
        ]
    )
    subprocess.run([sys.executable, "-c", f"import {modules}"], check=True, env={**os.environ, **env})
    return time.monotonic() - started


def _interrupt_at(ws: Workspace, env: dict[str, str], delay: float, sig: int) -> tuple[int | None, str]:
    """Start a refresh, send `sig` after `delay` seconds (SIGINT to its process group, as Ctrl-C
    does; SIGKILL to the process, as `kill -9 PID`); its exit code (None: it had finished first)
    and stderr."""
    proc = _start(ws, env)
    time.sleep(delay)
    sent = proc.poll() is None
    if sent:
        if sig == signal.SIGINT:
            os.killpg(proc.pid, signal.SIGINT)
        else:
            proc.kill()
    _, err = proc.communicate(timeout=120)
    return (proc.returncode if sent else None), err


def _scenario(
    ws: Workspace, tmp_path: Path, base: str, old: dict[str, bytes], new: dict[str, bytes], first: int
) -> None:
    env = _git_wrapper(tmp_path / "slowgit", before=0.1, after=0.1)
    _reset(ws, base)
    seconds = _timed(ws, env)
    start = _startup(env)
    for point in range(POINTS):
        _reset(ws, base)
        sig = (signal.SIGINT, signal.SIGKILL)[(point + first) % 2]
        delay = start + (seconds - start) * 1.05 * (point + 0.5) / POINTS
        code, err = _interrupt_at(ws, env, delay, sig)
        where = f"{signal.Signals(sig).name} at {delay:.2f}s of {seconds:.2f}s: exit {code}\n{err}"
        if sig == signal.SIGKILL:
            # what the next run does first, seen here; as a next run starts (a second later, not
            # at once), after the killed run's own git (slowed down here) is done
            _wait_for_gone(str(env["PATH"].split(os.pathsep)[0]))
            for folder in (ws.out(), ws.out().parent):
                transaction.mend(folder)
        head = _head(ws)
        if head == base:
            assert ws.snapshot() == old, where
            assert code in (130, None) if sig == signal.SIGINT else code in (-9, None), where
            if code == 130:
                assert "interrupted; the output directory is unchanged" in err, where
        else:
            assert ws.git("rev-parse", "HEAD^").strip() == base, where
            assert without_stamp(ws.snapshot()) == new, where + differences(new, ws.snapshot())
            if sig == signal.SIGINT:
                # -2: the signal came as Python was ending, after the summary: it dies of it, which
                # a shell reports as 130 too
                assert code in (130, 0, None, -signal.SIGINT), where
                if code == 130:
                    assert f"committed {head[:12]}, then interrupted" in err, where
        assert _status(ws) == "", where  # on disk: exactly what HEAD holds, nothing beside it
        run = ws.inv("schemas.refresh", "--host", "dev")
        assert run.code == 0, (where, run.err)
        assert without_stamp(ws.snapshot()) == new, where + differences(new, ws.snapshot())
        assert _status(ws) == "", where
        fsck = subprocess.run(["git", "-C", str(ws.path), "fsck", "--no-dangling"], capture_output=True, text=True)
        assert fsck.returncode == 0 and "error" not in fsck.stderr, (where, fsck.stderr)


@pytest.fixture
def big(workspace: Workspace, database: str) -> str:
    extra = "\n".join(f"CREATE TABLE extra_{i} (id int PRIMARY KEY, v text);" for i in range(EXTRA_TABLES))
    workspace.sandbox.psql(extra, database=database)
    workspace.add_host("dev", database)
    (workspace.path / "README.md").write_text("a team's repository\n")
    workspace.git("add", "README.md", "hosts.yaml")
    workspace.git("commit", "-q", "-m", "start")
    return database


def test_a_cold_refresh_interrupted_anywhere_leaves_old_or_new(workspace: Workspace, big: str, tmp_path) -> None:
    base = _head(workspace)
    assert workspace.inv("schemas.refresh", "--host", "dev").code == 0
    new = without_stamp(workspace.snapshot())
    _scenario(workspace, tmp_path, base, {}, new, first=0)


def test_an_incremental_refresh_interrupted_anywhere_leaves_old_or_new(
    workspace: Workspace, big: str, tmp_path
) -> None:
    assert workspace.inv("schemas.refresh", "--host", "dev").code == 0
    base = _head(workspace)
    old = workspace.snapshot()
    workspace.sandbox.psql(
        "ALTER TABLE users ADD COLUMN nickname text; CREATE TABLE extra_new (id int); DROP TABLE extra_3;",
        database=big,
    )
    assert workspace.inv("schemas.refresh", "--host", "dev").code == 0
    new = without_stamp(workspace.snapshot())
    assert new != without_stamp(old)
    _scenario(workspace, tmp_path, base, old, new, first=1)


@pytest.mark.parametrize("stop_at", ["update-ref", "after"])
def test_the_next_run_mends_a_run_killed_around_its_commit(
    workspace: Workspace, big: str, tmp_path, stop_at: str
) -> None:
    """Killed with every file written and the commit not made (git stopped before moving the
    branch), or just after the commit was made: the next run puts back or keeps, and says which."""
    base = _head(workspace)
    if stop_at == "update-ref":
        env = _git_wrapper(tmp_path / "stuck", before=0, after=0, stop_at="update-ref")
    else:
        env = _git_wrapper(tmp_path / "slow", before=0, after=1000)
    proc = _start(workspace, env)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not list(workspace.out().glob(".schemasync-*/written")):
        time.sleep(0.02)
    if stop_at == "after":
        while time.monotonic() < deadline and _head(workspace) == base:
            time.sleep(0.02)
    time.sleep(0.2)
    proc.kill()
    proc.communicate(timeout=30)
    left = list(workspace.out().glob(".schemasync-*"))
    assert left, "the run was not stopped where the test meant"
    if stop_at == "update-ref":
        subprocess.run(["pkill", "-f", f"{tmp_path}/stuck"], check=False)  # its git, still waiting
    run = workspace.inv("schemas.refresh", "--host", "dev", "--json")
    assert run.code == 0, run.err
    mended = [m for m in run.json["mended"] if m.startswith(f"{workspace.out()}:")]  # and the guide's folder
    assert len(mended) == 1, run.json["mended"]
    if stop_at == "update-ref":
        assert "put back as they were" in mended[0]
        assert run.json["commit"] and workspace.git("rev-parse", "HEAD^").strip() == base
    else:
        assert f"after its files were committed; removed what it left ({left[0].name})" in mended[0]
        assert run.json["commit"] is None  # the killed run's commit holds them already
    assert _status(workspace) == ""
