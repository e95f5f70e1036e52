"""The README's CI job, run as written: its review step's script, taken from the README itself, in a
repository whose pull-request branch adds a migration (everything but posting the comment, which
needs GitHub)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import yaml

from sandbox import Sandbox, sql_text

from .conftest import Workspace

REPO = Path(__file__).resolve().parents[1]


def review_step() -> str:
    text = (REPO / "README.md").read_text()
    block = next(b for b in re.findall(r"```yaml\n(.*?)```", text, re.S) if "name: migration review" in b)
    job = yaml.safe_load(block)
    steps = job["jobs"]["review"]["steps"]
    return next(s for s in steps if s.get("id") == "review")["run"]


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, check=True).stdout


def run_step(repo: Path, tmp_path: Path) -> tuple[dict[str, str], subprocess.CompletedProcess]:
    script = tmp_path / "step.sh"
    script.write_text(review_step())
    output = tmp_path / "github_output"
    output.write_text("")
    env = {
        **os.environ,
        "GITHUB_BASE_REF": "main",
        "GITHUB_OUTPUT": str(output),
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
    }
    env.pop("SCHEMASYNC_HOSTS", None)  # CI finds hosts.yaml in the checkout
    # as GitHub runs a step: bash --noprofile --norc -eo pipefail {0}
    proc = subprocess.run(
        ["bash", "--noprofile", "--norc", "-eo", "pipefail", str(script)], cwd=repo, env=env, capture_output=True,
        text=True, timeout=120,
    )  # fmt: skip
    values = dict(line.split("=", 1) for line in output.read_text().splitlines() if "=" in line)
    return values, proc


def test_the_readme_ci_job_reviews_a_pull_request(workspace: Workspace, sandbox: Sandbox, tmp_path: Path) -> None:
    db = f"rv_ci_{os.getpid()}"
    sandbox.create_database(db, sql_text("skyfire.sql") + "\n" + sql_text("review.sql"))
    try:
        workspace.add_host("prod", db)
        workspace.add_host("staging", db)
        for host in ("prod", "staging"):
            assert workspace.inv("schemas.refresh", "--host", host).code == 0
    finally:
        sandbox.psql(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE);', check=False)
    repo = workspace.path
    git(repo, "add", "hosts.yaml")
    git(repo, "commit", "-qm", "hosts")
    origin = tmp_path / "origin.git"
    subprocess.run(["git", "clone", "-q", "--bare", str(repo), str(origin)], check=True)
    git(repo, "remote", "add", "origin", str(origin))
    git(repo, "fetch", "-q", "origin")
    git(repo, "checkout", "-q", "-b", "feature")

    # a pull request that changes no migration: nothing to review, the job passes
    values, proc = run_step(repo, tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert values == {"code": "0"} and not (repo / "review.md").exists()

    (repo / "migrations").mkdir()
    (repo / "migrations" / "0041_old.sql").write_text("ALTER TABLE customers ADD COLUMN nickname text;\n")
    git(repo, "add", "migrations")
    git(repo, "commit", "-qm", "an old migration")
    git(repo, "push", "-q", "origin", "feature:main")  # already on main: not this pull request's
    (repo / "migrations" / "0042_release.sql").write_text(
        "ALTER TABLE tickets ADD COLUMN status text;\nALTER TABLE invoices RENAME COLUMN tax_cents TO tax;\n"
    )
    (repo / "migrations" / "0043_index.sql").write_text("CREATE INDEX CONCURRENTLY t_status ON tickets (status);\n")
    git(repo, "add", "migrations")
    git(repo, "commit", "-qm", "release")

    values, proc = run_step(repo, tmp_path)
    assert proc.returncode == 0, proc.stderr  # the step records the code; the last step fails the job
    assert values == {"code": "1"}
    comment = (repo / "review.md").read_text()
    assert comment.startswith("### schemasync review: ❌ something fails or breaks")
    assert "`migrations/0042_release.sql`, `migrations/0043_index.sql` against **prod**, **staging**" in comment
    assert "0041_old" not in comment
    assert "- **#2 breaks in prod**:" in comment and "functions/invoice_total.sql:" in comment
    assert "| 3 | `CREATE INDEX CONCURRENTLY t_status ON tickets (status)` | ✅" in comment
