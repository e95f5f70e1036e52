"""Git: find the repository that holds the output directory, commit only the tool's files.

A constant number of git processes per run, whatever the number of files: paths go through
--pathspec-from-file on stdin.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from .errors import LocalError


def _git(root: Path, *args: str, stdin: bytes | None = None, check: bool = True) -> subprocess.CompletedProcess:
    env = {**os.environ, "GIT_TERMINAL_PROMPT": "0", "GIT_OPTIONAL_LOCKS": "0"}
    try:
        proc = subprocess.run(["git", "-C", str(root), *args], input=stdin, capture_output=True, env=env, check=False)
    except FileNotFoundError:
        raise LocalError("git is not installed", hint="install git, or run with --no-commit") from None
    if check and proc.returncode != 0:
        err = proc.stderr.decode("utf-8", "replace").strip()
        raise LocalError(f"git {args[0]} failed in {root}: {err}")
    return proc


def find_repo(outdir: Path) -> Path | None:
    """The top of the work tree that holds outdir (which may not exist yet), or None."""
    probe = outdir
    while not probe.exists():
        probe = probe.parent
    proc = _git(probe, "rev-parse", "--show-toplevel", check=False)
    if proc.returncode != 0:
        return None
    return Path(proc.stdout.decode().strip()).resolve()


def commit_files(root: Path, paths: list[Path], message: str) -> str:
    """Commit exactly these paths, leaving anything else the user staged as it was."""
    rel = [str(p.resolve().relative_to(root)) for p in paths]
    spec = b"\0".join(r.encode("utf-8", "surrogateescape") for r in rel)
    add = _git(root, "add", "--pathspec-from-file=-", "--pathspec-file-nul", "--", stdin=spec, check=False)
    if add.returncode != 0:
        err = add.stderr.decode("utf-8", "replace").strip()
        hint = "the output directory is ignored by .gitignore" if "ignored" in err else ""
        raise LocalError(f"git add failed: {err}", hint=hint)
    proc = _git(
        root,
        "commit",
        "--quiet",
        "--only",
        "-m",
        message,
        "--pathspec-from-file=-",
        "--pathspec-file-nul",
        stdin=spec,
        check=False,
    )
    if proc.returncode != 0:
        unstage(root, rel)
        err = (proc.stderr or proc.stdout).decode("utf-8", "replace").strip()
        hint = ""
        if "Please tell me who you are" in err or "user.email" in err:
            hint = 'set an identity: git config user.name "..." && git config user.email "..."'
        raise LocalError(f"git commit failed: {err}", hint=hint)
    return _git(root, "rev-parse", "HEAD").stdout.decode().strip()


def unstage(root: Path, rel: list[str]) -> None:
    """Put the index back for our paths after a failed commit."""
    spec = b"\0".join(r.encode() for r in rel)
    has_head = _git(root, "rev-parse", "--verify", "-q", "HEAD", check=False).returncode == 0
    if has_head:
        _git(root, "reset", "-q", "--pathspec-from-file=-", "--pathspec-file-nul", stdin=spec, check=False)
    else:
        _git(
            root,
            "rm",
            "--cached",
            "-q",
            "--ignore-unmatch",
            "--pathspec-from-file=-",
            "--pathspec-file-nul",
            stdin=spec,
            check=False,
        )
