"""Schema-per-tenant: many schemas of one shape, written once, and the few that differ said. Pure.

With `tenants: {schemas: "tenant_*", template: tenant_0001}` in hosts.yaml, the files of every
matching schema are compared with each other with each tenant's own name taken out (`quick_key`;
PostgreSQL's lexer where the name is part of a longer word, and to say what differs). The
template's files (the `template:` schema, else one of the most common shape) are written once
under `tenant/`; every other tenant is counted as the same, or listed with what differs, in the
words `diff` uses.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from dataclasses import dataclass, field, replace

from schemasync.core.config import TenantSpec
from schemasync.core.names import escape_controls, name_part, quote_ident
from schemasync.schema.changes import Change, compare_files
from schemasync.schema.split import Piece

PLACEHOLDER = "tenant"  # what a tenant's own schema name becomes, for comparing
SHOWN = 50  # deviants named in a commit message or listed in full in _tenants.md before "and N more"


TENANTS_FILE = "_tenants.md"  # a host with tenant schemas: how many, and what differs


# casts whose string constant names a catalog object, schema-qualified: nextval('s.seq'::regclass)
_REG_TYPES = {"regclass", "regproc", "regprocedure", "regtype", "regoper", "regoperator", "regconfig", "regcollation"}


_COMMENTS = {"SQL_COMMENT", "C_COMMENT"}  # the lexer reports comments as tokens too


def rename_schema(text: str, old: str, new: str) -> str:
    """`old.x` written as `new.x` wherever `old` is an identifier that qualifies a name (quoted or
    not), or names the schema itself (`CREATE SCHEMA old`), or qualifies the name inside an object
    reference literal (`nextval('old.seq'::regclass)`); found with PostgreSQL's lexer. Other string
    constants, comments and names are untouched."""
    return _renamed(text, old, new, tokens_only=False)


def shape_key(text: str, schema: str) -> str:
    """A file's statements as PostgreSQL's lexer reads them, the schema's own name taken out:
    comments (pg_dump's `-- Name: ...; Schema: tenant_0042` lines among them) and layout do not
    count; everything else, function bodies included, does."""
    return _renamed(text, schema, PLACEHOLDER, tokens_only=True)


def quick_key(text: str, schema: str) -> str:
    """What the tenants are compared by: the text with the schema's own name, wherever it stands as
    a whole word (qualifying names, in pg_dump's `-- Name: ...; Schema: tenant_0042` lines, in a
    comment that names the tenant), replaced by one mark. Two tenants that differ only in where
    each names itself are the same shape; any other difference, a reference to another tenant's
    schema included, is a difference. Where the name also occurs inside a longer word, the lexer
    decides (`shape_key`). Plain string operations: a 20,000-table dump is compared in well under
    a second, where the lexer takes seconds."""
    at = text.find(schema)
    while at != -1:
        end = at + len(schema)
        if (at and _word_char(text[at - 1])) or (end < len(text) and _word_char(text[end])):
            return shape_key(text, schema)
        at = text.find(schema, end)
    return text.replace(schema, "\x00")  # no SQL text holds a NUL


def _word_char(ch: str) -> bool:
    return ch.isalnum() or ch in "_$"


def _renamed(text: str, old: str, new: str, tokens_only: bool) -> str:
    if old not in text and not tokens_only:
        return text
    from pglast.parser import ParseError, scan  # here: every command imports this module, few lex

    try:
        tokens = scan(text)
    except ParseError:
        return text

    def piece(start: int, end: int) -> str:  # the lexer's offsets count characters
        return text[start : end + 1]

    out: list[str] = []
    last = 0
    count = len(tokens)
    for i, tok in enumerate(tokens):
        kind = tok.name
        if kind in _COMMENTS:
            continue
        raw = piece(tok.start, tok.end)
        replacement = raw
        if old in raw:  # cheap: most tokens cannot be the schema's name
            after = tokens[i + 1].name if i + 1 < count else ""
            if kind == "IDENT" and (after == "ASCII_46" or (i > 0 and tokens[i - 1].name == "SCHEMA")):
                name = raw[1:-1].replace('""', '"') if raw.startswith('"') else raw.lower()
                if name == old:
                    replacement = quote_ident(new)
            elif (
                kind == "SCONST"
                and after == "TYPECAST"
                and raw.startswith("'")
                and i + 2 < count
                and piece(tokens[i + 2].start, tokens[i + 2].end).lower() in _REG_TYPES
            ):
                inner = raw[1:-1].replace("''", "'")
                renamed = _renamed(inner, old, new, tokens_only=False)
                if renamed != inner:
                    replacement = "'" + renamed.replace("'", "''") + "'"
        if tokens_only:
            out.append(replacement)
        elif replacement is not raw:
            out.append(text[last : tok.start])
            out.append(replacement)
            last = tok.end + 1
    if tokens_only:
        return " ".join(out)
    out.append(text[last:])
    return "".join(out)


@dataclass
class Tenancy:
    """What the tenant schemas looked like in this run (the manifest's `tenants`)."""

    spec: TenantSpec
    template: str | None
    count: int
    deviants: dict[str, list[Change]]  # schema -> what differs from the template
    pieces: dict[str, dict[tuple[str, str], Piece]] = field(default_factory=dict)  # template's, deviants'
    written: set[str] = field(default_factory=set)  # the template's files, under the folder
    note: str = ""  # the header line of the template's files
    tables: int = 0  # in all the tenant schemas

    def to_data(self) -> dict:
        return {
            "schemas": self.spec.schemas,
            "template": self.template,
            "folder": self.spec.folder,
            "count": self.count,
            "tables": self.tables,
            "same": self.count - len(self.deviants) - (1 if self.template else 0),
            "deviants": {
                schema: [c.between(self.template or "the template", schema) for c in changes]
                for schema, changes in sorted(self.deviants.items())
            },
            "tokens": {schema: _tokens(changes) for schema, changes in sorted(self.deviants.items())},
        }


def _tokens(changes: list[Change]) -> list[str]:
    """`-column plan_tier` (the tenant lacks what the template has), `+index x`, `~column a type`."""
    out = []
    for c in changes:
        mark = "+" if c.added else "-" if c.removed else "~"
        detail = f" {c.field.replace('_', ' ')}" if c.field and c.field != "definition" else ""
        out.append(f"{mark}{c.what} {c.name or c.table}{detail}")
    return list(dict.fromkeys(out))


def template_note(spec: TenantSpec, template: str) -> str:
    """The header line of the template's files."""
    return (
        f"-- Tenant template: every schema matching {escape_controls(spec.schemas)} has these objects; "
        f"written once, from {escape_controls(template)} (the others, and how they differ: {TENANTS_FILE})\n"
    )


def is_template_file(spec: TenantSpec, file: str) -> bool:
    """A file under the tenants' folder: one of the template's (`fold`)."""
    return file.startswith(name_part(spec.folder) + "/")


def fold(pieces: list[Piece], spec: TenantSpec) -> tuple[list[Piece], Tenancy]:
    """The split dump with the tenant schemas' pieces replaced by the template's, under
    `spec.folder`; done before redaction and rendering, so the other tenants cost only a
    comparison. `explain()` says what differs in the deviants once they are redacted."""
    kept: list[Piece] = []
    by_tenant: dict[str, dict[tuple[str, str], Piece]] = {}
    for piece in pieces:
        tenant = _tenant_of(piece.kind, piece.schema, piece.name, spec)
        if tenant is None:
            kept.append(piece)
        else:  # its schema's own object (CREATE SCHEMA, its comment) is one more file of the shape
            key = (piece.kind, "schema" if piece.schema is None else piece.name)
            by_tenant.setdefault(tenant, {})[key] = piece
    if not by_tenant:
        return pieces, Tenancy(spec, None, 0, {})
    shapes = {
        schema: _shape({key: quick_key(piece_text(p), schema) for key, p in files.items()})
        for schema, files in by_tenant.items()
    }
    template = spec.template if spec.template in by_tenant else None
    if template is None:  # the most common shape; of its tenants, the first by name
        common, _ = Counter(shapes.values()).most_common(1)[0]
        template = min(s for s, shape in shapes.items() if shape == common)
    tenancy = Tenancy(spec, template, len(by_tenant), {})
    tenancy.tables = sum(kind == "table" for files in by_tenant.values() for kind, _ in files)
    tenancy.pieces = {template: by_tenant[template]}
    tenancy.pieces.update({s: files for s, files in by_tenant.items() if shapes[s] != shapes[template]})
    tenancy.note = template_note(spec, template)
    for (kind, name), piece in sorted(by_tenant[template].items()):
        folder = "" if kind == "table" else f"{kind}."
        path = f"{name_part(spec.folder)}/{folder}{name_part(name)}.sql"  # is_template_file
        tenancy.written.add(path)
        kept.append(replace(piece, path=path))
    return kept, tenancy


def explain(tenancy: Tenancy) -> None:
    """What each deviant has differently from the template (their pieces redacted by now)."""
    template = tenancy.template
    if template is None:
        return
    base = _texts(tenancy.pieces[template], template)
    for schema, files in tenancy.pieces.items():
        if schema != template:
            changes = _differences(base, _texts(files, schema))
            if changes:  # else laid out differently, saying the same
                tenancy.deviants[schema] = changes


def piece_text(piece: Piece) -> str:
    """A piece's statements as its file holds them, without the header."""
    return "".join(
        "".join(f"SET {k} = {v};\n" for k, v in entry.settings) + entry.body + "\n" for entry in piece.entries
    )


def _tenant_of(kind: str, schema: str | None, name: str, spec: TenantSpec) -> str | None:
    if spec.matches(schema):
        return schema
    if kind == "other" and schema is None and name.startswith("schema ") and spec.matches(name[7:]):
        return name[7:]
    return None


def _shape(files: dict[tuple[str, str], str]) -> frozenset:
    return frozenset((key, hashlib.sha256(text.encode()).hexdigest()) for key, text in files.items())


def _texts(files: dict[tuple[str, str], Piece], schema: str) -> dict[tuple[str, str], str]:
    """A tenant's definitions with its schema's name taken out, for the words of a difference."""
    return {key: rename_schema(piece_text(p), schema, PLACEHOLDER) for key, p in files.items()}


def _differences(template: dict[tuple[str, str], str], tenant: dict[tuple[str, str], str]) -> list[Change]:
    """What the tenant has differently from the template: template first, as `diff a b` reads."""
    out: list[Change] = []
    for key in sorted(set(template) | set(tenant)):
        kind, name = key
        what = "table" if kind == "table" else kind.rstrip("s").replace("_", " ")
        if key not in tenant:
            out.append(Change(name, what, name, None, a=name, b=None))
        elif key not in template:
            out.append(Change(name, what, name, None, a=None, b=name))
        elif template[key] != tenant[key]:
            out += compare_files(kind, PLACEHOLDER, name, name, template[key], tenant[key])
    return out


def render_tenants(data: dict, environment: str) -> str:
    """`_tenants.md`: how many tenants have the template's shape, and what differs in the others."""
    deviants = data["deviants"]
    out = [
        f"# Tenant schemas: {escape_controls(environment)}\n\n",
        "<!-- Generated by schemasync; a refresh rewrites this file. -->\n\n",
        f"**{data['count']}** schemas match `{escape_controls(data['schemas'])}`. Their objects are written once, "
        f"from the template `{escape_controls(data['template'] or '-')}`, in "
        f"[{data['folder']}/]({name_part(data['folder'])}/).\n\n",
        f"- same as the template: **{data['same']}**\n",
        f"- different: **{len(deviants)}**\n",
    ]
    if deviants:
        out.append("\n## Tenants that differ from the template\n\n")
        for schema, changes in deviants.items():
            out.append(f"### `{escape_controls(schema)}`\n\n")
            out += [f"- {escape_controls(c)}\n" for c in changes]
            out.append("\n")
    return "".join(out)


def message_part(now: dict | None, before: dict | None) -> str:
    """`tenants: 997 same, ~tenant_0042(-column plan_tier)` when the tenants' picture changed."""
    if not now or now == before:
        return ""
    old = (before or {}).get("tokens", {})
    drifted = [
        f"~{schema}({', '.join(tokens[:3])}{', ...' if len(tokens) > 3 else ''})"
        for schema, tokens in now["tokens"].items()
        if old.get(schema) != tokens
    ]
    mended = [f"={schema}" for schema in old if schema not in now["tokens"]]
    shown = drifted + mended
    more = f" and {len(shown) - SHOWN} more" if len(shown) > SHOWN else ""
    return f"tenants: {now['same']} same" + (", " + " ".join(shown[:SHOWN]) + more if shown else "")
