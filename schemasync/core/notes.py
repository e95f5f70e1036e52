"""Team notes kept in git: what a table is for, which columns hold personal data, which tables
belong together. Read from `schema-notes.yaml` beside hosts.yaml; pure once read.

    groups:                      # tables that belong together (names or globs)
      billing: [invoices, payments, "billing.*"]
    tables:
      users:
        description: People who sign in.
        tags: [pii]
        columns:
          email: {description: Sign-in address, tags: [pii]}
          password_hash: {tags: [secret]}
    environments:                # optional: notes for one environment only, over the shared ones
      prod:
        tables:
          users: {description: People who sign in (production: real customers)}

A note stands beside a database comment, never in its place. A note for a table or column that
no longer exists is reported by refresh and check (check --strict-notes exits 1 on it).
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from schemasync.core.errors import ConfigError

if TYPE_CHECKING:
    from schemasync.core.config import Config, HostConfig

NOTES_FILE = "schema-notes.yaml"


@dataclass(frozen=True)
class Note:
    description: str | None = None
    tags: tuple[str, ...] = ()


@dataclass(frozen=True)
class TableNotes:
    note: Note = Note()
    columns: dict[str, Note] = field(default_factory=dict)


@dataclass(frozen=True)
class Notes:
    path: Path | None = None
    tables: dict[str, TableNotes] = field(default_factory=dict)  # by name as written: users, app.users
    groups: dict[str, tuple[str, ...]] = field(default_factory=dict)  # group -> name patterns

    def for_table(self, schema: str | None, name: str) -> TableNotes | None:
        for key in (f"{schema}.{name}", name if schema in (None, "public") else None):
            if key and key in self.tables:
                return self.tables[key]
        return None

    def group_of(self, schema: str | None, name: str) -> str | None:
        qualified = f"{schema}.{name}"
        for group, patterns in self.groups.items():
            for p in patterns:
                if fnmatch.fnmatchcase(qualified, p) or (schema in (None, "public") and fnmatch.fnmatchcase(name, p)):
                    return group
        return None

    def tags_of(self, schema: str | None, name: str) -> set[str]:
        """The tags on a table or on any of its columns (what `--tag` filters tables by)."""
        t = self.for_table(schema, name)
        if t is None:
            return set()
        return set(t.note.tags) | {tag for note in t.columns.values() for tag in note.tags}

    def header_lines(self, schema: str | None, name: str) -> list[str]:
        """Lines for the table file's header (after the references)."""
        t = self.for_table(schema, name)
        group = self.group_of(schema, name)
        out = []
        if group:
            out.append(f"-- Group: {group}\n")
        if t is not None:
            if t.note.description or t.note.tags:
                out.append(f"-- Note: {note_text(t.note)}\n")
            for col, note in t.columns.items():
                out.append(f"-- Note on {col}: {note_text(note)}\n")
        return out

    def stale(self, tables: dict[tuple[str, str], set[str]]) -> list[str]:
        """Notes for tables or columns that do not exist (tables: (schema, name) -> columns)."""
        by_key = {f"{s}.{n}": cols for (s, n), cols in tables.items()}
        by_key |= {n: cols for (s, n), cols in tables.items() if s == "public"}
        out = []
        for key, t in self.tables.items():
            if key not in by_key:
                out.append(f"table {key}")
                continue
            out += [f"column {key}.{col}" for col in t.columns if col not in by_key[key]]
        return sorted(out)


def note_text(note: Note) -> str:
    tags = f" [{', '.join(note.tags)}]" if note.tags else ""
    return f"{note.description or ''}{tags}".strip()


def load_notes(config_dir: Path, environment: str | None = None) -> Notes:
    path = config_dir / NOTES_FILE
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return Notes()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        raise ConfigError(f"{path}: invalid YAML{where}: {getattr(exc, 'problem', None) or exc}") from None
    return parse_notes(data, path, environment)


def parse_notes(data: Any, path: Path, environment: str | None = None) -> Notes:
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping with tables:, groups: or environments:")
    unknown = set(data) - {"tables", "groups", "environments"}
    if unknown:
        raise ConfigError(f"{path}: unknown key {sorted(unknown)[0]!r} (known: tables, groups, environments)")
    tables = _tables(data.get("tables") or {}, path, "tables")
    envs = data.get("environments") or {}
    if not isinstance(envs, dict):
        raise ConfigError(f"{path}: environments: expected a mapping of environment names to notes")
    if environment is not None and environment in envs:
        env = envs[environment] or {}
        if not isinstance(env, dict) or set(env) - {"tables"}:
            raise ConfigError(f"{path}: environments.{environment}: expected a mapping with tables:")
        for key, t in _tables(env.get("tables") or {}, path, f"environments.{environment}.tables").items():
            base = tables.get(key, TableNotes())
            note = t.note if (t.note.description or t.note.tags) else base.note
            tables[key] = TableNotes(note, {**base.columns, **t.columns})
    groups = data.get("groups") or {}
    if not isinstance(groups, dict):
        raise ConfigError(f"{path}: groups: expected a mapping of group names to lists of tables")
    parsed_groups = {}
    for name, members in groups.items():
        if not isinstance(members, list) or not all(isinstance(m, str) and m for m in members):
            raise ConfigError(f"{path}: groups.{name}: expected a list of table names or globs")
        parsed_groups[str(name)] = tuple(members)
    return Notes(path, tables, parsed_groups)


def _tables(raw: Any, path: Path, where: str) -> dict[str, TableNotes]:
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: {where}: expected a mapping of table names to notes")
    out = {}
    for name, spec in raw.items():
        spec = spec or {}
        if isinstance(spec, str):
            spec = {"description": spec}
        if not isinstance(spec, dict) or set(spec) - {"description", "tags", "columns"}:
            raise ConfigError(f"{path}: {where}.{name}: expected description, tags and columns")
        columns = {}
        for col, cspec in (spec.get("columns") or {}).items():
            columns[str(col)] = _note(cspec, path, f"{where}.{name}.columns.{col}")
        out[str(name)] = TableNotes(
            _note({k: v for k, v in spec.items() if k != "columns"}, path, f"{where}.{name}"), columns
        )
    return out


def _note(spec: Any, path: Path, where: str) -> Note:
    if isinstance(spec, str):
        return Note(spec, ())
    spec = spec or {}
    if not isinstance(spec, dict) or set(spec) - {"description", "tags"}:
        raise ConfigError(f"{path}: {where}: expected description and tags")
    tags = spec.get("tags") or []
    if not isinstance(tags, list) or not all(isinstance(t, str) and t for t in tags):
        raise ConfigError(f"{path}: {where}.tags: expected a list of words, e.g. [pii]")
    desc = spec.get("description")
    if desc is not None and not isinstance(desc, str):
        raise ConfigError(f"{path}: {where}.description: expected text")
    return Note(desc, tuple(tags))


def add_notes(details: dict, notes: Notes, schema: str | None, name: str) -> None:
    """A table's notes into its manifest details (sparse: nothing when there are none)."""
    group = notes.group_of(schema, name)
    if group:
        details["group"] = group
    t = notes.for_table(schema, name)
    if t is None:
        return
    if t.note.description:
        details["note"] = t.note.description
    if t.note.tags:
        details["tags"] = list(t.note.tags)
    if t.columns:
        details["column_notes"] = {
            col: {k: v for k, v in (("description", n.description), ("tags", list(n.tags))) if v}
            for col, n in t.columns.items()
        }


def notes_for(config: Config, host: HostConfig) -> Notes:
    """The team's notes for one environment: schema-notes.yaml beside hosts.yaml (none if absent),
    read at each call (notes change without a refresh). The one way every job reads them."""
    return load_notes(config.path.resolve().parent, host.name)
