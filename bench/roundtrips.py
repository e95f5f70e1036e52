"""`./dev.sh bench-rtt`: the round trips a run waits for, on a link with 50 ms of round-trip time.

Two proxies in front of the sandbox's sshd, one adding 25 ms each way and one adding nothing (so
both pay the same proxy cost). Each contender runs through both, in rotating order; the extra time
through the slow one divided by 0.05 s is the number of round trips it waited for. The floor is
`ssh host pg_dump --schema-only` over the same links. Results: bench/results/roundtrips.json.
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
from .rounds import run_rounds
from .schema import schema_sql

REPO = Path(__file__).resolve().parent.parent
ONE_WAY = 0.025


class RoundTrips:
    def __init__(self, tables: int) -> None:
        self.tables = tables
        self.root = Path(tempfile.mkdtemp(prefix="schemasync-rtt-"))
        os.chmod(self.root, 0o755)
        self.times: dict[str, list[float]] = {}
        self.changes = 0

    def start(self) -> None:
        self.sb = Sandbox(self.root / "sandbox").start()
        for name in ("far", "near"):  # one database each: a change made for one leaves the other unchanged
            self.sb.create_database(f"rtt_{name}", schema_sql(self.tables))
        self.proxies = {"far": LatencyProxy(self.sb.ssh_port, ONE_WAY), "near": LatencyProxy(self.sb.ssh_port, 0.0)}
        key = (self.sb.ssh_dir / "host_ed25519.pub").read_text().split()
        known = self.root / "known_hosts"
        known.write_text("".join(f"[127.0.0.1]:{p.port} {key[0]} {key[1]}\n" for p in self.proxies.values()))
        self.ssh_config = self.root / "ssh_config"
        self.ssh_config.write_text(
            "".join(
                f"Host {name}\n    HostName 127.0.0.1\n    Port {p.port}\n    User {self.sb.login_user}\n"
                f"    IdentityFile {self.sb.client_key}\n    UserKnownHostsFile {known}\n    BatchMode yes\n"
                for name, p in self.proxies.items()
            )
        )
        self.repo = self.root / "repo"
        self.repo.mkdir()
        subprocess.run(["git", "init", "-q", "-b", "main", str(self.repo)], check=True)
        for k, v in (("user.email", "bench@example.com"), ("user.name", "bench")):
            subprocess.run(["git", "-C", str(self.repo), "config", k, v], check=True)
        hosts = {
            name: self.sb.hosts_entry(
                f"rtt_{name}", ssh=name, ssh_config=str(self.ssh_config), output=f"docs/schemas/{name}"
            )
            for name in self.proxies
        }
        (self.repo / "hosts.yaml").write_text(yaml.safe_dump({"hosts": hosts}))
        for name in self.proxies:  # the state an agent's refresh starts from
            self.inv("schemas.refresh", "--host", name)

    def inv(self, *args: str) -> float:
        # PYTHONPATH: this checkout's code, also when the bench runs from another worktree
        env = {**os.environ, "SCHEMASYNC_HOSTS": str(self.repo / "hosts.yaml"), "PYTHONPATH": str(REPO)}
        cmd = [sys.executable, "-m", "invoke", "-r", str(REPO), *args, "--json"]
        started = time.perf_counter()
        proc = subprocess.run(cmd, cwd=self.repo, env=env, capture_output=True, check=False)
        elapsed = time.perf_counter() - started
        if proc.returncode != 0:
            raise RuntimeError(f"{' '.join(args)}: exit {proc.returncode}\n{proc.stderr.decode()[-2000:]}")
        return elapsed

    def _changed(self, name: str) -> float:
        """A refresh after one table changed: the quick check, the fingerprints, then that table."""
        self.changes += 1
        self.sb.psql(f"ALTER TABLE t00001 ADD COLUMN rtt_{self.changes} integer;", database=f"rtt_{name}")
        return self.inv("schemas.refresh", "--host", name)

    def floor(self, name: str) -> float:
        sb = self.sb
        cmd = ["ssh", "-F", str(self.ssh_config), name]
        cmd.append(f"pg_dump --schema-only -h {sb.pg_socket_dir} -p {sb.pg_port} -U postgres rtt_{name}")
        started = time.perf_counter()
        subprocess.run(cmd, stdout=subprocess.DEVNULL, check=True)
        return time.perf_counter() - started

    def round(self, r: int) -> None:
        jobs = []
        for name in self.proxies:
            jobs += [
                (f"floor_{name}", lambda n=name: self.floor(n)),
                (f"refresh_{name}", lambda n=name: self.inv("schemas.refresh", "--host", n)),
                (f"changed_{name}", lambda n=name: self._changed(n)),
                (f"full_{name}", lambda n=name: self.inv("schemas.refresh", "--host", n, "--full")),
                (f"table_{name}", lambda n=name: self.inv("schemas.refresh", "--host", n, "--table", "t00002")),
                (f"list_{name}", lambda n=name: self.inv("schemas.list", "--host", n)),
                (f"check_{name}", lambda n=name: self.inv("schemas.check", "--host", n)),
            ]
        shift = r % len(jobs)
        for measure, job in jobs[shift:] + jobs[:shift]:
            self.times.setdefault(measure, []).append(job())
        print(f"  round {r + 1} done", flush=True)

    def stop(self) -> None:
        for p in getattr(self, "proxies", {}).values():
            p.close()
        if hasattr(self, "sb"):
            self.sb.stop()
        shutil.rmtree(self.root, ignore_errors=True)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="bench-rtt", description=__doc__.split("\n\n")[0])
    parser.add_argument("--tables", type=int, default=50)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "roundtrips.json")
    args = parser.parse_args(argv)
    bench = RoundTrips(args.tables)
    run_rounds(bench, args.runs)
    med = {k: statistics.median(v) for k, v in bench.times.items()}
    rtt = 2 * ONE_WAY
    rows = {}
    print(f"\n| {args.tables} tables, {rtt * 1000:.0f} ms RTT | near | far | round trips | × ssh floor (far) |")
    print("|---|--:|--:|--:|--:|")
    for what in ("floor", "refresh", "changed", "full", "table", "list", "check"):
        near, far = med[f"{what}_near"], med[f"{what}_far"]
        trips = (far - near) / rtt
        ratio = far / med["floor_far"]
        rows[what] = {
            "near_s": round(near, 3),
            "far_s": round(far, 3),
            "round_trips": round(trips, 1),
            "x_floor": round(ratio, 2),
        }
        print(f"| {what} | {near:.2f} s | {far:.2f} s | {trips:.1f} | {ratio:.2f} × |")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps({"one_way_s": ONE_WAY, "tables": args.tables, "runs": args.runs, "rows": rows}, indent=1) + "\n"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
