"""`./dev.sh bench-sweep`: a sweep against each of its environments refreshed alone, in one run.

(a) Three environments of 1,000 tables on this machine. Here the three servers' pg_dumps share the
    client's cores, so a sweep cannot beat max(slowest alone, machine CPU-seconds of the three alone
    / cores): the bound. Target: ≤ 1.15 × the bound.
(b) The same three behind a proxy that adds 50 ms of round-trip time (real servers far away):
    target ≤ 1.2 × the slowest alone through the same proxy.
(c) Thirty environments of 200 tables, `--workers 8`: target ≤ 1.3 × the bound.

Every run is a cold refresh into a fresh repository (the alone ones one after another, each its own
`inv` process, as a user would run them). Contenders rotate order per round; medians are reported.
`--before REV` also runs that revision's sweeps, side by side. Results: bench/results/sweep.json.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from sandbox import Sandbox

from .latency import LatencyProxy
from .measure_cpu import busy_seconds
from .rounds import checkout, run_rotated, run_rounds
from .schema import schema_sql

REPO = Path(__file__).resolve().parent.parent
ONE_WAY = 0.025
TARGETS = {"a": 1.15, "b": 1.2, "c": 1.3}


class SweepBench:
    def __init__(self, runs: int, before: str | None) -> None:
        self.runs, self.before = runs, before
        self.root = Path(tempfile.mkdtemp(prefix="schemasync-sweep-"))
        os.chmod(self.root, 0o755)  # as root, PostgreSQL runs as another user who must reach its data
        self.times: dict[str, list[float]] = {}
        self.cpu: dict[str, list[float]] = {}
        self.counter = 0
        # case -> its environments: host name -> (database, through the slow proxy)
        self.cases: dict[str, dict[str, tuple[str, bool]]] = {
            "a": {f"a{i}": (f"sweep_a{i}", False) for i in range(3)},
            "b": {f"b{i}": (f"sweep_a{i}", True) for i in range(3)},
            "c": {f"c{i:02d}": (f"sweep_c{i:02d}", False) for i in range(30)},
        }
        self.workers = {"a": 4, "b": 4, "c": 8}

    def start(self) -> None:
        self.sb = Sandbox(self.root / "sandbox", pg_options="-c max_locks_per_transaction=1024").start()
        t = time.perf_counter()
        for i in range(3):
            self.sb.create_database(f"sweep_a{i}", schema_sql(1000, seed=i))
        for i in range(30):
            self.sb.create_database(f"sweep_c{i:02d}", schema_sql(200, seed=i))
        print(f"33 databases built in {time.perf_counter() - t:.1f}s", flush=True)
        self.proxy = LatencyProxy(self.sb.ssh_port, ONE_WAY)
        key = (self.sb.ssh_dir / "host_ed25519.pub").read_text().split()
        known = self.root / "known_hosts"
        known.write_text(f"[127.0.0.1]:{self.proxy.port} {key[0]} {key[1]}\n")
        self.far_config = self.root / "ssh_config"
        self.far_config.write_text(
            f"Host far\n    HostName 127.0.0.1\n    Port {self.proxy.port}\n    User {self.sb.login_user}\n"
            f"    IdentityFile {self.sb.client_key}\n    UserKnownHostsFile {known}\n"
        )
        self.before_code = None
        if self.before:  # the other version's code, run by the same Python and dependencies
            self.before_code = checkout(self.before, self.root / "before")

    def repo(self, case: str) -> Path:
        self.counter += 1
        path = self.root / "repos" / f"{case}_{self.counter}"
        path.mkdir(parents=True)
        subprocess.run(["git", "init", "-q", "-b", "main", str(path)], check=True)
        for key, value in (("user.email", "bench@example.com"), ("user.name", "bench")):
            subprocess.run(["git", "-C", str(path), "config", key, value], check=True)
        hosts = {}
        for name, (database, far) in self.cases[case].items():
            hosts[name] = self.sb.hosts_entry(database, command_timeout=600)
            if far:
                hosts[name].update(ssh="far", ssh_config=str(self.far_config))
        (path / "hosts.yaml").write_text(yaml.safe_dump({"hosts": hosts}))
        return path

    def inv(self, repo: Path, *args: str, code: Path = REPO) -> tuple[float, float]:
        """Wall seconds and the machine's CPU seconds of one `inv` run."""
        env = {**os.environ, "SCHEMASYNC_HOSTS": str(repo / "hosts.yaml"), "PYTHONPATH": str(code)}
        cmd = [sys.executable, "-m", "invoke", "-r", str(code), *args, "--json"]
        busy = busy_seconds()
        started = time.perf_counter()
        proc = subprocess.run(cmd, cwd=repo, env=env, capture_output=True, check=False)
        elapsed, cpu = time.perf_counter() - started, busy_seconds() - busy
        if proc.returncode != 0:
            raise RuntimeError(f"{' '.join(args)}: exit {proc.returncode}\n{proc.stderr.decode()[-2000:]}")
        data = json.loads(proc.stdout)
        assert data.get("commit"), data
        return elapsed, cpu

    def record(self, measure: str, seconds: float, cpu: float) -> None:
        self.times.setdefault(measure, []).append(seconds)
        self.cpu.setdefault(measure, []).append(cpu)

    def alone(self, case: str) -> None:
        repo = self.repo(case)
        for name in self.cases[case]:
            self.record(f"{case}_alone_{name}", *self.inv(repo, "schemas.refresh", "--host", name))

    def sweep(self, case: str, code: Path | None = None) -> None:
        repo = self.repo(case)
        measure = f"{case}_sweep" + ("_before" if code else "")
        self.record(measure, *self.inv(repo, "schemas.sweep", "--workers", str(self.workers[case]), code=code or REPO))

    def round(self, r: int) -> None:
        jobs = []
        for case in self.cases:
            jobs += [(f"{case}_alone", lambda c=case: self.alone(c)), (f"{case}_sweep", lambda c=case: self.sweep(c))]
            if self.before_code is not None:
                jobs.append((f"{case}_sweep_before", lambda c=case: self.sweep(c, self.before_code)))
        run_rotated(jobs, r)

    def stop(self) -> None:
        if hasattr(self, "proxy"):
            self.proxy.close()
        if hasattr(self, "sb"):
            self.sb.stop()
        shutil.rmtree(self.root, ignore_errors=True)


def report(bench: SweepBench) -> dict:
    med = {k: statistics.median(v) for k, v in bench.times.items()}
    cpu = {k: statistics.median(v) for k, v in bench.cpu.items()}
    cores = os.cpu_count() or 1
    rows = {}
    for case, hosts in bench.cases.items():
        slowest = max(med[f"{case}_alone_{h}"] for h in hosts)
        cpu_alone = sum(cpu[f"{case}_alone_{h}"] for h in hosts)
        # (b) waits on the link, not the cores: its bound is the slowest alone
        bound = slowest if case == "b" else max(slowest, cpu_alone / cores)
        row = {
            "environments": len(hosts),
            "workers": bench.workers[case],
            "slowest_alone_s": round(slowest, 3),
            "cpu_alone_s": round(cpu_alone, 2),
            "bound_s": round(bound, 3),
            "sweep_s": round(med[f"{case}_sweep"], 3),
            "sweep_cpu_s": round(cpu[f"{case}_sweep"], 2),
            "ratio": round(med[f"{case}_sweep"] / bound, 3),
            "target": TARGETS[case],
            # with the servers on this machine's cores, (b) is CPU-bound too: against that bound
            "cpu_bound_ratio": round(med[f"{case}_sweep"] / max(slowest, cpu_alone / cores), 3),
        }
        if f"{case}_sweep_before" in med:
            row["before_s"] = round(med[f"{case}_sweep_before"], 3)
            row["before_ratio"] = round(med[f"{case}_sweep_before"] / bound, 3)
        rows[case] = row
    return {"cores": cores, "runs": bench.runs, "before": bench.before, "rows": rows, "medians_s": med, "cpu_s": cpu}


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="bench-sweep", description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--before", help="also run this git revision's sweeps, side by side")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "sweep.json")
    args = parser.parse_args(argv)
    bench = SweepBench(args.runs, args.before)
    run_rounds(bench, args.runs)
    data = report(bench)
    labels = {
        "a": "(a) 3 × 1,000 tables, CPU-bound",
        "b": "(b) 3 × 1,000 tables, 50 ms RTT",
        "c": "(c) 30 × 200 tables, 8 workers",
    }
    before = f" | {args.before} ÷ bound" if args.before else ""
    print(f"\n| sweep | slowest alone | CPU alone | bound | sweep | ÷ bound | target | ÷ CPU bound{before} |")
    print("|---|--:|--:|--:|--:|--:|--:|--:|" + ("--:|" if args.before else ""))
    ok = True
    for case, row in data["rows"].items():
        ok = ok and row["ratio"] <= row["target"]
        extra = f" | {row['before_ratio']:.2f}" if "before_ratio" in row else ""
        print(
            f"| {labels[case]} | {row['slowest_alone_s']:.2f} s | {row['cpu_alone_s']:.1f} s | {row['bound_s']:.2f} s "
            f"| {row['sweep_s']:.2f} s | {row['ratio']:.2f} | ≤ {row['target']} | {row['cpu_bound_ratio']:.2f}{extra} |"
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(data, indent=1) + "\n")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
