"""Secrets that pg_dump prints, replaced by a marker before anything is written. Pure.

pg_dump --schema-only prints some secrets verbatim when the dumping role may read them:
`OPTIONS (password '...')` of user mappings, foreign servers and foreign tables, and the
connection string of a subscription. Connection strings also hide in views and functions
(`dblink('host=... password=...')`). Each is found with PostgreSQL's own parser and lexer
(pglast), never by pattern-matching DDL, and only its value is replaced, so the statement still
loads: `password '<redacted>'`, `CONNECTION 'host=db password=<redacted>'`.

What counts as a secret:
- an option (`OPTIONS (name 'value')`, anywhere) whose name matches one of SECRET_OPTIONS or a
  name pattern the user adds in hosts.yaml (`redact: [api_token, "*_key"]`);
- the value of a libpq secret key (SECRET_CONNINFO_KEYS) in any string literal that is a
  connection string, key=value or postgresql:// URI, including literals inside function bodies;
- any text matching a regular expression the user adds as `/.../` in hosts.yaml.

The marker is constant, so a second refresh of the same database writes the same bytes.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from functools import cache

from schemasync.core.config import parse_pattern
from schemasync.core.names import escape_controls
from schemasync.schema.split import Piece

REDACTED = "<redacted>"

# Option names that carry secrets in the foreign data wrappers people use (postgres_fdw,
# mysql_fdw, oracle_fdw, tds_fdw, mongo_fdw, redis_fdw, jdbc_fdw, ...). Globs, case-insensitive.
SECRET_OPTIONS = ("*password*", "passwd", "*secret*", "*token*", "api_key", "apikey", "*_api_key")
# libpq's own secret connection keys (those it marks "*" for display).
SECRET_CONNINFO_KEYS = frozenset({"password", "sslpassword"})

# Cheap pre-check: a statement that holds none of these words has nothing the SQL step redacts.
_CANDIDATE_WORDS = ("options", "password", "connection")


@dataclass(frozen=True)
class Rules:
    """What to redact: option-name globs and regular expressions over the text."""

    names: tuple[str, ...] = SECRET_OPTIONS
    texts: tuple[tuple[int, re.Pattern[str]], ...] = ()  # (position in hosts.yaml's list, regex)

    def secret_name(self, name: str) -> bool:
        low = name.lower()
        return any(fnmatch.fnmatchcase(low, p) for p in self.names)


@cache
def rules_for(patterns: tuple[str, ...]) -> Rules:
    names, texts = list(SECRET_OPTIONS), []
    for n, p in enumerate(patterns, 1):
        parsed = parse_pattern(p)
        if isinstance(parsed, str):
            names.append(parsed)
        else:
            texts.append((n, parsed))
    return Rules(tuple(dict.fromkeys(names)), tuple(texts))


@dataclass(frozen=True)
class Finding:
    """One secret removed. The value is kept in memory only (to tell whether an earlier commit
    holds it); it is never printed, serialised or compared."""

    where: str  # "user mapping postgres SERVER remote_pg"
    what: str  # "option password", "connection string password", "pattern #1"
    secret: str = field(repr=False, compare=False)
    file: str = ""  # the output file it was removed from

    def describe(self) -> str:
        return f"{self.file}: {self.where}: {self.what}" if self.file else f"{self.where}: {self.what}"


def redact_sql(text: str, rules: Rules, where: str = "") -> tuple[str, list[Finding]]:
    """The text of one dump entry (one or more statements) with its secrets replaced."""
    findings: list[Finding] = []
    low = text.lower()
    if any(w in low for w in _CANDIDATE_WORDS):
        text = _redact_statements(text, rules, where, findings)
    text, more = redact_text(text, rules, where)
    return text, findings + more


def _redact_statements(text: str, rules: Rules, where: str, findings: list[Finding]) -> str:
    from pglast import parse_sql
    from pglast.parser import ParseError, scan

    try:
        tokens = scan(text)  # offsets in characters, as the parser's locations
    except ParseError:
        return text  # not SQL we can lex: the regex patterns still apply
    ends = {t.start: t.end + 1 for t in tokens}
    spans: dict[int, tuple[int, str]] = {}  # start -> (end, replacement)
    try:
        option_values = list(_option_values(parse_sql(text)))
    except ParseError:
        option_values = list(_option_values_by_tokens(tokens, text))
    for name, start, value in option_values:
        if start in ends and value != REDACTED and rules.secret_name(name):
            spans[start] = (ends[start], _quote(REDACTED, text[start : ends[start]]))
            findings.append(Finding(where, f"option {name}", value))
    for t in tokens:
        if t.name != "SCONST" or t.start in spans:
            continue
        literal = text[t.start : t.end + 1]
        value = _unquote(literal)
        if value is None:
            continue
        new_value, secrets = _redact_literal(value, rules, where, findings, nested=literal.startswith("$"))
        if secrets:
            spans[t.start] = (t.end + 1, _quote(new_value, literal))
    if not spans:
        return text
    out, pos = [], 0
    for start in sorted(spans):
        end, replacement = spans[start]
        out += [text[pos:start], replacement]
        pos = end
    out.append(text[pos:])
    return "".join(out)


def _redact_literal(value: str, rules: Rules, where: str, findings: list[Finding], nested: bool) -> tuple[str, int]:
    """A string constant: a connection string, or (dollar-quoted) a function body holding some."""
    new, found = redact_conninfo(value)
    if found:
        findings += [Finding(where, f"connection string {key}", secret) for key, secret in found]
        return new, len(found)
    if nested and "password" in value.lower():
        inner: list[Finding] = []
        new = _redact_statements(value, rules, where, inner)
        findings += inner
        return new, len(inner)
    return value, 0


def _option_values(stmts: Iterable) -> Iterable[tuple[str, int, str]]:
    """(option name, byte offset of its value, value) for every `name 'value'` option."""
    from pglast import ast
    from pglast.visitors import Visitor

    found: list[tuple[str, int, str]] = []

    class _Options(Visitor):
        def visit_DefElem(self, parent: object, node: ast.DefElem) -> None:
            loc = getattr(node, "arg_location", None)
            if isinstance(node.arg, ast.String) and loc is not None and loc >= 0:
                found.append((node.defname, loc, node.arg.sval))

    _Options()(stmts)
    return found


def _option_values_by_tokens(tokens: list, text: str) -> Iterable[tuple[str, int, str]]:
    """For a statement the parser does not know (a newer server's syntax): a name followed by a
    string constant inside parentheses that follow OPTIONS."""
    depth = 0
    for i, t in enumerate(tokens):
        if t.name == "OPTIONS" and i + 1 < len(tokens) and tokens[i + 1].name == "ASCII_40":
            depth = 1
            continue
        if not depth:
            continue
        if t.name == "ASCII_40":
            depth += 1
        elif t.name == "ASCII_41":
            depth -= 1
        elif t.name != "SCONST" and i + 1 < len(tokens) and tokens[i + 1].name == "SCONST":
            name = text[t.start : t.end + 1]
            name = name[1:-1].replace('""', '"') if name.startswith('"') else name.lower()
            nxt = tokens[i + 1]
            value = _unquote(text[nxt.start : nxt.end + 1])
            if value is not None:
                yield name, nxt.start, value


def _unquote(literal: str) -> str | None:
    """The value of a string constant as the lexer delimits it; None for forms left alone."""
    if literal.startswith("'") and literal.endswith("'") and len(literal) >= 2:
        return literal[1:-1].replace("''", "'")
    if literal[:2] in ("E'", "e'") and literal.endswith("'"):
        body = literal[2:-1]
        if re.search(r"\\[^\\']", body):
            return None  # octal, unicode or other escapes: not a form pg_dump writes
        return body.replace("\\\\", "\x00").replace("\\'", "'").replace("''", "'").replace("\x00", "\\")
    if literal.startswith("$"):
        tag_end = literal.find("$", 1)
        tag = literal[: tag_end + 1]
        if tag_end > 0 and literal.endswith(tag) and len(literal) >= 2 * len(tag):
            return literal[len(tag) : -len(tag)]
    return None


def _quote(value: str, like: str) -> str:
    """value as a string constant in the same form as `like`."""
    if like.startswith("$"):
        tag = like[: like.find("$", 1) + 1]
        return tag + value + tag
    if like[:2] in ("E'", "e'"):
        return "E'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
    return "'" + value.replace("'", "''") + "'"


# ---------------------------------------------------------------------------------------------
# libpq connection strings (not SQL: libpq's own key=value and URI syntax)

_URI = re.compile(r"(postgres(?:ql)?://)([^@/?#]*@)?([^?#]*)(\?[^#]*)?(#.*)?", re.S)


def redact_conninfo(value: str) -> tuple[str, list[tuple[str, str]]]:
    """A connection string with its secret keys' values replaced; ([], value) if it is none."""
    if value.startswith(("postgres://", "postgresql://")):
        return _redact_uri(value)
    spans = _conninfo_spans(value)
    if spans is None:
        return value, []
    found, out, pos = [], [], 0
    for key, start, end, secret in spans:
        if key.lower() in SECRET_CONNINFO_KEYS and secret != REDACTED:
            found.append((key, secret))
            out += [value[pos:start], REDACTED]
            pos = end
    out.append(value[pos:])
    return "".join(out), found


def _conninfo_spans(text: str) -> list[tuple[str, int, int, str]] | None:
    """libpq's conninfo_parse: `key = value` pairs, values bare or single-quoted with backslash
    escapes. (key, value start, value end, value) each; None if the text is not one."""
    spans, i, n = [], 0, len(text)
    while True:
        while i < n and text[i].isspace():
            i += 1
        if i >= n:
            break
        key_start = i
        while i < n and text[i] != "=" and not text[i].isspace():
            i += 1
        key = text[key_start:i]
        while i < n and text[i].isspace():
            i += 1
        if not key or i >= n or text[i] != "=" or not re.fullmatch(r"[a-z_]+", key):
            return None
        i += 1
        while i < n and text[i].isspace():
            i += 1
        start, chars = i, []
        if i < n and text[i] == "'":
            i += 1
            while True:
                if i >= n:
                    return None  # unterminated
                if text[i] == "\\" and i + 1 < n:
                    chars.append(text[i + 1])
                    i += 2
                elif text[i] == "'":
                    i += 1
                    break
                else:
                    chars.append(text[i])
                    i += 1
        else:
            while i < n and not text[i].isspace():
                if text[i] == "\\" and i + 1 < n:
                    i += 1
                chars.append(text[i])
                i += 1
        spans.append((key, start, i, "".join(chars)))
    return spans or None


def _redact_uri(value: str) -> tuple[str, list[tuple[str, str]]]:
    m = _URI.fullmatch(value)
    if not m:
        return value, []
    scheme, userinfo, rest, query, fragment = (g or "" for g in m.groups())
    found = []
    if ":" in userinfo:
        user, secret = userinfo[:-1].split(":", 1)
        if secret and secret != REDACTED:
            found.append(("password", secret))
            userinfo = f"{user}:{REDACTED}@"
    if query:
        params = []
        for param in query[1:].split("&"):
            key, eq, secret = param.partition("=")
            if eq and key.lower() in SECRET_CONNINFO_KEYS and secret != REDACTED:
                found.append((key, secret))
                param = f"{key}={REDACTED}"
            params.append(param)
        query = "?" + "&".join(params)
    return scheme + userinfo + rest + query + fragment, found


def redact_text(text: str, rules: Rules, where: str) -> tuple[str, list[Finding]]:
    """Text that is not SQL (a comment read from the catalog): the user's /regex/ patterns."""
    findings = []
    for n, pattern in rules.texts:
        if pattern.search(text):
            findings += [Finding(where, f"redact pattern #{n}", m.group(0)) for m in pattern.finditer(text)]
            text = pattern.sub(REDACTED, text)
    return text, findings


def redact_pieces(pieces: Iterable[Piece], rules: Rules) -> list[Finding]:
    """Redact every entry of the split dump in place; the findings name the file and the entry."""
    findings: list[Finding] = []
    for piece in pieces:
        for entry in piece.entries:
            where = escape_controls(f"{entry.type.lower()} {entry.tag}")
            entry.body, found = redact_sql(entry.body, rules, where)
            findings += [replace(f, file=piece.path) for f in found]
    return findings


def earlier_copies(findings: list[Finding], previous: dict[str, str | None]) -> list[str]:
    """Files whose current version (on disk, so most likely committed) holds a secret in the clear."""
    return sorted({f.file for f in findings if (old := previous.get(f.file)) and f.secret and f.secret in old})
