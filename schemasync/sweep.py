"""Every environment at once: refreshes in parallel, failures isolated, one commit, optional drift."""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path

from . import gitops, store
from .config import Config, HostConfig
from .diff import DiffReport, compare, read_worktree, render_drift_md
from .errors import ConfigError, LocalError, SchemasyncError
from .reader import write_guide
from .refresh import RefreshResult, cap_lines, plan_refresh, require_repo
from .store import MARKS, NEW, ORPHANED, UPDATED

DRIFT_FILE = "_drift.md"


@dataclass
class Outcome:
    host: HostConfig
    result: RefreshResult | None = None
    error: SchemasyncError | None = None
    seconds: float = 0.0
    tx: store.Transaction | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass
class SweepResult:
    outcomes: list[Outcome]
    commit: str | None = None
    commit_message: str | None = None
    reference: str | None = None
    drift: list[DiffReport] = field(default_factory=list)
    drift_file: Path | None = None
    seconds: float = 0.0

    @property
    def exit_code(self) -> int:
        failed = [o.error for o in self.outcomes if o.error is not None]
        return failed[0].code if failed else 0


def select_hosts(config: Config, names: str | None) -> list[HostConfig]:
    if not names:
        return list(config.hosts.values())
    wanted = [n.strip() for n in names.split(",") if n.strip()]
    if not wanted:
        raise ConfigError("--hosts: give one or more host names, separated by commas")
    return [config.host(n) for n in dict.fromkeys(wanted)]


def sweep_message(outcomes: list[Outcome]) -> str:
    parts, body = [], []
    for o in outcomes:
        if not (o.ok and o.result and o.result.plan.changed):
            continue
        plan = o.result.plan
        tokens = [f"{MARKS[r.status]}{r.label}" for r in plan.tables() if r.status in (NEW, UPDATED)]
        tokens += [f"{MARKS[ORPHANED]}{r.label}" for r in plan.tables(ORPHANED)]
        others = sum(1 for r in plan.objects() if r.status in (NEW, UPDATED))
        if others:
            tokens.append(f"{others} other")
        parts.append(f"{o.host.name}({' '.join(tokens) if len(tokens) <= 4 else f'{len(tokens)} changes'})")
        body += [f"{o.host.name}: {t}" for t in tokens]
    subject = "schemas: " + " ".join(parts)
    return subject + ("\n\n" + cap_lines(body) + "\n" if body else "\n")


def sweep(
    config: Config,
    hosts: list[HostConfig],
    *,
    workers: int = 4,
    commit: bool = True,
    reference: str | None = None,
    on_done: Callable[[Outcome], None] | None = None,
) -> SweepResult:
    started = time.monotonic()
    if workers < 1:
        raise ConfigError("--workers must be at least 1")
    if reference is not None and reference not in {h.name for h in hosts}:
        raise ConfigError(f"--reference {reference!r} is not one of the swept hosts")
    for host in hosts:
        host.password()  # configuration errors stop the sweep before anything runs
    repos = {host.name: require_repo(host) for host in hosts} if commit else {}
    outcomes = [Outcome(host) for host in hosts]
    drift_dir = _common_parent([h.output for h in hosts]) if reference else None
    lock_dirs = [h.output for h in hosts] + ([drift_dir] if drift_dir else [])
    with store.lock_outputs(lock_dirs):
        result = SweepResult(outcomes, reference=reference)
        extra: dict[Path, str] = {}
        drift_tx = guide_tx = None
        pending: dict[Path, gitops.PendingCommit] = {}  # per repository, built as environments finish

        def stage(repo: Path, files: dict[Path, str]) -> None:
            if repo not in pending:
                pending[repo] = gitops.PendingCommit(repo)
            pending[repo].add(files)

        try:
            with ThreadPoolExecutor(max_workers=min(workers, len(hosts))) as pool:
                futures = {pool.submit(_one, o): o for o in outcomes}
                for future in as_completed(futures):
                    future.result()
                    done = futures[future]
                    if commit and done.ok and done.tx is not None and done.result is not None:
                        writes = done.result.plan.writes
                        stage(repos[done.host.name], {done.host.output / f: t for f, t in writes.items()})
                    if on_done:
                        on_done(done)
            if reference and drift_dir is not None:
                result.drift = _drift(reference, hosts)
                result.drift_file = drift_dir / DRIFT_FILE
                text = render_drift_md(reference, result.drift)
                old = result.drift_file.read_text(encoding="utf-8") if result.drift_file.exists() else None
                if text != old:
                    drift_tx = store.Transaction(drift_dir)
                    drift_tx.write({DRIFT_FILE: text})
                    extra[result.drift_file] = text
            changed = [o for o in outcomes if o.ok and o.tx is not None]
            if changed:
                guide_tx, guide_files = write_guide(config)
                extra |= guide_files
            if commit and (changed or extra):
                result.commit_message = sweep_message(outcomes)
                if not changed:
                    result.commit_message = f"schemas: drift against {reference}\n"
                if extra:
                    stage(repos[reference or hosts[0].name], extra)
                for repo in list(pending):
                    result.commit = pending.pop(repo).finish(result.commit_message)
        except BaseException:
            for unfinished in pending.values():
                unfinished.abort()
            for o in outcomes:
                if o.tx is not None:
                    o.tx.rollback()
            for extra_tx in (drift_tx, guide_tx):
                if extra_tx is not None:
                    extra_tx.rollback()
            raise
        for o in outcomes:
            if o.tx is not None:
                o.tx.finish()
                if o.result is not None:
                    o.result.commit = result.commit
        for extra_tx in (drift_tx, guide_tx):
            if extra_tx is not None:
                extra_tx.finish()
    result.seconds = time.monotonic() - started
    return result


def _one(outcome: Outcome) -> None:
    started = time.monotonic()
    try:
        res = plan_refresh(outcome.host)
        if res.plan.changed:
            tx = store.Transaction(outcome.host.output)
            tx.write(res.plan.writes)
            outcome.tx = tx
        outcome.result = res
    except SchemasyncError as exc:
        outcome.error = exc
    except Exception as exc:  # one environment's bug must not take the others down
        outcome.error = SchemasyncError(f"{outcome.host.name}: unexpected {type(exc).__name__}: {exc}")
    outcome.seconds = time.monotonic() - started


def _drift(reference: str, hosts: list[HostConfig]) -> list[DiffReport]:
    by_name = {h.name: h for h in hosts}
    ref_files = read_worktree(by_name[reference].output)
    return [compare(reference, ref_files, h.name, read_worktree(h.output)) for h in hosts if h.name != reference]


def _common_parent(paths: list[Path]) -> Path:
    parts = [p.resolve().parts for p in paths]
    common = []
    for level in zip(*parts, strict=False):  # shortest path decides
        if len(set(level)) != 1:
            break
        common.append(level[0])
    parent = Path(*common) if common else Path("/")
    if any(parent == p.resolve() for p in paths):
        raise LocalError("--reference: one output directory contains the others; cannot place _drift.md")
    return parent
