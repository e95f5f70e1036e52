"""A commit of exactly the tool's files, built while they are written.

A constant number of git processes per run, whatever the number of files. The commit is built
from the contents in memory by `git fast-import` (one pack, no loose object per file), in a
thread while the files are being written, and the branch moves with a compare-and-swap
`update-ref`. Where that could differ from what `git commit` would do (commit hooks, signing,
clean/smudge filters, line-ending conversion, ignored paths, a merge in progress) the commit is
made with `git add` + `git commit --only` instead, so hooks and signing apply as usual.
"""

from __future__ import annotations

import os
import queue
import re
import subprocess
import threading
from collections.abc import Collection, Mapping
from pathlib import Path

from schemasync.core import speed
from schemasync.core.errors import LocalError
from schemasync.output.gitops import _git, _nul_list, relative_paths, unstage

# Hooks that `git commit` runs and a plumbing commit would skip.
COMMIT_HOOKS = ("pre-commit", "prepare-commit-msg", "commit-msg", "post-commit")


# Attributes under which `git add` stores something else than the bytes in the working tree.
CONVERTING_ATTRS = ("filter", "ident", "working-tree-encoding")


def clean_message(message: str) -> str:
    """What `git commit -m` stores: trailing spaces and surrounding blank lines gone, runs of
    blank lines collapsed, one final newline."""
    # git splits at \n only and strips ASCII whitespace only (a name may hold U+2028 or U+00A0)
    lines = [line.rstrip(" \t\v\f\r") for line in message.split("\n")]
    out: list[str] = []
    for line in lines:
        if line or (out and out[-1]):
            out.append(line)
    while out and not out[-1]:
        out.pop()
    return "\n".join(out) + "\n"


def commit_files(root: Path, files: Mapping[Path, str], message: str, removed: Collection[Path] = ()) -> str | None:
    """Commit exactly these files, with these contents (already or about to be on disk), and the
    removal of `removed`, leaving anything else the user staged as it was. Returns the commit id."""
    pending = PendingCommit(root)
    pending.add(files, removed)
    return pending.finish(message)


_DONE = object()  # end of the files: the next item is the message


class _Withdraw(frozenset):
    """Paths added earlier whose files could not be written (or removed): left out of the commit."""


class PendingCommit:
    """A commit built in the background while the files are written: `add()` the files as they
    are ready (several times if need be), write them, then `finish(message)` (or `abort()`)."""

    def __init__(self, root: Path, few: bool = False) -> None:
        self.root = root
        self.few = few  # likely a handful of files (an incremental refresh): see _start_import
        self.rel: list[str] = []
        self.removed: list[str] = []  # paths the commit deletes (pages the tool no longer writes)
        self.parent: str | None = None
        self.commit: str | None = None  # built by the thread; None after finish: `git commit` made it
        self.error: BaseException | None = None
        self.queue: queue.SimpleQueue = queue.SimpleQueue()
        self.thread = threading.Thread(target=self._build, name="schemasync-commit", daemon=True)
        self.thread.start()

    def add(self, files: Mapping[Path, str], removed: Collection[Path] = ()) -> None:
        self._add(
            relative_paths(self.root, list(files)), list(files.values()), relative_paths(self.root, list(removed))
        )

    def add_under(self, folder: Path, files: Mapping[str, str], removed: Collection[str] = ()) -> None:
        """As `add`, with paths relative to `folder` ("/" between names): a cold refresh adds
        thousands, and a Path for each costs more than the rest of adding it."""
        prefix = self._prefix(folder)
        self._add([prefix + rel for rel in files], list(files.values()), [prefix + rel for rel in removed])

    def _prefix(self, folder: Path) -> str:
        return relative_paths(self.root, [folder / "-"])[0][:-1]

    def _add(self, rel: list[str], texts: list[str], gone: list[str]) -> None:
        self.rel += rel
        self.removed += gone
        self.queue.put((rel, texts, gone))

    def withdraw_under(self, folder: Path, rel: Collection[str]) -> None:
        """Leave out files added earlier (their write failed, or they were not written after
        all), by paths relative to `folder`; their blobs stay unreferenced."""
        if not rel:
            return
        prefix = self._prefix(folder)
        gone = {prefix + r for r in rel}
        self.rel = [r for r in self.rel if r not in gone]
        self.removed = [r for r in self.removed if r not in gone]
        self.queue.put(_Withdraw(gone))

    # -- in the thread: everything that does not touch the working tree, the index or a ref ------
    def _build(self) -> None:
        importer: subprocess.Popen | None = None
        try:
            if not self._repository_allows_plumbing():
                return
            importer = self._start_import()
            assert importer.stdin is not None
            marks: list[tuple[bytes, str]] = []  # the blob (":mark", or its id) for each path
            deletes: list[str] = []
            blobs = 0  # marks are numbered by blob, whatever is withdrawn later
            while (item := self.queue.get()) is not _DONE:
                if isinstance(item, _Withdraw):
                    marks = [(mark, path) for mark, path in marks if path not in item]
                    deletes = [path for path in deletes if path not in item]
                    continue
                rel, texts, gone = item
                deletes += gone
                if not self._files_allow_plumbing(rel, texts):
                    return
                # Small blobs go a megabyte at a time (a thread that waited for the GIL after
                # every small pipe write would take seconds beside a busy main thread); a big one
                # (the manifest) as it is, not copied into a join.
                stream: list[bytes] = []
                size = 0
                for path, text in zip(rel, texts, strict=True):
                    data = text.encode("utf-8")
                    if self.few and len(data) >= 1 << 20:
                        # as a loose object at once: a blob in the pack of a handful is unpacked
                        # again (fastimport.unpackLimit), inflated and compressed a second time
                        marks.append((self._loose_blob(data), path))
                        continue
                    blobs += 1
                    marks.append((b":%d" % blobs, path))
                    stream.append(b"blob\nmark :%d\ndata %d\n" % (blobs, len(data)))
                    if len(data) >= 1 << 16:
                        importer.stdin.write(b"".join(stream))
                        importer.stdin.write(data)
                        stream, size = [b"\n"], 0
                        continue
                    stream += (data, b"\n")
                    size += len(data)
                    if size > 1 << 20:
                        importer.stdin.write(b"".join(stream))
                        stream, size = [], 0
                importer.stdin.write(b"".join(stream))
            message = self.queue.get()
            if message is None:
                return  # aborted
            self.commit = self._finish_import(importer, marks, deletes, blobs + 1, message)
            importer = None
        except BrokenPipeError:
            self.error = LocalError(f"git fast-import failed in {self.root}: {self._import_error(importer)}")
        except BaseException as exc:  # handed to finish()
            self.error = exc
        finally:
            if importer is not None:  # abandoned: end the stream cleanly; its blobs stay unreferenced
                try:
                    assert importer.stdin is not None
                    importer.stdin.write(b"done\n")
                    importer.stdin.close()
                except OSError:
                    importer.kill()
                importer.wait()

    def _repository_allows_plumbing(self) -> bool:
        if not speed.on("fast_import"):
            return False
        root = self.root
        hooks, merge_head = (
            _git(root, "rev-parse", "--git-path", "hooks", "--git-path", "MERGE_HEAD")
            .stdout.decode("utf-8", "surrogateescape")
            .splitlines()
        )
        if (root / merge_head).exists():
            return False
        if any(os.access(root / hooks / h, os.X_OK) for h in COMMIT_HOOKS):
            return False
        sign = _git(root, "config", "--type=bool", "--get", "commit.gpgsign", check=False).stdout.strip()
        if sign == b"true":
            return False
        idents = []
        for var in ("GIT_AUTHOR_IDENT", "GIT_COMMITTER_IDENT"):
            proc = _git(root, "var", var, check=False)
            if proc.returncode != 0:
                return False  # `git commit` explains how to set an identity
            idents.append(proc.stdout.decode("utf-8", "surrogateescape").strip())
        self.author, self.committer = idents
        head = _git(root, "rev-parse", "-q", "--verify", "HEAD^{commit}", check=False)
        self.parent = head.stdout.decode().strip() if head.returncode == 0 else None
        return True

    def _files_allow_plumbing(self, rel: list[str], texts: list[str]) -> bool:
        if any("\r" in text for text in texts):
            return False  # line-ending conversion could apply
        spec = _nul_list(rel)
        attrs = _git(self.root, "check-attr", "-z", "--stdin", *CONVERTING_ATTRS, stdin=spec).stdout.split(b"\0")
        if any(value not in (b"unspecified", b"unset") for value in attrs[2::3]):
            return False
        # `git add` refuses ignored paths, and says why
        return not _git(self.root, "check-ignore", "-z", "--stdin", stdin=spec, check=False).stdout

    def _loose_blob(self, data: bytes) -> bytes:
        """Write one blob as a loose object (git's loose compression: level 1 unless configured): its id."""
        out = _git(self.root, "hash-object", "-w", "--stdin", stdin=data).stdout.strip()
        if not re.fullmatch(rb"[0-9a-f]{40,64}", out):
            raise LocalError(f"git hash-object failed in {self.root}: {out[:200]!r}")
        return out

    def _start_import(self) -> subprocess.Popen:
        # A handful of objects are unpacked into loose ones at once (fastimport.unpackLimit),
        # compressed at level 1 as git's loose objects are by default: compressing the pack at
        # level 6 first would be for nothing.
        speed = ["-c", "core.compression=1"] if self.few else []
        return subprocess.Popen(
            ["git", *speed, "-C", str(self.root), "fast-import", "--quiet", "--done", "--cat-blob-fd=1"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env={**os.environ, "GIT_TERMINAL_PROMPT": "0"},
            start_new_session=True,  # as in _git
        )

    def _finish_import(
        self,
        importer: subprocess.Popen,
        marks: list[tuple[bytes, str]],
        deletes: list[str],
        commit_mark: int,
        message: str,
    ) -> str:
        """The commit on top of the blobs. No ref is left behind (`reset` drops the branch
        fast-import needs); the commit id comes back through `get-mark`."""
        assert importer.stdin is not None and importer.stdout is not None
        scratch = f"refs/schemasync/commit-{os.getpid()}-{threading.get_ident()}"
        msg = message.encode("utf-8")
        who = f"author {self.author}\ncommitter {self.committer}\n".encode("utf-8", "surrogateescape")
        write = importer.stdin.write
        write(f"commit {scratch}\nmark :{commit_mark}\n".encode() + who + b"data %d\n" % len(msg) + msg + b"\n")
        if self.parent:
            write(f"from {self.parent}\n".encode())
        for rel in deletes:
            write(b"D %s\n" % _quote_path(rel))
        for blob, rel in marks:
            write(b"M 100644 %s %s\n" % (blob, _quote_path(rel)))
        write(f"\nget-mark :{commit_mark}\nreset {scratch}\n\ndone\n".encode())
        importer.stdin.close()
        out = importer.stdout.read()
        if importer.wait() != 0 or not re.fullmatch(rb"[0-9a-f]{40,64}\n", out):
            raise LocalError(f"git fast-import failed in {self.root}: {self._import_error(importer)}")
        return out.decode().strip()

    @staticmethod
    def _import_error(importer: subprocess.Popen | None) -> str:
        if importer is None or importer.stderr is None:
            return "no output"
        importer.wait()
        return importer.stderr.read().decode("utf-8", "replace").strip()

    # -- in the caller, once the files are in place -------------------------------------------------
    def finish(self, message: str) -> str | None:
        """The new commit's id, or None when the files are exactly as HEAD has them."""
        message = clean_message(message)
        self.queue.put(_DONE)
        self.queue.put(message)
        self.thread.join()
        if self.error is not None:
            raise self.error
        if self.commit is None:
            return _porcelain_commit(self.root, self.rel, message, self.removed)
        spec = _nul_list(self.rel + self.removed)
        # Stage first: if the branch moved meanwhile, the index is put back and nothing changed.
        _git(self.root, "update-index", "--add", "--remove", "-z", "--stdin", stdin=spec)
        if self.parent and _same_tree(self.root, self.commit, self.parent):
            return None  # the files are as last committed (a hand edit put back): no empty commit
        old = self.parent or "0" * len(self.commit)
        subject = message.split("\n", 1)[0]
        reason = f"commit{'' if self.parent else ' (initial)'}: {subject}"
        move = _git(self.root, "update-ref", "-m", reason, "HEAD", self.commit, old, check=False)
        if move.returncode != 0:
            unstage(self.root, self.rel + self.removed)
            err = move.stderr.decode("utf-8", "replace").strip()
            raise LocalError(f"git: HEAD moved while schemasync was committing ({err}); nothing was committed")
        _git(self.root, "gc", "--auto", "--quiet", check=False)  # as `git commit` does
        return self.commit

    def abort(self) -> None:
        """Stop building: no commit is made; blobs already imported are unreferenced (git gc drops them)."""
        self.queue.put(_DONE)
        self.queue.put(None)
        self.thread.join()


def _quote_path(rel: str) -> bytes:
    """A C-style quoted path for fast-import: any name, spaces and newlines included."""
    out = bytearray(b'"')
    for byte in rel.encode("utf-8", "surrogateescape"):
        if byte in (0x22, 0x5C):
            out += b"\\" + bytes([byte])
        elif byte < 0x20 or byte == 0x7F:
            out += b"\\%03o" % byte
        else:
            out.append(byte)
    return bytes(out + b'"')


def _same_tree(root: Path, a: str, b: str) -> bool:
    trees = _git(root, "rev-parse", f"{a}^{{tree}}", f"{b}^{{tree}}").stdout.split()
    return trees[0] == trees[1]


def _porcelain_commit(root: Path, written: list[str], message: str, removed: list[str]) -> str | None:
    if removed:  # only paths git knows: `commit --only` refuses a pathspec that matches nothing
        known = set(_git(root, "ls-files", "-z", "--", *(f":(literal){p}" for p in removed)).stdout.split(b"\0"))
        removed = [p for p in removed if p.encode("utf-8", "surrogateescape") in known]
        if removed:
            rm = ["rm", "--cached", "-q", "--ignore-unmatch", "--pathspec-from-file=-", "--pathspec-file-nul"]
            _git(root, *rm, stdin=_nul_list(removed))
    rel = [*written, *removed]
    spec = _nul_list(rel)
    add_spec = _nul_list(written)
    add = _git(root, "add", "--pathspec-from-file=-", "--pathspec-file-nul", "--", stdin=add_spec, check=False)
    if add.returncode != 0 and written:
        err = add.stderr.decode("utf-8", "replace").strip()
        hint = "the output directory is ignored by .gitignore" if "ignored" in err else ""
        raise LocalError(f"git add failed: {err}", hint=hint)
    if _git(root, "rev-parse", "-q", "--verify", "HEAD", check=False).returncode == 0:
        staged = _git(root, "diff-index", "--cached", "--name-only", "-z", "HEAD").stdout.split(b"\0")
        if not {p.decode("utf-8", "surrogateescape") for p in staged} & set(rel):
            return None  # as last committed: no empty commit
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
