"""Secrets pg_dump prints never reach a file, a commit, the output or an MCP answer.

Against the real server: a user mapping and a foreign server with passwords, a subscription's
connection string (key=value and URI), dblink connection strings in a view and in a function
body, a foreign table option and a column default caught by patterns added in hosts.yaml."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest

from sandbox import Sandbox

from .conftest import Workspace


def secrets_sql(tag: str) -> str:
    return f"""
CREATE EXTENSION postgres_fdw;
CREATE EXTENSION dblink;
CREATE SERVER remote_pg FOREIGN DATA WRAPPER postgres_fdw OPTIONS (host 'db.internal', dbname 'app');
CREATE USER MAPPING FOR postgres SERVER remote_pg OPTIONS ("user" 'app', password 'um-{tag}-pw1');
CREATE USER MAPPING FOR PUBLIC SERVER remote_pg OPTIONS ("user" 'ro', password 'it''s {tag}-pw2');
CREATE FOREIGN DATA WRAPPER legacy_fdw;
CREATE SERVER mysql_srv FOREIGN DATA WRAPPER legacy_fdw OPTIONS (host 'db.internal', password 'srv-{tag}-pw3');
CREATE FOREIGN TABLE remote_users (id int OPTIONS (column_secret 'col-{tag}-pw4'), name text)
    SERVER mysql_srv OPTIONS (table_name 'users', vendor_key 'key-{tag}-pw5');
CREATE TABLE accounts (id int PRIMARY KEY, note text DEFAULT 'sk_live_{tag}pw6');
COMMENT ON TABLE accounts IS 'billing key sk_live_{tag}pw7';
CREATE VIEW remote_count AS
    SELECT * FROM dblink('host=db.internal dbname=app password=dbl-{tag}-pw8', 'select 1') AS t(n int);
CREATE FUNCTION pull() RETURNS void LANGUAGE plpgsql
    AS $$ BEGIN PERFORM dblink_connect('c', 'host=x password=''fn {tag} pw9'''); END $$;
CREATE PUBLICATION pub FOR ALL TABLES;
CREATE SUBSCRIPTION sub CONNECTION 'host=primary.internal user=repl password=sub-{tag}-pw10 sslpassword=ssl-{tag}-pw11'
    PUBLICATION pub WITH (connect = false, slot_name = NONE, enabled = false);
CREATE SUBSCRIPTION sub_uri CONNECTION 'postgresql://repl:uri-{tag}-pw12@primary.internal/app?sslmode=require'
    PUBLICATION pub WITH (connect = false, slot_name = NONE, enabled = false);
"""


def secret_values(tag: str) -> list[str]:
    values = [f"{tag}-pw{n}" for n in (1, 3, 4, 5, 8, 10, 11, 12)]
    return [*values, f"{tag}pw6", f"{tag}pw7", f"it's {tag}-pw2", f"{tag} pw9", tag]


REDACT = ["vendor_key", "/sk_live_[A-Za-z0-9]+/"]


@pytest.fixture(scope="module")
def secret_dbs(sandbox: Sandbox) -> Iterator[tuple[str, str]]:
    names = ("secrets_a", "secrets_b")
    for name, tag in zip(names, ("AlphaS3cret", "BravoS3cret"), strict=True):
        sandbox.create_database(name, secrets_sql(tag))
    yield names
    for name in names:
        # a database with subscriptions cannot be dropped; these never had a slot
        sandbox.psql("DROP SUBSCRIPTION sub; DROP SUBSCRIPTION sub_uri;", database=name, check=False)
        sandbox.psql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE);", check=False)


def assert_clean(text: str, where: str) -> None:
    for tag in ("AlphaS3cret", "BravoS3cret"):
        for value in secret_values(tag):
            assert value not in text, f"{value!r} leaked into {where}"


def test_no_secret_reaches_files_commits_output_or_mcp(workspace: Workspace, secret_dbs: tuple[str, str]) -> None:
    a, b = secret_dbs
    workspace.add_host("dev", a, schemas=["*"], redact=REDACT)
    workspace.add_host("prod", b, schemas=["*"], redact=REDACT)
    runs = [
        workspace.inv("schemas.refresh", "--host", "dev"),
        workspace.inv("schemas.refresh", "--host", "prod", "--json"),
    ]
    assert [r.code for r in runs] == [0, 0], runs
    # the text summary says what was removed, never the value
    assert "redacted 12 secrets that pg_dump printed" in runs[0].out
    assert "USER MAPPING postgres SERVER remote_pg: option password" in runs[0].out
    kinds = sorted(f["what"] for f in runs[1].json["redacted"])
    assert kinds.count("option password") == 3 and "option vendor_key" in kinds and "option column_secret" in kinds
    assert kinds.count("connection string password") == 4 and "connection string sslpassword" in kinds
    assert kinds.count("redact pattern #2") == 2

    files = {p: p.read_text() for p in workspace.path.joinpath("docs").rglob("*") if p.is_file()}
    for path, text in files.items():
        assert_clean(text, str(path))
    mapping = next(t for t in files.values() if "CREATE USER MAPPING FOR postgres" in t)
    assert "password '<redacted>'" in mapping and "\"user\" 'app'" in mapping
    sub = next(t for t in files.values() if "CREATE SUBSCRIPTION sub CONNECTION" in t)
    assert "'host=primary.internal user=repl password=<redacted> sslpassword=<redacted>'" in sub
    uri = next(t for t in files.values() if "CREATE SUBSCRIPTION sub_uri" in t)
    assert "postgresql://repl:<redacted>@primary.internal/app?sslmode=require" in uri

    # a second refresh finds the same secrets and changes nothing: the marker is stable
    again = workspace.inv("schemas.refresh", "--host", "dev", "--full", "--json")
    assert again.code == 0 and again.json["changed"] is False and len(again.json["redacted"]) == 12
    # incremental: nothing changed, nothing dumped, nothing to redact
    quick = workspace.inv("schemas.refresh", "--host", "dev", "--json")
    assert quick.code == 0 and quick.json["dumped"] == "none" and quick.json["changed"] is False

    # everything else an agent or a person sees
    outputs = [
        workspace.git("log", "-p", "--all"),
        *(r.out + r.err for r in [*runs, again]),
        *(
            workspace.inv(*args).out
            for args in (
                ("schemas.check", "--host", "dev", "--json"),
                ("schemas.diff", "dev", "prod", "--json"),
                ("schemas.show", "remote_users", "--host", "prod", "--json"),
                ("schemas.show", "accounts", "--host", "dev"),
                ("schemas.search", "note", "--host", "dev", "--json"),
                ("schemas.list", "--host", "dev", "--json"),
            )
        ),
    ]
    diff = json.loads(outputs[-5])
    assert diff["same"] is True, diff  # the two databases differ only in their secrets
    outputs.append(json.dumps(mcp_answers(workspace)))
    for n, text in enumerate(outputs):
        assert_clean(text, f"output #{n}")
    assert "<redacted>" in outputs[0]  # the log was really read


def mcp_answers(ws: Workspace) -> dict:
    from mcp import ClientSession, StdioServerParameters
    from mcp.client.stdio import stdio_client

    server = Path(sys.executable).parent / "schemasync-mcp"

    async def calls() -> dict:
        params = StdioServerParameters(command=str(server), args=[str(ws.path / "hosts.yaml")], cwd=str(ws.path))
        async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
            await session.initialize()

            async def call(name: str, **args: object) -> str:
                result = await session.call_tool(name, args)
                return "\n".join(getattr(c, "text", "") for c in result.content)

            return {
                "describe": await call("describe_table", table="remote_users", host="dev"),
                "accounts": await call("describe_table", table="accounts", host="prod"),
                "search": await call("search_columns", pattern="*", host="dev"),
                "diff": await call("diff_environments", a="dev", b="prod"),
                "refresh": await call("refresh", host="prod"),
            }

    got = anyio.run(calls)
    assert "remote_users" in got["describe"] and '"changed": false' in got["refresh"].replace('":false', '": false')
    return got


def test_a_secret_committed_by_an_earlier_version_is_rewritten_and_flagged(
    workspace: Workspace, secret_dbs: tuple[str, str]
) -> None:
    a, _ = secret_dbs
    workspace.add_host("dev", a, schemas=["*"])
    assert workspace.inv("schemas.refresh", "--host", "dev").code == 0
    # what an earlier version committed: the user mapping with its password in the clear
    path = next(p for p in workspace.out().rglob("*.sql") if "CREATE USER MAPPING FOR postgres" in p.read_text())
    path.write_text(path.read_text().replace("<redacted>", "um-AlphaS3cret-pw1"))
    workspace.git("add", "-A")
    workspace.git("commit", "-q", "-m", "old schemasync")

    run = workspace.inv("schemas.refresh", "--host", "dev")
    assert run.code == 0, run.err
    assert "password '<redacted>'" in path.read_text()
    rel = str(path.relative_to(workspace.out()))
    assert f"warning: {rel} held a secret in the clear" in run.out and "README: Security" in run.out
    assert "um-AlphaS3cret-pw1" not in run.out + run.err
    # the new commit's tree no longer holds it (its diff shows the line it removes, as any diff would)
    grep = ["git", "-C", str(workspace.path), "grep", "-c", "um-AlphaS3cret", "HEAD"]
    tree = subprocess.run(grep, capture_output=True)
    assert tree.returncode == 1 and tree.stdout == b""
    assert workspace.git("grep", "-c", "um-AlphaS3cret", "HEAD~1").endswith(".sql:1\n")
    assert workspace.git("log", "-1", "--format=%s").startswith("schemas(dev): ")


def test_bad_redact_patterns_are_configuration_errors(workspace: Workspace) -> None:
    workspace.add_host("dev", "skyfire", redact=["/[unclosed/"])
    run = workspace.inv("schemas.refresh", "--host", "dev")
    assert run.code == 2 and "hosts.dev.redact: invalid regular expression '/[unclosed/'" in run.err
    workspace.add_host("dev", "skyfire", redact=["/.*/"])
    run = workspace.inv("schemas.list", "--host", "dev")
    assert run.code == 2 and "matches the empty string" in run.err
    assert not (workspace.path / "docs").exists()
    assert subprocess.run(["git", "-C", str(workspace.path), "log"], capture_output=True).returncode != 0
