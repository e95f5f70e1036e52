"""`./dev.sh bench` (or `make bench`): schemasync against the floor, measured side by side.

Builds sandbox databases of generated schemas, then runs every contender in rounds, rotating the
order each round so that machine noise falls on all of them alike, and reports medians as ratios
to the floor measured in the same run: one whole `pg_dump --schema-only` streamed over SSH.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import yaml

from sandbox import Sandbox, pg_bindir

from .measure_cpu import busy_seconds
from .rounds import checkout, run_rotated, run_rounds
from .schema import schema_sql

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "bench" / "results"

TARGETS = {  # measure -> (what it is compared with, the most it may be): issue 32's bands
    "cold_5000": ("floor_5000", 1.7),
    "cold_1000": ("floor_1000", 3.0),
    "unchanged_5000": ("floor_5000", 0.35),  # incremental: the quick check alone
    "one_changed_5000": ("floor_5000", 0.75),  # incremental: that table's pg_dump -t
    "table_5000": ("floor_5000", 0.5),
    "check_20000": ("floor_20000", 0.25),  # `check` of an unchanged database
    "sweep3_1000": ("cold_1000", 1.5),
}


class Bench:
    def __init__(
        self, sizes: list[int], runs: int, loop_sizes: list[int], big: int | None, before: str | None = None
    ) -> None:
        self.sizes, self.runs, self.loop_sizes, self.big = sizes, runs, loop_sizes, big
        self.before = before  # a git revision whose code runs side by side with this one
        self.root = Path(tempfile.mkdtemp(prefix="schemasync-bench-"))
        os.chmod(self.root, 0o755)  # as root, PostgreSQL runs as another user who must reach its data
        self.times: dict[str, list[float]] = {}
        self.memory: dict[str, int] = {}  # peak RSS in KB per measure
        # CPU seconds the whole machine spent per run (client and servers share the cores here)
        self.cpu: dict[str, list[float]] = {}
        self.last_cpu = 0.0
        self.counter = 0

    # -- setup ---------------------------------------------------------------------------
    def start(self) -> None:
        self.sb = Sandbox(self.root / "sandbox", pg_options="-c max_locks_per_transaction=1024").start()
        for n in sorted(set(self.sizes + self.loop_sizes + ([self.big] if self.big else []))):
            t = time.perf_counter()
            self.sb.create_database(f"bench_{n}", schema_sql(n))
            print(f"database of {n} tables built in {time.perf_counter() - t:.1f}s", flush=True)
        self.warm = {n: self.repo(f"warm_{n}", [n]) for n in self.sizes + ([self.big] if self.big else [])}
        for n in self.warm:
            # not measured: the state "unchanged" starts from. Twice: the first refresh keeps its
            # fingerprints only if nothing changed while its dump started; the second surely has them.
            self.refresh(self.warm[n], f"b{n}")
            self.refresh(self.warm[n], f"b{n}")
        self.before_code = None
        if self.before:
            # the other version's code, run by the same Python and dependencies
            self.before_code = checkout(self.before, self.root / "before")
            self.warm_before = {n: self.repo(f"warm_before_{n}", [n]) for n in self.sizes}
            for n in self.sizes:
                self.refresh(self.warm_before[n], f"b{n}", code=self.before_code)
        # two environments of the same database, one with a table that differs, both committed:
        # what `diff` compares; and the warm repository's history of t00001 for `history`
        self.pair = {}
        for n in self.sizes:
            pair = self.repo(f"pair_{n}", [n], envs=2)
            for e in range(2):
                self.refresh(pair, f"b{n}_{e}")
            changed = pair / "docs" / "schemas" / f"b{n}_1" / "t00003.sql"
            text = changed.read_text().replace(
                "CREATE TABLE public.t00003 (", "CREATE TABLE public.t00003 (\n    extra integer,"
            )
            changed.write_text(text)
            subprocess.run(["git", "-C", str(pair), "commit", "-qam", "drift"], check=True)
            self.pair[n] = pair

    def repo(self, name: str, sizes: list[int], envs: int = 1) -> Path:
        path = self.root / "repos" / name
        shutil.rmtree(path, ignore_errors=True)
        path.mkdir(parents=True)
        subprocess.run(["git", "init", "-q", "-b", "main", str(path)], check=True)
        subprocess.run(["git", "-C", str(path), "config", "user.email", "bench@example.com"], check=True)
        subprocess.run(["git", "-C", str(path), "config", "user.name", "bench"], check=True)
        hosts = {}
        for n in sizes:
            for e in range(envs):
                name_e = f"b{n}" if envs == 1 else f"b{n}_{e}"
                hosts[name_e] = self.sb.hosts_entry(f"bench_{n}", command_timeout=600)
        (path / "hosts.yaml").write_text(yaml.safe_dump({"hosts": hosts}))
        return path

    # -- running -------------------------------------------------------------------------
    def inv(self, repo: Path, *args: str, code: Path = REPO, ok: tuple[int, ...] = (0,)) -> tuple[float, int, dict]:
        """The CLI as a user runs it (`inv ...`), timed and measured by bench/measure.py."""
        env = {**os.environ, "SCHEMASYNC_HOSTS": str(repo / "hosts.yaml"), "PYTHONPATH": str(code)}
        inv = str(Path(sys.executable).parent / "inv")
        cmd = [sys.executable, str(REPO / "bench" / "measure.py"), inv, "-r", str(code), *args, "--json"]
        proc = subprocess.run(cmd, cwd=repo, env=env, capture_output=True, check=False)
        if proc.returncode not in ok:
            raise RuntimeError(f"{' '.join(args)} failed ({proc.returncode}):\n{proc.stderr.decode()[-2000:]}")
        report = json.loads(proc.stdout)
        self.last_cpu = report["machine_cpu_s"]
        return report["seconds"], report["peak_rss_kb"], json.loads(report["stdout"])

    def refresh(self, repo: Path, host: str, *extra: str, code: Path = REPO) -> tuple[float, int, dict]:
        return self.inv(repo, "schemas.refresh", "--host", host, *extra, code=code)

    def record(self, measure: str, seconds: float, rss: int = 0) -> None:
        self.times.setdefault(measure, []).append(seconds)
        self.cpu.setdefault(measure, []).append(self.last_cpu)
        if rss:
            self.memory[measure] = max(self.memory.get(measure, 0), rss)

    def floor(self, n: int, *dump_args: str) -> float:
        """One pg_dump --schema-only streamed over SSH (OpenSSH's client) to /dev/null, timed."""
        sb = self.sb
        extra = "".join(f" {a}" for a in dump_args)
        return self.ssh(f"pg_dump --schema-only -h {sb.pg_socket_dir} -p {sb.pg_port} -U postgres{extra} bench_{n}")

    def ssh(self, command: str) -> float:
        cmd = ["ssh", "-F", str(self.sb.ssh_config), "-o", "BatchMode=yes", "sandbox", command]
        with open(os.devnull, "wb") as null:
            busy = busy_seconds()
            started = time.perf_counter()
            subprocess.run(cmd, stdout=null, check=True)
            elapsed = time.perf_counter() - started
            self.last_cpu = busy_seconds() - busy
            return elapsed

    def old_loop(self, n: int) -> float:
        """The script this replaces: on the server, one pg_dump per table in public."""
        sb = self.sb
        conn = f"-h {sb.pg_socket_dir} -p {sb.pg_port} -U postgres -d bench_{n}"
        script = (
            "d=$(mktemp -d); "
            f"psql -X -At {conn} -c \"SELECT tablename FROM pg_tables WHERE schemaname = 'public'\" | "
            f'while read -r t; do pg_dump --schema-only {conn} -t "public.$t" > "$d/$t.sql"; done; rm -rf "$d"'
        )
        return self.ssh(script)

    def round(self, r: int) -> None:
        jobs = []
        for n in self.sizes:
            jobs += [
                (f"floor_{n}", lambda n=n: self.record(f"floor_{n}", self.floor(n))),
                (f"cold_{n}", lambda n=n: self._cold(n)),
                (f"unchanged_{n}", lambda n=n: self._unchanged(n)),
                (f"one_changed_{n}", lambda n=n: self._one_changed(n, r)),
                # one table's pg_dump over SSH, and SSH alone: what dumping the changed table adds
                # to an unchanged refresh (the bound below)
                (f"dump_one_{n}", lambda n=n: self.record(f"dump_one_{n}", self.floor(n, "-t", "public.t00001"))),
                (f"ssh_true_{n}", lambda n=n: self.record(f"ssh_true_{n}", self.ssh("true"))),
                (f"table_{n}", lambda n=n: self._table(n)),
                (f"diff_{n}", lambda n=n: self._diff(n)),
                (f"history_{n}", lambda n=n: self._history(n)),
            ]
            if self.before_code is not None:
                jobs += [
                    (f"cold_{n}_before", lambda n=n: self._cold(n, self.before_code)),
                    (f"unchanged_{n}_before", lambda n=n: self._unchanged(n, self.before_code)),
                ]
        if 1000 in self.sizes:
            jobs.append(("sweep3_1000", self._sweep))
        if self.big:
            jobs += [
                (f"floor_{self.big}", lambda: self.record(f"floor_{self.big}", self.floor(self.big))),
                (f"check_{self.big}", self._check_big),
            ]
        if self.big and r == 0:
            jobs += [
                (f"cold_{self.big}", lambda: self._cold(self.big)),
            ]
        if r == 0:
            jobs += [
                (f"old_loop_{n}", lambda n=n: self.record(f"old_loop_{n}", self.old_loop(n))) for n in self.loop_sizes
            ]
        run_rotated(jobs, r)

    def _cold(self, n: int, code: Path | None = None) -> None:
        self.counter += 1
        repo = self.repo(f"cold_{n}_{self.counter}", [n])
        seconds, rss, data = self.refresh(repo, f"b{n}", code=code or REPO)
        assert data["commit"] and data["tables"] > 0
        self.record(f"cold_{n}" + ("_before" if code else ""), seconds, rss)

    def _unchanged(self, n: int, code: Path | None = None) -> None:
        warm = self.warm_before[n] if code else self.warm[n]
        seconds, rss, data = self.refresh(warm, f"b{n}", code=code or REPO)
        assert not data["changed"] and data["commit"] is None and not data["files_written"], data
        self.record(f"unchanged_{n}" + ("_before" if code else ""), seconds, rss)

    def _diff(self, n: int) -> None:
        seconds, rss, data = self.inv(self.pair[n], "schemas.diff", f"b{n}_0", f"b{n}_1", ok=(1,))
        assert [d["name"] for d in data["different"]] == ["t00003"], data
        assert data["different"][0]["changes"][0]["text"].endswith(f"column extra only in b{n}_1"), data
        self.record(f"diff_{n}", seconds, rss)

    def _history(self, n: int) -> None:
        seconds, rss, data = self.inv(self.warm[n], "schemas.history", "t00001", "--host", f"b{n}")
        assert data["commits"], data
        self.record(f"history_{n}", seconds, rss)

    def _one_changed(self, n: int, r: int) -> None:
        self.sb.psql(f"ALTER TABLE t00001 ADD COLUMN bench_round_{r} integer;", database=f"bench_{n}")
        seconds, rss, data = self.refresh(self.warm[n], f"b{n}")
        assert data["updated"] == ["t00001"] and data["added"] == [], data
        # incremental: that table alone was dumped (a whole dump gives the same files)
        assert data["dumped"] == "part", (data["dumped"], data["dumped_why"])
        print(f"    one_changed_{n}: {data['dumped_why']}", flush=True)
        # the table, its index page (5,000 tables are listed on pages), the manifest; and the
        # summary, unless it already named t00001 as updated within the same minute
        written = set(data["files_written"]) - {"_index.md"}
        paged = (Path(data["output"]) / "_index").is_dir()  # large schemas list their tables on pages
        assert written == {"t00001.sql", "_manifest.json"} | ({"_index/public.md"} if paged else set()), data
        self.record(f"one_changed_{n}", seconds, rss)
        if self.before_code is not None:  # unmeasured: the other version catches up, so its next run is unchanged
            self.refresh(self.warm_before[n], f"b{n}", code=self.before_code)

    def _check_big(self) -> None:
        seconds, rss, data = self.inv(self.warm[self.big], "schemas.check", "--host", f"b{self.big}")
        assert data["stale"] is False and data["dumped"] == "none", data
        self.record(f"check_{self.big}", seconds, rss)

    def _table(self, n: int) -> None:
        seconds, rss, data = self.refresh(self.warm[n], f"b{n}", "--table", "t00002")
        assert data["tables"] == 1, data
        self.record(f"table_{n}", seconds, rss)

    def _sweep(self) -> None:
        self.counter += 1
        repo = self.repo(f"sweep_{self.counter}", [1000], envs=3)
        seconds, rss, data = self.inv(repo, "schemas.sweep")
        assert data["ok"] and data["commit"], data
        self.record("sweep3_1000", seconds, rss)

    def stop(self) -> None:
        if hasattr(self, "sb"):
            self.sb.stop()
        shutil.rmtree(self.root, ignore_errors=True)


def report(bench: Bench, started: datetime) -> dict:
    med = {k: statistics.median(v) for k, v in bench.times.items()}
    rows = []

    def compare(measure: str, base: str, target: float | None, at_least: bool = False, note: str = "") -> None:
        """A row: measure's median against base's, in the same run; nothing if either is missing."""
        if measure not in med or base not in med:
            return
        ratio = med[measure] / med[base]
        ok = None if target is None else (ratio >= target if at_least else ratio <= target)
        row = {"measure": measure, "seconds": med[measure], "against": base, "ratio": ratio, "target": target, "ok": ok}
        rows.append({**row, "note": note} if note else row)

    for measure, (base, limit) in TARGETS.items():
        compare(measure, base, limit)
    for n in bench.loop_sizes:
        compare(f"old_loop_{n}", f"cold_{n}", 40.0 if n == 1000 else None, True, "times slower than our cold refresh")
    if bench.big:
        compare(f"cold_{bench.big}", "cold_5000", 4.5)
    for n in bench.sizes:
        for what in ("cold", "unchanged"):
            compare(f"{what}_{n}", f"{what}_{n}_before", 1.10, note=f"this code against {bench.before}, side by side")
        for what in ("diff", "history"):
            compare(f"{what}_{n}", f"floor_{n}", None, note="from the committed files, no connection")
    for n in bench.sizes:
        # The least a refresh after one table changed can cost here: what an unchanged refresh
        # costs (the CLI, the connection, the remote step, the quick check that finds a change),
        # plus what one table's pg_dump adds to an SSH command. A design can only go below it by
        # dumping before it knows what changed. Writing and committing the file come on top.
        parts = (f"unchanged_{n}", f"dump_one_{n}", f"ssh_true_{n}")
        if all(k in med for k in parts):
            med[f"one_changed_bound_{n}"] = med[parts[0]] + med[parts[1]] - med[parts[2]]
            note = "unchanged + (ssh pg_dump -t one table - ssh true): the least a one-changed refresh costs"
            compare(f"one_changed_bound_{n}", f"floor_{n}", None, note=note)
            compare(f"one_changed_{n}", f"one_changed_bound_{n}", None, note="one changed against that least")
    cpu_s = {k: statistics.median(v) for k, v in bench.cpu.items()}
    if "sweep3_1000" in cpu_s and "cold_1000" in med:
        # With every server on this machine's cores, a sweep cannot finish before its CPU time
        # spread over all the cores: the best ratio this machine allows.
        bound = max(cpu_s["sweep3_1000"] / (os.cpu_count() or 1), med["cold_1000"]) / med["cold_1000"]
        for row in rows:
            if row["measure"] == "sweep3_1000":
                used = cpu_s["sweep3_1000"]
                row["note"] = f"CPU-bound here: {used:.2f} CPU-s on {os.cpu_count()} cores, best possible {bound:.2f}"
                row["cpu_bound_ratio"] = bound
    peak = bench.memory.get("cold_5000", 0) / 1024
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    pg = subprocess.run([str(pg_bindir() / "postgres"), "--version"], capture_output=True, text=True).stdout.strip()
    return {
        "date": started.strftime("%Y-%m-%d"),
        "machine": f"{os.cpu_count()} cores, {cpu}; {platform.system()} {platform.release()}; Python "
        f"{platform.python_version()}; {pg}; loopback SSH",
        "runs": bench.runs,
        "medians": med,
        "cpu_medians": cpu_s,
        "all_times": bench.times,
        "rows": rows,
        "peak_rss_mb_cold_5000": round(peak, 1),
        "peak_rss_ok": peak <= 150 if peak else None,
    }


def write_markdown(data: dict) -> str:
    lines = [
        f"# Benchmark, {data['date']}\n",
        f"Machine: {data['machine']}. Medians of {data['runs']} runs, contenders alternating, all in one run.",
        "The floor is one whole `pg_dump --schema-only` streamed over SSH to /dev/null.\n",
        "| measure | median s | compared with | ratio | target | met |",
        "|---|--:|---|--:|--:|:-:|",
    ]
    for r in data["rows"]:
        target = (
            ""
            if r["target"] is None
            else (f"≥ {r['target']:g}" if r["measure"].startswith("old_loop") else f"≤ {r['target']:g}")
        )
        met = "" if r["ok"] is None else ("yes" if r["ok"] else "**no**")
        lines.append(f"| {r['measure']} | {r['seconds']:.2f} | {r['against']} | {r['ratio']:.2f} | {target} | {met} |")
        if r.get("cpu_bound_ratio"):
            lines.append(f"| ↳ {r['note']} | | | {r['cpu_bound_ratio']:.2f} | | |")
    peak = data["peak_rss_mb_cold_5000"]
    if peak:
        lines.append(
            f"| peak memory, cold 5,000 | {peak:.0f} MB | | | ≤ 150 MB | {'yes' if peak <= 150 else '**no**'} |"
        )
    lines.append("\nAll medians (seconds):\n")
    lines += [
        f"- {k}: {v:.3f} (machine CPU {data['cpu_medians'].get(k, 0):.2f} s)"
        for k, v in sorted(data["medians"].items())
    ]
    return "\n".join(lines) + "\n"


def write_chart(data: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    med = data["medians"]
    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=110)
    for label, prefix in (
        ("floor: one pg_dump over ssh", "floor_"),
        ("cold refresh", "cold_"),
        ("nothing changed", "unchanged_"),
        ("one table changed", "one_changed_"),
        ("the least one changed can cost", "one_changed_bound_"),
        ("--table", "table_"),
        ("old per-table loop", "old_loop_"),
    ):
        points = sorted(
            (int(k[len(prefix) :]), v) for k, v in med.items() if k.startswith(prefix) and k[len(prefix) :].isdigit()
        )
        if points:
            ax.plot([p[0] for p in points], [p[1] for p in points], marker="o", label=label)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("tables")
    ax.set_ylabel("seconds (median)")
    ax.set_title(f"schemasync vs the floor ({data['date']})")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="./dev.sh bench", description=__doc__)
    parser.add_argument("--sizes", default="50,1000,5000")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--loop-sizes", default="50,1000", help="sizes for the old per-table loop (run once)")
    parser.add_argument("--big", type=int, default=20000, help="one cold run at this size (0: skip)")
    parser.add_argument("--out", default=str(RESULTS))
    parser.add_argument("--before", help="also run this git revision's code, side by side (cold, unchanged)")
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",") if s]
    loops = [int(s) for s in args.loop_sizes.split(",") if s]
    started = datetime.now(timezone.utc)
    bench = Bench(sizes, args.runs, loops, args.big or None, args.before)
    run_rounds(bench, args.runs)
    data = report(bench, started)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(data, indent=1) + "\n")
    (out / "results.md").write_text(write_markdown(data))
    try:
        write_chart(data, out / "chart.png")
    except ImportError:
        print("matplotlib is not installed: no chart (pip install matplotlib)", file=sys.stderr)
    print(write_markdown(data))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
