"""The name -> file mapping: injective, stable, inside the directory, safe on case-insensitive systems."""

from __future__ import annotations

import os
from pathlib import PurePosixPath

from hypothesis import given, settings
from hypothesis import strategies as st

from schemasync.core.names import name_part, object_file, other_file, table_file

# PostgreSQL identifiers: up to 63 bytes, any character but NUL.
identifiers = st.text(st.characters(blacklist_characters="\x00", blacklist_categories=("Cs",)), min_size=1, max_size=63)
schemas = st.one_of(st.just("public"), st.just("app"), identifiers)


def _safe(path: str) -> bool:
    parts = PurePosixPath(path).parts
    return (
        not path.startswith("/")
        and all(p not in ("", ".", "..") and not p.startswith("-") for p in parts)
        and "\\" not in path
        and "\n" not in path
        and all(len(p.encode()) <= 255 for p in parts)
        and os.path.normpath(path) == path
    )


@given(schemas, identifiers)
@settings(max_examples=500)
def test_table_file_is_safe_and_stable(schema: str, name: str) -> None:
    path = table_file(schema, name)
    assert _safe(path), path
    assert path == table_file(schema, name)
    assert path.endswith(".sql") and "/" not in path


@given(st.lists(st.tuples(schemas, identifiers), min_size=2, max_size=40, unique=True))
@settings(max_examples=300)
def test_table_files_are_injective_even_case_insensitively(tables: list[tuple[str, str]]) -> None:
    paths = [table_file(s, n) for s, n in tables]
    assert len({p.lower() for p in paths}) == len(paths)


@given(st.sampled_from(["views", "functions", "types"]), schemas, identifiers)
def test_object_files_stay_in_their_folder(folder: str, schema: str, name: str) -> None:
    path = object_file(folder, schema, name)
    assert _safe(path) and path.startswith(folder + "/") and path.count("/") == 1


@given(
    st.sampled_from(["EXTENSION", "TEXT SEARCH CONFIGURATION", "SCHEMA"]), st.one_of(st.none(), schemas), identifiers
)
def test_other_files_are_safe(kind: str, schema: str | None, name: str) -> None:
    path = other_file(kind, schema, name)
    assert _safe(path) and path.startswith("other/")


def test_plain_names_keep_the_path_agents_already_use() -> None:
    assert table_file("public", "survey_notes") == "survey_notes.sql"
    assert table_file("billing", "invoices") == "billing.invoices.sql"


def test_hostile_names_get_distinct_safe_names() -> None:
    hostile = [
        "../../escape",
        "a/b",
        ".git",
        "CON",
        "con",
        "-rf",
        "$(touch x)",
        "Users",
        "users",
        "new\nline",
        "x" * 63,
        "ünïcödé",
        "a.b",
        "_index",
    ]
    paths = [table_file("public", n) for n in hostile]
    assert len({p.lower() for p in paths}) == len(hostile)
    for p in paths:
        assert _safe(p), p
    assert table_file("public", "users") == "users.sql"
    assert table_file("public", "Users") != "Users.sql"
    assert name_part("con") != "con"  # a Windows device name whatever its case
