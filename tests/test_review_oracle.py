"""`review` against PostgreSQL itself, on 15 (the distro's) and 18 (embedded): every migration of the
corpus (tests/data/migrations.sql) is reviewed from the files a real refresh wrote, then applied to a
scratch copy of the database. A prediction PostgreSQL contradicts fails here:
- a predicted failure fails, with PostgreSQL's message and the same dependents (its DETAIL);
- a predicted CASCADE drops exactly the predicted objects (its NOTICE);
- the predicted lock on each table is the strongest pg_locks shows inside the statement's
  transaction, and no table is locked more than weakly without a prediction;
- a predicted rewrite changes the table's relfilenode, and no other table's changes;
- a function predicted broken fails when called after the migration, and one not predicted
  broken does not."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from sandbox import Sandbox, sql_text
from schemasync.core.config import load_config
from schemasync.jobs.review import live_records, load_catalog
from schemasync.schema.catalog import Catalog
from schemasync.schema.review import StatementReview, focus_words, parse_migration, review

from .conftest import Workspace
from .review_oracle import apply, call_functions, disagreements, load_corpus

CORPUS = load_corpus(Path(__file__).parent / "data" / "migrations.sql")
DATABASE = "reviewed"


def reviewed_sql() -> str:
    return sql_text("skyfire.sql") + "\n" + sql_text("review.sql")


@pytest.fixture(scope="module")
def environments(
    sandbox: Sandbox, pg18: Sandbox, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, tuple[Sandbox, Catalog]]]:
    """The `reviewed` database on both servers, refreshed through the real sshd into one repository."""
    import subprocess

    root = tmp_path_factory.mktemp("review")
    ws = Workspace(root / "repo", sandbox)
    ws.path.mkdir()
    subprocess.run(["git", "init", "-q", "-b", "main", str(ws.path)], check=True)
    for key, value in (("user.email", "t@example.com"), ("user.name", "T")):
        subprocess.run(["git", "-C", str(ws.path), "config", key, value], check=True)
    for sb in (sandbox, pg18):
        sb.create_database(DATABASE, reviewed_sql())
    ws.add_host("v15", DATABASE)
    assert pg18.bindir is not None
    ws.add_host("v18", DATABASE, db_host=str(pg18.pg_socket_dir), db_port=pg18.pg_port, pg_bin=str(pg18.bindir))
    for host in ("v15", "v18"):
        run = ws.inv("schemas.refresh", "--host", host)
        assert run.code == 0, run.err
    config = load_config(str(ws.path / "hosts.yaml"))
    yield {
        "v15": (sandbox, load_catalog(config.host("v15"))),
        "v18": (pg18, load_catalog(config.host("v18"))),
        "work": root,  # type: ignore[dict-item]
        "config": config,  # type: ignore[dict-item]
    }
    for sb in (sandbox, pg18):
        sb.psql(f'DROP DATABASE IF EXISTS "{DATABASE}" WITH (FORCE);', check=False)


def _review(catalog: Catalog, name: str) -> list[StatementReview]:
    return review(catalog, parse_migration([(f"{name}.sql", "\n".join(CORPUS[name]))]))[0]


def _callable(catalog: Catalog) -> dict[str, str]:
    """Each function that can be called plainly (not a trigger's, not building SQL at run time)."""
    calls = {}
    for fns in catalog.functions.values():
        for fn in fns:
            if fn.returns_trigger or fn.dynamic:
                continue
            args = ", ".join(f"NULL::{a}" for a in fn.args.split(", ") if a)
            calls[f"function {fn.signature}"] = f"{fn.schema}.{fn.name}({args})"
    return calls


@pytest.mark.parametrize("name", sorted(CORPUS))
def test_postgres_agrees(environments: dict, name: str) -> None:
    work = Path(environments["work"])
    for version in ("v15", "v18"):
        sb, catalog = environments[version]
        predicted = _review(catalog, name)
        seen = apply(sb, DATABASE, f"scratch_{version}", CORPUS[name], work)
        problems = [
            f"#{p.index} {p.sql}: {d}" for p, o in zip(predicted, seen, strict=True) for d in disagreements(p, o)
        ]
        assert not problems, f"{version}:\n" + "\n".join(problems)
        broken = {obj for p in predicted for b in p.breaks for obj in b.objects}
        dropped = {obj for p in predicted for obj in p.cascades} | {
            f"function {fn}" for p in predicted for fn in _dropped_functions(p)
        }
        calls = {f: c for f, c in _callable(catalog).items() if f not in dropped}
        errors = call_functions(sb, DATABASE, f"calls_{version}", CORPUS[name], calls, work)
        for function in calls:
            assert (errors.get(function) is not None) == (function in broken), (
                f"{version}: {function} predicted {'broken' if function in broken else 'fine'}; "
                f"called after the migration: {errors.get(function) or 'it works'}"
            )


def _dropped_functions(p: StatementReview) -> list[str]:
    sql = p.sql.upper()
    if sql.startswith("DROP FUNCTION") and not p.fails:
        return [p.sql.split()[2].rstrip(";")]
    return []


def test_the_corpus_covers_every_finding(environments: dict) -> None:
    """At least 40 migrations, and among their predictions every kind of finding, safe ones too."""
    _sb, catalog = environments["v15"]
    assert len(CORPUS) >= 40
    seen: set[str] = set()
    for name in CORPUS:
        for p in _review(catalog, name):
            for fail in p.fails:
                seen.add("fails, naming dependents" if fail.objects else "fails")
            seen |= {"breaks"} if p.breaks else set()
            seen |= {"cascade"} if p.cascades else set()
            seen |= {f"lock {lk.mode}" for lk in p.locks}
            seen |= {f"effect {lk.effect}" for lk in p.locks}
            seen |= {"safe"} if p.ok and all(lk.effect == "none" for lk in p.locks) else set()
    wanted = {
        "fails", "fails, naming dependents", "breaks", "cascade", "safe", "effect rewrite", "effect scan",
        "effect none", "lock ACCESS EXCLUSIVE", "lock SHARE", "lock SHARE ROW EXCLUSIVE", "lock SHARE UPDATE EXCLUSIVE",
    }  # fmt: skip
    assert wanted <= seen, sorted(wanted - seen)


def test_reading_only_the_files_a_migration_can_touch_changes_no_prediction(environments: dict) -> None:
    """`review` reads the files that name what a migration names (and what uses those); the
    predictions are the ones a catalog of every file gives, which PostgreSQL checked above."""
    host = environments["config"].host("v15")
    records = live_records(host)
    _sb, whole = environments["v15"]
    read = []
    for name in CORPUS:
        statements = parse_migration([(f"{name}.sql", "\n".join(CORPUS[name]))])
        words = focus_words(statements, {r.name for r in records})
        focused = load_catalog(host, words, records)
        read.append(len({d.file for d in focused.dependents}))
        got = [s.data() for s in review(focused, statements, keep=False)[0]]
        want = [s.data() for s in review(whole, statements)[0]]
        assert got == want, name
    assert min(read) < len(records) / 2  # and it did read less


def test_impact_reading_only_what_can_name_it_finds_every_dependent(environments: dict) -> None:
    """`impact` reads the files that name the table, type or function, and what uses those; for
    every table, column, view, type, sequence and function it finds what a catalog of every file
    finds."""
    from schemasync.schema.catalog import dependents_of

    host = environments["config"].host("v15")
    records = live_records(host)
    _sb, whole = environments["v15"]
    targets = [("relation", *k) for k in whole.relations] + [
        ("column", *k, c) for k, rel in whole.relations.items() for c in rel.columns
    ]
    targets += [("type", *k) for k in whole.types] + [("function", *k) for k in whole.functions]
    targets += [("sequence", *k) for k in whole.sequences]
    for target in targets:
        focused = load_catalog(host, {target[2]}, records)
        got = sorted((d.name, d.file, d.line, depth) for d, depth in dependents_of(focused, target))
        want = sorted((d.name, d.file, d.line, depth) for d, depth in dependents_of(whole, target))
        assert got == want, target
