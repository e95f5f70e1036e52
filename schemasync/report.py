"""What a run prints: a short human summary, or exactly one JSON document."""

from __future__ import annotations

import json
from typing import Any

from .refresh import ListResult, RefreshResult
from .split import KIND_LABELS
from .store import CURRENT, MARKS, NEW, ORPHANED, UPDATED


def refresh_data(res: RefreshResult) -> dict[str, Any]:
    plan = res.plan

    def names(status: str) -> list[str]:
        return [r.label for r in plan.tables(status)]

    return {
        "host": res.host.name,
        "database": res.database,
        "output": str(res.host.output),
        "table": res.table,
        "tables": res.tables_found,
        "added": names(NEW),
        "updated": names(UPDATED),
        "orphaned": names(ORPHANED),
        "current": len(plan.tables(CURRENT)),
        "objects": {
            "added": [f"{r.kind}/{r.label}" for r in plan.objects(NEW)],
            "updated": [f"{r.kind}/{r.label}" for r in plan.objects(UPDATED)],
            "orphaned": [f"{r.kind}/{r.label}" for r in plan.objects(ORPHANED)],
        },
        "files_written": sorted(plan.writes),
        "changed": plan.changed,
        "commit": res.commit,
        "seconds": round(res.seconds, 3),
        "transferred_bytes": res.transferred,
        "notices": res.notices,
    }


def refresh_text(res: RefreshResult) -> str:
    plan = res.plan
    host = res.host
    what = f"table {res.table}" if res.table else f"{res.tables_found} tables"
    lines = [f"{host.name}: database {res.database} via {host.ssh}: {what} ({res.seconds:.1f}s)"]
    counts = {s: len(plan.tables(s)) for s in (NEW, UPDATED, ORPHANED, CURRENT)}
    lines.append(
        f"  {counts[NEW]} new, {counts[UPDATED]} updated, {counts[ORPHANED]} orphaned, {counts[CURRENT]} current"
    )
    for status in (NEW, UPDATED, ORPHANED):
        for r in plan.tables(status):
            lines.append(f"  {MARKS[status]} {r.label}")
    changed_objects = [r for r in plan.objects() if r.status in (NEW, UPDATED, ORPHANED)]
    for r in changed_objects:
        kind = KIND_LABELS[r.kind]
        lines.append(f"  {MARKS[r.status]} {kind + ' ' if kind else ''}{r.label}")
    for notice in res.notices:
        lines.append(f"  server: {notice}")
    if res.excluded:
        lines.append(f"  excluded by config: {len(res.excluded)} tables")
    if not plan.changed:
        lines.append(f"  no changes; nothing written in {host.output}")
    else:
        lines.append(f"  wrote {len(plan.writes)} files in {host.output}")
        if res.commit:
            subject = (res.commit_message or "").splitlines()[0]
            lines.append(f"  committed {res.commit[:10]}: {subject}")
        else:
            lines.append("  not committed (--no-commit)")
    return "\n".join(lines)


def list_data(res: ListResult) -> dict[str, Any]:
    return {
        "host": res.host.name,
        "database": res.database,
        "tables": [
            {"name": t.name, "schema": t.schema, "status": t.status, "file": t.file, "columns": t.columns}
            for t in res.tables
        ],
    }


def list_text(res: ListResult) -> str:
    from .names import display_name

    marks = {"current": MARKS[CURRENT], "new": MARKS[NEW], "orphaned": MARKS[ORPHANED]}
    lines = [f"{res.host.name}: database {res.database}: {sum(t.status != ORPHANED for t in res.tables)} tables"]
    for t in res.tables:
        cols = "" if t.columns is None else f"  ({t.columns} columns)"
        lines.append(f"  {marks[t.status]} {display_name(t.schema, t.name)}{cols}")
    lines.append("  ✓ has a file · + no file yet (refresh to add) · ⚠ file kept, table gone")
    return "\n".join(lines)


def dumps(data: dict[str, Any]) -> str:
    return json.dumps(data, ensure_ascii=False, indent=2, sort_keys=False)
