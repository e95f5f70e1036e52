"""Git, read: the repository that holds an output directory, the committed files, history,
and what HEAD holds (how a killed run is mended). Commits are made in commit.py.
"""

from __future__ import annotations

import datetime
import os
import re
import subprocess
import time
from collections.abc import Collection
from pathlib import Path

from schemasync.core.errors import ConfigError, LocalError


def _git(root: Path, *args: str, stdin: bytes | None = None, check: bool = True) -> subprocess.CompletedProcess:
    env = {**os.environ, "GIT_TERMINAL_PROMPT": "0", "GIT_OPTIONAL_LOCKS": "0"}
    try:
        proc = subprocess.run(
            ["git", "-C", str(root), *args],
            input=stdin,
            capture_output=True,
            env=env,
            check=False,
            # Ctrl-C reaches the terminal's whole process group: the run decides what it means
            # (publish.py), so git's own steps finish or fail by themselves. `git commit` stays in
            # the group: its hooks and signing may ask the terminal, and Ctrl-C stops them.
            start_new_session=args[0] != "commit",
        )
    except FileNotFoundError:
        raise LocalError("git is not installed", hint="install git, or run with --no-commit") from None
    if check and proc.returncode != 0:
        err = proc.stderr.decode("utf-8", "replace").strip()
        raise LocalError(f"git {args[0]} failed in {root}: {err}")
    return proc


def _nul_list(rel: list[str]) -> bytes:
    """Paths for git's -z / --pathspec-file-nul input: each one NUL-terminated."""
    return b"".join(r.encode("utf-8", "surrogateescape") + b"\0" for r in rel)


def find_repo(outdir: Path) -> Path | None:
    """The top of the work tree that holds outdir (which may not exist yet), or None."""
    probe = outdir
    while not probe.exists():
        probe = probe.parent
    proc = _git(probe, "rev-parse", "--show-toplevel", check=False)
    if proc.returncode != 0:
        return None
    return Path(proc.stdout.decode().strip()).resolve()


NO_COMMIT_HINT = "run `git init` there, or use --no-commit to only write the files"


def require_repo(outdir: Path, hint: str = NO_COMMIT_HINT) -> Path:
    """The repository that holds outdir, or a LocalError saying how to get one."""
    repo = find_repo(outdir)
    if repo is None:
        raise LocalError(f"{outdir} is not inside a git repository", hint=hint)
    return repo


def read_committed(repo: Path, outdir: Path) -> dict[str, str]:
    """The files of one output directory as committed at HEAD (two git processes in all)."""
    rel = outdir.resolve().relative_to(repo)
    listing = _git(repo, "ls-tree", "-r", "-z", "HEAD", "--", str(rel), check=False)
    if listing.returncode != 0:
        err = listing.stderr.decode(errors="replace").strip()
        raise LocalError(f"cannot read the committed files in {repo}: {err or 'no commits yet'}")
    entries = []
    for record in listing.stdout.split(b"\0"):
        if not record:
            continue
        meta, path = record.split(b"\t", 1)
        if meta.split()[1] == b"blob":
            entries.append((meta.split()[2], path.decode("utf-8", "surrogateescape")))
    if not entries:
        return {}
    batch = _git(repo, "cat-file", "--batch", stdin=b"".join(sha + b"\n" for sha, _ in entries)).stdout
    files, pos = {}, 0
    prefix = str(rel) + "/"
    for _, path in entries:
        header_end = batch.index(b"\n", pos)
        size = int(batch[pos:header_end].split()[2])
        body = batch[header_end + 1 : header_end + 1 + size]
        pos = header_end + 1 + size + 1
        files[path[len(prefix) :]] = body.decode("utf-8", "replace")
    return files


def refs_settled(repo: Path, seconds: float = 2.0) -> None:
    """Wait (a little) while another git process holds HEAD's or its branch's lock: a killed run's
    own `git update-ref` may still be finishing the commit that decides how it is mended."""
    paths = _git(repo, "rev-parse", "--git-path", "HEAD.lock", check=False).stdout.decode().split()
    branch = _git(repo, "symbolic-ref", "-q", "HEAD", check=False).stdout.decode().strip()
    if branch:
        paths += _git(repo, "rev-parse", "--git-path", f"{branch}.lock", check=False).stdout.decode().split()
    deadline = time.monotonic() + seconds
    while any((repo / p).exists() for p in paths) and time.monotonic() < deadline:
        time.sleep(0.05)


def holds(repo: Path, outdir: Path, rels: list[str]) -> bool:
    """Whether HEAD holds each of these files of outdir exactly as the work tree has it (a file
    absent from both counts as held): how the next run tells a killed run's commit from none."""
    prefix = outdir.resolve().relative_to(repo).as_posix()
    listing = _git(repo, "ls-tree", "-r", "-z", "HEAD", "--", prefix, check=False)
    if listing.returncode != 0:
        return False  # no commit yet
    committed = {}
    for record in listing.stdout.split(b"\0"):
        if record:
            meta, path = record.split(b"\t", 1)
            committed[path.decode("utf-8", "surrogateescape")] = meta.split()[2].decode()
    paths = [f"{prefix}/{rel}" for rel in rels]
    present = [p for p in paths if (repo / p).is_file()]
    if {p for p in paths if p in committed} != set(present):
        return False
    if not present:
        return True
    hashed = _git(repo, "hash-object", "--", *present).stdout.decode().split()
    return all(committed[p] == h for p, h in zip(present, hashed, strict=True))


def log_of(repo: Path, path: str, since: str | None = None, matching: str | None = None) -> list[tuple[str, str, str]]:
    """(commit, ISO date, subject) of every commit that changed path, oldest first. `matching`: only
    those whose change adds or removes a line matching this regular expression (git log -G)."""
    args = ["log", "--reverse", "--format=%H%x00%cI%x00%s", "-z"]
    if matching:
        args += ["-E", f"-G{matching}"]
    if since:
        args.append(f"{since}..HEAD")
    proc = _git(repo, *args, "--", path, check=False)
    if proc.returncode != 0:
        return []  # no commits yet
    out = []
    fields = proc.stdout.decode("utf-8", "replace").split("\0")
    for i in range(0, len(fields) - 2, 3):
        out.append((fields[i].strip(), fields[i + 1], fields[i + 2]))
    return out


def in_order(repo: Path, commits: Collection[str], paths: list[str]) -> list[str]:
    """These commits, oldest first, as history has them (one git process)."""
    proc = _git(repo, "rev-list", "--reverse", "HEAD", "--", *paths, check=False)
    wanted = set(commits)
    return [c for c in proc.stdout.decode().split() if c in wanted]


def literal_regex(text: str) -> str:
    """A POSIX extended regular expression that matches `text` literally."""
    out = []
    for ch in text:
        if ch.isalnum() or ch in ' _-:,/]"':
            out.append(ch)
        elif ch in "^\\":
            out.append("\\" + ch)
        else:
            out.append(f"[{ch}]")
    return "".join(out)


def read_blobs(repo: Path, specs: list[str]) -> dict[str, str | None]:
    """The text of each `commit:path` (None where it does not exist), in one git process."""
    if not specs:
        return {}
    batch = _git(repo, "cat-file", "--batch", stdin="".join(f"{s}\n" for s in specs).encode()).stdout
    out: dict[str, str | None] = {}
    pos = 0
    for spec in specs:
        header_end = batch.index(b"\n", pos)
        header = batch[pos:header_end].split()
        if header[-1] == b"missing":
            out[spec] = None
            pos = header_end + 1
            continue
        size = int(header[2])
        out[spec] = batch[header_end + 1 : header_end + 1 + size].decode("utf-8", "replace")
        pos = header_end + 1 + size + 1
    return out


# The date forms --since takes besides a commit: a bare date means the start of that day.
_DATE_FORMS = (
    r"\d{4}-\d{2}-\d{2}",
    r"\d{4}-\d{2}-\d{2}[ T]\d{1,2}:\d{2}(:\d{2})?",
    r"\d+ (second|minute|hour|day|week|month|year)s? ago",
    r"today|yesterday",
)


SINCE_FORMS = (
    "a commit, tag or branch (a1b2c3d, HEAD~5, v1.2), or a date: 2026-11-01, '2026-11-01 14:00', "
    "'2 weeks ago', today, yesterday"
)


def resolve_since(repo: Path, since: str) -> str | None:
    """A commit, tag or branch; or a date: the last commit before it. None when the date is
    before the first commit (everything is new since)."""
    proc = _git(repo, "rev-parse", "-q", "--verify", f"{since}^{{commit}}", check=False)
    if proc.returncode == 0:
        return proc.stdout.decode().strip()
    value = since.strip().lower()
    if not any(re.fullmatch(form, value) for form in _DATE_FORMS):
        raise ConfigError(f"--since {since!r}: not a commit, tag or branch in {repo}, nor a date", hint=SINCE_FORMS)
    if value in ("today", "yesterday"):
        day = datetime.date.today() - datetime.timedelta(days=value == "yesterday")
        value = day.isoformat()
    if re.fullmatch(_DATE_FORMS[0], value):
        value += " 00:00:00"  # git reads a bare date as that day at the present time of day
    proc = _git(repo, "rev-list", "-1", f"--before={value}", "HEAD", check=False)
    if proc.returncode != 0:
        raise LocalError(f"--since {since!r}: git could not use it in {repo}")
    return proc.stdout.decode().strip() or None  # None: before the first commit, all is new since


def relative_paths(root: Path, paths: list[Path]) -> list[str]:
    """Paths relative to the work tree, resolving each directory once (not each file); string
    work per file (a cold refresh passes thousands, and a Path for each costs more than the rest)."""
    parents: dict[str, str] = {}
    rel = []
    for p in paths:
        head, _, name = os.fspath(p).rpartition(os.sep)
        base = parents.get(head)
        if base is None:
            base = parents[head] = Path(head or os.sep).resolve().relative_to(root).as_posix()
        rel.append(name if base == "." else f"{base}/{name}")
    return rel


def unstage(root: Path, rel: list[str]) -> None:
    """Put the index back for our paths after a failed commit."""
    spec = _nul_list(rel)
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
