"""Commit messages: what a refresh or a sweep changed, within a bounded length. Pure."""

from __future__ import annotations

from .store import MARKS, NEW, ORPHANED, UPDATED, Plan

BODY_LIMIT = 300  # lines: git takes the message as one argument


def commit_message(environment: str, plan: Plan, limit: int = 72) -> str:
    tokens = [f"{MARKS[r.status]}{r.label}" for r in plan.tables() if r.status in (NEW, UPDATED)] + [
        f"{MARKS[ORPHANED]}{r.label}" for r in plan.tables(ORPHANED)
    ]
    objects = [r for r in plan.objects() if r.status in (NEW, UPDATED)]
    if objects:
        tokens.append(f"{len(objects)} other object{'s' if len(objects) != 1 else ''}")
    subject = f"schemas({environment}): " + (" ".join(tokens) or "index")
    if len(subject) > limit:
        counts = [f"{MARKS[s]}{n}" for s in (NEW, UPDATED, ORPHANED) if (n := len(plan.tables(s)))]
        subject = f"schemas({environment}): {' '.join(counts)} tables"
        if objects:
            subject += f", {len(objects)} other objects"
    body = [
        f"{MARKS[r.status]} {r.label}"
        for r in plan.run_records
        if r.status in (NEW, UPDATED) or (r.kind == "table" and r.status == ORPHANED)
    ]
    return subject + ("\n\n" + cap_lines(body) + "\n" if body else "\n")


def sweep_message(changed: list[tuple[str, Plan]]) -> str:
    """One commit for a sweep: `schemas: dev(~users) prod(+survey_notes)`, environments in order."""
    parts, body = [], []
    for environment, plan in changed:
        tokens = [f"{MARKS[r.status]}{r.label}" for r in plan.tables() if r.status in (NEW, UPDATED)]
        tokens += [f"{MARKS[ORPHANED]}{r.label}" for r in plan.tables(ORPHANED)]
        others = sum(1 for r in plan.objects() if r.status in (NEW, UPDATED))
        if others:
            tokens.append(f"{others} other")
        parts.append(f"{environment}({' '.join(tokens) if len(tokens) <= 4 else f'{len(tokens)} changes'})")
        body += [f"{environment}: {t}" for t in tokens]
    subject = "schemas: " + " ".join(parts)
    return subject + ("\n\n" + cap_lines(body) + "\n" if body else "\n")


def cap_lines(lines: list[str], limit: int = BODY_LIMIT) -> str:
    """A commit body lists the changes, up to a point."""
    if len(lines) <= limit:
        return "\n".join(lines)
    return "\n".join([*lines[:limit], f"... and {len(lines) - limit} more (see _index.md)"])
