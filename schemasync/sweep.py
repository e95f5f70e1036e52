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
from .messages import sweep_message
from .notes import Notes
from .publish import Publication
from .refresh import RefreshResult, notes_for, plan_refresh

DRIFT_FILE = "_drift.md"


@dataclass
class Outcome:
    host: HostConfig
    result: RefreshResult | None = None
    error: SchemasyncError | None = None
    seconds: float = 0.0
    wrote: bool = False  # its files were written (and staged in the commit)

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
    notes = {host.name: notes_for(config, host) for host in hosts}
    repos = {host.name: gitops.require_repo(host.output) for host in hosts} if commit else {}
    home_repo = repos.get(reference or hosts[0].name)  # where the drift file and the guide are committed
    result = SweepResult([Outcome(host) for host in hosts], reference=reference)
    drift_dir = _common_parent([h.output for h in hosts]) if reference else None
    lock_dirs = [h.output for h in hosts] + ([drift_dir] if drift_dir else [])
    with store.lock_outputs(lock_dirs), Publication(commit) as pub:
        with ThreadPoolExecutor(max_workers=min(workers, len(hosts))) as pool:
            futures = {
                pool.submit(_one, o, pub, repos.get(o.host.name), notes[o.host.name]): o for o in result.outcomes
            }
            for future in as_completed(futures):
                future.result()
                if on_done:
                    on_done(futures[future])
        if reference and drift_dir is not None:
            result.drift = _drift(reference, hosts)
            result.drift_file = drift_dir / DRIFT_FILE
            text = render_drift_md(reference, result.drift)
            old = result.drift_file.read_text(encoding="utf-8") if result.drift_file.exists() else None
            if text != old:
                pub.write(drift_dir, home_repo, {DRIFT_FILE: text})
        changed = [(o.host.name, o.result.plan) for o in result.outcomes if o.wrote and o.result is not None]
        if changed:
            pub.write_guide(config, home_repo)
        if commit and pub.wrote:
            result.commit_message = sweep_message(changed) if changed else f"schemas: drift against {reference}\n"
            result.commit = pub.commit(result.commit_message)
    for o in result.outcomes:
        if o.wrote and o.result is not None:
            o.result.commit = result.commit
    result.seconds = time.monotonic() - started
    return result


def _one(outcome: Outcome, pub: Publication, repo: Path | None, notes: Notes) -> None:
    started = time.monotonic()
    try:
        res = plan_refresh(outcome.host, notes=notes)
        if res.plan.changed:
            pub.write(outcome.host.output, repo, res.plan.writes, res.plan.removed)
            outcome.wrote = True
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
