"""sweep, diff and check end to end, over environments that drift on purpose."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from sandbox import LOOPBACK, Sandbox

from .conftest import REPO, Workspace
from .faultproxy import FaultProxy

DRIFT = {
    "dev": "",
    "staging": "DROP TABLE site_photos;",  # missing a table
    "prod": "ALTER TABLE users ADD COLUMN nickname text;",  # an extra column
    "qa": "DROP INDEX survey_notes_project_id_idx; "  # a different index
    "CREATE INDEX survey_notes_project_id_idx ON survey_notes (project_id);",
}


@dataclass
class Env:
    name: str
    database: str
    port: int
    known: str


@pytest.fixture(scope="module")
def envs(sandbox: Sandbox) -> Iterator[dict[str, Env]]:
    out = {}
    for name, sql in DRIFT.items():
        db = f"env_{name}"
        sandbox.psql(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE); CREATE DATABASE "{db}" TEMPLATE skyfire;')
        if sql:
            sandbox.psql(sql, database=db)
        port, known = sandbox.start_extra_sshd(f"env-{name}")
        out[name] = Env(name, db, port, known)
    yield out


def configure(ws: Workspace, envs: dict[str, Env], tmp_path: Path, ports: dict[str, int] | None = None) -> None:
    sb = ws.sandbox
    known = tmp_path / "known_hosts"
    known.write_text("".join(e.known + "\n" for e in envs.values()))
    for e in envs.values():
        port = (ports or {}).get(e.name, e.port)
        if port != e.port:
            key = e.known.split(" ", 1)[1]
            known.write_text(known.read_text() + f"[{LOOPBACK}]:{port} {key}\n")
        cfg = tmp_path / f"ssh_config_{e.name}"
        cfg.write_text(
            f"Host {e.name}-server\n    HostName {LOOPBACK}\n    Port {port}\n    User {sb.login_user}\n"
            f"    IdentityFile {sb.client_key}\n    UserKnownHostsFile {known}\n"
        )
        ws.add_host(
            e.name, e.database, ssh=f"{e.name}-server", ssh_config=str(cfg), connect_timeout=3, command_timeout=5
        )


def test_sweep_refreshes_every_environment_in_one_commit(workspace: Workspace, envs, tmp_path: Path) -> None:
    configure(workspace, envs, tmp_path)
    (workspace.path / "notes.txt").write_text("staged, not ours\n")
    workspace.git("add", "notes.txt")
    run = workspace.inv("schemas.sweep")
    assert run.code == 0, run.err
    assert workspace.commits() == 1
    subject = workspace.git("log", "-1", "--format=%s").strip()
    assert subject.startswith("schemas: ") and all(f"{n}(" in subject for n in DRIFT)
    committed = workspace.git("show", "--name-only", "--format=", "HEAD").split()
    assert {p.split("/")[2] for p in committed if p.count("/") >= 3} == set(DRIFT) and "notes.txt" not in committed
    assert "docs/schemas/README.md" in committed  # the guide for agents, with the first sweep
    for name in DRIFT:
        assert f"\n{name}: ok, " in "\n" + run.out  # one progress line per environment
    table = run.out[run.out.index("environment  tables") :]
    assert "staging      15" in table and "dev          16" in table
    assert not (workspace.out("staging") / "site_photos.sql").exists()
    again = workspace.inv("schemas.sweep", "--json")
    assert again.code == 0 and again.json["commit"] is None and workspace.commits() == 1
    assert [e["host"] for e in again.json["environments"]] == sorted(DRIFT)  # hosts.yaml order


def test_a_failed_environment_does_not_stop_the_others(
    workspace: Workspace, sandbox: Sandbox, envs, tmp_path: Path
) -> None:
    configure(workspace, envs, tmp_path)
    proc = next(p for p in sandbox._extra if "env-qa" in " ".join(p.args))
    proc.terminate()
    proc.wait(10)
    try:
        run = workspace.inv("schemas.sweep", "--json")
    finally:
        sandbox._extra.remove(proc)
        port, _ = sandbox.start_extra_sshd("env-qa")
        envs["qa"].port = port
        envs["qa"].known = f"[{LOOPBACK}]:{port} " + envs["qa"].known.split(" ", 1)[1]
    assert run.code == 3, run.err  # SSH failure, not a configuration error
    rows = {e["host"]: e for e in run.json["environments"]}
    assert rows["qa"]["ok"] is False and "connection refused" in rows["qa"]["error"]
    assert all(rows[n]["ok"] for n in ("dev", "staging", "prod"))
    assert not workspace.out("qa").exists()
    committed = workspace.git("show", "--name-only", "--format=", "HEAD").split()
    assert {p.split("/")[2] for p in committed if p.count("/") >= 3} == {"dev", "staging", "prod"}
    assert "qa(" not in workspace.git("log", "-1", "--format=%s")


def test_a_sweep_with_one_environment_cut_mid_transfer(workspace: Workspace, envs, tmp_path: Path) -> None:
    proxy = FaultProxy(envs["prod"].port, after=4000, mode="reset", direction="down")
    try:
        configure(workspace, envs, tmp_path, ports={"prod": proxy.port})
        run = workspace.inv("schemas.sweep", "--json")
    finally:
        proxy.close()
    assert proxy.triggered.is_set()
    assert run.code == 3
    rows = {e["host"]: e for e in run.json["environments"]}
    assert not rows["prod"]["ok"] and "connection lost" in rows["prod"]["error"], run.err
    assert all(rows[n]["ok"] for n in ("dev", "staging", "qa"))
    assert not workspace.out("prod").exists()
    assert workspace.commits() == 1


def test_reference_drift_and_diff(workspace: Workspace, envs, tmp_path: Path) -> None:
    configure(workspace, envs, tmp_path)
    run = workspace.inv("schemas.sweep", "--reference", "dev")
    assert run.code == 0, run.err
    drift = (workspace.path / "docs" / "schemas" / "_drift.md").read_text()
    assert "| `staging` | `site_photos` | — | — |" in drift
    assert "| `prod` | — | — | `users` |" in drift
    assert "| `qa` | — | — | `survey_notes` |" in drift
    assert "docs/schemas/_drift.md" in workspace.git("show", "--name-only", "--format=", "HEAD").split()

    same = workspace.inv("schemas.diff", "dev", "dev")
    assert same.code == 0 and "the same schema" in same.out
    missing = workspace.inv("schemas.diff", "dev", "staging", "--json")
    assert missing.code == 1
    assert [i["name"] for i in missing.json["only_in_a"]] == ["site_photos"] and missing.json["different"] == []
    column = workspace.inv("schemas.diff", "dev", "prod")
    assert column.code == 1 and "different: table users" in column.out
    assert "users: column nickname only in prod" in column.out  # by object, not by line
    assert "+    nickname text" in workspace.inv("schemas.diff", "dev", "prod", "--text").out
    assert "environment: prod" not in column.out  # headers that name the environment are not differences
    index = workspace.inv("schemas.diff", "dev", "qa", "--json")
    assert index.code == 1 and [d["name"] for d in index.json["different"]] == ["survey_notes"]
    assert "project_id, created_at DESC" in index.json["different"][0]["diff"]


def test_check_compares_without_writing(workspace: Workspace, sandbox: Sandbox, envs, tmp_path: Path) -> None:
    configure(workspace, envs, tmp_path)
    assert workspace.inv("schemas.refresh", "--host", "dev").code == 0
    ok = workspace.inv("schemas.check", "--host", "dev")
    assert ok.code == 0 and "match" in ok.out
    sandbox.psql(
        "ALTER TABLE survey_notes ADD COLUMN weather text; CREATE TABLE extra_t (id int);DROP TABLE site_photos;",
        database="env_dev",
    )
    try:
        before = workspace.snapshot("dev")
        stale = workspace.inv("schemas.check", "--host", "dev", "--json")
        assert stale.code == 1
        assert stale.json["added"] == ["extra_t"] and stale.json["changed"] == ["survey_notes"]
        assert stale.json["gone"] == ["site_photos"]
        assert workspace.snapshot("dev") == before and workspace.commits() == 1
        assert workspace.inv("schemas.check", "--host", "nope").code == 2
    finally:
        sandbox.psql("DROP DATABASE env_dev WITH (FORCE); CREATE DATABASE env_dev TEMPLATE skyfire;")


def test_sweep_usage_errors(workspace: Workspace, envs, tmp_path: Path) -> None:
    configure(workspace, envs, tmp_path)
    assert workspace.inv("schemas.sweep", "--hosts", "dev,nope").code == 2
    assert workspace.inv("schemas.sweep", "--reference", "nope").code == 2
    run = workspace.inv("schemas.sweep", "--hosts", "dev,prod", "--no-commit", "--json")
    assert run.code == 0 and [e["host"] for e in run.json["environments"]] == ["dev", "prod"]
    assert workspace.commits() == 0


def test_a_sweep_started_beside_other_threads_spawns_its_workers(workspace: Workspace, envs, tmp_path: Path) -> None:
    """Forking a process that runs threads can copy a held lock: with a thread running (an MCP
    server, a progress line), the sweep spawns its planner processes instead, and the result is
    the same as the CLI's."""
    import threading

    from schemasync.core.config import load_config
    from schemasync.jobs.sweep import _Planners, select_hosts, sweep

    # a process with one thread (a fresh one: this one's other tests may have left threads) forks
    probe = "from schemasync.jobs.sweep import _Planners\nwith _Planners(2) as p:\n    print(p.method)"
    alone = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=REPO, check=True)
    assert alone.stdout.strip() == ("fork" if sys.platform == "linux" else "spawn")
    configure(workspace, envs, tmp_path)
    config = load_config(str(workspace.path / "hosts.yaml"))
    stop = threading.Event()
    other = threading.Thread(target=stop.wait, daemon=True)
    other.start()
    try:
        with _Planners(2) as beside:
            assert beside.method == "spawn"
        result = sweep(config, select_hosts(config, "dev,staging"), workers=2)
    finally:
        stop.set()
    assert [o.ok for o in result.outcomes] == [True, True], [o.error for o in result.outcomes]
    assert result.commit is not None and workspace.commits() == 1
    assert (workspace.out("dev") / "site_photos.sql").exists() and not (
        workspace.out("staging") / "site_photos.sql"
    ).exists()
    by_host = {o.host.name: o.result for o in result.outcomes}
    assert by_host["dev"] is not None and by_host["dev"].tables_found == 16
