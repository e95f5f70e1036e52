from __future__ import annotations

import re
import shlex
import subprocess
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from schemasync.core.config import HostConfig
from schemasync.transport import remote_script
from schemasync.transport.remote_script import (
    build_script,
    dump_pattern,
    early_selection,
    glob_to_regex,
    pgpass_line,
    selection_words,
)


def host(**kw: object) -> HostConfig:
    base = {"name": "t", "ssh": "x", "database": "db", "output": Path("/tmp/out")}
    base.update(kw)
    return HostConfig(**base)  # type: ignore[arg-type]


@given(st.text(st.characters(blacklist_characters="\x00*?", blacklist_categories=("Cs",)), max_size=30))
def test_glob_without_wildcards_matches_only_itself(text: str) -> None:
    rx = glob_to_regex(text)
    assert re.fullmatch(rx[1:-1], text, flags=re.S)


def test_glob_wildcards() -> None:
    rx = glob_to_regex("tmp_*")[1:-1]
    assert re.fullmatch(rx, "tmp_x") and re.fullmatch(rx, "tmp_") and not re.fullmatch(rx, "xtmp_a")
    assert re.fullmatch(glob_to_regex("a?c")[1:-1], "abc") and not re.fullmatch(glob_to_regex("a.c")[1:-1], "abc")


def test_pgpass_escaping() -> None:
    assert pgpass_line("a:b\\c") == "*:*:*:*:a\\:b\\\\c"


def test_the_password_is_in_the_script_body_never_in_the_command() -> None:
    from schemasync.transport.protocol import REMOTE_COMMAND

    script = build_script(host(), "full", password="s3cret-pw")
    assert "s3cret-pw" in script
    assert "s3cret-pw" not in REMOTE_COMMAND


def test_hostile_values_stay_data_in_the_script(tmp_path: Path) -> None:
    evil = "x'; touch " + str(tmp_path / "pwned") + "; echo '$(touch " + str(tmp_path / "pwned2") + ")"
    script = build_script(host(database=evil, db_user=evil, pg_bin=evil), "table", table=evil)
    header = script.split("ss_write_sql()")[0]
    # Run only the generated header and print the values back.
    out = subprocess.run(
        ["sh", "-c", header + '\nprintf "%s\\n" "$PGDATABASE" "$PGUSER" "$SS_PG_BIN"'],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert out.splitlines() == [evil, evil, evil]
    assert not (tmp_path / "pwned").exists() and not (tmp_path / "pwned2").exists()
    assert shlex.quote(evil) in script


@given(
    st.lists(st.text(st.characters(blacklist_characters="\x00", blacklist_categories=("Cs",)), max_size=12), max_size=4)
)
def test_selection_words_are_what_the_shell_reads_back(words: list[str]) -> None:
    """The early-dump guess is compared with discovery's selection as text, and run with eval."""
    out = subprocess.run(
        ["sh", "-c", 'eval "set -- $1"; for a in "$@"; do printf "%s\\0" "$a"; done', "sh", selection_words(words)],
        capture_output=True,
        check=True,
    ).stdout
    assert out.decode().split("\0")[:-1] == words


def test_early_selection_guesses() -> None:
    assert early_selection(host(schemas=["public"]), "table", "users") == ["-t", '"public"."users"']
    assert early_selection(host(schemas=["*"]), "table", "audit.events") == ["-t", '"audit"."events"']
    assert early_selection(host(schemas=["app"]), "table", "Users") == ["-t", '"app"."Users"']
    assert early_selection(host(schemas=["a", "b"]), "table", "t") is None  # no good guess
    assert early_selection(host(schemas=["b", "a"]), "full") == ["-n", '"a"', "-n", '"b"']
    # globs pg_dump reads alike go to it as its own patterns, exact names first
    assert early_selection(host(schemas=["app_*"]), "full") == ["-n", "app_*"]
    assert early_selection(host(schemas=["tenant_*", "public"]), "full") == ["-n", '"public"', "-n", "tenant_*"]
    assert early_selection(host(schemas=["p*"]), "full") is None  # could match pg_catalog
    assert early_selection(host(schemas=["App_*"]), "full") is None  # pg_dump folds unquoted case
    assert early_selection(host(schemas=["*"], exclude=["tmp_*"]), "full") is None
    assert early_selection(host(schemas=["*"]), "list") is None
    assert early_selection(host(command_prefix="sudo -u postgres"), "full") is None
    assert selection_words(["-t", dump_pattern("public", "it's")]) == "'-t' '\"public\".\"it'\"'\"'s\"'"


@given(quick=st.text(max_size=40), since=st.text(max_size=20))
def test_the_last_refresh_stamps_reach_the_script_only_in_their_own_form(quick: str, since: str) -> None:
    script = build_script(host(), "full", ask=True, expect_quick=quick, since=since)
    header = script.split("ss_write_sql()")[0]
    quick_ok = re.fullmatch(r"-?[0-9]+:-?[0-9]+", quick) is not None
    assert ("SS_QUICK_EXPECT=" in header) == quick_ok
    # the guess needs both: where the written rows start, and the check they are compared with
    assert ("SS_SINCE=" in header) == (quick_ok and re.fullmatch(r"[0-9]{1,10}", since) is not None)


def test_the_stamps_are_read_back_by_the_shell() -> None:
    script = build_script(host(), "full", ask=True, expect_quick="12:-34", since="4294967295")
    header = script.split("ss_write_sql()")[0]
    out = subprocess.run(
        ["sh", "-c", header + '\nprintf "%s\\n" "$SS_QUICK_EXPECT" "$SS_SINCE"'], capture_output=True, text=True
    )
    assert out.stdout.splitlines() == ["12:-34", "4294967295"]


def test_the_quick_check_sums_every_catalog_the_fingerprint_of_everything_else_hashes() -> None:
    """The two lists discover.sql once kept by hand are one (OID_CATALOGS): a catalog the
    fingerprint of everything else reads and the quick check does not would let a change there
    go unseen by an unchanged refresh."""
    raw = remote_script._remote_text("discover.sql")
    assert [raw.count(f"    __{p}_CATALOGS__\n") for p in ("QUICK", "ELSE")] == [1, 1]  # a line each, nowhere else
    sql = remote_script.discovery_text()
    assert "__" not in sql.replace("__PARAMS__", "")  # every placeholder filled in
    comments = lambda text: [ln for ln in text.splitlines() if ln.startswith("--")]  # noqa: E731
    assert comments(sql) == comments(raw)
    quick = sql[sql.index("SELECT sum(n) || ':' || sum(h) AS ss_quick") : sql.index(") AS quick(n, h)")]
    fp_else = sql[sql.index("fp_else(tok) AS (") : sql.index("-- pg_dump's selection")]
    read = lambda text: set(re.findall(r"\bFROM (pg_\w+)", text))  # noqa: E731
    assert read(fp_else) - {"pg_class", "pg_attribute", "pg_constraint", "pg_depend", "pg_description"} <= read(quick)
    assert {c for c, _, _ in remote_script.OID_CATALOGS} <= read(quick) & read(fp_else)
    letters = [k for _, k, _ in remote_script.OID_CATALOGS]
    assert len(letters) == len(set(letters))  # each catalog's tokens its own
