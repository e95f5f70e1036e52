"""`./dev.sh bench-fleet`: every database a team runs, against the floor, side by side in one run.

- Schema-per-tenant: 1,000 tenant schemas of 20 tables (20,000 tables) and a shared `public`.
  Floor: one whole `pg_dump --schema-only` streamed over SSH. Measured: a cold refresh (target
  ≤ 1.5 × the floor, ≤ 100 files written) and an unchanged one (writes nothing).
- Several databases on one host: 20 databases of 250 tables. Floor: the sum of the 20 databases'
  floors. Measured: a cold refresh of the host (target ≤ 1.3 × that sum), and the SSH
  connections it opens (target: one).

Rounds rotate the order so the machine's noise falls on every contender alike; medians are
reported. Results go to bench/results/fleet.json and a table on stdout.
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
from .rounds import run_rotated, run_rounds
from .schema import schema_sql

REPO = Path(__file__).resolve().parent.parent
TARGETS = {"tenants_cold": 1.5, "databases_cold": 1.3}


def tenants_sql(tenants: int, tables: int) -> str:
    """A shared public, then `tenants` schemas of `tables` tables each: keys, FKs, an index. One
    transaction per 50 tenants: one for all would run out of lock slots."""
    blocks = []
    for first in range(1, tenants + 1, 50):
        last = min(first + 49, tenants)
        blocks.append(
            f"""
DO $$
DECLARE s text;
BEGIN
  FOR i IN {first}..{last} LOOP
    s := 'tenant_' || lpad(i::text, 4, '0');
    EXECUTE format('CREATE SCHEMA %I', s);
    FOR t IN 1..{tables} LOOP
      EXECUTE format('CREATE TABLE %I.%I (id bigserial PRIMARY KEY, account_id bigint, name text NOT NULL, '
                     'amount numeric(12,2) DEFAULT 0, created_at timestamptz NOT NULL DEFAULT now(), data jsonb)',
                     s, 'entity_' || lpad(t::text, 2, '0'));
      EXECUTE format('CREATE INDEX ON %I.%I (created_at)', s, 'entity_' || lpad(t::text, 2, '0'));
      IF t > 1 THEN
        EXECUTE format('ALTER TABLE %I.%I ADD FOREIGN KEY (account_id) REFERENCES %I.entity_01(id)',
                       s, 'entity_' || lpad(t::text, 2, '0'), s);
      END IF;
    END LOOP;
  END LOOP;
END $$;
"""
        )
    return schema_sql(20) + "".join(blocks)


class Fleet:
    def __init__(self, tenants: int, tables: int, databases: int, db_tables: int, runs: int) -> None:
        self.tenants, self.tables, self.runs = tenants, tables, runs
        self.databases, self.db_tables = databases, db_tables
        self.root = Path(tempfile.mkdtemp(prefix="schemasync-fleet-"))
        os.chmod(self.root, 0o755)  # as root, PostgreSQL runs as another user who must reach its data
        self.times: dict[str, list[float]] = {}
        self.facts: dict[str, object] = {}
        self.counter = 0

    def start(self) -> None:
        self.sb = Sandbox(self.root / "sandbox", pg_options="-c max_locks_per_transaction=1024").start()
        t = time.perf_counter()
        self.sb.create_database("fleet_tenants", tenants_sql(self.tenants, self.tables))
        print(f"{self.tenants} tenants of {self.tables} tables built in {time.perf_counter() - t:.1f}s", flush=True)
        t = time.perf_counter()
        for d in range(self.databases):
            self.sb.create_database(f"fleet_db_{d:02d}", schema_sql(self.db_tables, seed=d))
        print(f"{self.databases} databases of {self.db_tables} tables built in {time.perf_counter() - t:.1f}s")
        self.warm = self.repo("warm")
        self.refresh(self.warm, "saas")  # the state "unchanged" starts from

    def repo(self, name: str) -> Path:
        path = self.root / "repos" / name
        shutil.rmtree(path, ignore_errors=True)
        path.mkdir(parents=True)
        subprocess.run(["git", "init", "-q", "-b", "main", str(path)], check=True)
        for key, value in (("user.email", "bench@example.com"), ("user.name", "bench")):
            subprocess.run(["git", "-C", str(path), "config", key, value], check=True)
        hosts = {
            "saas": self.sb.hosts_entry(
                "fleet_tenants", schemas=["public", "billing"], tenants={"schemas": "tenant_*"}, command_timeout=600
            ),
            "fleet": self.sb.hosts_entry("fleet_db_*", command_timeout=600),
        }
        hosts["fleet"]["database"] = ["fleet_db_*"]
        (path / "hosts.yaml").write_text(yaml.safe_dump({"hosts": hosts}))
        return path

    def refresh(self, repo: Path, host: str) -> tuple[float, dict]:
        env = {**os.environ, "SCHEMASYNC_HOSTS": str(repo / "hosts.yaml")}
        cmd = [sys.executable, "-m", "invoke", "-r", str(REPO), "schemas.refresh", "--host", host, "--json"]
        started = time.perf_counter()
        proc = subprocess.run(cmd, cwd=repo, env=env, capture_output=True, check=False)
        elapsed = time.perf_counter() - started
        if proc.returncode != 0:
            raise RuntimeError(f"refresh {host} failed ({proc.returncode}):\n{proc.stderr.decode()[-2000:]}")
        return elapsed, json.loads(proc.stdout)

    def floor(self, database: str) -> float:
        sb = self.sb
        cmd = ["ssh", "-F", str(sb.ssh_config), "-o", "BatchMode=yes", "sandbox"]
        cmd.append(f"pg_dump --schema-only -h {sb.pg_socket_dir} -p {sb.pg_port} -U postgres {database}")
        with open(os.devnull, "wb") as null:
            started = time.perf_counter()
            subprocess.run(cmd, stdout=null, check=True)
            return time.perf_counter() - started

    def record(self, measure: str, seconds: float) -> None:
        self.times.setdefault(measure, []).append(seconds)

    def _tenants_cold(self) -> None:
        self.counter += 1
        repo = self.repo(f"cold_{self.counter}")
        seconds, data = self.refresh(repo, "saas")
        out = repo / "docs" / "schemas" / "saas"
        files = [p for p in out.rglob("*") if p.is_file()]
        tenants = data["tenants"]
        assert data["commit"] and tenants["count"] == self.tenants and tenants["same"] == self.tenants - 1, tenants
        self.facts["tenants_files"] = len(files)
        self.facts["tenants_tables"] = data["tables"]
        self.record("tenants_cold", seconds)

    def _tenants_unchanged(self) -> None:
        seconds, data = self.refresh(self.warm, "saas")
        assert not data["changed"] and not data["files_written"] and data["commit"] is None, data
        self.record("tenants_unchanged", seconds)

    def _databases_cold(self) -> None:
        self.counter += 1
        repo = self.repo(f"dbs_{self.counter}")
        proxy = LatencyProxy(self.sb.ssh_port, one_way=0.0)  # no delay: it counts the TCP connections
        config = yaml.safe_load((repo / "hosts.yaml").read_text())
        known = (self.sb.ssh_dir / "host_ed25519.pub").read_text().split()
        (repo / "known").write_text(f"[127.0.0.1]:{proxy.port} {known[0]} {known[1]}\n")
        (repo / "ssh_config").write_text(
            f"Host counted\n    HostName 127.0.0.1\n    Port {proxy.port}\n    User {self.sb.login_user}\n"
            f"    IdentityFile {self.sb.client_key}\n    UserKnownHostsFile {repo / 'known'}\n"
        )
        config["hosts"]["fleet"].update(ssh="counted", ssh_config=str(repo / "ssh_config"))
        (repo / "hosts.yaml").write_text(yaml.safe_dump(config))
        try:
            seconds, data = self.refresh(repo, "fleet")
        finally:
            proxy.close()
        rows = data["environments"]
        assert data["ok"] and len(rows) == self.databases and data["commit"], data
        self.facts["databases_ssh_connections"] = proxy.connections
        self.record("databases_cold", seconds)

    def _databases_floor(self) -> None:
        self.record("databases_floor", sum(self.floor(f"fleet_db_{d:02d}") for d in range(self.databases)))

    def round(self, r: int) -> None:
        jobs = [
            ("tenants_floor", lambda: self.record("tenants_floor", self.floor("fleet_tenants"))),
            ("tenants_cold", self._tenants_cold),
            ("tenants_unchanged", self._tenants_unchanged),
            ("databases_floor", self._databases_floor),
            ("databases_cold", self._databases_cold),
        ]
        run_rotated(jobs, r)

    def stop(self) -> None:
        if hasattr(self, "sb"):
            self.sb.stop()
        shutil.rmtree(self.root, ignore_errors=True)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="bench-fleet", description=__doc__.split("\n\n")[0])
    parser.add_argument("--tenants", type=int, default=1000)
    parser.add_argument("--tables", type=int, default=20, help="tables per tenant")
    parser.add_argument("--databases", type=int, default=20)
    parser.add_argument("--db-tables", type=int, default=250)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "fleet.json")
    args = parser.parse_args(argv)
    fleet = Fleet(args.tenants, args.tables, args.databases, args.db_tables, args.runs)
    run_rounds(fleet, args.runs)
    med = {k: statistics.median(v) for k, v in fleet.times.items()}
    rows = [
        ("tenants_cold", "tenants_floor", f"cold refresh, {args.tenants} tenants × {args.tables} tables + public"),
        ("tenants_unchanged", "tenants_floor", "unchanged refresh, same database (writes nothing)"),
        ("databases_cold", "databases_floor", f"cold refresh, {args.databases} databases × {args.db_tables} tables"),
    ]
    result = {"medians_s": med, "facts": fleet.facts, "runs": args.runs, "ratios": {}}
    print("\n| measure | median | floor | ratio | target |\n|---|--:|--:|--:|--:|")
    ok = True
    for measure, base, label in rows:
        ratio = med[measure] / med[base]
        target = TARGETS.get(measure)
        result["ratios"][measure] = round(ratio, 3)
        ok = ok and (target is None or ratio <= target)
        print(f"| {label} | {med[measure]:.2f} s | {med[base]:.2f} s | {ratio:.2f} × | {target or ''} |")
    files, conns = fleet.facts.get("tenants_files"), fleet.facts.get("databases_ssh_connections")
    print(f"\nfiles written for {fleet.facts.get('tenants_tables')} tables in tenant schemas: {files} (target ≤ 100)")
    print(f"SSH connections for {args.databases} databases: {conns} (target 1)")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    return 0 if ok and (files or 0) <= 100 and conns == 1 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
