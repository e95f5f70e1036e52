"""Publishing a run: its files written into place and committed as one unit, or not at all.

Every caller (a refresh, a sweep) goes through `Publication`, so the order that keeps "a failed run
leaves the output directories exactly as they were" is written once:

    with Publication(commit=True) as pub:
        pub.write(outdir, repo, files)   # staged in git's background commit, then written
        ...
        commit = pub.commit(message)     # one commit per repository
    # leaving the block with an exception: the commits are abandoned and every file put back

`write` may be called from several threads (a sweep's environments finish in parallel). A write
that fails is withdrawn from the commit and rolled back, and raises; the caller decides whether that
ends the whole publication (refresh) or only that environment (sweep).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Collection
from pathlib import Path
from types import TracebackType

from schemasync.core import interrupts
from schemasync.core.config import Config
from schemasync.core.errors import Interrupted
from schemasync.output import commit
from schemasync.output.guide import guide_update
from schemasync.output.transaction import Transaction


class Publication:
    def __init__(self, commit: bool) -> None:
        self.committing = commit
        self.lock = threading.Lock()
        self.pending: dict[Path, commit.PendingCommit] = {}  # per repository
        self.transactions: list[Transaction] = []
        self.committed: dict[Path, str] = {}  # repository -> the commit this publication made there

    def __enter__(self) -> Publication:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        # One rule, whatever ends the block: files whose commit was made stay; all others go back.
        with interrupts.held():
            for pending in self.pending.values():  # prepared, or failed: no commit
                pending.abort()
            for tx in reversed(self.transactions):
                if kind is None or (tx.repo is not None and tx.repo in self.committed):
                    tx.finish()
                else:
                    tx.rollback()
        if kind is not None and issubclass(kind, KeyboardInterrupt) and self.committed:
            raise Interrupted(list(self.committed.values())[-1]) from None

    @property
    def wrote(self) -> bool:
        return bool(self.transactions)

    def prepare(self, repo: Path | None, warm: Callable[[], None] | None = None) -> None:
        """Start the repository's commit (git's checks, fast-import) and `warm` in the background,
        while the caller waits for the server: files are likely to follow. Unused, it is dropped."""
        if self.committing and repo is not None:
            with self.lock:
                self._pending(repo, few=True)
            if warm is not None:
                threading.Thread(target=warm, name="schemasync-warm", daemon=True).start()

    def _pending(self, repo: Path, few: bool = False) -> commit.PendingCommit:
        """The repository's commit in the making (the caller holds the lock). `few`: most likely
        a handful of files (prepared for an incremental refresh)."""
        pending = self.pending.get(repo)
        if pending is None:
            pending = self.pending[repo] = commit.PendingCommit(repo, few)
        return pending

    def write(self, outdir: Path, repo: Path | None, files: dict[str, str], removed: Collection[str] = ()) -> None:
        """Write files (relative to outdir) and delete `removed` atomically; when committing, git
        builds them into the commit meanwhile. On failure nothing of this call remains, on disk or
        in the commit."""
        if not files and not removed:
            return
        tx = Transaction(outdir, repo if self.committing else None)
        pending = None
        if self.committing and repo is not None:
            with self.lock:
                pending = self._pending(repo)
                pending.add_under(outdir, files, removed)
        try:
            tx.write(files, removed)  # rolls itself back on failure
        except BaseException:
            if pending is not None:
                with self.lock:
                    pending.withdraw_under(outdir, [*files, *removed])
            raise
        with self.lock:
            self.transactions.append(tx)

    def write_guide(self, config: Config, repo: Path | None) -> Path | None:
        """docs/schemas/README.md, when it is ours and out of date; its path if written."""
        update = guide_update(config)
        if update is None:
            return None
        self.write(update[0], repo, update[1])
        return update[0] / next(iter(update[1]))

    def commit(self, message: str) -> str | None:
        """Finish every repository's commit with this message; the last commit id (None if none).
        Ctrl-C waits until each commit is made or not: whether it was decides which files stay."""
        commit = None
        for repo in list(self.pending):
            with interrupts.held():
                commit = self.pending.pop(repo).finish(message)
                if commit is not None:
                    self.committed[repo] = commit
        return commit
