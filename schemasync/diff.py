"""Compare two environments' schema files: tables, views, functions and types present on one side
only, and the ones whose definitions differ, with unified diffs. Pure, plus a reader for the
committed files (git) and one for the working tree."""

from __future__ import annotations

import difflib
import json
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from .errors import LocalError
from .split import KIND_LABELS
from .store import MANIFEST, ORPHANED, OWN_FILES


@dataclass(frozen=True)
class Item:
    kind: str  # "table", "views", ...
    label: str
    file: str


@dataclass
class Difference:
    item: Item
    diff: str  # unified diff of the two definitions, headers left out


@dataclass
class DiffReport:
    a: str
    b: str
    only_a: list[Item] = field(default_factory=list)
    only_b: list[Item] = field(default_factory=list)
    different: list[Difference] = field(default_factory=list)

    @property
    def same(self) -> bool:
        return not (self.only_a or self.only_b or self.different)


def definition(text: str) -> str:
    """A file without its header, which names the environment and database."""
    lines = text.splitlines(keepends=True)
    i = 0
    while i < len(lines) and lines[i].startswith("-- "):
        i += 1
    return "".join(lines[i:]).lstrip("\n")


def _items(files: dict[str, str]) -> dict[str, Item]:
    """The live objects of one environment, by file: from its manifest, orphans left out."""
    manifest = files.get(MANIFEST)
    if manifest is None:
        return {}
    items = {}
    for rec in json.loads(manifest)["files"]:
        if rec["status"] == ORPHANED or rec["file"] not in files:
            continue
        schema, name = rec["schema"], rec["name"]
        label = name if schema in (None, "public") else f"{schema}.{name}"
        items[rec["file"]] = Item(rec["kind"], label, rec["file"])
    return items


def compare(a_name: str, a_files: dict[str, str], b_name: str, b_files: dict[str, str]) -> DiffReport:
    report = DiffReport(a_name, b_name)
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
            left, right = definition(a_files[file]), definition(b_files[file])
            if left != right:
                diff = "".join(
                    difflib.unified_diff(
                        left.splitlines(keepends=True),
                        right.splitlines(keepends=True),
                        fromfile=f"{a_name}/{file}",
                        tofile=f"{b_name}/{file}",
                    )
                )
                report.different.append(Difference(a_items[file], diff))
    return report


def read_committed(repo: Path, outdir: Path) -> dict[str, str]:
    """The files of one output directory as committed at HEAD (two git processes in all)."""
    rel = outdir.resolve().relative_to(repo)
    listing = subprocess.run(
        ["git", "-C", str(repo), "ls-tree", "-r", "-z", "HEAD", "--", str(rel)], capture_output=True, check=False
    )
    if listing.returncode != 0:
        err = listing.stderr.decode(errors="replace").strip()
        raise LocalError(f"cannot read the committed files in {repo}: {err or 'no commits yet'}")
    entries = []
    for record in listing.stdout.split(b"\0"):
        if not record:
            continue
        meta, path = record.split(b"\t", 1)
        if meta.split()[1] == b"blob":
            entries.append((meta.split()[2], path.decode("utf-8", "surrogateescape")))
    if not entries:
        return {}
    batch = subprocess.run(
        ["git", "-C", str(repo), "cat-file", "--batch"],
        input=b"".join(sha + b"\n" for sha, _ in entries),
        capture_output=True,
        check=True,
    ).stdout
    files, pos = {}, 0
    prefix = str(rel) + "/"
    for _, path in entries:
        header_end = batch.index(b"\n", pos)
        size = int(batch[pos:header_end].split()[2])
        body = batch[header_end + 1 : header_end + 1 + size]
        pos = header_end + 1 + size + 1
        files[path[len(prefix) :]] = body.decode("utf-8", "replace")
    return files


def read_worktree(outdir: Path) -> dict[str, str]:
    if not outdir.is_dir():
        return {}
    return {
        str(p.relative_to(outdir)): p.read_text(encoding="utf-8")
        for p in outdir.rglob("*")
        if p.is_file() and not p.name.startswith(".schemasync-")
    }


def render_text(report: DiffReport, with_diffs: bool = True) -> str:
    if report.same:
        return f"{report.a} and {report.b}: the same schema"
    out = [f"{report.a} vs {report.b}:"]
    for label, items in ((f"only in {report.a}", report.only_a), (f"only in {report.b}", report.only_b)):
        for item in items:
            out.append(f"  {label}: {_kind(item)} {item.label}")
    for d in report.different:
        out.append(f"  different: {_kind(d.item)} {d.item.label}")
    if with_diffs:
        for d in report.different:
            out.append("")
            out.append(d.diff.rstrip("\n"))
    return "\n".join(out)


def _kind(item: Item) -> str:
    return KIND_LABELS.get(item.kind) or "object"


def render_data(report: DiffReport) -> dict:
    def items(xs: list[Item]) -> list[dict]:
        return [{"kind": i.kind, "name": i.label, "file": i.file} for i in xs]

    return {
        "a": report.a,
        "b": report.b,
        "same": report.same,
        "only_in_a": items(report.only_a),
        "only_in_b": items(report.only_b),
        "different": [
            {"kind": d.item.kind, "name": d.item.label, "file": d.item.file, "diff": d.diff} for d in report.different
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
                out.append(f"\n```diff\n{d.diff.rstrip()}\n```\n")
    return "".join(out)
