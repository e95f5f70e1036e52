"""Table and object names to file names: injective, stable, and safe on any file system.

A name part is kept as is when it is plain lower-case ASCII (the common case, so `survey_notes` is
`survey_notes.sql`, the path agents already use). Anything else keeps a readable form and gains
`~` plus a hash of the exact name, so:
- two different names never share a file, even on case-insensitive file systems (`Users` and
  `users`: the plain one has no `~`, the other's suffix comes from its exact spelling);
- `.`, `/`, `..`, leading `-` and Windows device names never reach the file system;
- the mapping depends on the name alone, never on what other tables exist, so it is stable.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable

PLAIN = re.compile(r"[a-z0-9_]{1,63}")
_UNSAFE_CHAR = re.compile(r"[^A-Za-z0-9_]")
# Windows refuses these as file names whatever the extension.
_DEVICE_NAMES = {"con", "prn", "aux", "nul"} | {f"com{i}" for i in range(10)} | {f"lpt{i}" for i in range(10)}
_HASH_CHARS = 10


def name_part(name: str) -> str:
    """One identifier as a file-name component without dots or path separators."""
    if PLAIN.fullmatch(name) and name not in _DEVICE_NAMES:
        return name
    readable = _UNSAFE_CHAR.sub("_", name)[:48] or "_"
    digest = hashlib.sha256(name.encode("utf-8", "surrogatepass")).hexdigest()[:_HASH_CHARS]
    return f"{readable}~{digest}"


def table_file(schema: str, name: str) -> str:
    """`public` tables keep the bare `<table>.sql` path; others are `<schema>.<table>.sql`."""
    if schema == "public":
        return f"{name_part(name)}.sql"
    return f"{name_part(schema)}.{name_part(name)}.sql"


def object_file(folder: str, schema: str | None, name: str) -> str:
    """A file for an object that belongs to no table, in the folder for its kind."""
    if schema is None or schema == "public":
        return f"{folder}/{name_part(name)}.sql"
    return f"{folder}/{name_part(schema)}.{name_part(name)}.sql"


def other_file(object_type: str, schema: str | None, name: str) -> str:
    """`other/<type>.<schema>.<name>.sql`: extensions, schemas, collations, casts and the rest.

    Objects of one type either always have a schema or never do, so the part count tells them apart.
    """
    kind = object_type.lower().replace(" ", "_")
    if schema is None:
        return f"other/{kind}.{name_part(name)}.sql"
    return f"other/{kind}.{name_part(schema)}.{name_part(name)}.sql"


def quote_ident(name: str) -> str:
    """SQL identifier quoting, as PostgreSQL's quote_ident does for the plain cases."""
    if re.fullmatch(r"[a-z_][a-z0-9_$]*", name):
        return name
    return '"' + name.replace('"', '""') + '"'


def display_name(schema: str, name: str) -> str:
    """The name people and commit messages see: bare for public, else schema-qualified.

    Control characters are escaped so that a name can never break out of a comment line.
    """
    text = quote_ident(name) if schema == "public" else f"{quote_ident(schema)}.{quote_ident(name)}"
    return escape_controls(text)


def qualified_name(schema: str, name: str) -> str:
    return escape_controls(f"{quote_ident(schema)}.{quote_ident(name)}")


def escape_controls(text: str) -> str:
    if text.isprintable():  # nearly always: one C call instead of one per character
        return text
    return "".join(ch if ch.isprintable() else f"\\x{ord(ch):02x}" for ch in text)


def close_names(query: str, names: list[str]) -> list[str]:
    """Names a user probably meant: close spellings, and the same name in another case."""
    import difflib

    close = difflib.get_close_matches(query, names, n=5, cutoff=0.5)
    return close + [n for n in names if n.lower() == query.lower() and n not in close]


def name_matcher(pattern: str) -> Callable[[str], bool]:
    """A case-insensitive test for a name: a substring, or a glob when it has * or ?."""
    import fnmatch

    p = pattern.lower()
    if any(ch in p for ch in "*?"):
        return lambda text: fnmatch.fnmatchcase(text.lower(), p)
    return lambda text: p in text.lower()
