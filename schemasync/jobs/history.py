"""History and changelogs from git alone: when a table or column changed, and what changed in the
schema between two points. No database: every committed version of the files is parsed with the
schema model and compared with the one before."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from schemasync.core.config import Config, HostConfig
from schemasync.core.errors import ConfigError
from schemasync.jobs.reader import find_record, load_records
from schemasync.output import gitops
from schemasync.output.manifest import parse_manifest
from schemasync.output.records import MANIFEST, ORPHANED, Record
from schemasync.schema.changes import Change, compare_files
from schemasync.schema.split import kind_word

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
    file_log = gitops.log_of(repo, path)
    texts = gitops.read_blobs(repo, [f"{sha}:{path}" for sha, _, _ in file_log])
    said = {sha: (date, subject) for sha, date, subject in file_log}
    status = _statuses(repo, host, record)  # a dropped table's file stays: its drop is in the manifest
    for sha, (_, date, subject) in status.items():
        said.setdefault(sha, (date, subject))
    order = [sha for sha, _, _ in file_log]
    if status:
        order = gitops.in_order(repo, said, [path, _rel(repo, host, MANIFEST)])
    out = History(host.name, record.label, record.file, column)
    before: str | None = None
    for sha in order:
        changes: list[Change] = []
        if f"{sha}:{path}" in texts:
            text = texts[f"{sha}:{path}"]
            if text is None:
                changes = [Change(record.label, "table", "", None, record.label, None)]
            elif before is None:
                changes = _created(record, text)
            else:
                changes = compare_files(record.kind, record.schema, record.name, record.label, before, text)
            before = text
        if sha in status:
            what = kind_word(record.kind)
            if status[sha][0] == ORPHANED:  # dropped from the database
                changes.append(Change(record.label, what, "", None, record.label, None))
            elif not changes:  # created again as it was
                changes.append(Change(record.label, what, "", None, None, record.label))
        if column is not None:
            changes = [c for c in changes if c.what == "column" and c.name == column]
        if changes:
            out.steps.append(Step(sha, *said[sha], changes))
    if column is not None and not out.steps:
        raise ConfigError(f"{host.name}: column {column!r} never appears in the history of {record.label}")
    return out


def _statuses(repo: Path, host: HostConfig, record: Record) -> dict[str, tuple[str, str, str]]:
    """The commits where the record's line in the manifest became orphaned or stopped being so:
    commit -> (its status there, date, subject)."""
    manifest = _rel(repo, host, MANIFEST)
    file_key = json.dumps(record.file, ensure_ascii=False)
    line = gitops.literal_regex(f'"file": {file_key}') + ".*" + gitops.literal_regex(f'"status": "{ORPHANED}"')
    marks = gitops.log_of(repo, manifest, matching=line)
    blobs = gitops.read_blobs(repo, [f"{sha}:{manifest}" for sha, _, _ in marks])
    out = {}
    for sha, date, subject in marks:
        rec = _records(blobs.get(f"{sha}:{manifest}")).get(record.file)
        if rec is not None:
            out[sha] = (rec.status, date, subject)
    return out


def _created(record: Record, text: str) -> list[Change]:
    """The first version: the table, and each of its columns as it came."""
    from schemasync.schema.model import Table
    from schemasync.schema.parse import parse_file

    model = parse_file(record.kind, record.schema, record.name, text)
    changes = [Change(record.label, kind_word(record.kind), "", None, None, record.label)]
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
class LogEntry:
    """One commit of a changelog's range, with what it changed."""

    commit: str
    date: str
    subject: str
    tables: dict[str, list[Change]]


@dataclass
class Changelog:
    host: str
    since: str | None  # the commit compared with (None: from the first commit)
    until: str
    tables: dict[str, list[Change]] = field(default_factory=dict)  # label -> changes, in order
    commits: list[LogEntry] | None = None  # --log: every commit of the range, oldest first


def changes_since(config: Config, host_name: str | None, since: str, log: bool = False) -> Changelog:
    """Everything that changed in one environment's schema between `since` and HEAD, by table: the
    net difference, or with `log` every commit of the range with its own changes."""
    host = config.host(host_name)
    repo = gitops.require_repo(host.output, HINT)
    start = gitops.resolve_since(repo, since)
    head = gitops.resolve_since(repo, "HEAD")
    assert head is not None
    out = Changelog(host.name, start, head)
    if not log:
        out.tables = _between(repo, host, start, head)
        return out
    out.commits = []
    for sha, date, subject in gitops.log_of(repo, _rel(repo, host, MANIFEST), since=start):
        tables = _between(repo, host, f"{sha}^", sha)
        if tables:
            out.commits.append(LogEntry(sha, date, subject, tables))
    return out


def _between(repo: Path, host: HostConfig, start: str | None, end: str) -> dict[str, list[Change]]:
    """What changed from one commit to another (start None, or one without the files: all is new)."""
    manifest = _rel(repo, host, MANIFEST)
    blobs = gitops.read_blobs(repo, [f"{end}:{manifest}"] + ([f"{start}:{manifest}"] if start else []))
    now = _records(blobs.get(f"{end}:{manifest}"))
    then = _records(blobs.get(f"{start}:{manifest}")) if start else {}
    out: dict[str, list[Change]] = {}
    files = sorted(set(now) | set(then), key=lambda f: (f.count("/"), f))
    live_now = {f for f, r in now.items() if r.status != ORPHANED}
    live_then = {f for f, r in then.items() if r.status != ORPHANED}
    both = [f for f in files if f in live_now and f in live_then]
    texts = gitops.read_blobs(repo, [f"{c}:{_rel(repo, host, f)}" for f in both for c in (start, end) if c is not None])
    for f in files:
        r = now.get(f) or then[f]
        what = kind_word(r.kind)
        if f in live_now and f not in live_then:
            out[r.label] = [Change(r.label, what, "", None, None, r.label)]
        elif f in live_then and f not in live_now:
            out[r.label] = [Change(r.label, what, "", None, r.label, None)]
        elif f in both:
            old = texts.get(f"{start}:{_rel(repo, host, f)}")
            new = texts.get(f"{end}:{_rel(repo, host, f)}")
            if old is not None and new is not None and old != new:
                found = compare_files(r.kind, r.schema, r.name, r.label, old, new)
                if found:
                    out[r.label] = found
    return out


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
    if log.commits is not None:
        if not log.commits:
            return f"{log.host}: no schema changes since {since}"
        n = len(log.commits)
        lines = [
            f"{log.host}: {n} commit{'s' if n != 1 else ''} with schema changes since {since} (to {log.until[:10]})"
        ]
        for entry in log.commits:
            lines.append(f"{entry.date[:10]} {entry.commit[:10]} {entry.subject}")
            lines += _tables_text(entry.tables)
        return "\n".join(lines)
    if not log.tables:
        return f"{log.host}: no schema changes since {since}"
    lines = [f"{log.host}: schema changes since {since} (to {log.until[:10]}), {len(log.tables)} objects"]
    return "\n".join(lines + _tables_text(log.tables))


def _tables_text(tables: dict[str, list[Change]]) -> list[str]:
    lines = []
    for label, changes in tables.items():
        lines.append(f"  {label}")
        lines += [f"    {c.step()}" for c in changes]
    return lines


def _objects_data(tables: dict[str, list[Change]]) -> list[dict]:
    return [{"name": label, "changes": [c.to_data(c.step()) for c in changes]} for label, changes in tables.items()]


def changelog_data(log: Changelog) -> dict:
    data: dict = {"host": log.host, "since": log.since, "until": log.until}
    if log.commits is None:
        data["objects"] = _objects_data(log.tables)
    else:
        data["commits"] = [
            {"commit": e.commit, "date": e.date, "subject": e.subject, "objects": _objects_data(e.tables)}
            for e in log.commits
        ]
    return data
