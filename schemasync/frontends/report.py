"""What a run prints: a short human summary, or exactly one JSON document."""

from __future__ import annotations

import json
from typing import Any

from schemasync.core.names import display_name
from schemasync.jobs.check import CheckResult, ListResult
from schemasync.jobs.diff import render_data
from schemasync.jobs.diff import render_text as diff_text
from schemasync.jobs.refresh import RefreshResult
from schemasync.jobs.sweep import Outcome, SweepResult
from schemasync.output.messages import table_changes
from schemasync.output.records import CURRENT, MARKS, NEW, ORPHANED, UPDATED
from schemasync.schema.changes import summary_tokens
from schemasync.schema.split import KIND_LABELS, kind_word

TEXT_LIMIT = 30  # names in a text summary before it is summarised (--verbose lists all)


def _names(lines: list[str], verbose: bool, what: str = "") -> list[str]:
    if verbose or len(lines) <= TEXT_LIMIT:
        return lines
    return [*lines[:TEXT_LIMIT], f"  ... and {len(lines) - TEXT_LIMIT} more{what} (--verbose lists them all)"]


def refresh_data(res: RefreshResult) -> dict[str, Any]:
    plan = res.plan

    def names(status: str) -> list[str]:
        return [r.label for r in plan.announced(status, "table")]

    def objects(status: str) -> list[str]:
        return [f"{r.kind}/{r.label}" for r in plan.announced(status, "object")]

    return {
        "host": res.host.name,
        "database": res.database,
        "output": str(res.host.output),
        "table": res.table,
        "tables": res.tables_found,
        "added": names(NEW),
        "updated": names(UPDATED),
        "orphaned": names(ORPHANED),
        "orphaned_before": [r.label for r in plan.standing_orphans()],
        "current": len(plan.tables(CURRENT)),
        "objects": {"added": objects(NEW), "updated": objects(UPDATED), "orphaned": objects(ORPHANED)},
        "restored": plan.restored,
        "overwritten_edits": plan.overwritten,
        "references_only": plan.references_only,
        "files_written": sorted(plan.writes),
        "files_removed": plan.removed,
        "tenants": tenants_data(plan.tenants),
        "guide_written": str(res.guide_written) if res.guide_written else None,
        "changed": plan.changed,
        "commit": res.commit,
        "seconds": round(res.seconds, 3),
        "transferred_bytes": res.transferred,
        "notices": res.notices,
        "mended": res.mended,
        "redacted": redacted_data(res),
        "secret_in_previous_version": res.in_clear,
        "stale_notes": res.stale_notes,
        "dumped": res.dumped,
        "dumped_why": res.dumped_why,
    }


def redacted_data(res: RefreshResult) -> list[dict[str, Any]]:
    """Where secrets were removed: the file and the object, never the value."""
    return [{"file": f.file, "object": f.where, "what": f.what} for f in res.redacted]


def redacted_text(res: RefreshResult) -> list[str]:
    lines = []
    if res.redacted:
        n = len(res.redacted)
        lines.append(f"  redacted {n} secret{'s' if n != 1 else ''} that pg_dump printed (values not shown):")
        lines += [f"    {f.describe()}" for f in res.redacted[:20]]
        if n > 20:
            lines.append(f"    ... and {n - 20} more (--json lists them all)")
    for file in res.in_clear:
        lines.append(
            f"  warning: {file} held a secret in the clear before this refresh; if it was committed, "
            "rotate the secret, then purge it from git history (README: Security)"
        )
    return lines


def tenants_data(tenants: dict | None) -> dict[str, Any] | None:
    """The tenant schemas in a refresh's, check's or list's answer: count, template, deviants."""
    if not tenants:
        return None
    keys = ("schemas", "template", "folder", "count", "same", "deviants")
    return {k: tenants[k] for k in keys}


def tenants_text(tenants: dict | None) -> list[str]:
    if not tenants:
        return []
    deviants = tenants["deviants"]
    lines = [
        f"  tenants: {tenants['count']} schemas match {tenants['schemas']}: {tenants['same']} same as "
        f"{tenants['template']}, {len(deviants)} differ (see _tenants.md)"
    ]
    for schema, tokens in list(tenants["tokens"].items())[:TEXT_LIMIT]:
        lines.append(f"    ~ {schema}: {', '.join(tokens[:6])}{' ...' if len(tokens) > 6 else ''}")
    return lines


def refresh_text(res: RefreshResult, verbose: bool = False) -> str:
    plan = res.plan
    host = res.host
    what = f"table {res.table}" if res.table else f"{res.tables_found} tables"
    lines = [f"{host.name}: database {res.database} via {host.ssh}: {what} ({res.seconds:.1f}s)"]
    new, updated, orphaned = (plan.announced(s, "table") for s in (NEW, UPDATED, ORPHANED))
    standing = len(plan.standing_orphans())
    lines.append(
        f"  {len(new)} new, {len(updated)} updated, {len(orphaned)} orphaned, {len(plan.tables(CURRENT))} current"
        + (f" ({standing} orphaned earlier, kept)" if standing else "")
    )
    news = [f"  {MARKS[r.status]} {r.label}" for r in (*new, *updated, *orphaned)]
    for i, r in enumerate(updated[: TEXT_LIMIT if not verbose else None]):  # what changed inside it
        news[len(new) + i] += f" {summary_tokens(table_changes(plan, r), limit=6)}".rstrip()
    for status in (NEW, UPDATED, ORPHANED):
        for r in plan.announced(status, "object"):
            kind = KIND_LABELS[r.kind]
            news.append(f"  {MARKS[r.status]} {kind + ' ' if kind else ''}{r.label}")
    lines += _names(news, verbose)
    for file in plan.overwritten:
        lines.append(f"  {file} had been edited by hand; the refresh replaced it (the database changed too)")
    for file in plan.restored:
        lines.append(f"  restored {file}: it had been edited by hand, and the database did not change")
    if plan.references_only:
        refs = ", ".join(plan.references_only[:10]) + (" ..." if len(plan.references_only) > 10 else "")
        lines.append(f"  headers updated (references or notes; the tables did not change): {refs}")
    for notice in res.notices:
        lines.append(f"  server: {notice}")
    for mended in res.mended:
        lines.append(f"  mended: {mended}")
    lines += redacted_text(res)
    if res.stale_notes:
        lines.append(f"  schema-notes.yaml has notes for what does not exist: {', '.join(res.stale_notes[:10])}")
    if res.excluded:
        lines.append(f"  excluded by config: {len(res.excluded)} tables")
    lines += tenants_text(plan.tenants)
    if not plan.changed:
        lines.append(f"  no changes; nothing written in {host.output}")
    else:
        if res.guide_written:
            lines.append(
                f"  wrote {len(plan.writes) + 1} files: {len(plan.writes)} in {host.output}, and {res.guide_written}"
            )
        else:
            lines.append(f"  wrote {len(plan.writes)} files in {host.output}")
        if res.commit:
            subject = (res.commit_message or "").splitlines()[0]
            lines.append(f"  committed {res.commit[:10]}: {subject}")
        elif res.committing:
            lines.append("  nothing to commit: the files are as last committed")
        else:
            lines.append("  not committed (--no-commit)")
    return "\n".join(lines)


def _first_line(text: str | None, width: int = 100) -> str | None:
    if not text:
        return None
    line = text.strip().splitlines()[0]
    return line if len(line) <= width else line[: width - 1] + "…"


def list_data(res: ListResult) -> dict[str, Any]:
    return {
        "host": res.host.name,
        "database": res.database,
        "total": res.total,
        "offset": res.offset,
        "next_offset": res.next_offset,
        "tables": [
            {
                "name": t.name,
                "schema": t.schema,
                "status": t.status,
                "file": t.file,
                "columns": t.columns,
                "primary_key": t.primary_key,
                "group": t.group,
                "note": _first_line(t.note),
            }
            for t in res.tables
        ],
        **(
            {"tenants": {"schemas_now": res.tenant_schemas, "last_refresh": tenants_data(res.tenants)}}
            if res.host.tenants is not None
            else {}
        ),
    }


def list_text(res: ListResult) -> str:
    marks = {"current": MARKS[CURRENT], "new": MARKS[NEW], "orphaned": MARKS[ORPHANED]}
    shown = f" ({res.total} match)" if res.filtered else ""
    lines = [f"{res.host.name}: database {res.database}: {res.live} tables{shown}"]
    for t in res.tables:
        cols = "" if t.columns is None else f"  ({t.columns} columns)"
        note = f"  -- {_first_line(t.note, 70)}" if t.note else ""
        lines.append(f"  {marks[t.status]} {display_name(t.schema, t.name)}{cols}{note}")
    if res.next_offset is not None:
        lines.append(f"  ... {res.total - res.next_offset} more: --offset {res.next_offset}")
    if res.host.tenants is not None:
        lines.append(
            f"  tenant schemas ({res.host.tenants.schemas}) on the server: {res.tenant_schemas}; as last refreshed:"
        )
        lines += tenants_text(res.tenants) or ["    not refreshed yet"]
    lines.append("  ✓ has a file · + no file yet (refresh to add) · ⚠ file kept, table gone")
    return "\n".join(lines)


def dumps(data: dict[str, Any]) -> str:
    return json.dumps(data, ensure_ascii=False, indent=2, sort_keys=False)


def check_data(res: CheckResult) -> dict[str, Any]:
    return {
        "host": res.host.label,
        "database": res.database,
        "stale": res.stale,
        "added": res.added,
        "changed": res.changed,
        "gone": res.gone,
        "objects": res.objects,
        "differences": [
            {
                "name": d.name,
                "file": d.file,
                "changes": [c.to_data(c.between("files", "database")) for c in d.changes],
                "diff": d.diff,
            }
            for d in res.differences
        ],
        "stale_notes": res.stale_notes,
        "tenants": tenants_data(res.tenants),
        "seconds": round(res.seconds, 3),
        "dumped": res.dumped,
        "dumped_why": res.dumped_why,
    }


def checks_data(results: list) -> dict[str, Any]:
    """`check` of a host with several databases: one entry per database."""
    rows = []
    for r in results:
        if isinstance(r, CheckResult):
            rows.append(check_data(r))
        else:
            rows.append({"host": r.host.label, "error": r.error.message, "exit_code": r.error.code})
    return {"databases": rows, "stale": any(row.get("stale") for row in rows)}


def checks_text(results: list, verbose: bool = False) -> str:
    lines = []
    for r in results:
        if isinstance(r, CheckResult):
            lines.append(check_text(r, verbose))
        else:
            hint = f"\n  hint: {r.error.hint}" if r.error.hint else ""
            lines.append(f"{r.host.label}: FAILED: {r.error.message}{hint}")
    return "\n".join(lines)


def check_text(res: CheckResult, verbose: bool = False) -> str:
    notes = (
        f"\n  schema-notes.yaml has notes for what does not exist: {', '.join(res.stale_notes)}"
        if res.stale_notes
        else ""
    )
    tenants = "".join("\n" + line for line in tenants_text(res.tenants))
    if not res.stale:
        return f"{res.host.label}: the files in {res.host.output} match database {res.database}{tenants}{notes}"
    lines = [f"{res.host.label}: the files in {res.host.output} are stale against database {res.database}"]
    names = [f"  + {n}" for n in res.added] + [f"  ~ {n}" for n in res.changed] + [f"  ⚠ {n}" for n in res.gone]
    objects = [f"  ~ {kind_word(n.split('/', 1)[0])} {n.split('/', 1)[1]}" for n in res.objects]
    lines += _names(names + objects, verbose)
    for d in res.differences:
        lines.append(f"  what changed in {d.name} (files, then database):")
        lines += [f"    {c.between('the files', 'the database')}" for c in d.changes]
        if verbose:
            lines += ["      " + line for line in d.diff.rstrip("\n").splitlines()]
    lines += tenants_text(res.tenants)
    lines.append(f"  run: inv schemas.refresh --host {res.host.name}")
    return "\n".join(lines) + notes


def sweep_row(o: Outcome) -> dict[str, Any]:
    """One environment of a sweep."""
    row: dict[str, Any] = {"host": o.host.label, "ok": o.ok, "seconds": round(o.seconds, 3)}
    if o.result is not None:
        row.update(
            {
                k: v
                for k, v in refresh_data(o.result).items()
                if k
                in ("database", "tables", "added", "updated", "orphaned", "restored", "changed", "notices", "redacted")
            }
        )
    if o.error is not None:
        row["error"] = o.error.message
        row["exit_code"] = o.error.code
        if o.error.hint:
            row["hint"] = o.error.hint
    return row


def sweep_data(res: SweepResult) -> dict[str, Any]:
    data: dict[str, Any] = {
        "environments": [sweep_row(o) for o in res.outcomes],
        "commit": res.commit,
        "ok": all(o.ok for o in res.outcomes),
        "seconds": round(res.seconds, 3),
        "mended": res.mended,
    }
    if res.reference:
        data["reference"] = res.reference
        data["drift"] = [render_data(r) for r in res.drift]
    return data


def sweep_progress(o: Outcome) -> str:
    if o.ok and o.result is not None:
        p = o.result.plan
        return (
            f"{o.host.label}: ok, {o.result.tables_found} tables, {len(p.announced(NEW, 'table'))} new, "
            f"{len(p.announced(UPDATED, 'table'))} updated, {len(p.announced(ORPHANED, 'table'))} orphaned "
            f"({o.seconds:.1f}s)"
        )
    return f"{o.host.label}: FAILED ({o.seconds:.1f}s): {_error_line(o)}"


def _error_line(o: Outcome) -> str:
    """The error's first line, without the host name the line already starts with."""
    first = (o.error.message if o.error else "failed").splitlines()[0]
    for prefix in (f"{o.host.label}: ", f"{o.host.label} ", f"{o.host.name}: ", f"{o.host.name} "):
        if first.startswith(prefix):
            return first[len(prefix) :].lstrip(": ")
    return first


def sweep_text(res: SweepResult) -> str:
    rows = [("environment", "tables", "new", "updated", "orphaned", "result", "seconds")]
    for o in res.outcomes:
        if o.ok and o.result is not None:
            p = o.result.plan
            rows.append(
                (
                    o.host.label,
                    str(o.result.tables_found),
                    str(len(p.announced(NEW, "table"))),
                    str(len(p.announced(UPDATED, "table"))),
                    str(len(p.announced(ORPHANED, "table"))),
                    "changed" if p.changed else "no change",
                    f"{o.seconds:.1f}",
                )
            )
        else:
            rows.append(
                (
                    o.host.label,
                    "-",
                    "-",
                    "-",
                    "-",
                    f"FAILED (exit {o.error.code})" if o.error else "FAILED",
                    f"{o.seconds:.1f}",
                )
            )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = [
        *(f"mended: {m}" for m in res.mended),
        *("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows),
    ]
    for o in res.outcomes:
        if o.error is not None:
            hint = f"\n  hint: {o.error.hint}" if o.error.hint else ""
            lines.append(f"{o.host.label}: {_error_line(o)}{hint}")
    if res.reference:
        lines.append("")
        lines.append(f"drift against {res.reference} (written to {res.drift_file}):")
        for r in res.drift:
            lines.append(diff_text(r, with_diffs=False))
    if res.commit:
        lines.append(f"committed {res.commit[:10]}: {(res.commit_message or '').splitlines()[0]}")
    elif any(o.ok and o.result and o.result.plan.changed for o in res.outcomes):
        lines.append("not committed (--no-commit)")
    else:
        lines.append("no changes; nothing committed")
    return "\n".join(lines)
