"""`impact` and `review`: questions about the next migration, answered from the files alone.

Each environment's files are read into a catalog (schema/catalog.py); `impact` walks who depends on
a name, `review` applies a migration statement by statement (schema/review.py). With several
environments, each answers for itself and the differences between them are drift.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from schemasync.core.config import Config, HostConfig
from schemasync.core.errors import ConfigError
from schemasync.jobs.reader import load_records
from schemasync.output.records import ORPHANED
from schemasync.schema.catalog import Catalog, ColumnInfo, Function, Relation, SourceFile, dependents_of, target_of
from schemasync.schema.catalog_build import build_catalog
from schemasync.schema.review import StatementReview, focus_words, parse_migration, review


def load_catalog(host: HostConfig, focus: set[str] | None = None, records: list | None = None) -> Catalog:
    """The environment as its files say, and each table's size class. With `focus` (the names a
    migration or a question uses), only the files that can depend on them are read; the manifest
    says what the others hold (schema/catalog_build.py)."""
    from schemasync.core import speed

    records = records if records is not None else live_records(host)
    if not speed.on("focused_reading"):
        focus = None
    files = [SourceFile(r.kind, r.schema, r.name, r.file, (host.output / r.file).read_text(encoding="utf-8"))
             for r in records]  # fmt: skip
    catalog = build_catalog(files, outline(records), focus) if focus is not None else build_catalog(files)
    for r in records:
        size = (r.details or {}).get("size")
        rel = catalog.relations.get((r.schema or "public", r.name))
        if rel is not None and size:
            rel.size = size
    return catalog


def live_records(host: HostConfig) -> list:
    return [r for r in load_records(host) if r.status != ORPHANED]


def outline(records: list) -> Catalog:
    """What the manifest alone says: every table with its columns, every object by name."""
    cat = Catalog()
    for r in records:
        key = (r.schema or "public", r.name)
        if r.kind == "table":
            rel = Relation(*key, "table", r.file, 1)
            for name, type_, not_null in (r.details or {}).get("column_defs", []):
                rel.columns[name] = ColumnInfo(name, type_, bool(not_null))
            cat.relations[key] = rel
        elif r.kind in ("views", "materialized_views"):
            cat.relations[key] = Relation(*key, "view" if r.kind == "views" else "materialized view", r.file, 1)
        elif r.kind == "functions":
            cat.functions[key].append(Function(*key, "", "", r.file, 1, outline=True))
        elif r.kind == "types":
            cat.types[key] = "type"
        elif r.kind == "sequences":
            cat.sequences[key] = r.file
    return cat


def _hosts(config: Config, host: str | None, all_hosts: bool) -> list[HostConfig]:
    if all_hosts:
        found = [h for h in config.hosts.values() if (h.output / "_manifest.json").exists()]
        if not found:
            raise ConfigError("no environment has schema files yet", hint="run: inv schemas.sweep")
        return found
    return [config.host(host)]


# --- impact ------------------------------------------------------------------------------------


@dataclass
class ImpactResult:
    name: str
    target: dict[str, Any]
    hosts: list[str]
    dependents: list[dict[str, Any]] = field(default_factory=list)  # each with `hosts`: where it exists
    missing: list[str] = field(default_factory=list)  # environments without the name


def impact(config: Config, name: str, host: str | None = None, all_hosts: bool = False) -> ImpactResult:
    hosts = _hosts(config, host, all_hosts)
    merged: dict[tuple, dict[str, Any]] = {}
    result: ImpactResult | None = None
    for h in hosts:
        records = live_records(h)
        # the manifest knows most names (not a view's columns): which files to read
        known = target_of(outline(records), name)
        catalog = load_catalog(h, {known[2]} if known else None, records)
        target = target_of(catalog, name)
        if target is None:
            if result is None:
                result = ImpactResult(name, {}, [x.name for x in hosts])
            result.missing.append(h.name)
            continue
        if result is None or not result.target:
            missing = result.missing if result else []
            result = ImpactResult(name, _target_data(target), [x.name for x in hosts], missing=missing)
        for d, depth in dependents_of(catalog, target):
            key = (d.kind, d.name)
            entry = merged.setdefault(key, {**d.data(), "depth": depth, "names": [], "hosts": []})
            entry["depth"] = min(entry["depth"], depth)
            what = _target_words(d.target)
            if what not in entry["names"]:
                entry["names"].append(what)
            if h.name not in entry["hosts"]:
                entry["hosts"].append(h.name)
    assert result is not None
    if not result.target:
        hint = f"names are looked up in {', '.join(h.name for h in hosts)}'s files"
        raise ConfigError(f"nothing named {name!r} (a table, column, view, type, sequence or function)", hint=hint)
    result.dependents = sorted(merged.values(), key=lambda e: (e["depth"], e["kind"], e["name"]))
    return result


def _target_data(target: tuple) -> dict[str, Any]:
    keys = {"relation": ("schema", "name"), "column": ("schema", "table", "column")}.get(target[0], ("schema", "name"))
    return {"kind": target[0], **dict(zip(keys, target[1:], strict=False))}


def _target_words(target: tuple) -> str:
    if target[0] == "column":
        return f"{target[3]} of {target[2]}"
    return f"{target[0]} {target[2]}"


# --- review ------------------------------------------------------------------------------------


@dataclass
class HostReview:
    host: str
    statements: list[StatementReview]

    @property
    def ok(self) -> bool:
        return all(s.ok for s in self.statements)


@dataclass
class ReviewResult:
    sources: list[str]
    hosts: list[HostReview]
    drift: list[dict[str, Any]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(h.ok for h in self.hosts)


def review_migration(
    config: Config, sources: list[tuple[str, str]], host: str | None = None, all_hosts: bool = False
) -> ReviewResult:
    """The migration (each (file name, text), in order) against each environment. Raises
    MigrationSyntaxError when it does not parse."""
    statements = parse_migration(sources)
    hosts = _hosts(config, host, all_hosts)
    result = ReviewResult([name for name, _ in sources], [])
    finals: dict[str, Catalog] = {}
    for h in hosts:
        records = live_records(h)
        words = focus_words(statements, {r.name for r in records})
        reviewed, final = review(load_catalog(h, words, records), statements, keep=False)
        result.hosts.append(HostReview(h.name, reviewed))
        finals[h.name] = final
    if len(hosts) > 1:
        result.drift = drift(result.hosts, finals, statements)
    return result


def drift(hosts: list[HostReview], finals: dict[str, Catalog], statements: list) -> list[dict[str, Any]]:
    """Where environments part: a statement that fails in some and not others (they differ already
    in a way the migration relies on), and the tables it touches ending up different."""
    out: list[dict[str, Any]] = []
    for i, st in enumerate(statements):
        failing = [h for h in hosts if h.statements[i].fails]
        if failing and len(failing) < len(hosts):
            message = f"#{st.index} fails in {', '.join(h.host for h in failing)} only: "
            out.append({"statement": st.index, "kind": "differs already", "hosts": [h.host for h in failing],
                        "message": message + failing[0].statements[i].fails[0].message})  # fmt: skip
        elif not failing:
            acts = {h.host: sorted((lk.table, lk.mode, lk.effect) for lk in h.statements[i].locks) for h in hosts}
            if len({repr(v) for v in acts.values()}) > 1:
                words = "; ".join(f"{h}: {', '.join(f'{m} on {t}, {e}' for t, m, e in v) or 'nothing'}"
                                  for h, v in acts.items())  # fmt: skip
                out.append({"statement": st.index, "kind": "acts differently", "hosts": sorted(acts),
                            "message": f"#{st.index} locks or rewrites differently: {words}"})  # fmt: skip
    touched = sorted({lk.table for h in hosts for s in h.statements for lk in s.locks})
    for table in touched:
        shapes = {name: _shape(cat, table) for name, cat in finals.items()}
        if len({repr(v) for v in shapes.values()}) > 1:
            out.append({"statement": None, "kind": "ends up different", "table": table,
                        "message": f"{table} would differ afterwards: {_shape_diff(shapes)}",
                        "hosts": sorted(shapes)})  # fmt: skip
    return out


def _shape(cat: Catalog, table: str) -> Any:
    key = cat.resolve(table.split(".")[0] if "." in table else None, table.split(".")[-1])
    rel = cat.relations.get(key) if key else None
    if rel is None:
        return None
    return sorted((c.name, c.type, c.not_null) for c in rel.columns.values())


def _shape_diff(shapes: dict[str, Any]) -> str:
    names = sorted(shapes)
    a, b = names[0], next(n for n in names[1:] if repr(shapes[n]) != repr(shapes[names[0]]))
    if shapes[a] is None or shapes[b] is None:
        return f"it exists in {a if shapes[a] else b} only"
    only_a = sorted(set(map(tuple, shapes[a])) - set(map(tuple, shapes[b])))
    only_b = sorted(set(map(tuple, shapes[b])) - set(map(tuple, shapes[a])))
    words = [f"{a} has {_col(c)}" for c in only_a[:3]] + [f"{b} has {_col(c)}" for c in only_b[:3]]
    return "; ".join(words)


def _col(c: tuple) -> str:
    return f"{c[0]} {c[1]}{' NOT NULL' if c[2] else ''}"


# --- the one shape both front ends give ---------------------------------------------------------


def impact_data(res: ImpactResult) -> dict[str, Any]:
    return {
        "name": res.name,
        "target": res.target,
        "hosts": res.hosts,
        "missing_in": res.missing,
        "count": len(res.dependents),
        "dependents": res.dependents,
        "unchecked": [d["name"] for d in res.dependents if not d["checked"]],
    }


def review_data(res: ReviewResult) -> dict[str, Any]:
    return {
        "ok": res.ok,
        "exit_code": 0 if res.ok else 1,
        "sources": res.sources,
        "hosts": [{"host": h.host, "ok": h.ok, "statements": [s.data() for s in h.statements]} for h in res.hosts],
        "drift": res.drift,
    }


def read_migrations(spec: str | None, stdin: Any) -> list[tuple[str, str]]:
    """(name, text) of each migration file `spec` names: one path, several (newlines or commas),
    a directory (its .sql files in name order), a glob, or `-` for stdin."""
    import glob
    from pathlib import Path

    if spec in (None, "", "-"):
        return [("<stdin>", stdin.read())]
    parts = [p.strip() for p in spec.replace(",", "\n").splitlines() if p.strip()]
    if len(parts) == 1 and not Path(parts[0]).exists() and " " in parts[0] and not glob.glob(parts[0]):
        parts = parts[0].split()
    out: list[tuple[str, str]] = []
    for part in parts:
        path = Path(part)
        if path.is_dir():
            found = sorted(path.glob("*.sql"))
        elif path.exists():
            found = [path]
        else:
            found = [Path(p) for p in sorted(glob.glob(part))]
        if not found:
            raise ConfigError(
                f"no migration file {part!r}", hint="give a .sql file, a directory, a glob, or - for stdin"
            )
        out += [(str(f), f.read_text(encoding="utf-8")) for f in found]
    return out
