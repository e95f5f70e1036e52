"""The quick start's system check, as a normal user with a normal PATH (no /usr/sbin)."""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
NORMAL_PATH = "/usr/local/bin:/usr/bin:/bin"


def as_normal_user(cmd: list[str]) -> subprocess.CompletedProcess:
    env = {"PATH": NORMAL_PATH, "HOME": "/tmp", "LANG": "C.UTF-8"}
    if os.geteuid() != 0:
        return subprocess.run(cmd, capture_output=True, text=True, env=env, cwd="/")
    user = next((u for u in ("nobody", "postgres") if _exists(u)), None)
    if user is None:
        pytest.skip("no unprivileged user to run as")
    runuser = shutil.which("runuser") or "/usr/sbin/runuser"
    return subprocess.run(
        [runuser, "-u", user, "--", "env", *(f"{k}={v}" for k, v in env.items()), *cmd],
        capture_output=True,
        text=True,
        cwd="/",
    )


def _exists(user: str) -> bool:
    try:
        pwd.getpwnam(user)
        return True
    except KeyError:
        return False


def test_a_normal_user_is_not_told_to_install_util_linux() -> None:
    # a copy the other user can read (the checkout itself may sit in a private directory)
    shared = Path(tempfile.mkdtemp(prefix="schemasync-quickstart-"))
    os.chmod(shared, 0o755)
    shutil.copy(REPO / "dev.sh", shared / "dev.sh")
    os.chmod(shared / "dev.sh", 0o755)
    try:
        run = as_normal_user(["sh", str(shared / "dev.sh"), "doctor"])
    finally:
        shutil.rmtree(shared, ignore_errors=True)
    assert "util-linux" not in run.stderr
    assert run.returncode == 0 and "system packages: all present" in run.stdout, run.stderr


def test_dev_sh_without_a_command_lists_them() -> None:
    run = subprocess.run(["sh", str(REPO / "dev.sh")], capture_output=True, text=True)
    assert run.returncode == 2 and "./dev.sh doctor" in run.stdout and "./dev.sh demo" in run.stdout


def test_the_demo_finds_the_checkout_it_runs_from() -> None:
    """`./dev.sh demo` runs `python -m sandbox demo`, which runs this checkout's .venv/bin/inv."""
    from sandbox.__main__ import REPO as demo_repo

    assert demo_repo == REPO and (demo_repo / "dev.sh").is_file()
