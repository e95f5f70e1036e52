"""Working with pglast's parse trees and the text they came from: a statement's own source
text for a node, the tokens that continue a clause, node keys that compare by meaning, and the
small unwrapping every reader of a tree needs.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any


class _Source:
    """A file's text with its lexer tokens, for the text of expressions and types."""

    def __init__(self, text: str) -> None:
        self.text = text
        self._tokens: list | None = None

    @property
    def tokens(self) -> list:
        if self._tokens is None:
            from pglast.parser import scan

            self._tokens = scan(self.text)
            self._starts = {t.start: i for i, t in enumerate(self._tokens)}
        return self._tokens

    def statements(self, unparsed: list[str]) -> Iterator[tuple[dict, str]]:
        """Each statement's parse tree and text; what does not parse goes to `unparsed`."""
        from pglast.parser import ParseError, parse_sql_json, split

        try:
            doc = json.loads(parse_sql_json(self.text))
            for raw in doc.get("stmts", []):
                start = raw.get("stmt_location", 0)
                yield (
                    raw["stmt"],
                    self.text[start : start + raw["stmt_len"]] if raw.get("stmt_len") else self.text[start:],
                )
            return
        except ParseError:
            pass
        # one statement the parser does not know: parse the others one by one
        try:
            pieces = split(self.text, with_parser=False)
        except ParseError:
            unparsed.append(self.text.strip())
            return
        offset = 0
        for piece in pieces:
            try:
                doc = json.loads(parse_sql_json(piece))
            except ParseError:
                unparsed.append(piece.strip())
                continue
            for raw in doc.get("stmts", []):
                yield _shift(raw["stmt"], self.text.find(piece, offset)), piece.strip()
            offset = self.text.find(piece, offset) + len(piece)

    def span(self, node: Any, stop_words: frozenset[str] = frozenset()) -> str:
        """The text pg_dump wrote for an expression (or a type): from its first token to where the
        enclosing list or clause goes on (a comma, a closing parenthesis, `;`, or a stop word)."""
        start = _min_location(node)
        if start is None:
            return ""
        tokens = self.tokens
        i = self._starts.get(start)
        if i is None:
            return ""
        j = _walk(tokens, i, stop_words)
        # The first token may sit inside parentheses that belong to the expression: `(a + b) * c`.
        # Such a group ends where the walk stopped, and an operator follows it.
        while (
            i > 0
            and tokens[i - 1].name == "ASCII_40"
            and j + 1 < len(tokens)
            and tokens[j].name == "ASCII_41"
            and tokens[j + 1].name in _CONTINUES
        ):
            i -= 1
            j = _walk(tokens, j + 1, stop_words)
        text = self.text[tokens[i].start : tokens[j - 1].end + 1] if j > i else ""
        return _strip_parens(text)


# Tokens after a parenthesised group that make it part of a longer expression.
_CONTINUES = frozenset(
    {"Op", "ASCII_42", "ASCII_43", "ASCII_45", "ASCII_47", "ASCII_37", "ASCII_94", "ASCII_60", "ASCII_62",
     "ASCII_61", "TYPECAST", "LESS_EQUALS", "GREATER_EQUALS", "NOT_EQUALS", "AND", "OR", "IS", "IN_P", "LIKE",
     "ILIKE", "SIMILAR", "BETWEEN", "AT", "ASCII_91"}
)  # fmt: skip


def _walk(tokens: list, i: int, stop_words: frozenset[str]) -> int:
    """Index of the first token after the expression starting at i (depth-aware)."""
    depth, j = 0, i
    while j < len(tokens):
        t = tokens[j]
        if t.name in ("ASCII_40", "ASCII_91"):
            depth += 1
        elif t.name in ("ASCII_41", "ASCII_93"):
            if depth == 0:
                break
            depth -= 1
        elif depth == 0 and (t.name in ("ASCII_44", "ASCII_59") or t.name in stop_words):
            break
        j += 1
    return j


def _strip_parens(text: str) -> str:
    """Parentheses that wrap the whole expression are pg_dump's layout, not part of it."""
    while text.startswith("(") and text.endswith(")"):
        depth = 0
        for k, ch in enumerate(text):
            depth += ch == "("
            depth -= ch == ")"
            if depth == 0 and k < len(text) - 1:
                return text
        text = text[1:-1].strip()
    return text


def _min_location(node: Any) -> int | None:
    best = None
    stack = [node]
    while stack:
        n = stack.pop()
        if isinstance(n, dict):
            for k, v in n.items():
                if k == "location" and isinstance(v, int) and v >= 0:
                    best = v if best is None else min(best, v)
                elif isinstance(v, (dict, list)):
                    stack.append(v)
        elif isinstance(n, list):
            stack.extend(n)
    return best


def _shift(node: Any, by: int) -> Any:
    if isinstance(node, dict):
        return {
            k: (v + by if k in _POSITIONS and isinstance(v, int) and v >= 0 else _shift(v, by)) for k, v in node.items()
        }
    if isinstance(node, list):
        return [_shift(v, by) for v in node]
    return node


# Fields of the parse tree that are offsets into the text, not meaning.
_POSITIONS = frozenset({"location", "arg_location", "list_start", "list_end"})


_OFFSETS = _POSITIONS | {"stmt_location", "stmt_len"}


def _unqualified_single_table(select: dict) -> dict:
    select = {k: _default_names_out(v) for k, v in select.items()}
    from_clause = select.get("fromClause") or []
    if len(from_clause) != 1 or "RangeVar" not in from_clause[0]:
        return select
    rel = from_clause[0]["RangeVar"]
    name = (rel.get("alias") or {}).get("aliasname") or rel.get("relname")

    def strip(n: Any) -> Any:
        if isinstance(n, list):
            return [strip(v) for v in n]
        if not isinstance(n, dict):
            return n
        if "SelectStmt" in n:
            return n  # a subquery: its own FROM decides
        if "ColumnRef" in n:
            fields = n["ColumnRef"].get("fields", [])
            if len(fields) == 2 and fields[0].get("String", {}).get("sval") == name:
                return {"ColumnRef": {**n["ColumnRef"], "fields": fields[1:]}}
        return {k: strip(v) for k, v in n.items()}

    return {k: (v if k == "fromClause" else strip(v)) for k, v in select.items()}


def _key(node: Any) -> str:
    """A parse tree without locations: equal for the same SQL however it is laid out."""

    def strip(n: Any) -> Any:
        if isinstance(n, dict):
            return {k: strip(v) for k, v in n.items() if k not in _OFFSETS}
        if isinstance(n, list):
            return [strip(v) for v in n]
        return n

    return json.dumps(strip(node), sort_keys=True, separators=(",", ":"))


def _unwrap(node: dict, name: str) -> dict:
    """A node, whether the tree wraps it in its type name or not (it varies by field)."""
    return node.get(name, node)


def _qualified(rel: dict) -> str:
    schema = rel.get("schemaname")
    return f"{schema}.{rel['relname']}" if schema else rel["relname"]


def _default_names_out(node: Any) -> Any:
    """What server versions write differently for the same thing, made alike:
    - NOT NULL constraints named `<table>_<column>_not_null`, the default name, as unnamed (pg_dump
      18 writes the name on partitions, which inherit the parent's; older ones never do);
    - in a query over one table, `users.id` and `id` (PostgreSQL 16 stopped qualifying columns in
      view definitions when the query reads a single table)."""
    if isinstance(node, list):
        return [_default_names_out(v) for v in node]
    if not isinstance(node, dict):
        return node
    if "SelectStmt" in node:
        return {"SelectStmt": _unqualified_single_table(node["SelectStmt"])}
    if "ColumnDef" in node:
        col = node["ColumnDef"]
        suffix = f"_{col.get('colname')}_not_null"
        cons = [
            {"Constraint": {k: v for k, v in c["Constraint"].items() if k != "conname"}}
            if c.get("Constraint", {}).get("contype") == "CONSTR_NOTNULL"
            and str(c["Constraint"].get("conname", "")).endswith(suffix)
            else c
            for c in col.get("constraints", [])
        ]
        return {"ColumnDef": {**col, "constraints": cons}} if cons else node
    return {k: _default_names_out(v) for k, v in node.items()}
