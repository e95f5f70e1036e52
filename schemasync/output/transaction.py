"""Writing an output directory so that a run that fails, is interrupted or is killed leaves the old
files or the new ones, never a mix.

A transaction stages every new file in a hidden folder inside the output directory
(`.schemasync-<pid>-<hex>.tmp`), writes a journal there of every step it is about to take, and only
then moves files into place, keeping what it replaces in the same folder. Undoing a transaction
reads the journal and looks at what is on disk, so the same code serves a failure inside the run
(`rollback`) and a run that was killed (`mend`, by the next run that takes the directory's lock).

Which way a killed run is mended: until the files are committed, back to the old ones; once the
commit that holds them is HEAD's, forward (the journal and backups go, the files stay). The files
on disk are not the record of what was committed; HEAD is.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import secrets
import shutil
import stat
import time
from collections.abc import Collection, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from schemasync.core.errors import LocalError
from schemasync.output import gitops

STAGING_PREFIX = ".schemasync-"
JOURNAL = "journal.json"
WRITTEN = "written"  # every step of the journal was taken


def check_inside(outdir: Path, rel: str) -> None:
    # Names are mapped to safe file names, but the manifest is input too: never follow it out.
    # (Plain string work: a refresh checks every record, and Path objects for each cost more.)
    parts = rel.split("/") if isinstance(rel, str) else [""]
    if parts == [""] or rel.startswith("/") or any(p in ("..", ".", "") for p in parts) or len(parts) > 2:
        raise LocalError(f"{outdir / '_manifest.json'}: refusing path {rel!r} outside the output directory")


@contextmanager
def lock_outputs(outdirs: list[Path], wait: float = 5.0) -> Iterator[None]:
    """One run per output directory. flock on each directory itself (or its nearest existing
    parent): nothing is written to take the lock, and the kernel drops it if the process dies.
    Several directories (a sweep) are locked together, each lock target once."""
    targets = []
    for outdir in outdirs:
        target = outdir
        while not target.exists():
            target = target.parent
        if target not in targets:
            targets.append(target)
    fds: list[int] = []
    try:
        for target in sorted(targets):
            fd = os.open(target, os.O_RDONLY)
            fds.append(fd)
            deadline = time.monotonic() + wait
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except OSError as exc:
                    if exc.errno not in (errno.EAGAIN, errno.EACCES) or time.monotonic() > deadline:
                        raise LocalError(
                            f"{target}: another schemasync run is using this output directory",
                            hint="wait for it to finish, then run again",
                        ) from None
                    time.sleep(0.1)
        yield
    finally:
        for fd in fds:
            os.close(fd)


class Transaction:
    """Writes files into place with a journal; `rollback` puts back exactly what was there.
    `repo`: the repository whose commit will hold the files (None: no commit), for `mend`."""

    def __init__(self, outdir: Path, repo: Path | None = None) -> None:
        self.outdir = outdir
        self.repo = repo
        self.staging = outdir / f"{STAGING_PREFIX}{os.getpid()}-{secrets.token_hex(4)}.tmp"
        self.created_dirs: list[Path] = []  # above and in outdir, removed again on rollback
        self.emptied: list[str] = []  # folders a removal may have left empty

    def _open_staging(self) -> None:
        if not self.staging.is_dir():
            self._mkdir(self.outdir)
            self.staging.mkdir()

    def write(self, files: dict[str, str], removed: Collection[str] = ()) -> None:
        """Put `files` in place and delete `removed` (pages of ours no longer needed), journaled.
        Once per transaction."""
        try:
            self._open_staging()
            steps: list[tuple[str, str, str | None]] = []  # (rel, staged file, backup) in staging
            for i, (rel, content) in enumerate(sorted(files.items())):
                check_inside(self.outdir, rel)
                tmp = self.staging / f"{i}.new"
                # no newline translation; encoded as written, not copied whole (the manifest of
                # 5,000 tables is megabytes)
                with open(tmp, "w", encoding="utf-8", newline="") as fh:
                    fh.write(content)
                try:
                    mode: int | None = os.lstat(self.outdir / rel).st_mode  # a dangling link too
                except FileNotFoundError:
                    mode = None
                except NotADirectoryError:
                    raise LocalError(f"{self.outdir / rel}: a file stands where a folder is needed") from None
                if mode is not None and stat.S_ISDIR(mode):
                    raise LocalError(f"{self.outdir / rel}: is a directory; refusing to replace it")
                steps.append((rel, str(tmp.relative_to(self.staging)), f"{i}.old" if mode is not None else None))
            gone = []
            for i, rel in enumerate(sorted(removed)):
                check_inside(self.outdir, rel)
                target = self.outdir / rel
                if target.is_file() and not target.is_symlink():
                    gone.append((rel, f"{i}.removed"))
            _save_journal(
                self.staging, {"repo": str(self.repo) if self.repo else None, "files": steps, "removed": gone}
            )
            ready: set[Path] = set()  # folders known to exist (a cold refresh writes thousands of files)
            for rel, tmp, backup in steps:
                target = self.outdir / rel
                if target.parent not in ready:
                    self._mkdir(target.parent)
                    ready.add(target.parent)
                if backup is not None:
                    os.rename(target, self.staging / backup)
                os.rename(self.staging / tmp, target)
            for rel, backup in gone:
                os.rename(self.outdir / rel, self.staging / backup)
                self.emptied.append(rel.rpartition("/")[0])
            (self.staging / WRITTEN).touch()
        except BaseException as exc:
            self.rollback()
            if isinstance(exc, OSError):
                raise LocalError(f"{self.outdir}: cannot write: {exc}; the directory is unchanged") from None
            raise

    def _mkdir(self, path: Path) -> None:
        missing = []
        while not path.exists():
            missing.append(path)
            path = path.parent
        for p in reversed(missing):
            try:
                p.mkdir()
            except FileExistsError:  # made meanwhile by another environment's write (a sweep): not ours
                continue
            self.created_dirs.append(p)

    def rollback(self) -> None:
        _undo(self.outdir, self.staging)
        for d in reversed(self.created_dirs):
            with suppress(OSError):
                d.rmdir()
        self.created_dirs.clear()

    def finish(self) -> None:
        _settle(self.outdir, self.staging, self.emptied)


def _save_journal(staging: Path, journal: dict) -> None:
    part = staging / (JOURNAL + ".part")
    part.write_text(json.dumps(journal), encoding="utf-8")
    os.rename(part, staging / JOURNAL)  # whole or absent


def _load_journal(staging: Path) -> dict | None:
    try:
        return json.loads((staging / JOURNAL).read_text(encoding="utf-8"))
    except (FileNotFoundError, ValueError):
        return None


def _undo(outdir: Path, staging: Path) -> None:
    """Put back what the journal's steps replaced, from what is on disk: a step whose backup is
    still in staging had not been put back; a new file whose staged copy is gone was moved in."""
    journal = _load_journal(staging)
    if journal is not None:
        for rel, backup in reversed(journal["removed"]):
            if (staging / backup).exists():
                os.replace(staging / backup, outdir / rel)
        created_in = set()
        for rel, tmp, backup in reversed(journal["files"]):
            target = outdir / rel
            if backup is not None:
                if (staging / backup).exists():
                    os.replace(staging / backup, target)
            elif not (staging / tmp).exists():
                with suppress(FileNotFoundError):
                    target.unlink()
                created_in.add(target.parent)
        for folder in sorted(created_in, reverse=True):
            if folder != outdir:
                with suppress(OSError):  # not empty: something else lives there
                    folder.rmdir()
    shutil.rmtree(staging, ignore_errors=True)


def _settle(outdir: Path, staging: Path, emptied: Collection[str]) -> None:
    """The new files stay: the staging folder goes, and the folders removals emptied."""
    shutil.rmtree(staging, ignore_errors=True)
    for folder in emptied:
        if folder:
            with suppress(OSError):  # not empty: something else lives there
                (outdir / folder).rmdir()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def leftovers(outdir: Path) -> list[Path]:
    """Staging folders in outdir whose run is gone (the caller holds outdir's lock; a folder of a
    live process is another directory's run writing the guide beside it, and is left alone)."""
    found = []
    with suppress(FileNotFoundError, NotADirectoryError):
        for entry in os.scandir(outdir):
            if not (entry.name.startswith(STAGING_PREFIX) and entry.name.endswith(".tmp") and entry.is_dir()):
                continue
            pid = entry.name[len(STAGING_PREFIX) :].split("-", 1)[0]
            if pid.isdigit() and int(pid) != os.getpid() and _alive(int(pid)):
                continue
            found.append(Path(entry.path))
    return sorted(found)


def mend(outdir: Path) -> list[str]:
    """Finish or undo what killed runs left in outdir; a sentence for each."""
    said = []
    for staging in leftovers(outdir):
        journal = _load_journal(staging)
        written = (staging / WRITTEN).exists()
        if journal is None:
            shutil.rmtree(staging, ignore_errors=True)
            said.append(f"removed {staging}, left by a run that was stopped before it wrote anything")
            continue
        rels = [rel for rel, _, _ in journal["files"]] + [rel for rel, _ in journal["removed"]]
        repo = Path(journal["repo"]) if journal["repo"] else None
        if written and repo is not None:
            gitops.refs_settled(repo)
        if written and (repo is None or gitops.holds(repo, outdir, rels)):
            _settle(outdir, staging, [rel.rpartition("/")[0] for rel, _ in journal["removed"]])
            what = "committed" if repo is not None else "written"
            said.append(f"{outdir}: a run stopped after its files were {what}; removed what it left ({staging.name})")
        else:
            _undo(outdir, staging)
            if repo is not None:  # a commit stopped halfway may have staged them
                gitops.unstage(repo, gitops.relative_paths(repo, [outdir / rel for rel in rels]))
            said.append(f"{outdir}: a run stopped before its commit; its {len(rels)} files were put back as they were")
    return said


@contextmanager
def taken(outdirs: list[Path], beside: Collection[Path | None] = ()) -> Iterator[list[str]]:
    """Lock the output directories, then mend what killed runs left in them (and in `beside`:
    folders other runs also write, such as the guide's): yields what was mended, a sentence each."""
    with lock_outputs(outdirs):
        seen: set[Path] = set()
        said = []
        for folder in [*outdirs, *beside]:
            if folder is not None and folder not in seen:
                seen.add(folder)
                said += mend(folder)
        yield said
