"""`python -m sandbox demo|stop`: the demo behind `./dev.sh demo`.

The demo's repository (a git repo with hosts.yaml and the generated docs) is `.sandbox/demo` in
this checkout. The servers' files live in a directory under /tmp, because as root PostgreSQL runs
as another user who must be able to reach them.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

from sandbox import Sandbox, SandboxError, sql_text

REPO = Path(__file__).resolve().parents[1]  # the checkout: sandbox/ is at its top
DEMO = REPO / ".sandbox" / "demo"
STATE = REPO / ".sandbox" / "sandbox.json"


def _server_root() -> Path:
    tag = hashlib.sha256(str(REPO).encode()).hexdigest()[:8]
    return Path(tempfile.gettempdir()) / f"schemasync-sandbox-{os.getuid()}-{tag}"


def stop() -> None:
    if not STATE.exists():
        print("no demo sandbox is running")
        return
    state = json.loads(STATE.read_text())
    sb = Sandbox(Path(state["root"]), state["ssh_port"], state["pg_port"])
    sb.stop()
    shutil.rmtree(sb.root, ignore_errors=True)
    STATE.unlink()
    print("demo sandbox stopped")


def _step(title: str) -> None:
    print(f"\n\033[1m== {title}\033[0m" if sys.stdout.isatty() else f"\n== {title}", flush=True)


def _show(cmd: list[str], cwd: Path, env: dict[str, str] | None = None) -> int:
    print("$ " + " ".join(cmd).replace(str(REPO) + "/", ""), flush=True)
    return subprocess.run(cmd, cwd=cwd, env=env, check=False).returncode


def demo() -> int:
    if STATE.exists():
        stop()
    shutil.rmtree(REPO / ".sandbox", ignore_errors=True)
    root = _server_root()
    shutil.rmtree(root, ignore_errors=True)

    _step("Starting the sandbox: PostgreSQL and OpenSSH sshd on free loopback ports")
    sb = Sandbox(root).start()
    STATE.parent.mkdir(parents=True, exist_ok=True)
    STATE.write_text(json.dumps({"root": str(root), "ssh_port": sb.ssh_port, "pg_port": sb.pg_port}))
    sb.create_database("skyfire", sql_text("skyfire.sql"))
    print(f"PostgreSQL on {sb.pg_port}, sshd on {sb.ssh_port}; database `skyfire` (a solar installer's backend)")

    DEMO.mkdir(parents=True)
    subprocess.run(["git", "init", "-q", "-b", "main", str(DEMO)], check=True)
    subprocess.run(["git", "-C", str(DEMO), "config", "user.email", "demo@example.com"], check=True)
    subprocess.run(["git", "-C", str(DEMO), "config", "user.name", "schemasync demo"], check=True)
    hosts = {"hosts": {"demo": sb.hosts_entry("skyfire")}}
    (DEMO / "hosts.yaml").write_text(
        "# The demo's hosts.yaml: one environment, reached through the sandbox's own ssh_config.\n"
        + yaml.safe_dump(hosts, sort_keys=False)
    )
    env = {**os.environ, "SCHEMASYNC_HOSTS": str(DEMO / "hosts.yaml")}
    inv = [str(REPO / ".venv" / "bin" / "inv"), "-r", str(REPO)]

    _step("Refresh: one SSH connection, one pg_dump, split into one file per table, committed")
    if _show([*inv, "schemas.refresh", "--host", "demo"], DEMO, env) != 0:
        return 1
    out = DEMO / "docs" / "schemas" / "demo"
    _step("What an agent reads")
    _show(["ls", str(out.relative_to(DEMO))], DEMO)
    print(f"$ sed -n 1,20p {out.relative_to(DEMO)}/survey_notes.sql")
    print("".join((out / "survey_notes.sql").read_text().splitlines(keepends=True)[:20]))

    _step("Refresh again: nothing changed, so no file is written and no commit is made")
    _show([*inv, "schemas.refresh", "--host", "demo"], DEMO, env)

    _step("A migration adds a column and a table; refresh shows exactly that")
    sb.psql(
        "ALTER TABLE survey_notes ADD COLUMN weather text; "
        "CREATE TABLE roof_types (id serial PRIMARY KEY, name text NOT NULL UNIQUE);",
        database="skyfire",
    )
    _show([*inv, "schemas.refresh", "--host", "demo"], DEMO, env)
    _show(["git", "log", "--oneline"], DEMO)

    _step("What changed and when, from git alone (no database): the schema model")
    _show([*inv, "schemas.history", "survey_notes", "--column", "weather"], DEMO, env)
    _show([*inv, "schemas.changes", "--since", "HEAD~1"], DEMO, env)

    _step("Before the next migration runs: what depends on a column, and what the migration would do")
    (DEMO / "migrations").mkdir()
    (DEMO / "migrations" / "0042_release.sql").write_text(
        "ALTER TABLE users ADD COLUMN nickname text;\n"
        "CREATE INDEX users_nickname_idx ON users (nickname);\n"
        "ALTER TABLE solar_projects ALTER COLUMN status TYPE text;\n"
    )
    _show([*inv, "schemas.impact", "solar_projects.status"], DEMO, env)
    _show(["cat", "migrations/0042_release.sql"], DEMO)
    _show([*inv, "schemas.review", "migrations/0042_release.sql"], DEMO, env)

    _step("Try it yourself (the sandbox keeps running; ./dev.sh stop ends it)")
    print(f"  export SCHEMASYNC_HOSTS={DEMO / 'hosts.yaml'}")
    print("  .venv/bin/inv schemas.list --host demo")
    print("  .venv/bin/inv schemas.refresh --host demo --table survey_notes --json")
    print("  .venv/bin/inv schemas.show users --json")
    print("  .venv/bin/inv schemas.history users")
    print("  .venv/bin/inv schemas.review migrations/0042_release.sql --format markdown")
    print(f"  ls {out}")
    return 0


def main(argv: list[str]) -> int:
    try:
        if argv[:1] == ["demo"]:
            return demo()
        if argv[:1] == ["stop"]:
            stop()
            return 0
    except SandboxError as exc:
        print(f"sandbox: {exc}", file=sys.stderr)
        return 1
    print("usage: python -m sandbox demo|stop", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
