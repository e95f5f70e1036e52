"""Commit messages: what a refresh or a sweep changed, within a bounded length. Pure."""

from __future__ import annotations

from schemasync.output.records import MANIFEST, MARKS, NEW, ORPHANED, UPDATED, Plan, Record
from schemasync.schema.changes import Change, compare_files, summary_tokens
from schemasync.schema.split import kind_word
from schemasync.schema.tenants import message_part

BODY_LIMIT = 300  # lines: git takes the message as one argument


def _kind(r: Record) -> str:
    """`type `, `view `, ... before an object's name; nothing before a table's."""
    return f"{kind_word(r.kind)} " if r.kind != "table" else ""


def table_changes(plan: Plan, r: Record) -> list[Change]:
    """What changed inside an updated table, from its file before and after (the schema model)."""
    if r.status != UPDATED or r.file not in plan.before or r.file not in plan.writes:
        return []
    return compare_files(r.kind, r.schema, r.name, r.label, plan.before[r.file], plan.writes[r.file])


def news_tokens(plan: Plan, detail: bool = True) -> tuple[list[str], int]:
    """`+new ~updated(+column, ~other type) ⚠orphaned` table tokens, and how many other objects changed."""
    tables = []
    for r in plan.tables():
        if r.status in (NEW, UPDATED):
            inside = summary_tokens(table_changes(plan, r)) if detail and r.status == UPDATED else ""
            tables.append(f"{MARKS[r.status]}{r.label}{inside}")
    tables += [f"{MARKS[ORPHANED]}{r.label}" for r in plan.announced(ORPHANED, "table")]
    others = sum(len(plan.announced(s, "object")) for s in (NEW, UPDATED, ORPHANED))
    return tables, others


def body_lines(plan: Plan) -> list[str]:
    """One line per change, objects with their kind: `+ type panel_orientation`."""
    lines = []
    for r in plan.run_records:
        if r.status in (NEW, UPDATED) or (r.status == ORPHANED and r.file in plan.newly_orphaned):
            lines.append(f"{MARKS[r.status]} {_kind(r)}{r.label}")
            lines += [f"    {c.step()}" for c in table_changes(plan, r)]
    lines += [f"restored {f} (edited by hand; the database did not change)" for f in plan.restored]
    lines += [f"header of {f} (its references or notes; the table did not change)" for f in plan.references_only]
    return lines


def warm_message() -> None:
    """Import what a commit message's summary parses with (pglast, ~30 ms), before it is needed."""
    import pglast.parser  # noqa: F401


def without_news(plan: Plan, short: bool = False) -> str | None:
    """What a commit with no table or object news holds, said so (a refresh's and a sweep's)."""
    if plan.restored:
        n = len(plan.restored)
        return f"restore {n} file{'s' if n != 1 else ''}" + ("" if short else " edited by hand")
    if plan.references_only:
        return "headers" + ("" if short else " (references, notes)")
    if list(plan.writes) == [MANIFEST]:  # what the fingerprints are valid for, or they, changed
        if "local" in plan.restamped:
            said = "manifest", " for a new schemasync or new settings"
        elif plan.restamped:
            said = "manifest", " for a new PostgreSQL or pg_dump"
        else:
            said = "catalog fingerprints", ""
        return said[0] + ("" if short else f"{said[1]} (the files did not change)")
    return None


def commit_message(environment: str, plan: Plan, limit: int = 100) -> str:
    """`schemas(dev): ~users(+email_verified) +invoices`: with what changed inside each table while
    the subject fits in `limit` characters, the names alone next, then counts."""
    tables, others = news_tokens(plan)

    def subject_of(table_tokens: list[str]) -> str:
        tokens = list(table_tokens)
        if others:
            tokens.append(f"{others} other object{'s' if others != 1 else ''}")
        if not tokens and (quiet := without_news(plan)):
            tokens.append(quiet)
        return f"schemas({environment}): " + (" ".join(tokens) or "index")

    subject = subject_of(tables)
    if len(subject) > limit:
        subject = subject_of(news_tokens(plan, detail=False)[0])  # names without what changed inside them
    if len(subject) > limit:
        counts = [f"{MARKS[s]}{n}" for s in (NEW, UPDATED, ORPHANED) if (n := len(plan.announced(s, "table")))]
        subject = f"schemas({environment}): {' '.join(counts)} tables"
        if others:
            subject += f", {others} other objects"
    tenants = message_part(plan.tenants, plan.tenants_before)
    if tenants and not (tables or others):
        subject = f"schemas({environment}): {tenants}"
    body = body_lines(plan) + ([tenants] if tenants else [])
    return subject + ("\n\n" + cap_lines(body) + "\n" if body else "\n")


def sweep_message(changed: list[tuple[str, Plan]]) -> str:
    """One commit for a sweep: `schemas: dev(~users) prod(+survey_notes)`, environments in order."""
    parts, body = [], []
    for environment, plan in changed:
        tables, others = news_tokens(plan)
        if len(tables) <= 4:
            summary = " ".join(tables + ([f"{others} other"] if others else []))
        else:
            summary = f"{len(tables)} tables" + (f", {others} other" if others else "")
        parts.append(f"{environment}({summary or without_news(plan, short=True) or 'files'})")
        body += [f"{environment}: {line}" for line in body_lines(plan)]
    subject = "schemas: " + " ".join(parts)
    return subject + ("\n\n" + cap_lines(body) + "\n" if body else "\n")


def cap_lines(lines: list[str], limit: int = BODY_LIMIT) -> str:
    """A commit body lists the changes, up to a point."""
    if len(lines) <= limit:
        return "\n".join(lines)
    return "\n".join([*lines[:limit], f"... and {len(lines) - limit} more (see _index.md)"])
