"""History and changelogs from git alone: when a table or column changed, and what changed in the
schema between two points. No database: every committed version of the files is parsed with the
schema model and compared with the one before."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from . import gitops
from .changes import Change, compare_files
from .config import Config, HostConfig
from .errors import ConfigError
from .reader import find_record, load_records
from .store import MANIFEST, ORPHANED, Record, parse_manifest

HINT = "history reads the committed files: run it inside the repository that holds the output directory"


@dataclass
class Step:
    """One commit that changed the table: what changed in it."""

    commit: str
    date: str
    subject: str
    changes: list[Change]


@dataclass
class History:
    host: str
    table: str
    file: str
    column: str | None
    steps: list[Step] = field(default_factory=list)


def _rel(repo: Path, host: HostConfig, file: str) -> str:
    return (host.output.resolve().relative_to(repo) / file).as_posix()


def history(config: Config, host_name: str | None, table: str, column: str | None = None) -> History:
    host = config.host(host_name)
    record = find_record(host, load_records(host), table, kinds=None)
    return _history(host, record, column)


def _history(host: HostConfig, record: Record, column: str | None) -> History:
    repo = gitops.require_repo(host.output, HINT)
    path = _rel(repo, host, record.file)
    commits = gitops.log_of(repo, path)
    texts = gitops.read_blobs(repo, [f"{sha}:{path}" for sha, _, _ in commits])
    out = History(host.name, record.label, record.file, column)
    before: str | None = None
    for sha, date, subject in commits:
        text = texts.get(f"{sha}:{path}")
        if text is None:
            changes = [Change(record.label, "table", "", None, record.label, None)]
        elif before is None:
            changes = _created(record, text)
        else:
            changes = compare_files(record.kind, record.schema, record.name, record.label, before, text)
        if column is not None:
            changes = [c for c in changes if c.what == "column" and c.name == column]
        if changes:
            out.steps.append(Step(sha, date, subject, changes))
        before = text
    if column is not None and not out.steps:
        raise ConfigError(f"{host.name}: column {column!r} never appears in the history of {record.label}")
    return out


def _created(record: Record, text: str) -> list[Change]:
    """The first version: the table, and each of its columns as it came."""
    from .model import Table, parse_file

    model = parse_file(record.kind, record.schema, record.name, text)
    changes = [Change(record.label, "table" if record.kind == "table" else record.kind, "", None, None, record.label)]
    if isinstance(model, Table):
        changes += [Change(record.label, "column", c.name, None, None, c.type) for c in model.columns]
    return changes


@dataclass
class ColumnReach:
    host: str
    first_seen: Step | None  # the commit where the column appeared in that environment
    present: bool  # in the environment's files now


def column_everywhere(config: Config, table: str, column: str) -> list[ColumnReach]:
    """`--all-hosts`: when the column reached each environment (from each one's history)."""
    out = []
    for host in config.hosts.values():
        try:
            records = load_records(host)
            record = find_record(host, records, table, kinds=None)
        except Exception:
            out.append(ColumnReach(host.name, None, False))
            continue
        try:
            hist = _history(host, record, column)
        except ConfigError:
            out.append(ColumnReach(host.name, None, False))
            continue
        appeared = next((s for s in hist.steps if any(c.added for c in s.changes)), None)
        last = hist.steps[-1].changes[-1] if hist.steps else None
        out.append(ColumnReach(host.name, appeared, bool(last and not last.removed) and record.status != ORPHANED))
    return out


@dataclass
class Changelog:
    host: str
    since: str | None  # the commit compared with (None: from the first commit)
    until: str
    tables: dict[str, list[Change]] = field(default_factory=dict)  # label -> changes, in order


def changes_since(config: Config, host_name: str | None, since: str) -> Changelog:
    """Everything that changed in one environment's schema between `since` and HEAD, by table."""
    host = config.host(host_name)
    repo = gitops.require_repo(host.output, HINT)
    start = gitops.resolve_since(repo, since)
    head = gitops.resolve_since(repo, "HEAD")
    assert head is not None
    manifest = _rel(repo, host, MANIFEST)
    blobs = gitops.read_blobs(repo, [f"{head}:{manifest}"] + ([f"{start}:{manifest}"] if start else []))
    now = _records(blobs.get(f"{head}:{manifest}"))
    then = _records(blobs.get(f"{start}:{manifest}")) if start else {}
    log = Changelog(host.name, start, head)
    files = sorted(set(now) | set(then), key=lambda f: (f.count("/"), f))
    live_now = {f for f, r in now.items() if r.status != ORPHANED}
    live_then = {f for f, r in then.items() if r.status != ORPHANED}
    both = [f for f in files if f in live_now and f in live_then]
    texts = gitops.read_blobs(
        repo, [f"{c}:{_rel(repo, host, f)}" for f in both for c in (start, head) if c is not None]
    )
    for f in files:
        r = now.get(f) or then[f]
        what = "table" if r.kind == "table" else r.kind
        if f in live_now and f not in live_then:
            log.tables[r.label] = [Change(r.label, what, "", None, None, r.label)]
        elif f in live_then and f not in live_now:
            log.tables[r.label] = [Change(r.label, what, "", None, r.label, None)]
        elif f in both:
            old = texts.get(f"{start}:{_rel(repo, host, f)}")
            new = texts.get(f"{head}:{_rel(repo, host, f)}")
            if old is not None and new is not None and old != new:
                found = compare_files(r.kind, r.schema, r.name, r.label, old, new)
                if found:
                    log.tables[r.label] = found
    return log


def _records(text: str | None) -> dict[str, Record]:
    if text is None:
        return {}
    return {r.file: r for r in parse_manifest(text, Path(MANIFEST)).records}


# ---------------------------------------------------------------------------------------------
# Output


def history_text(h: History) -> str:
    what = f"{h.table}.{h.column}" if h.column else h.table
    if not h.steps:
        return f"{h.host}: no committed history of {what}"
    lines = [f"{h.host}: history of {what} ({len(h.steps)} commit{'s' if len(h.steps) != 1 else ''})"]
    for step in h.steps:
        lines.append(f"{step.date[:10]} {step.commit[:10]} {step.subject}")
        lines += [f"    {c.step()}" for c in step.changes]
    return "\n".join(lines)


def history_data(h: History) -> dict:
    return {
        "host": h.host,
        "table": h.table,
        "file": h.file,
        "column": h.column,
        "commits": [
            {
                "commit": s.commit,
                "date": s.date,
                "subject": s.subject,
                "changes": [c.to_data(c.step()) for c in s.changes],
            }
            for s in h.steps
        ],
    }


def reach_text(table: str, column: str, reaches: list[ColumnReach]) -> str:
    lines = [f"{table}.{column} in each environment:"]
    for r in reaches:
        if r.first_seen is not None:
            now = "" if r.present else " (gone since)"
            lines.append(f"  {r.host}: since {r.first_seen.date[:10]} ({r.first_seen.commit[:10]}){now}")
        else:
            lines.append(f"  {r.host}: not there")
    return "\n".join(lines)


def reach_data(table: str, column: str, reaches: list[ColumnReach]) -> dict:
    return {
        "table": table,
        "column": column,
        "environments": [
            {
                "host": r.host,
                "present": r.present,
                "since": r.first_seen.date if r.first_seen else None,
                "commit": r.first_seen.commit if r.first_seen else None,
            }
            for r in reaches
        ],
    }


def changelog_text(log: Changelog) -> str:
    since = log.since[:10] if log.since else "the first commit"
    if not log.tables:
        return f"{log.host}: no schema changes since {since}"
    lines = [f"{log.host}: schema changes since {since} (to {log.until[:10]}), {len(log.tables)} objects"]
    for label, changes in log.tables.items():
        lines.append(f"  {label}")
        lines += [f"    {c.step()}" for c in changes]
    return "\n".join(lines)


def changelog_data(log: Changelog) -> dict:
    return {
        "host": log.host,
        "since": log.since,
        "until": log.until,
        "objects": [
            {"name": label, "changes": [c.to_data(c.step()) for c in changes]} for label, changes in log.tables.items()
        ],
    }
