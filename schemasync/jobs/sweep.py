"""Every environment at once: refreshes in parallel, failures isolated, one commit, optional drift."""

from __future__ import annotations

import multiprocessing
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field, replace
from pathlib import Path

from schemasync.core import gcpause
from schemasync.core.config import Config, HostConfig
from schemasync.core.errors import ConfigError, DatabaseError, LocalError, SchemasyncError
from schemasync.core.notes import Notes, notes_for
from schemasync.jobs.diff import DiffReport, compare, read_worktree, render_drift_md
from schemasync.jobs.fetch import fetch_several
from schemasync.jobs.refresh import RefreshResult, plan_refresh
from schemasync.output import gitops
from schemasync.output.guide import guide_dir
from schemasync.output.messages import sweep_message
from schemasync.output.publish import Publication
from schemasync.output.transaction import taken
from schemasync.transport.session import RemoteOutput

DRIFT_FILE = "_drift.md"
Fetched = tuple[RemoteOutput, list[str] | None]  # a database of a host with several: its output in hand


@dataclass
class Outcome:
    host: HostConfig
    result: RefreshResult | None = None
    error: SchemasyncError | None = None
    seconds: float = 0.0
    wrote: bool = False  # its files were written (and staged in the commit)
    parts: list[Outcome] = field(default_factory=list)  # a host with several databases: one per database

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
    mended: list[str] = field(default_factory=list)  # what killed runs had left, put right first

    @property
    def exit_code(self) -> int:
        failed = [o.error for o in self.outcomes if o.error is not None]
        return failed[0].code if failed else 0


def select_hosts(config: Config, names: str | None) -> list[HostConfig]:
    if not names:
        return list(config.hosts.values())  # a host with several databases: all of them
    wanted = [n.strip() for n in names.split(",") if n.strip()]
    if not wanted:
        raise ConfigError("--hosts: give one or more host names, separated by commas")
    return [config.host(n, whole=True) for n in dict.fromkeys(wanted)]


def sweep(
    config: Config,
    hosts: list[HostConfig],
    *,
    workers: int = 4,
    commit: bool = True,
    reference: str | None = None,
    on_done: Callable[[Outcome], None] | None = None,
    on_start: Callable[[], None] | None = None,
) -> SweepResult:
    """on_start: called once the worker processes exist (a progress thread started before them
    would make forking them unsafe)."""
    started = time.monotonic()
    if workers < 1:
        raise ConfigError("--workers must be at least 1")
    if reference is not None and reference not in {h.name for h in hosts if not h.several}:
        raise ConfigError(
            f"--reference {reference!r} is not one of the swept hosts with one database",
            hint="compare one database of several with: inv schemas.diff dev/app prod/app",
        )
    for host in hosts:
        host.password()  # configuration errors stop the sweep before anything runs
    notes = {host.name: notes_for(config, host) for host in hosts}
    repos = {host.name: gitops.require_repo(host.output) for host in hosts} if commit else {}
    home_repo = repos.get(reference or hosts[0].name)  # where the drift file and the guide are committed
    result = SweepResult([Outcome(host) for host in hosts], reference=reference)
    drift_dir = _common_parent([h.output for h in hosts]) if reference else None
    lock_dirs = [h.output for h in hosts] + ([drift_dir] if drift_dir else [])
    width = min(workers, len(hosts))
    with (
        taken(lock_dirs, beside=[guide_dir(config)]) as mended,
        Publication(commit) as pub,
        _Planners(width) as planners,
    ):
        result.mended = mended
        if on_start:
            on_start()
        # a thread per environment at a time: it waits on the network or on its planner process,
        # then writes that environment's files while the others go on
        with ThreadPoolExecutor(max_workers=width) as pool:
            futures = {
                pool.submit(
                    _several if o.host.several else _one, o, pub, repos.get(o.host.name), notes[o.host.name], planners
                ): o
                for o in result.outcomes
            }
            for future in as_completed(futures):
                future.result()
                if on_done:
                    for done in futures[future].parts or [futures[future]]:
                        on_done(done)
        # a host with several databases stands for its databases' outcomes, in its place
        result.outcomes = [part for o in result.outcomes for part in (o.parts or [o])]
        if reference and drift_dir is not None:
            result.drift = _drift(reference, hosts)
            result.drift_file = drift_dir / DRIFT_FILE
            text = render_drift_md(reference, result.drift)
            old = result.drift_file.read_text(encoding="utf-8") if result.drift_file.exists() else None
            if text != old:
                pub.write(drift_dir, home_repo, {DRIFT_FILE: text})
        changed = [(o.host.label, o.result.plan) for o in result.outcomes if o.wrote and o.result is not None]
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


class _Planners:
    """Each environment's refresh up to its plan (SSH, split, render, compare) in a process of its
    own, so environments use every core: in threads they take turns on one GIL, and a large dump's
    decryption and split keep it busy. Writing and committing stay in this process (one commit).

    On Linux the workers are forked, all at once, before any other thread exists (forking a
    process with threads can copy a held lock); elsewhere, or if threads already run, spawned."""

    def __init__(self, width: int) -> None:
        self.pool: ProcessPoolExecutor | None = None
        self.method: str | None = None  # how the workers were started
        if width < 2:
            return  # one environment at a time: no process to start
        safe_fork = sys.platform == "linux" and threading.active_count() == 1
        self.method = "fork" if safe_fork else "spawn"
        context = multiprocessing.get_context(self.method)
        self.pool = ProcessPoolExecutor(width, mp_context=context)
        if safe_fork:
            self.pool.submit(int).result()  # forks every worker now, from this one thread

    def __enter__(self) -> _Planners:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.pool is not None:
            self.pool.shutdown(cancel_futures=True)

    def plan(self, host: HostConfig, notes: Notes, fetched: Fetched | None) -> RefreshResult:
        if self.pool is None:
            return plan_refresh(host, notes=notes, fetched=fetched)
        try:
            return self.pool.submit(_plan_in_worker, host, notes, fetched).result()
        except BrokenProcessPool:
            raise SchemasyncError(f"{host.name}: the worker process refreshing it ended unexpectedly") from None


def _plan_in_worker(host: HostConfig, notes: Notes, fetched: Fetched | None) -> RefreshResult:
    """plan_refresh in a worker; what it raises must cross back pickled, as a SchemasyncError."""
    try:
        with gcpause.paused():
            return plan_refresh(host, notes=notes, fetched=fetched)
    except SchemasyncError:
        raise
    except Exception as exc:
        raise SchemasyncError(f"{host.name}: unexpected {type(exc).__name__}: {exc}") from None


def _several(outcome: Outcome, pub: Publication, repo: Path | None, notes: Notes, planners: _Planners) -> None:
    """A host with several databases: one remote run lists and dumps them all; then each one is
    planned and written like an environment of its own, its failure isolated."""
    started = time.monotonic()
    try:
        run = fetch_several(outcome.host)
    except SchemasyncError as exc:
        outcome.error = exc
    except Exception as exc:  # one environment's bug must not take the others down
        outcome.error = SchemasyncError(f"{outcome.host.name}: unexpected {type(exc).__name__}: {exc}")
    if outcome.error is not None:
        outcome.seconds = time.monotonic() - started
        return
    fetched = time.monotonic() - started
    for name in run.databases:
        part = Outcome(outcome.host.for_database(name))
        if name in run.failures:
            part.error = run.failures[name]
            part.seconds = fetched
        else:
            _one(part, pub, repo, notes, planners, (run.outputs[name], None))
            part.seconds += fetched
        outcome.parts.append(part)
    listed = {outcome.host.for_database(name).output for name in run.databases}
    for folder in outcome.host.database_folders():
        if folder not in listed:  # refreshed before, not on the server's list now
            gone = Outcome(replace(outcome.host.for_database(folder.name), output=folder))
            gone.error = DatabaseError(
                f"{outcome.host.name}/{folder.name}: not on the server's list any more (dropped, no "
                f"longer matched by `database:`, or no CONNECT privilege); its folder {folder} is kept",
                hint="remove the folder once you no longer need it",
            )
            outcome.parts.append(gone)
    if not outcome.parts:
        outcome.error = DatabaseError(
            f"{outcome.host.name}: no database matches {outcome.host.database}",
            hint="check `database:` and `exclude_databases:` in hosts.yaml, and the role's CONNECT privileges",
        )
    outcome.seconds = time.monotonic() - started


def _one(
    outcome: Outcome,
    pub: Publication,
    repo: Path | None,
    notes: Notes,
    planners: _Planners,
    fetched: Fetched | None = None,
) -> None:
    started = time.monotonic()
    try:
        res = planners.plan(outcome.host, notes, fetched)
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
