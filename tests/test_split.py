"""The splitter on a real pg_dump -v of the hard-case schema (captured in tests/data)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from schemasync.core.errors import SplitError
from schemasync.schema.discovery import Discovery
from schemasync.schema.split import parse_dump, parse_qualified, render_piece, split_dump

DATA = Path(__file__).parent / "data"
DUMP = (DATA / "hardcases.dump.sql").read_text()
DISCOVERY = Discovery.from_json((DATA / "hardcases.discovery.json").read_text())


def rendered() -> dict[str, str]:
    result = split_dump(DUMP, DISCOVERY)
    return {path: render_piece(p, "hardcases", "test") for path, p in result.pieces.items()}


def statements(text: str) -> list[str]:
    """Non-comment, non-blank lines: what a database would execute."""
    return [line for line in text.splitlines() if line.strip() and not line.startswith("--")]


def test_every_statement_lands_in_exactly_one_file_and_nothing_is_invented() -> None:
    files = rendered()
    ignored = re.compile(r"(SET |SELECT pg_catalog\.set_config|\\(un)?restrict )")
    expected = sorted(line for line in statements(DUMP) if not ignored.match(line))
    produced = sorted(line for text in files.values() for line in statements(text))
    assert produced == expected


def test_table_files_hold_everything_that_belongs_to_the_table() -> None:
    files = rendered()
    users = files["users.sql"]
    for needle in [
        "CREATE TABLE public.users",
        "ADD GENERATED ALWAYS AS IDENTITY",  # identity sequence
        "users_pkey PRIMARY KEY",
        "CREATE UNIQUE INDEX users_lower_email_idx",  # expression index
        "CREATE INDEX users_active_idx ON public.users USING btree (company_id) WHERE",  # partial
        "users_company_email_idx ON public.users USING btree (company_id, email)",  # composite
        "users_company_id_fkey FOREIGN KEY (company_id) REFERENCES public.company(id) ON DELETE CASCADE",
        "ENABLE ROW LEVEL SECURITY",
        "CREATE POLICY users_same_company",
        "users_email_check CHECK",
    ]:
        assert needle in users, needle
    company = files["company.sql"]
    for needle in [
        "company_id_seq",
        "OWNED BY public.company.id",
        "SET DEFAULT nextval",
        "COMMENT ON TABLE",
        "COMMENT ON COLUMN public.company.name",
        "CREATE TRIGGER company_touch",
    ]:
        assert needle in company, needle
    assert "CREATE TABLE app.users" in files["app.users.sql"]
    assert "REFERENCES public.users(id)" in files["app.users.sql"]  # FK across schemas


def test_partitions_fold_into_their_parent() -> None:
    files = rendered()
    events = files["audit.events.sql"]
    assert "CREATE TABLE audit.events_2025" in events
    assert "ATTACH PARTITION audit.events_2026" in events
    assert "ALTER INDEX audit.events_at_idx ATTACH PARTITION audit.events_2025_at_idx" in events
    assert not any("events_2025" in path for path in files)


def test_free_standing_objects_get_a_file_each_in_a_folder_per_kind() -> None:
    files = rendered()
    assert "CREATE VIEW public.active_users" in files["views/active_users.sql"]
    assert "COMMENT ON VIEW public.active_users" in files["views/active_users.sql"]
    assert "CREATE MATERIALIZED VIEW" in files["materialized_views/company_counts.sql"]
    assert files["functions/add.sql"].count("CREATE FUNCTION public.add(") == 2  # overloads together
    assert "CREATE TYPE public.project_status AS ENUM" in files["types/project_status.sql"]
    assert "CREATE DOMAIN public.us_zip" in files["types/us_zip.sql"]
    assert "CREATE EXTENSION IF NOT EXISTS citext" in files["other/extension.citext.sql"]
    assert "COMMENT ON EXTENSION citext" in files["other/extension.citext.sql"]
    assert "CREATE SEQUENCE public.invoice_number_seq" in files["sequences/invoice_number_seq.sql"]


def test_quoted_names_get_their_own_safe_files() -> None:
    files = rendered()
    mixed = [p for p in files if p.startswith("MixedCase~")]
    spaced = [p for p in files if p.startswith("with_space~")]
    assert len(mixed) == 1 and len(spaced) == 1
    assert 'CREATE TABLE public."MixedCase"' in files[mixed[0]]
    assert "COMMENT ON TABLE public.\"with space\" IS 'a name; with; Type: tricks'" in files[spaced[0]]


def test_nothing_unstable_reaches_the_files() -> None:
    for path, text in rendered().items():
        for bad in (
            "\\restrict",
            "\\unrestrict",
            "Dumped from",
            "Dumped by",
            "Started on",
            "Completed on",
            "TOC entry",
            "Dependencies:",
            "SET statement_timeout",
            "OID",
        ):
            assert bad not in text, (path, bad)


def test_output_does_not_depend_on_the_restrict_key_or_versions() -> None:
    other = re.sub(r"\\(un)?restrict \S+", lambda m: m.group(0).split()[0] + " otherkey", DUMP)
    other = other.replace("15.18 (Debian", "15.99 (Debian").replace("-- Completed on 2026", "-- Completed on 2030")
    a = split_dump(DUMP, DISCOVERY)
    b = split_dump(other, DISCOVERY)
    assert {k: render_piece(v, "d", "t") for k, v in a.pieces.items()} == {
        k: render_piece(v, "d", "t") for k, v in b.pieces.items()
    }


def test_a_truncated_dump_is_refused() -> None:
    cut = DUMP[: len(DUMP) // 2]
    cut = cut[: cut.rfind("\n") + 1]
    with pytest.raises(SplitError, match=r"incomplete|missing"):
        split_dump(cut, DISCOVERY)


def test_a_table_missing_from_the_dump_is_refused() -> None:
    start = DUMP.index("--\n-- TOC entry 232 (class 1259")
    end = DUMP.index("--\n-- TOC entry", start + 5)
    with pytest.raises(SplitError, match="missing from the dump"):
        split_dump(DUMP[:start] + DUMP[end:], DISCOVERY)


def test_unknown_content_outside_entries_is_refused() -> None:
    text = DUMP.replace("SET row_security = off;\n", "SET row_security = off;\nDROP TABLE x;\n", 1)
    with pytest.raises(SplitError, match="unexpected line"):
        parse_dump(text)


def test_a_relation_discovery_did_not_see_is_refused() -> None:
    disc = Discovery.from_json((DATA / "hardcases.discovery.json").read_text())
    victim = next(oid for oid, r in disc.relations.items() if r.name == "active_users")
    del disc.relations[victim]
    with pytest.raises(SplitError, match="did not see"):
        split_dump(DUMP, disc)


def test_non_default_session_settings_follow_their_entry() -> None:
    text = DUMP.replace(
        "SET default_table_access_method = heap;\n",
        "SET default_tablespace = fast;\n\nSET default_table_access_method = heap;\n",
        1,
    )
    entries = parse_dump(text)
    with_setting = [e for e in entries if e.settings]
    assert with_setting and all(("default_tablespace", "fast") in e.settings for e in with_setting)


ident = st.text(st.characters(blacklist_characters="\x00", blacklist_categories=("Cs",)), min_size=1, max_size=20)


@given(ident, ident)
def test_parse_qualified_reads_back_quoted_identifiers(schema: str, name: str) -> None:
    def q(s: str) -> str:
        return '"' + s.replace('"', '""') + '"'

    text = f"{q(schema)}.{q(name)} ATTACH PARTITION"
    assert parse_qualified(text, 0)[:2] == (schema, name)


def test_discovery_document_read_row_by_row_is_what_json_reads() -> None:
    """read_document reads the big arrays row by row; the rest as json.loads does; blanks
    anywhere between tokens; anything malformed is an error that says so."""
    import json

    from schemasync.core.errors import SplitError
    from schemasync.schema.discovery import read_document

    text = (DATA / "hardcases.discovery.json").read_text()
    doc = json.loads(text)
    assert Discovery.from_dict(read_document(text)) == Discovery.from_dict(doc)
    spaced = json.dumps(doc, indent=2)  # a newline and blanks between every token
    assert Discovery.from_dict(read_document(spaced)) == Discovery.from_dict(doc)
    assert read_document(spaced)["matches"] == doc["matches"]  # not read row by row: as json reads it
    bad_row = json.dumps({**doc, "relations": [[1, "public"]]})  # a row of the wrong shape
    for broken in (text.rstrip()[:-1], text[:-200], text + "x", text.replace("[", "{", 1), "", bad_row):
        with pytest.raises(SplitError, match="could not be read"):
            read_document(broken)
