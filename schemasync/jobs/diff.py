"""Compare two environments' schema files: tables, views, functions and types present on one side
only, and for the ones that differ, what differs, by object (the schema model), with the unified
diff of the text behind a flag. Pure, plus the two front doors: hosts' committed files (through
gitops) and a working tree."""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from pathlib import Path

from schemasync.core.config import Config
from schemasync.output import gitops
from schemasync.output.manifest import parse_manifest
from schemasync.output.records import MANIFEST, ORPHANED, OWN_FILES
from schemasync.schema.changes import Change, compare_files
from schemasync.schema.split import definition, kind_word


@dataclass(frozen=True)
class Item:
    kind: str  # "table", "views", ...
    label: str
    file: str
    schema: str | None = None
    name: str = ""


@dataclass
class Difference:
    item: Item
    diff: str  # unified diff of the two definitions, headers left out
    changes: list[Change] = field(default_factory=list)  # what differs, by object


@dataclass
class DiffReport:
    a: str
    b: str
    only_a: list[Item] = field(default_factory=list)
    only_b: list[Item] = field(default_factory=list)
    different: list[Difference] = field(default_factory=list)
    versions: tuple[dict, dict] = ({}, {})  # each side's {"server", "pg_dump"} majors, from its manifest

    @property
    def majors_differ(self) -> bool:
        a, b = self.versions
        return bool(a and b) and (a.get("server"), a.get("pg_dump")) != (b.get("server"), b.get("pg_dump"))

    @property
    def same(self) -> bool:
        return not (self.only_a or self.only_b or self.different)


def text_diff(a: str, b: str, a_label: str, b_label: str) -> str:
    """A unified diff of two files' definitions (the headers name environments, not differences)."""
    left, right = definition(a), definition(b)
    if left == right:
        return ""
    return "".join(
        difflib.unified_diff(
            left.splitlines(keepends=True), right.splitlines(keepends=True), fromfile=a_label, tofile=b_label
        )
    )


def _versions(files: dict[str, str]) -> dict:
    manifest = files.get(MANIFEST)
    return parse_manifest(manifest, Path(MANIFEST)).versions if manifest is not None else {}


def _items(files: dict[str, str]) -> dict[str, Item]:
    """The live objects of one environment, by file: from its manifest, orphans left out."""
    manifest = files.get(MANIFEST)
    if manifest is None:
        return {}
    records = parse_manifest(manifest, Path(MANIFEST)).records
    return {
        r.file: Item(r.kind, r.label, r.file, r.schema, r.name)
        for r in records
        if r.status != ORPHANED and r.file in files
    }


def compare(a_name: str, a_files: dict[str, str], b_name: str, b_files: dict[str, str]) -> DiffReport:
    report = DiffReport(a_name, b_name, versions=(_versions(a_files), _versions(b_files)))
    a_items, b_items = _items(a_files), _items(b_files)
    order = sorted(set(a_items) | set(b_items), key=lambda f: (f.count("/"), f))
    for file in order:
        if file in OWN_FILES:
            continue
        if file not in b_items:
            report.only_a.append(a_items[file])
        elif file not in a_items:
            report.only_b.append(b_items[file])
        else:
            diff = text_diff(a_files[file], b_files[file], f"{a_name}/{file}", f"{b_name}/{file}")
            if diff:
                item = a_items[file]
                changes = compare_files(item.kind, item.schema, item.name, item.label, a_files[file], b_files[file])
                if changes:  # no change: the same schema, written differently (another pg_dump version)
                    report.different.append(Difference(item, diff, changes))
    return report


def compare_hosts(config: Config, a: str, b: str) -> DiffReport:
    """Two environments of hosts.yaml, from their committed files (`inv schemas.diff`, the MCP tool)."""
    left, right = config.host(a), config.host(b)
    hint = "diff compares committed files: run it inside the repository that holds the output directories"
    files = [gitops.read_committed(gitops.require_repo(h.output, hint), h.output) for h in (left, right)]
    return compare(left.name, files[0], right.name, files[1])


def read_worktree(outdir: Path) -> dict[str, str]:
    if not outdir.is_dir():
        return {}
    return {
        str(p.relative_to(outdir)): p.read_text(encoding="utf-8")
        for p in outdir.rglob("*")
        if p.is_file() and not p.name.startswith(".schemasync-")
    }


def _versions_note(report: DiffReport) -> str:
    a, b = report.versions

    def says(v: dict) -> str:
        return f"PostgreSQL {v.get('server')} (pg_dump {v.get('pg_dump')})"

    return (
        f"{report.a} runs {says(a)}, {report.b} {says(b)}: what only the two pg_dump versions write "
        "differently is not counted as a difference"
    )


def render_text(report: DiffReport, with_diffs: bool = False) -> str:
    note = f"\n  {_versions_note(report)}" if report.majors_differ else ""
    if report.same:
        return f"{report.a} and {report.b}: the same schema{note}"
    out = [f"{report.a} vs {report.b}:{note}"]
    for label, items in ((f"only in {report.a}", report.only_a), (f"only in {report.b}", report.only_b)):
        for item in items:
            out.append(f"  {label}: {_kind(item)} {item.label}")
    for d in report.different:
        out.append(f"  different: {_kind(d.item)} {d.item.label}")
        out += [f"    {c.between(report.a, report.b)}" for c in d.changes]
    if with_diffs:
        for d in report.different:
            out.append("")
            out.append(d.diff.rstrip("\n"))
    return "\n".join(out)


def _kind(item: Item) -> str:
    return kind_word(item.kind)


def render_data(report: DiffReport) -> dict:
    def items(xs: list[Item]) -> list[dict]:
        return [{"kind": i.kind, "name": i.label, "file": i.file} for i in xs]

    return {
        "a": report.a,
        "b": report.b,
        "same": report.same,
        "versions": {"a": report.versions[0], "b": report.versions[1]},
        "only_in_a": items(report.only_a),
        "only_in_b": items(report.only_b),
        "different": [
            {
                "kind": d.item.kind,
                "name": d.item.label,
                "file": d.item.file,
                "changes": [c.to_data(c.between(report.a, report.b)) for c in d.changes],
                "diff": d.diff,
            }
            for d in report.different
        ],
    }


def render_drift_md(reference: str, reports: list[DiffReport]) -> str:
    """No date in it: an unchanged drift leaves the file, and the commit, alone."""
    out = [
        "# Schema drift\n\n",
        "<!-- Generated by `inv schemas.sweep --reference`; a sweep rewrites this file. -->\n\n",
        f"Reference environment: `{reference}`; each row lists what the environment lacks, has in addition, "
        "or defines differently.\n\n",
        "| environment | missing | extra | different |\n|---|---|---|---|\n",
    ]
    for r in reports:

        def names(xs: list[Item]) -> str:
            return ", ".join(f"`{i.label}`" for i in xs) or "—"

        out.append(f"| `{r.b}` | {names(r.only_a)} | {names(r.only_b)} | {names([d.item for d in r.different])} |\n")
    for r in reports:
        if r.different:
            out.append(f"\n## {r.b}\n")
            for d in r.different:
                out.append("\n" + "".join(f"- {c.between(r.a, r.b)}\n" for c in d.changes))
                out.append(f"\n```diff\n{d.diff.rstrip()}\n```\n")
    return "".join(out)
