"""Answers from the local files alone (no connection): show a table or object, search columns.

Everything here reads `_manifest.json` and the table files a refresh wrote, so an agent can answer
"what columns does survey_notes have" or "what references company" without database credentials.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from schemasync.core.config import Config, HostConfig
from schemasync.core.errors import ConfigError, LocalError
from schemasync.core.names import close_names, display_name, name_matcher, qualified_name
from schemasync.core.notes import Notes, note_text, notes_for
from schemasync.output import manifest
from schemasync.output.records import INDEX, MANIFEST, ORPHANED, Record
from schemasync.schema.model import Obj, Table
from schemasync.schema.parse import parse_file
from schemasync.schema.split import kind_word

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
    return manifest.parse_manifest(text, path).records


def find_record(
    host: HostConfig, records: list[Record], query: str, kinds: tuple[str, ...] | None = ("table",)
) -> Record:
    """The one name resolver (show, history, refresh's suggestions): `users`, `app.users`,
    `"MixedCase"`; exact first, then case-insensitive; tables before other objects of the same name;
    an unknown name gets the closest matches."""
    pool = [r for r in records if kinds is None or r.kind in kinds]
    q = query.strip()

    def exact(r: Record) -> bool:
        return q in (r.name, f"{r.schema}.{r.name}", r.label, qualified_name(r.schema or "", r.name))

    found = [r for r in pool if exact(r)] or [
        r for r in pool if q.lower() in (r.name.lower(), f"{r.schema}.{r.name}".lower())
    ]
    if len(found) > 1 and any(r.kind == "table" for r in found):
        found = [r for r in found if r.kind == "table"]
    what = "table" if kinds == ("table",) else "table or object"
    if not found:
        raise ConfigError(
            f"{host.name}: no {what} {query!r} in {host.output}", hint=suggest(records, query, host, kinds)
        )
    if len(found) > 1:
        raise ConfigError(
            f"{host.name}: {query!r} is ambiguous: {', '.join(f'{r.schema}.{r.name}' for r in found)}",
            hint="qualify it as schema.name",
        )
    return found[0]


def suggest(records: list[Record], query: str, host: HostConfig, kinds: tuple[str, ...] | None = None) -> str:
    close = close_names(query, [r.label for r in records if kinds is None or r.kind in kinds])
    return ("did you mean: " + ", ".join(close)) if close else f"see {host.output / INDEX}"


@dataclass
class ShowResult:
    host: HostConfig
    record: Record
    definition: str
    notes: Notes = field(default_factory=Notes)

    @property
    def details(self) -> dict:
        return self.record.details or {}

    @property
    def indexes(self) -> list[str]:
        """Every statement that creates an index on the table: CREATE INDEX, and PRIMARY KEY /
        UNIQUE / EXCLUDE constraints (partitions' own indexes included, as they are in the file)."""
        return [m.group(1) for m in _INDEX_STATEMENT.finditer(self.definition)]

    @property
    def model(self) -> Table | Obj:
        return parse_file(self.record.kind, self.record.schema, self.record.name, self.definition)


def show(config: Config, host_name: str | None, name: str) -> ShowResult:
    host = config.host(host_name)
    record = find_record(host, load_records(host), name, kinds=None)
    notes = notes_for(config, host)
    return ShowResult(host, record, (host.output / record.file).read_text(encoding="utf-8"), notes)


def show_text(res: ShowResult) -> str:
    """The summary (keys, references, users, notes) first, then the file: what a reader wants
    most comes in the first lines, whatever the table's size."""
    d = res.details
    kind = kind_word(res.record.kind)
    status = f" (orphaned: the {kind} is gone from the database; this is its last known definition)"
    out = [f"-- {kind} {res.record.label} in {res.host.name}{status if res.record.status == ORPHANED else ''}"]
    if res.record.kind != "table":
        model = res.model
        if isinstance(model, Obj) and model.values:
            out.append(f"-- Values: {', '.join(model.values)}")
        return "\n".join([*out, "", res.definition.rstrip("\n")])
    table_notes = res.notes.for_table(res.record.schema, res.record.name)
    group = res.notes.group_of(res.record.schema, res.record.name)
    if group:
        out.append(f"-- Group: {group}")
    if table_notes is not None:
        if table_notes.note.description or table_notes.note.tags:
            out.append(f"-- Note: {note_text(table_notes.note)}")
        out += [f"-- Note on {col}: {note_text(n)}" for col, n in table_notes.columns.items()]
    if d.get("primary_key"):
        out.append(f"-- Primary key: {', '.join(d['primary_key'])}")
    out.append("-- Foreign keys out:" + ("" if d.get("foreign_keys") else " none"))
    out += [f"--   {fk['text']}" for fk in d.get("foreign_keys", [])]
    out.append("-- Referenced by:" + ("" if d.get("referenced_by") else " none"))
    out += [f"--   {fk['text']}" for fk in d.get("referenced_by", [])]
    if d.get("dependents"):
        out.append("-- Used by: " + ", ".join(f"{x['kind']} {x['name']}" for x in d["dependents"]))
    out.append(f"-- File: {res.host.output / res.record.file}")
    return "\n".join([*out, "", res.definition.rstrip("\n")])


def show_data(res: ShowResult) -> dict:
    d = res.details
    base = {
        "host": res.host.name,
        "kind": kind_word(res.record.kind),
        "schema": res.record.schema,
        "name": res.record.name,
        "file": str(res.host.output / res.record.file),
        "status": res.record.status,
    }
    model = res.model
    if isinstance(model, Obj):
        return {**base, "values": model.values, "comment": model.comment, "definition": res.definition}
    table_notes = res.notes.for_table(res.record.schema, res.record.name)
    return {
        **base,
        "group": res.notes.group_of(res.record.schema, res.record.name),
        "note": table_notes.note.description if table_notes else None,
        "tags": list(table_notes.note.tags) if table_notes else [],
        "columns": _columns_data(model, table_notes.columns if table_notes else {}),
        "primary_key": d.get("primary_key", model.primary_key),
        "comment": d.get("comment", model.comment),
        "indexes": res.indexes,
        "index_details": _indexes_data(model),
        "constraints": [
            {"name": c.name, "kind": c.kind, "columns": c.columns, "expression": c.expression}
            for c in model.constraints
            if c.kind not in ("foreign key",)
        ],
        "foreign_keys": d.get("foreign_keys", []),
        "referenced_by": d.get("referenced_by", []),
        "dependents": d.get("dependents", []),
        "triggers": [_trigger_data(t) for t in model.triggers],
        "policies": [
            {"name": p.name, "command": p.command, "roles": p.roles, "using": p.using, "check": p.check}
            for p in model.policies
        ],
        "row_security": {"enabled": model.rls_enabled, "forced": model.rls_forced},
        "partitions": model.partitions,
        "definition": res.definition,
    }


def _trigger_data(t: object) -> dict:
    keys = ("name", "timing", "events", "level", "function", "enabled")
    return {k: getattr(t, k) for k in keys}


def _columns_data(model: Table, notes: dict) -> list[dict]:
    return [
        {
            "name": c.name,
            "type": c.type,
            "not_null": c.not_null,
            "default": c.default,
            "identity": c.identity,
            "generated": c.generated,
            "collation": c.collation,
            "comment": c.comment,
            "note": notes[c.name].description if c.name in notes else None,
            "tags": list(notes[c.name].tags) if c.name in notes else [],
        }
        for c in model.columns
    ]


def _indexes_data(model: Table) -> list[dict]:
    """Every index: CREATE INDEX ones, and those of primary key and unique constraints."""
    own = [
        {"name": i.name, "columns": i.columns, "unique": i.unique, "method": i.method, "predicate": i.predicate,
         "include": i.include, "constraint": False}
        for i in model.indexes
    ]  # fmt: skip
    by_constraint = [
        {"name": c.name, "columns": c.columns, "unique": True, "method": "btree", "predicate": None, "include": [],
         "constraint": True}
        for c in model.constraints
        if c.kind in ("primary key", "unique")
    ]  # fmt: skip
    return own + by_constraint


# The parts of a table `describe` can give alone (`show --part`, for a context window).
PARTS = (
    "columns",
    "index_details",
    "constraints",
    "foreign_keys",
    "referenced_by",
    "dependents",
    "triggers",
    "policies",
    "partitions",
)


def describe(res: ShowResult, definition: bool = False, part: str | None = None) -> dict:
    """One table or object for a program or an agent, each fact once: no empty fields, foreign
    keys in as one line each, the index statements and the DDL only when asked for (the file
    holds them: `file`, relative to `folder`). What `show --json` and MCP's describe_table give."""
    data = show_data(res)
    data["file"] = res.record.file
    data["folder"] = str(res.host.output)
    data.pop("indexes", None)  # the same indexes as index_details, as statements
    data["foreign_keys"] = [{k: v for k, v in fk.items() if k != "text"} for fk in data.get("foreign_keys", [])]
    if "referenced_by" in data:
        data["referenced_by"] = [incoming_line(fk) for fk in data["referenced_by"]]
    if not definition and res.record.kind == "table":  # an object's definition is all there is to it
        data.pop("definition", None)
    elif "definition" in data:  # without the header: the references are in referenced_by
        data["definition"] = "".join(
            line for line in data["definition"].splitlines(keepends=True) if not line.startswith("-- Referenced by")
        )
    if part is not None:
        if part not in PARTS:
            raise ConfigError(f"--part {part!r}: not one of {', '.join(PARTS)}")
        keep = ("host", "kind", "schema", "name", "file", "folder", part)
        data = {k: data[k] for k in keep if k in data}
    return compact(data)


def compact(value: object) -> object:
    """Without the fields that say nothing (None, empty lists and maps); False and 0 stay."""
    if isinstance(value, dict):
        return {k: compact(v) for k, v in value.items() if v is not None and v != [] and v != {}}
    if isinstance(value, list):
        return [compact(v) for v in value]
    return value


def incoming_line(fk: dict) -> str:
    """A foreign key into the described table, in one line: `musicbrainz.l_area_area(link) -> (id)`,
    with its actions when they are not the default (the constraint itself is in the other file)."""
    parent = f"{display_name(fk['ref_schema'], fk['ref_table'])}({', '.join(fk['ref_columns'])})"
    actions = fk["text"].split(parent, 1)[1] if parent in fk["text"] else ""
    child = f"{qualified_name(fk['schema'], fk['table'])}({', '.join(fk['columns'])})"
    return f"{child} -> ({', '.join(fk['ref_columns'])}){actions}"


@dataclass
class SearchResult:
    host: HostConfig
    pattern: str | None
    type: str | None
    matches: list[dict]
    tag: str | None = None


def search(
    config: Config,
    host_name: str | None,
    pattern: str | None,
    type_: str | None,
    tag: str | None = None,
    *,
    exact: bool = False,
    schema: str | None = None,
    table: str | None = None,
) -> SearchResult:
    """Columns by name (a substring or glob of the table's or column's name, or of its comment;
    `exact`: the whole name), type and tag, in one schema or one table if asked."""
    if not pattern and not type_ and not tag and not table:
        raise ConfigError("search: give a PATTERN (table or column name), --type, --tag, --table, or a mix")
    host = config.host(host_name)
    notes = notes_for(config, host)
    if exact and pattern:
        wanted = pattern.lower()

        def name_ok(text: str) -> bool:
            return text.lower() == wanted

    else:
        name_ok = name_matcher(pattern) if pattern else (lambda _text: True)
    type_ok = name_matcher(type_) if type_ else (lambda _text: True)
    records = load_records(host)
    only = find_record(host, records, table).file if table else None
    matches = []
    for r in records:
        if r.kind != "table" or r.status == ORPHANED or not r.details:
            continue
        if (schema is not None and r.schema != schema) or (only is not None and r.file != only):
            continue
        whole_table = bool(pattern) and (name_ok(r.name) or name_ok(f"{r.schema}.{r.name}"))
        comments = r.details.get("column_comments", {})
        table_notes = notes.for_table(r.schema, r.name)
        table_tagged = bool(tag and table_notes and tag in table_notes.note.tags)
        for name, typ, not_null in r.details["column_defs"]:
            comment = comments.get(name)
            by_comment = bool(pattern) and not exact and comment is not None and name_ok(comment)
            note = table_notes.columns.get(name) if table_notes else None
            if tag and not (table_tagged or (note is not None and tag in note.tags)):
                continue
            named = not pattern or whole_table or name_ok(name) or by_comment
            if named and type_ok(typ):
                matches.append(
                    {
                        "table": r.label,
                        "schema": r.schema,
                        "column": name,
                        "type": typ,
                        "not_null": not_null,
                        "comment": comment,
                        "tags": sorted({*(note.tags if note else ()), *(table_notes.note.tags if table_notes else ())}),
                        "file": r.file,
                    }
                )
    return SearchResult(host, pattern, type_, matches, tag)


def search_text(res: SearchResult) -> str:
    if not res.matches:
        return f"{res.host.name}: no matching columns"
    lines = [
        f"{m['table']}.{m['column']} {m['type']}"
        + (f"  -- {m['comment']}" if m["comment"] else "")
        + (f"  [{', '.join(m['tags'])}]" if m["tags"] else "")
        for m in res.matches
    ]
    return "\n".join([*lines, _count(res)])


def _count(res: SearchResult) -> str:
    n, tables = len(res.matches), len({m["table"] for m in res.matches})
    return f"{n} column{'s' if n != 1 else ''} in {tables} table{'s' if tables != 1 else ''}"


def search_data(res: SearchResult) -> dict:
    return {
        "host": res.host.name,
        "pattern": res.pattern,
        "type": res.type,
        "tag": res.tag,
        "count": len(res.matches),
        "tables": len({m["table"] for m in res.matches}),
        "matches": res.matches,
    }
