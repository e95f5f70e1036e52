"""Answers from the local files alone (no connection): show a table, search columns, the agent guide.

Everything here reads `_manifest.json` and the table files a refresh wrote, so an agent can answer
"what columns does survey_notes have" or "what references company" without database credentials.
"""

from __future__ import annotations

import difflib
import fnmatch
import re
from collections.abc import Callable
from dataclasses import dataclass

from . import store
from .config import Config, HostConfig
from .errors import ConfigError, LocalError
from .relations import table_lookup
from .store import INDEX, MANIFEST, ORPHANED, Record

_INDEX_STATEMENT = re.compile(
    r"^(CREATE (?:UNIQUE )?INDEX .*?;"
    r"|ALTER TABLE (?:ONLY )?\S+\n\s+ADD CONSTRAINT \S+ (?:PRIMARY KEY|UNIQUE|EXCLUDE).*?;)$",
    re.M | re.S,
)


def load_records(host: HostConfig) -> list[Record]:
    path = host.output / MANIFEST
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise LocalError(
            f"{host.name}: no schema files in {host.output} yet",
            hint=f"run: inv schemas.refresh --host {host.name}",
        ) from None
    return store.parse_manifest(text, path)[1]


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
