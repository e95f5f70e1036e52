"""Answers from the local files alone (no connection): show a table, search columns, the agent guide.

Everything here reads `_manifest.json` and the table files a refresh wrote, so an agent can answer
"what columns does survey_notes have" or "what references company" without database credentials.
"""

from __future__ import annotations

import difflib
import fnmatch
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from . import store
from .catalog import table_lookup
from .config import Config, HostConfig
from .errors import ConfigError, LocalError
from .store import INDEX, MANIFEST, ORPHANED, Record

_INDEX_STATEMENT = re.compile(
    r"^(CREATE (?:UNIQUE )?INDEX .*?;"
    r"|ALTER TABLE (?:ONLY )?\S+\n\s+ADD CONSTRAINT \S+ (?:PRIMARY KEY|UNIQUE|EXCLUDE).*?;)$",
    re.M | re.S,
)


def load_records(host: HostConfig) -> list[Record]:
    path = host.output / MANIFEST
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
        return [Record(**item) for item in doc["files"]]
    except FileNotFoundError:
        raise LocalError(
            f"{host.name}: no schema files in {host.output} yet",
            hint=f"run: inv schemas.refresh --host {host.name}",
        ) from None
    except (ValueError, KeyError, TypeError) as exc:
        raise LocalError(f"{path}: unreadable ({exc})") from None


@dataclass
class ShowResult:
    host: HostConfig
    record: Record
    definition: str

    @property
    def details(self) -> dict:
        return self.record.details or {}

    @property
    def indexes(self) -> list[str]:
        """Every statement that creates an index on the table: CREATE INDEX, and PRIMARY KEY /
        UNIQUE / EXCLUDE constraints (partitions' own indexes included, as they are in the file)."""
        return [m.group(1) for m in _INDEX_STATEMENT.finditer(self.definition)]


def show(config: Config, host_name: str | None, table: str) -> ShowResult:
    host = config.host(host_name)
    records = load_records(host)
    found = table_lookup(records, table)
    if not found:
        names = [r.label for r in records if r.kind == "table"]
        close = difflib.get_close_matches(table, names, n=5, cutoff=0.5)
        hint = ("did you mean: " + ", ".join(close)) if close else f"see {host.output / INDEX}"
        raise ConfigError(f"{host.name}: no table {table!r} in {host.output}", hint=hint)
    if len(found) > 1:
        raise ConfigError(
            f"{host.name}: {table!r} is ambiguous: {', '.join(r.schema + '.' + r.name for r in found)}",
            hint="qualify it as schema.table",
        )
    record = found[0]
    return ShowResult(host, record, (host.output / record.file).read_text(encoding="utf-8"))


def show_text(res: ShowResult) -> str:
    d = res.details
    out = [res.definition.rstrip("\n"), ""]
    status = " (orphaned: the table is gone from the database; this is its last known definition)"
    out.append(f"-- {res.record.label} in {res.host.name}{status if res.record.status == ORPHANED else ''}")
    if d.get("primary_key"):
        out.append(f"-- Primary key: {', '.join(d['primary_key'])}")
    out.append("-- Foreign keys out:" + ("" if d.get("foreign_keys") else " none"))
    out += [f"--   {fk['text']}" for fk in d.get("foreign_keys", [])]
    out.append("-- Referenced by:" + ("" if d.get("referenced_by") else " none"))
    out += [f"--   {fk['text']}" for fk in d.get("referenced_by", [])]
    return "\n".join(out)


def show_data(res: ShowResult) -> dict:
    d = res.details
    return {
        "host": res.host.name,
        "schema": res.record.schema,
        "name": res.record.name,
        "file": str(res.host.output / res.record.file),
        "status": res.record.status,
        "columns": [{"name": n, "type": t, "not_null": nn} for n, t, nn in d.get("column_defs", [])],
        "primary_key": d.get("primary_key", []),
        "comment": d.get("comment"),
        "indexes": res.indexes,
        "foreign_keys": d.get("foreign_keys", []),
        "referenced_by": d.get("referenced_by", []),
        "definition": res.definition,
    }


@dataclass
class SearchResult:
    host: HostConfig
    pattern: str | None
    type: str | None
    matches: list[dict]


def _matcher(pattern: str) -> Callable[[str], bool]:
    p = pattern.lower()
    if any(ch in p for ch in "*?"):
        return lambda text: fnmatch.fnmatchcase(text.lower(), p)
    return lambda text: p in text.lower()


def search(config: Config, host_name: str | None, pattern: str | None, type_: str | None) -> SearchResult:
    if not pattern and not type_:
        raise ConfigError("search: give a PATTERN (table or column name), --type, or both")
    host = config.host(host_name)
    name_ok = _matcher(pattern) if pattern else (lambda _text: True)
    type_ok = _matcher(type_) if type_ else (lambda _text: True)
    matches = []
    for r in load_records(host):
        if r.kind != "table" or r.status == ORPHANED or not r.details:
            continue
        whole_table = bool(pattern) and (name_ok(r.name) or name_ok(f"{r.schema}.{r.name}"))
        for name, typ, not_null in r.details["column_defs"]:
            if (whole_table or name_ok(name)) and type_ok(typ):
                matches.append(
                    {
                        "table": r.label,
                        "schema": r.schema,
                        "column": name,
                        "type": typ,
                        "not_null": not_null,
                        "file": r.file,
                    }
                )
    return SearchResult(host, pattern, type_, matches)


def search_text(res: SearchResult) -> str:
    if not res.matches:
        return f"{res.host.name}: no matching columns"
    return "\n".join(f"{m['table']}.{m['column']} {m['type']}" for m in res.matches)


def search_data(res: SearchResult) -> dict:
    return {"host": res.host.name, "pattern": res.pattern, "type": res.type, "matches": res.matches}


# ---------------------------------------------------------------------------------------------
# The guide for agents


def guide_dir(config: Config) -> Path | None:
    """docs/schemas (the common parent of the hosts' outputs), unless that would be a place where a
    README of the project's own might live."""
    outputs = [h.output for h in config.hosts.values()]
    parent = outputs[0].parent
    for out in outputs[1:]:
        while not out.is_relative_to(parent):
            parent = parent.parent
    if any(parent == o for o in outputs) or (parent / ".git").exists() or parent == config.path.resolve().parent:
        return None
    return parent


GUIDE_MARK = "<!-- Generated by schemasync"


def render_guide(config: Config) -> str:
    base = guide_dir(config)
    rows = []
    for h in config.hosts.values():
        rel = h.output.relative_to(base) if base and h.output.is_relative_to(base) else h.output
        default = " (default)" if config.default == h.name else ""
        rows.append(f"| `{h.name}`{default} | `{h.database}` | `{h.ssh}` | [{rel}/]({rel}/_index.md) |\n")
    return "".join(
        [
            "# Database schema reference\n\n",
            f"{GUIDE_MARK}; `inv schemas.refresh` rewrites this file. -->\n\n",
            "The schema of each environment, as files: one per table, written by schemasync from "
            "`pg_dump --schema-only`.\n\n",
            "| environment | database | server | files |\n|---|---|---|---|\n",
            *rows,
            "\n## Layout\n\n",
            "- `<env>/<table>.sql`: a table in `public` with everything that belongs to it (columns, defaults, ",
            "sequences, constraints, indexes, foreign keys, triggers, policies, comments; partitions fold into ",
            "their parent). The header lists the foreign keys that point at it (`-- Referenced by:`).\n",
            "- `<env>/<schema>.<table>.sql`: a table in another schema. Names that are unsafe as file names get ",
            "`~` and a hash (`MixedCase~5d8ea3a747.sql`).\n",
            "- `<env>/views/`, `materialized_views/`, `functions/`, `types/`, `sequences/`, `other/`: objects ",
            "that belong to no table.\n",
            "- `<env>/_index.md`: every table with its status, column count, primary key, foreign keys in and "
            "out, and comment. `_erd.md`: diagrams. `_table_list.txt`: one table a line. `_manifest.json`: all "
            "of it for programs.\n",
            "\nStatus marks (in `_index.md`, as of the last refresh that changed something): ✓ current, ",
            "+ new, ~ updated, ⚠ orphaned (the table is gone; its file is kept).\n",
            "\n## Keeping it current\n\n",
            "- `inv schemas.refresh --host <env>`: dump over SSH, update the files, commit them.\n",
            "- `inv schemas.check --host <env>`: exit 1 if the files are stale (writes nothing).\n",
            "- `inv schemas.show <table> --host <env>`, `inv schemas.search <name>` (or `'*' --type timestamp`): ",
            "answers ",
            "from these files, no connection. Every command takes `--json`.\n",
        ]
    )


def agent_guide(config: Config) -> str:
    """A short block to paste into a project's CLAUDE.md."""
    envs = ", ".join(f"`{h.name}` ({h.database})" for h in config.hosts.values())
    base = guide_dir(config)
    home = config.path.resolve().parent
    where = f"`{base.relative_to(home)}/<env>/`" if base and base.is_relative_to(home) else "each host's output"
    return (
        "## Database schema\n\n"
        f"The PostgreSQL schema of each environment ({envs}) is in {where}: one `<table>.sql` per table "
        "(other schemas: `<schema>.<table>.sql`), with views/, functions/ and types/ beside them. Start at "
        "`_index.md`; `-- Referenced by:` lines list the foreign keys pointing at a table.\n\n"
        "- Look things up without a database: `inv schemas.show <table> --host <env> --json`, "
        "`inv schemas.search <column> --type <type> --json`.\n"
        "- Before relying on the files, check they are current: `inv schemas.check --host <env>` "
        "(exit 0 current, 1 stale).\n"
        "- Refresh after a migration: `inv schemas.refresh --host <env>` (commits only the schema files).\n"
        "- Never edit these files by hand; a refresh overwrites them.\n"
    )


def write_guide(config: Config) -> tuple[store.Transaction | None, dict[Path, str]]:
    """Write docs/schemas/README.md if it is ours (or absent) and out of date; the caller commits or
    rolls back the transaction with the rest of the run."""
    base = guide_dir(config)
    if base is None:
        return None, {}
    path = base / "README.md"
    text = render_guide(config)
    old = path.read_text(encoding="utf-8") if path.exists() else None
    if old == text or (old is not None and GUIDE_MARK not in old):
        return None, {}
    tx = store.Transaction(base)
    tx.write({"README.md": text})
    return tx, {path: text}
