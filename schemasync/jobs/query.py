"""The one query API for listings: which tables (schema, name pattern, notes group and tag) and
which page of them. `inv schemas.list` (tables on the server) and MCP's list_tables (tables in the
files) filter with the same `TableQuery`, and every listing pages with `page`."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from schemasync.core.errors import ConfigError
from schemasync.core.names import name_matcher
from schemasync.core.notes import Notes

Row = TypeVar("Row")


@dataclass(frozen=True)
class TableQuery:
    schema: str | None = None
    pattern: str | None = None  # a name substring, or a glob with * or ?
    group: str | None = None  # a group of schema-notes.yaml
    tag: str | None = None  # a tag of schema-notes.yaml (on the table or a column)
    limit: int = 500
    offset: int = 0

    def __post_init__(self) -> None:
        if self.limit < 1 or self.offset < 0:
            raise ConfigError("limit must be at least 1 and offset at least 0")

    @property
    def filtered(self) -> bool:
        return any(x is not None for x in (self.schema, self.pattern, self.group, self.tag))

    def wants(self, schema: str | None, name: str, notes: Notes) -> bool:
        match = name_matcher(self.pattern) if self.pattern else None
        return (
            (self.schema is None or schema == self.schema)
            and (match is None or match(name) or match(f"{schema}.{name}"))
            and (self.group is None or notes.group_of(schema, name) == self.group)
            and (self.tag is None or self.tag in notes.tags_of(schema, name))
        )


@dataclass
class Page(Generic[Row]):
    rows: list[Row]
    total: int
    offset: int
    limit: int  # as applied: at most the caller's maximum
    next_offset: int | None  # None: this is the last page


def page(rows: Sequence[Row], offset: int, limit: int, most: int | None = None) -> Page[Row]:
    """One page of rows; `most` caps the page whatever was asked (a context budget)."""
    if limit < 1 or offset < 0:
        raise ConfigError("limit must be at least 1 and offset at least 0")
    limit = min(limit, most) if most is not None else limit
    end = offset + limit
    return Page(list(rows[offset:end]), len(rows), offset, limit, end if end < len(rows) else None)
