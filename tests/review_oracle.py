"""PostgreSQL as the judge of `review`: a migration applied to a scratch copy of a real database,
statement by statement, each in its own transaction, with what PostgreSQL said and did recorded:
its error and DETAIL, the objects a CASCADE dropped (NOTICE), the locks the statement held
(pg_locks, inside its transaction), and which tables got a new relfilenode (rewritten)."""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from sandbox import Sandbox

MODES = {
    "AccessShareLock": "ACCESS SHARE", "RowShareLock": "ROW SHARE", "RowExclusiveLock": "ROW EXCLUSIVE",
    "ShareUpdateExclusiveLock": "SHARE UPDATE EXCLUSIVE", "ShareLock": "SHARE",
    "ShareRowExclusiveLock": "SHARE ROW EXCLUSIVE", "ExclusiveLock": "EXCLUSIVE",
    "AccessExclusiveLock": "ACCESS EXCLUSIVE",
}  # fmt: skip

TABLES = (
    "SELECT '@@rel', c.oid, c.relname, c.relkind, c.relfilenode FROM pg_class c "
    "WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'p', 'm', 'v');"
)
LOCKS = (
    "SELECT '@@lock', l.relation, l.mode FROM pg_locks l WHERE l.pid = pg_backend_pid() "
    "AND l.locktype = 'relation' AND l.relation IS NOT NULL;"
)


@dataclass
class Outcome:
    error: str | None = None
    detail: list[str] = field(default_factory=list)
    cascaded: list[str] = field(default_factory=list)
    locks: dict[str, str] = field(default_factory=dict)  # table -> strongest mode (tables only)
    rewritten: set[str] = field(default_factory=set)
    dropped: set[str] = field(default_factory=set)


def load_corpus(path: Path) -> dict[str, list[str]]:
    corpus: dict[str, list[str]] = {}
    name = None
    for line in path.read_text().splitlines():
        if line.startswith("-- migration:"):
            name = line.split(":", 1)[1].strip()
            corpus[name] = []
        elif name and line.strip() and not line.startswith("--"):
            corpus[name].append(line.strip())
    return corpus


def apply(sb: Sandbox, template: str, scratch: str, statements: list[str], work: Path) -> list[Outcome]:
    sb.psql(f'DROP DATABASE IF EXISTS "{scratch}";', check=False)
    sb.psql(f'CREATE DATABASE "{scratch}" TEMPLATE "{template}";')
    try:
        return _run(sb, scratch, statements, work)
    finally:
        sb.psql(f'DROP DATABASE IF EXISTS "{scratch}" WITH (FORCE);', check=False)


def _run(sb: Sandbox, database: str, statements: list[str], work: Path) -> list[Outcome]:
    lines = ["\\set ON_ERROR_ROLLBACK on", "\\set VERBOSITY default", "\\pset format unaligned",
             "\\pset tuples_only on", "\\pset fieldsep '|'", "\\echo @@stmt 0", TABLES]  # fmt: skip
    for k, sql in enumerate(statements, 1):
        concurrent = "CONCURRENTLY" in sql.upper()
        lines += [f"\\echo @@stmt {k}", f"\\warn @@stmt {k}"]
        lines += [sql] if concurrent else ["BEGIN;", sql, LOCKS, "COMMIT;"]
        lines.append(TABLES)
    script = work / f"{database}.sql"
    script.write_text("\n".join(lines) + "\n")
    script.chmod(0o644)
    work.chmod(0o755)
    proc = subprocess.run(sb.client("psql", database, "-X", "-q", "-f", str(script)), capture_output=True, text=True)
    return _parse(proc.stdout, proc.stderr, len(statements))


def _split(text: str) -> dict[int, list[str]]:
    parts: dict[int, list[str]] = {}
    current = -1
    for line in text.splitlines():
        m = re.fullmatch(r"@@stmt (\d+)", line.strip())
        if m:
            current = int(m.group(1))
            parts[current] = []
        elif current >= 0:
            parts[current].append(line)
    return parts


def _parse(stdout: str, stderr: str, n: int) -> list[Outcome]:
    out_parts, err_parts = _split(stdout), _split(stderr)
    tables_before = _tables(out_parts.get(0, []))
    names = {oid: name for oid, (name, _kind, _node) in tables_before.items()}
    outcomes = []
    for k in range(1, n + 1):
        o = Outcome()
        _messages(err_parts.get(k, []), o)
        after = _tables(out_parts.get(k, []))
        names.update({oid: name for oid, (name, _k, _n) in after.items() if oid not in names})
        for row in out_parts.get(k, []):
            f = row.split("|")
            if f[0] == "@@lock" and f[1] in names:
                mode = MODES.get(f[2], f[2])
                table = names[f[1]]
                if table not in o.locks or ORDER.index(mode) > ORDER.index(o.locks[table]):
                    o.locks[table] = mode
        for oid, (name, kind, node) in tables_before.items():
            if oid not in after:
                o.dropped.add(name)
            elif kind in ("r", "m") and after[oid][2] != node:
                o.rewritten.add(name)
        tables_before = after
        outcomes.append(o)
    return outcomes


ORDER = list(MODES.values())


def _tables(rows: list[str]) -> dict[str, tuple[str, str, str]]:
    out = {}
    for row in rows:
        f = row.split("|")
        if f[0] == "@@rel":
            out[f[1]] = (f[2], f[3], f[4])
    return out


def _messages(lines: list[str], o: Outcome) -> None:
    section = None
    for line in lines:
        m = re.match(r"psql:[^:]*:\d+: (ERROR|NOTICE|WARNING):\s+(.*)", line)
        if m:
            section = m.group(1)
            if section == "ERROR":
                o.error = m.group(2)
            elif m.group(2).startswith("drop cascades to ") and "other objects" not in m.group(2):
                o.cascaded.append(m.group(2).removeprefix("drop cascades to "))
            continue
        if line.startswith("DETAIL:"):
            line = line.removeprefix("DETAIL:").strip()
        elif line.startswith(("HINT:", "CONTEXT:", "LINE ")) or line.strip().startswith("^"):
            section = "other"
            continue
        if section == "ERROR":
            o.detail.append(line.strip())
        elif section == "NOTICE" and line.startswith("drop cascades to "):
            o.cascaded.append(line.removeprefix("drop cascades to ").strip())


def dependents_named(detail: list[str]) -> set[str]:
    """`view v depends on column c of table t`: the dependents PostgreSQL names, left of `depends on`."""
    return {line.split(" depends on ")[0] for line in detail if " depends on " in line}


def call_functions(sb: Sandbox, template: str, scratch: str, statements: list[str], calls: dict[str, str],
                   work: Path) -> dict[str, str | None]:  # fmt: skip
    """Apply the migration, then call each function: its error, or None."""
    sb.psql(f'DROP DATABASE IF EXISTS "{scratch}";', check=False)
    sb.psql(f'CREATE DATABASE "{scratch}" TEMPLATE "{template}";')
    try:
        lines = ["\\set ON_ERROR_ROLLBACK on", *statements]
        for name, call in calls.items():
            lines += [f"\\warn @@call {name}", f"SELECT {call};"]
        script = work / f"{scratch}.calls.sql"
        script.write_text("\n".join(lines) + "\n")
        script.chmod(0o644)
        proc = subprocess.run(sb.client("psql", scratch, "-X", "-q", "-f", str(script)), capture_output=True, text=True)
    finally:
        sb.psql(f'DROP DATABASE IF EXISTS "{scratch}" WITH (FORCE);', check=False)
    result: dict[str, str | None] = {}
    current = None
    for line in proc.stderr.splitlines():
        if line.startswith("@@call "):
            current = line.split(" ", 1)[1]
            result[current] = None
        elif current and (m := re.match(r"psql:[^:]*:\d+: ERROR:\s+(.*)", line)):
            result[current] = m.group(1)
    return result


WEAK = ("ACCESS SHARE", "ROW SHARE", "ROW EXCLUSIVE")


def disagreements(predicted: object, seen: Outcome) -> list[str]:
    """Where the review (a StatementReview) and PostgreSQL differ; empty when they agree."""
    p = predicted
    out: list[str] = []
    if bool(p.fails) != bool(seen.error):  # type: ignore[attr-defined]
        said = p.fails[0].message if p.fails else "no failure"  # type: ignore[attr-defined]
        return [f"predicted {said!r}; PostgreSQL: {seen.error or 'no error'} {seen.detail}"]
    if seen.error:
        fail = p.fails[0]  # type: ignore[attr-defined]
        if fail.message != seen.error:
            out.append(f"message: predicted {fail.message!r}, PostgreSQL {seen.error!r}")
        named = dependents_named(seen.detail)
        if seen.error.startswith("cannot drop") and named != set(fail.objects):
            out.append(f"dependents: predicted {sorted(fail.objects)}, PostgreSQL {sorted(named)}")
        elif named and not named <= set(fail.objects):
            out.append(f"dependents: PostgreSQL names {sorted(named)}, predicted {sorted(fail.objects)}")
        return out
    if set(p.cascades) != set(seen.cascaded):  # type: ignore[attr-defined]
        out.append(f"cascade: predicted {sorted(p.cascades)}, PostgreSQL {sorted(seen.cascaded)}")  # type: ignore[attr-defined]
    locks = {lk.table: lk for lk in p.locks}  # type: ignore[attr-defined]
    if "CONCURRENTLY" not in p.sql.upper():  # type: ignore[attr-defined]
        for table, lk in locks.items():
            if table in seen.dropped:
                continue  # gone, with its lock, from what pg_locks can name
            if seen.locks.get(table) != lk.mode:
                out.append(f"lock on {table}: predicted {lk.mode}, PostgreSQL {seen.locks.get(table)}")
        for table, mode in seen.locks.items():
            if table not in locks and mode not in WEAK:
                out.append(f"lock on {table}: PostgreSQL {mode}, not predicted")
    rewrites = {lk.table for lk in p.locks if lk.effect == "rewrite"}  # type: ignore[attr-defined]
    if rewrites - seen.dropped != seen.rewritten:
        out.append(f"rewrites: predicted {sorted(rewrites)}, PostgreSQL {sorted(seen.rewritten)}")
    return out
