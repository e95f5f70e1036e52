"""What a piece of SQL names, read from PostgreSQL's own parse tree (pglast): the relations, columns,
functions, types and sequences a view, a function body, a default or a policy uses, each with the
offset where it is named. Pure: a parse tree in, references out.

Names are resolved the way the schema's files spell them: pg_dump qualifies relations in view
definitions, while function bodies are written as their authors wrote them (unqualified names are
looked up on the search path, `public` first).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

# A target is what can be depended on, as a tuple:
#   ("relation", schema, name) / ("column", schema, table, column) / ("type", schema, name)
#   ("sequence", schema, name) / ("function", schema, name)
Target = tuple[str, ...]


@dataclass(frozen=True)
class Ref:
    target: Target
    offset: int  # where in the text it is named (-1: nowhere in particular)


# Resolves a relation name as written (schema or None, name) to the (schema, name) it means, or None.
Resolver = Callable[[str | None, str], "tuple[str, str] | None"]
# The columns of a relation, for unqualified column names.
ColumnsOf = Callable[[tuple[str, str]], "frozenset[str]"]


def walk(node: Any) -> Iterator[tuple[str, dict]]:
    """Every (node type, node) in a parse tree, depth first."""
    stack = [node]
    while stack:
        n = stack.pop()
        if isinstance(n, dict):
            for k, v in n.items():
                if isinstance(v, dict):
                    if k[:1].isupper():
                        yield k, v
                    elif k == "typeName":  # the one node a field holds unwrapped that names something
                        yield "TypeName", v
                    stack.append(v)
                elif isinstance(v, list):
                    stack.extend(v)
        elif isinstance(n, list):
            stack.extend(n)


def strings(items: list | None) -> list[str]:
    return [i["String"]["sval"] for i in items or [] if "String" in i]


def _qualify(names: list[str]) -> tuple[str | None, str]:
    return (names[-2] if len(names) > 1 else None, names[-1])


BUILTIN_SCHEMAS = frozenset({"pg_catalog", "information_schema"})


def expression_refs(
    tree: Any,
    resolve: Resolver,
    columns_of: ColumnsOf,
    own: tuple[str, str] | None = None,
    pseudo: dict[str, tuple[str, str]] | None = None,
) -> list[Ref]:
    """References in an expression or a query. `own`: the table whose columns an unqualified name
    means first (a default, a check, an index, a policy); `pseudo`: names such as NEW and OLD that
    stand for a table's row."""
    refs: list[Ref] = []
    aliases: dict[str, tuple[str, str]] = dict(pseudo or {})
    scope: list[tuple[str, str]] = [own] if own else []
    ctes = {c["ctename"] for _, c in walk(tree) if "ctename" in c} if isinstance(tree, dict) else set()
    for kind, node in walk(tree):
        if kind == "RangeVar":
            if node.get("schemaname") is None and node["relname"] in ctes:
                continue
            rel = resolve(node.get("schemaname"), node["relname"])
            if rel is None:
                continue
            refs.append(Ref(("relation", *rel), node.get("location", -1)))
            scope.append(rel)
            aliases[(node.get("alias") or {}).get("aliasname") or node["relname"]] = rel
    for kind, node in walk(tree):
        if kind in ("InsertStmt", "UpdateStmt"):
            refs.extend(_written_columns(node, resolve))
        if kind == "ColumnRef":
            refs.extend(_column_ref(node, aliases, scope, columns_of))
        elif kind == "FuncCall":
            schema, name = _qualify(strings(node.get("funcname")))
            if schema not in BUILTIN_SCHEMAS:
                refs.append(Ref(("function", schema or "", name), node.get("location", -1)))
            refs.extend(_sequence_arg(node, resolve))
        elif kind == "TypeName":
            schema, name = _qualify(strings(node.get("names")))
            if schema not in BUILTIN_SCHEMAS:
                refs.append(Ref(("type", schema or "", name), node.get("location", -1)))
    return refs


def _written_columns(node: dict, resolve: Resolver) -> list[Ref]:
    """`INSERT INTO t (a, b)` and `UPDATE t SET a = ...`: the columns written, named as targets."""
    rel = resolve(node["relation"].get("schemaname"), node["relation"]["relname"])
    if rel is None:
        return []
    targets = node.get("cols") or node.get("targetList") or []
    return [
        Ref(("column", *rel, t["ResTarget"]["name"]), t["ResTarget"].get("location", -1))
        for t in targets
        if "ResTarget" in t and t["ResTarget"].get("name")
    ]


def _column_ref(node: dict, aliases: dict, scope: list, columns_of: ColumnsOf) -> list[Ref]:
    fields = node.get("fields", [])
    names = strings(fields)
    loc = node.get("location", -1)
    if len(names) != len(fields):  # `t.*` or `*`: every column, none by name
        return []
    if len(names) >= 2 and names[-2] in aliases:
        rel = aliases[names[-2]]
        return [Ref(("column", *rel, names[-1]), loc)]
    if len(names) >= 2 and names[0] in aliases:  # `NEW.payload` and a field of it
        return [Ref(("column", *aliases[names[0]], names[1]), loc)]
    if len(names) == 1:
        for rel in scope:
            if names[0] in columns_of(rel):
                return [Ref(("column", *rel, names[0]), loc)]
    return []


def _sequence_arg(node: dict, resolve: Resolver) -> list[Ref]:
    """`nextval('public.s'::regclass)`: the sequence, named in a string."""
    if strings(node.get("funcname"))[-1:] not in (["nextval"], ["currval"], ["setval"]):
        return []
    for _, arg in walk({"args": node.get("args")}):
        const = arg.get("sval")
        if isinstance(const, dict) and "sval" in const:
            parts = const["sval"].split(".")
            rel = resolve(parts[0] if len(parts) > 1 else None, parts[-1].strip('"'))
            if rel:
                return [Ref(("sequence", *rel), node.get("location", -1))]
    return []


@dataclass
class BodyRefs:
    """A function body's references, each with the line of the body it is on (1: the first)."""

    refs: list[tuple[Ref, int]]
    dynamic: list[int]  # lines that run SQL built at run time: not checked


def plpgsql_refs(
    create_function: str, resolve: Resolver, columns_of: ColumnsOf, row: tuple[str, str] | None
) -> BodyRefs:
    """The statements of a PL/pgSQL body: each embedded query parsed on its own."""
    from pglast.parser import ParseError, parse_plpgsql_json

    out = BodyRefs([], [])
    try:
        tree = json.loads(parse_plpgsql_json(create_function))
    except ParseError:
        out.dynamic.append(1)
        return out
    pseudo = {"new": row, "old": row} if row else {}
    for kind, node in _walk_lines(tree):
        line = node.get("lineno", 1)
        if kind in ("PLpgSQL_stmt_dynexecute", "PLpgSQL_stmt_dynfors") or (
            kind == "PLpgSQL_stmt_open" and node.get("dynquery")
        ):
            out.dynamic.append(line)
        for query in _queries(node):
            for ref in sql_text_refs(query, resolve, columns_of, pseudo):
                out.refs.append((Ref(ref.target, -1), line))
    return out


def _walk_lines(tree: Any) -> Iterator[tuple[str, dict]]:
    for kind, node in walk(tree):
        if kind.startswith("PLpgSQL_stmt"):
            yield kind, node


def _queries(stmt: Any) -> Iterator[tuple[str, int]]:
    """The queries a statement holds itself (a nested statement's come with it, from the walk)."""
    if isinstance(stmt, list):
        for item in stmt:
            yield from _queries(item)
        return
    if not isinstance(stmt, dict):
        return
    for key, value in stmt.items():
        if key.startswith("PLpgSQL_stmt"):
            continue
        if key == "PLpgSQL_expr":
            yield value["query"], value.get("parseMode", 0)
        elif isinstance(value, (dict, list)):
            yield from _queries(value)


def sql_text_refs(
    query: tuple[str, int], resolve: Resolver, columns_of: ColumnsOf, pseudo: dict | None = None
) -> list[Ref]:
    """References in a query a PL/pgSQL body holds as text (mode 0: a statement; otherwise an
    expression, or `target := expression`)."""
    from pglast.parser import ParseError, parse_sql_json

    text, mode = query
    if mode != 0:
        if mode >= 3 and ":=" in text:
            target, text = text.split(":=", 1)
            head = target.strip().split(".")
            pseudo_row = (pseudo or {}).get(head[0].lower()) if len(head) == 2 else None
            lead = [Ref(("column", *pseudo_row, head[1]), -1)] if pseudo_row else []
        else:
            lead = []
        text = "SELECT " + text
    else:
        lead = []
    try:
        tree = json.loads(parse_sql_json(text))
    except ParseError:
        return lead
    return lead + expression_refs(tree, resolve, columns_of, pseudo=pseudo)
