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
from collections.abc import Collection
from pathlib import Path
from types import TracebackType

from . import gitops, store
from .config import Config
from .guide import guide_update


class Publication:
    def __init__(self, commit: bool) -> None:
        self.committing = commit
        self.lock = threading.Lock()
        self.pending: dict[Path, gitops.PendingCommit] = {}  # per repository
        self.transactions: list[store.Transaction] = []

    def __enter__(self) -> Publication:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        if kind is None:
            for tx in self.transactions:
                tx.finish()
            return
        for pending in self.pending.values():
            pending.abort()
        for tx in reversed(self.transactions):
            tx.rollback()

    @property
    def wrote(self) -> bool:
        return bool(self.transactions)

    def write(self, outdir: Path, repo: Path | None, files: dict[str, str], removed: Collection[str] = ()) -> None:
        """Write files (relative to outdir) and delete `removed` atomically; when committing, git
        builds them into the commit meanwhile. On failure nothing of this call remains, on disk or
        in the commit."""
        if not files and not removed:
            return
        absolute = {outdir / rel: text for rel, text in files.items()}
        gone = [outdir / rel for rel in removed]
        pending = None
        if self.committing and repo is not None:
            with self.lock:
                pending = self.pending.get(repo)
                if pending is None:
                    pending = self.pending[repo] = gitops.PendingCommit(repo)
                pending.add(absolute, gone)
        tx = store.Transaction(outdir)
        try:
            tx.write(files, removed)  # rolls itself back on failure
        except BaseException:
            if pending is not None:
                with self.lock:
                    pending.withdraw(absolute, gone)
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
        """Finish every repository's commit with this message; the last commit id (None if none)."""
        commit = None
        for repo in list(self.pending):
            commit = self.pending.pop(repo).finish(message)
        return commit
