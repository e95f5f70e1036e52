"""`check` (compare the live schema with the files, write nothing) and `list` (the tables on the
server, with their status against the files): refresh's fetch and plan, without publishing.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from schemasync.core.config import Config, HostConfig
from schemasync.core.errors import SchemasyncError
from schemasync.core.names import table_file
from schemasync.core.notes import notes_for
from schemasync.jobs.diff import text_diff
from schemasync.jobs.fetch import fetch, fetch_several
from schemasync.jobs.query import TableQuery, page
from schemasync.jobs.refresh import RefreshResult, plan_refresh
from schemasync.output import manifest
from schemasync.output.records import NEW, ORPHANED, UPDATED
from schemasync.output.transaction import lock_outputs
from schemasync.schema.changes import Change, compare_files
from schemasync.schema.discovery import Discovery
from schemasync.schema.redact import redact_text, rules_for


@dataclass
class ListedTable:
    schema: str
    name: str
    file: str
    status: str  # current (file exists), new (no file yet), orphaned (file, but no table)
    columns: int | None
    primary_key: list[str] = field(default_factory=list)
    group: str | None = None  # from schema-notes.yaml
    note: str | None = None  # the team's note, else the database comment


@dataclass
class ListResult:
    host: HostConfig
    database: str
    tables: list[ListedTable]  # this page
    total: int = 0  # matching the filter, all pages
    offset: int = 0
    next_offset: int | None = None
    live: int = 0  # tables on the server
    filtered: bool = False  # by schema, pattern, group or tag
    tenant_schemas: int = 0  # schemas matching `tenants:` on the server now (their tables are not rows)
    tenants: dict | None = None  # the tenants as the last refresh found them (the manifest)


@dataclass
class Difference:
    name: str
    file: str
    diff: str  # unified diff of the definitions
    changes: list[Change]  # the same, by object (the words `diff` uses)


@dataclass
class CheckResult:
    host: HostConfig
    database: str
    added: list[str]
    changed: list[str]
    gone: list[str]
    objects: list[str]  # views, functions, ... added, changed or gone
    stale: bool
    seconds: float
    differences: list[Difference] = field(default_factory=list)  # what changed in each changed file
    stale_notes: list[str] = field(default_factory=list)
    tenants: dict | None = None  # the tenant schemas as the database has them now
    dumped: str = "full"  # as RefreshResult.dumped: full, part, none
    dumped_why: str | None = None


def check(config: Config, host_name: str | None, full: bool = False) -> CheckResult | list[CheckResult | CheckFailure]:
    """Dump as refresh does, compare with the files, write nothing: the fingerprints first, then
    a dump of what they say changed (a whole dump with `full`). A host with several databases:
    one remote run, and one result per database (or why it failed)."""
    started = time.monotonic()
    host = config.host(host_name, whole=True)
    host.password()
    with lock_outputs([host.output]):
        if not host.several:
            return _check_result(host, plan_refresh(host, notes=notes_for(config, host), full=full), started)
        run = fetch_several(host)
        results: list[CheckResult | CheckFailure] = []
        for name in run.databases:
            sub = host.for_database(name)
            if name in run.failures:
                results.append(CheckFailure(sub, run.failures[name]))
                continue
            try:
                res = plan_refresh(sub, notes=notes_for(config, sub), fetched=(run.outputs[name], None))
            except SchemasyncError as exc:
                results.append(CheckFailure(sub, exc))
                continue
            results.append(_check_result(sub, res, started))
        return results


@dataclass
class CheckFailure:
    """One database of several that could not be checked."""

    host: HostConfig
    error: SchemasyncError


def _check_result(host: HostConfig, res: RefreshResult, started: float) -> CheckResult:
    plan = res.plan
    # folder/name, as the refresh reports them
    objects = [f"{r.kind}/{r.label}" for s in (NEW, UPDATED, ORPHANED) for r in plan.announced(s, "object")]
    differences = [
        Difference(
            r.label,
            r.file,
            text_diff(plan.before[r.file], plan.writes[r.file], f"files/{r.file}", f"database/{r.file}"),
            compare_files(r.kind, r.schema, r.name, r.label, plan.before[r.file], plan.writes[r.file]),
        )
        for r in plan.run_records
        if r.status == UPDATED and r.file in plan.before
    ]
    return CheckResult(
        host=host,
        database=res.database,
        added=[r.label for r in plan.announced(NEW, "table")],
        changed=[r.label for r in plan.announced(UPDATED, "table")],
        gone=[r.label for r in plan.announced(ORPHANED, "table")],
        objects=objects,
        stale=plan.changed and not plan.fingerprints_only,
        seconds=time.monotonic() - started,
        differences=differences,
        stale_notes=res.stale_notes,
        tenants=plan.tenants,
        dumped=res.dumped,
        dumped_why=res.dumped_why,
    )


def list_tables(config: Config, host_name: str | None, want: TableQuery | None = None) -> ListResult:
    want = want or TableQuery()
    host = config.host(host_name)
    notes = notes_for(config, host)
    out, _ = fetch(host, "list")
    discovery = Discovery.from_dict(out.meta)
    previous = manifest.read_previous(host.output, [])
    tables = []
    seen = set()
    rules = rules_for(host.redact)  # a comment read from the catalog may hold what the files redact
    comments = {t.key: redact_text(t.comment, rules, "")[0] if t.comment else None for t in discovery.tables}
    tenant_schemas: set[str] = set()
    for t in discovery.tables:
        if host.tenants is not None and host.tenants.matches(t.schema):
            tenant_schemas.add(t.schema)  # summarised: their tables are written once, as the template's
            continue
        file = table_file(t.schema, t.name)
        seen.add(file)
        exists = (host.output / file).is_file()
        status = "current" if exists else "new"
        tables.append(ListedTable(t.schema, t.name, file, status, t.columns, list(t.primary_key)))
    for rec in previous.records.values():
        if host.tenants is not None and host.tenants.matches(rec.schema):
            continue  # the template's files: the tenants' summary stands for them
        if rec.kind == "table" and rec.file not in seen and previous.exists(rec.file):
            pk = list((rec.details or {}).get("primary_key", []))
            tables.append(ListedTable(rec.schema or "", rec.name, rec.file, ORPHANED, rec.columns, pk))
            comments[(rec.schema or "", rec.name)] = (rec.details or {}).get("comment")
    chosen = sorted((t for t in tables if want.wants(t.schema, t.name, notes)), key=lambda t: (t.schema, t.name))
    for t in chosen:
        n = notes.for_table(t.schema, t.name)
        t.group = notes.group_of(t.schema, t.name)
        t.note = (n.note.description if n else None) or comments.get((t.schema, t.name))
    shown = page(chosen, want.offset, want.limit)
    return ListResult(
        host=host,
        database=discovery.database,
        tables=shown.rows,
        total=shown.total,
        offset=shown.offset,
        next_offset=shown.next_offset,
        live=sum(1 for t in tables if t.status != ORPHANED),
        filtered=want.filtered,
        tenant_schemas=len(tenant_schemas),
        tenants=previous.tenants,
    )
