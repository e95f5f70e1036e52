"""`./dev.sh bench-memory`: peak memory of a cold refresh, measured two ways.

- the largest single process (the CLI or a git it starts): `ru_maxrss` from wait4, what the main
  bench reports;
- the whole local process tree at once: the sum of the RSS of the CLI and every process it has
  started, sampled from /proc every 10 ms (the servers, reached over SSH, are not counted).

Prints both for a database of N generated tables (default 5,000), medians of 3 runs.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import yaml

from sandbox import Sandbox

from .schema import schema_sql

REPO = Path(__file__).resolve().parent.parent


def _tree_rss_kb(root: int) -> int:
    """The RSS of `root` and all its descendants, from /proc."""
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
            pid, ppid, pages = int(entry), int(fields[1]), int(fields[21])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(pid)
        rss[pid] = pages * os.sysconf("SC_PAGE_SIZE") // 1024
    total, todo = 0, [root]
    while todo:
        pid = todo.pop()
        total += rss.get(pid, 0)
        todo += children.get(pid, [])
    return total


def measure(cmd: list[str], cwd: Path, env: dict[str, str]) -> tuple[int, int]:
    """(largest single process, peak of the whole tree), in KB."""
    proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    peak = 0
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, _tree_rss_kb(proc.pid))
            time.sleep(0.01)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    _, status, usage = os.wait4(proc.pid, 0)
    done.set()
    sampler.join()
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed: {proc.stderr.read().decode()[-2000:] if proc.stderr else ''}")
    return usage.ru_maxrss, peak


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="bench-memory", description=__doc__.split("\n\n")[0])
    parser.add_argument("--tables", type=int, default=5000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args(argv)
    root = Path(tempfile.mkdtemp(prefix="schemasync-memory-"))
    os.chmod(root, 0o755)
    sb = Sandbox(root / "sandbox", pg_options="-c max_locks_per_transaction=1024").start()
    single, tree = [], []
    try:
        sb.create_database("mem", schema_sql(args.tables))
        for r in range(args.runs):
            repo = root / f"repo{r}"
            repo.mkdir()
            subprocess.run(["git", "init", "-q", str(repo)], check=True)
            for k, v in (("user.email", "bench@example.com"), ("user.name", "bench")):
                subprocess.run(["git", "-C", str(repo), "config", k, v], check=True)
            (repo / "hosts.yaml").write_text(
                yaml.safe_dump({"hosts": {"m": sb.hosts_entry("mem", command_timeout=600)}})
            )
            env = {**os.environ, "SCHEMASYNC_HOSTS": str(repo / "hosts.yaml"), "PYTHONPATH": str(REPO)}
            inv = [sys.executable, "-m", "invoke", "-r", str(REPO), "schemas.refresh", "--host", "m"]
            one, whole = measure(inv, repo, env)
            single.append(one)
            tree.append(whole)
            shutil.rmtree(repo)
    finally:
        sb.stop()
        shutil.rmtree(root, ignore_errors=True)
    print(f"cold refresh of {args.tables} tables, medians of {args.runs}:")
    print(f"  largest single process (ru_maxrss): {statistics.median(single) / 1024:.0f} MB")
    print(f"  the whole local process tree at once (sampled): {statistics.median(tree) / 1024:.0f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
