"""Redaction of secrets in dump text (pure): options, connection strings, user patterns."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from schemasync.core.config import parse_config
from schemasync.core.errors import ConfigError
from schemasync.schema.redact import REDACTED, redact_conninfo, redact_sql, rules_for

DEFAULT = rules_for(())


def test_user_mapping_and_server_passwords() -> None:
    sql = (
        "CREATE USER MAPPING FOR app SERVER srv OPTIONS (\n    \"user\" 'app',\n    password 'p''w€'\n);\n"
        "ALTER SERVER s OPTIONS (SET password 'x2', ADD sslpassword 'x3', DROP host);\n"
    )
    out, found = redact_sql(sql, DEFAULT, "m")
    assert out == (
        "CREATE USER MAPPING FOR app SERVER srv OPTIONS (\n    \"user\" 'app',\n    password '<redacted>'\n);\n"
        "ALTER SERVER s OPTIONS (SET password '<redacted>', ADD sslpassword '<redacted>', DROP host);\n"
    )
    assert [f.what for f in found] == ["option password", "option password", "option sslpassword"]
    assert "p'w€" not in repr(found)  # the value is never in a finding's repr


def test_subscription_connection_strings() -> None:
    sql = (
        "CREATE SUBSCRIPTION s CONNECTION 'host=a password = ''it s'' port=5 sslpassword=k\\\\ey' "
        "PUBLICATION p WITH (connect = false);"
    )
    out, found = redact_sql(sql, DEFAULT)
    assert "CONNECTION 'host=a password = <redacted> port=5 sslpassword=<redacted>'" in out
    assert sorted(f.what for f in found) == ["connection string password", "connection string sslpassword"]


def test_uri_connection_strings() -> None:
    assert redact_conninfo("postgresql://u:s%40cret@h:5/db?sslmode=require&password=x")[0] == (
        "postgresql://u:<redacted>@h:5/db?sslmode=require&password=<redacted>"
    )
    assert redact_conninfo("postgres://h/db")[1] == []


def test_connection_strings_inside_function_bodies_and_views() -> None:
    sql = (
        "CREATE FUNCTION f() RETURNS void LANGUAGE plpgsql\n"
        "    AS $_$ BEGIN PERFORM dblink_connect('c', 'host=x password=''a b'''); END $_$;\n"
        "CREATE VIEW v AS SELECT * FROM dblink('dbname=d password=z'::text, 'q'::text) t(n integer);\n"
    )
    out, found = redact_sql(sql, DEFAULT)
    assert "dblink_connect('c', 'host=x password=<redacted>')" in out
    assert "dblink('dbname=d password=<redacted>'::text" in out
    assert len(found) == 2


def test_ordinary_literals_and_options_are_left_alone() -> None:
    sql = (
        "CREATE TABLE t (a text DEFAULT 'password', b text CHECK (b <> 'x=1'));\n"
        "CREATE SERVER s FOREIGN DATA WRAPPER w OPTIONS (host 'h', port '5432', dbname 'password');\n"
        "COMMENT ON TABLE t IS 'the password column is hashed';\n"
    )
    assert redact_sql(sql, DEFAULT) == (sql, [])


def test_user_patterns_names_and_regexes() -> None:
    rules = rules_for(("vendor_*", "/sk_live_[0-9a-z]+/"))
    sql = "CREATE FOREIGN TABLE t (a int) SERVER s OPTIONS (vendor_key 'v1', table_name 'x');\n" + (
        "COMMENT ON TABLE t IS 'use sk_live_abc9 here';\n"
    )
    out, found = redact_sql(sql, rules, "t")
    assert "vendor_key '<redacted>'" in out and "'use <redacted> here'" in out and "table_name 'x'" in out
    assert [f.what for f in found] == ["option vendor_key", "redact pattern #2"]


def test_statement_the_parser_does_not_know_still_redacts_options() -> None:
    sql = "CREATE SERVER s FOREIGN DATA WRAPPER w FUTURE SYNTAX HERE OPTIONS (password 'zz');\n"
    out, found = redact_sql(sql, DEFAULT)
    assert out.endswith("OPTIONS (password '<redacted>');\n") and len(found) == 1


@pytest.mark.parametrize(
    "pattern, message",
    [("/(/", "invalid regular expression"), ("/a*/", "matches the empty string"), ("two words", "no spaces")],
)
def test_bad_patterns_are_configuration_errors(pattern: str, message: str, tmp_path: Path) -> None:
    data = {"hosts": {"dev": {"ssh": "h", "database": "d", "redact": [pattern]}}}
    with pytest.raises(ConfigError, match=message):
        parse_config(data, tmp_path / "hosts.yaml")


_values = st.text(alphabet=st.characters(blacklist_categories=["Cs"], blacklist_characters="\x00"), min_size=1)
_keys = st.sampled_from(["host", "port", "dbname", "user", "sslmode", "application_name"])


def _quote_conninfo(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


@given(
    others=st.lists(st.tuples(_keys, _values), max_size=4),
    secret=_values.filter(lambda v: len(v) > 2),
    key=st.sampled_from(["password", "sslpassword"]),  # libpq keys are lower-case
    at=st.integers(0, 4),
)
def test_property_a_conninfo_secret_never_survives(others: list, secret: str, key: str, at: int) -> None:
    pairs = [f"{k}={_quote_conninfo(v)}" for k, v in others]
    pairs.insert(min(at, len(pairs)), f"{key}={_quote_conninfo(secret)}")
    conninfo = " ".join(pairs)
    out, found = redact_conninfo(conninfo)
    assert [s for _, s in found] == [secret]
    assert f"{key}={REDACTED}" in out
    for k, v in others:  # everything else is kept exactly
        assert f"{k}={_quote_conninfo(v)}" in out
    assert redact_conninfo(out) == (out, [])  # stable: a second refresh changes nothing
    sql = f"CREATE SUBSCRIPTION s CONNECTION '{conninfo.replace(chr(39), chr(39) * 2)}' PUBLICATION p;"
    redacted, _ = redact_sql(sql, DEFAULT)
    assert redact_sql(redacted, DEFAULT) == (redacted, [])
