"""`impact` and `review` for a person (text), and `review` for a pull request (markdown). The JSON
both give programs comes from jobs/review.py, where the MCP tools take it too."""

from __future__ import annotations

from typing import Any

from schemasync.jobs.review import ImpactResult, ReviewResult

EFFECT_WORDS = {"rewrite": "rewrites the table", "scan": "scans the table", "none": "no rewrite, no scan"}


def impact_text(res: ImpactResult) -> str:
    t = res.target
    what = f"column {t['column']} of {t['table']}" if t["kind"] == "column" else f"{t['kind']} {t['name']}"
    lines = [f"{len(res.dependents)} dependents of {what} ({', '.join(res.hosts)})"]
    if res.missing:
        lines.append(f"  not in {', '.join(res.missing)}")
    for d in res.dependents:
        indent = "  " * d["depth"]
        where = f"{d['file']}:{d['line']}"
        hosts = "" if len(res.hosts) == 1 else f"  [{', '.join(d['hosts'])}]"
        unchecked = "  (not checked: the body builds SQL at run time)" if not d["checked"] else ""
        lines.append(f"{indent}{d['name']}  — names {', '.join(d['names'])}  {where}{hosts}{unchecked}")
    if not res.dependents:
        lines.append("  nothing depends on it")
    return "\n".join(lines)


def _lock_words(lk: dict[str, Any]) -> str:
    size = lk.get("size") or {}
    sized = []
    if size.get("rows") is not None:
        sized.append(f"~{_power(size['rows'])} rows")
    if size.get("bytes") is not None:
        sized.append(f"~{_bytes(size['bytes'])}")
    about = f" ({', '.join(sized)})" if sized else ""
    weight = f", {lk['weight']}" if lk["effect"] != "none" else ""
    return f"{lk['mode']} on {lk['table']}{about}: {EFFECT_WORDS[lk['effect']]}{weight}"


def _power(n: int) -> str:
    return "0" if n == 0 else f"{n:,}+"


def _bytes(n: int) -> str:
    for unit, size in (("GB", 10**9), ("MB", 10**6), ("kB", 10**3)):
        if n >= size:
            return f"{n // size} {unit}+"
    return f"{n} B"


def _problems(s: dict[str, Any]) -> list[tuple[str, str]]:
    out = [("FAILS", _problem_text(p)) for p in s["fails"]] + [("BREAKS", _problem_text(p)) for p in s["breaks"]]
    if s["cascades"]:
        out.append(("DROPS", "CASCADE drops " + ", ".join(s["cascades"])))
    return out


def _problem_text(p: dict[str, Any]) -> str:
    places = [f"{x['object']} ({x['file']}:{x['line']})" for x in p["places"]]
    named = places or p["objects"]
    return p["message"] + (": " + "; ".join(named) if named else "")


def review_text(res: ReviewResult, data: dict[str, Any]) -> str:
    hosts = data["hosts"]
    lines = [f"review of {', '.join(res.sources)} against {', '.join(h['host'] for h in hosts)}"]
    for i, st in enumerate(hosts[0]["statements"]):
        lines += ["", f"#{st['index']}  {st['file']}:{st['line']}  {_one_line(st['sql'])}"]
        per_host = [(h["host"], h["statements"][i]) for h in hosts]
        for label, s in _grouped(per_host):
            found = _problems(s)
            locks = [_lock_words(lk) for lk in s["locks"]]
            if not found and not locks and not s["notes"]:
                lines.append(f"    {label}: ok")
            for kind, text in found:
                lines.append(f"    {label}: {kind} {text}")
            for text in locks:
                lines.append(f"    {label}: locks {text}")
            for note in s["notes"]:
                lines.append(f"    {label}: note: {note}")
    if data["drift"]:
        lines += ["", "drift between environments:"] + [f"    {d['message']}" for d in data["drift"]]
    lines += ["", _summary(data)]
    return "\n".join(lines)


def _grouped(per_host: list[tuple[str, dict]]) -> list[tuple[str, dict]]:
    """Environments with the same findings (sizes aside) are said once."""
    groups: dict[str, tuple[list[str], dict]] = {}
    for host, s in per_host:
        key = repr(({k: v for k, v in s.items() if k != "locks"}, [(lk["table"], lk["mode"], lk["effect"])
                                                                     for lk in s["locks"]]))  # fmt: skip
        groups.setdefault(key, ([], s))[0].append(host)
    if len(groups) == 1 and len(per_host) > 1:
        return [("every environment", per_host[0][1])]
    return [(", ".join(names), s) for names, s in groups.values()]


def _summary(data: dict[str, Any]) -> str:
    count = len(data["hosts"][0]["statements"]) if data["hosts"] else 0
    bad = []
    for h in data["hosts"]:
        fails = sum(bool(s["fails"]) for s in h["statements"])
        breaks = sum(bool(s["breaks"]) for s in h["statements"])
        if fails or breaks:
            bad.append(f"{h['host']}: {fails} failing, {breaks} breaking")
    if not bad:
        return f"{count} statements: nothing fails or breaks (exit 0)"
    return f"{count} statements; " + "; ".join(bad) + " (exit 1)"


def _one_line(sql: str) -> str:
    text = " ".join(sql.split())
    return text if len(text) <= 100 else text[:97] + "..."


def review_markdown(res: ReviewResult, data: dict[str, Any]) -> str:
    """A pull-request comment: the verdict first, a table of statements, then each problem with
    the file and line that shows it."""
    hosts = [h["host"] for h in data["hosts"]]
    verdict = "✅ nothing fails or breaks" if data["ok"] else "❌ something fails or breaks"
    lines = [f"### schemasync review: {verdict}", "",
             f"{', '.join(f'`{s}`' for s in res.sources)} against {', '.join(f'**{h}**' for h in hosts)}", "",
             "| # | statement | " + " | ".join(hosts) + " |", "|---|---|" + "---|" * len(hosts)]  # fmt: skip
    problems: list[str] = []
    for i, st in enumerate(data["hosts"][0]["statements"]):
        cells = []
        for h in data["hosts"]:
            s = h["statements"][i]
            found = _problems(s)
            mark = "❌" if s["fails"] or s["breaks"] else ("⚠️" if _heavy(s) else "✅")
            locks = "<br>".join(f"{lk['mode']} `{lk['table']}`, {lk['effect']}" for lk in s["locks"])
            cells.append(f"{mark} {locks}".strip())
            problems += [f"- **#{st['index']} {kind.lower()} in {h['host']}**: {_md(text)}" for kind, text in found]
        lines.append(f"| {st['index']} | `{_md(_one_line(st['sql']))}` | " + " | ".join(cells) + " |")
    if problems:
        lines += ["", "#### Problems", *problems]
    if data["drift"]:
        lines += ["", "#### Drift", *[f"- {_md(d['message'])}" for d in data["drift"]]]
    lines += ["", f"<sub>{_summary(data)}. Predicted from the committed schema files; no database was "
              "touched.</sub>"]  # fmt: skip
    return "\n".join(lines) + "\n"


def _heavy(s: dict[str, Any]) -> bool:
    return any(lk["weight"] in ("high", "medium", "unknown size") for lk in s["locks"])


def _md(text: str) -> str:
    return text.replace("|", "\\|").replace("`", "'")
