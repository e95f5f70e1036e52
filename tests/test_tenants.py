"""Schema-per-tenant: 200 tenant schemas, three of which deviate in different ways. The shape is
written once, the deviants are named with what differs, the rest of the database as always."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from schemasync.schema.tenants import PLACEHOLDER, rename_schema, shape_key

from .conftest import Workspace

TENANTS = """
CREATE TABLE plans (id int PRIMARY KEY, name text NOT NULL);
DO $$
DECLARE s text;
BEGIN
  FOR i IN 1..200 LOOP
    s := 'tenant_' || lpad(i::text, 3, '0');
    EXECUTE format('CREATE SCHEMA %I', s);
    EXECUTE format('CREATE TABLE %I.accounts (id serial PRIMARY KEY, email text NOT NULL, plan_tier text, '
                   'plan_id int REFERENCES public.plans)', s);
    EXECUTE format('CREATE TABLE %I.orders (id bigint PRIMARY KEY, account_id int NOT NULL '
                   'REFERENCES %I.accounts, total numeric(10,2) DEFAULT 0)', s, s);
    EXECUTE format('CREATE INDEX orders_account_idx ON %I.orders (account_id)', s);
  END LOOP;
END $$;
-- three tenants whose migrations went differently
ALTER TABLE tenant_042.accounts ADD COLUMN legacy_flag boolean;
CREATE INDEX orders_total_idx ON tenant_107.orders (total);
ALTER TABLE tenant_107.accounts ALTER COLUMN email SET DEFAULT 'host=db password=hunter2';
DROP TABLE tenant_173.orders;
"""


@pytest.fixture
def tenanted(workspace: Workspace, tmp_path: Path) -> Workspace:
    name = f"tenants_{tmp_path.name[-8:].replace('-', '_')}"
    workspace.sandbox.create_database(name, TENANTS)
    workspace.add_host("saas", name, tenants={"schemas": "tenant_*"})
    return workspace


def test_tenants_are_written_once_and_the_deviants_named(tenanted: Workspace) -> None:
    ws = tenanted
    run = ws.inv("schemas.refresh", "--host", "saas", "--json")
    assert run.code == 0, run.err
    out = ws.out("saas")
    files = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())
    assert len(files) <= 20, files  # 200 tenants: not 400 table files
    assert {"tenant/accounts.sql", "tenant/orders.sql", "plans.sql", "_tenants.md"} <= set(files)
    assert not [f for f in files if "tenant_0" in f or "tenant_1" in f]
    accounts = (out / "tenant" / "accounts.sql").read_text()
    assert "CREATE TABLE tenant_001.accounts" in accounts and "Tenant template" in accounts

    tenants = json.loads((out / "_manifest.json").read_text())["tenants"]
    assert (tenants["count"], tenants["same"], tenants["template"]) == (200, 196, "tenant_001")
    assert set(tenants["deviants"]) == {"tenant_042", "tenant_107", "tenant_173"}
    assert tenants["deviants"]["tenant_042"] == ["accounts: column legacy_flag only in tenant_042"]
    assert tenants["deviants"]["tenant_107"][1] == "orders: index orders_total_idx only in tenant_107"
    # what differs in a tenant that is not written is redacted like any file
    assert "accounts.email: default" in tenants["deviants"]["tenant_107"][0]
    assert "hunter2" not in (out / "_manifest.json").read_text() + (out / "_tenants.md").read_text()
    assert "hunter2" not in run.out
    assert tenants["deviants"]["tenant_173"] == ["table orders only in tenant_001"]
    assert run.json["tenants"]["deviants"] == tenants["deviants"]
    page = (out / "_tenants.md").read_text()
    assert "**200** schemas" in page and "same as the template: **196**" in page and "`tenant_107`" in page
    subject = ws.git("log", "-1", "--format=%s")
    assert "tenants: 196 same" in subject or "tenants" in ws.git("log", "-1", "--format=%b")

    # nothing changed: nothing written (a transaction in between moves the oldest running one,
    # which the manifest keeps as `since`, as autovacuum or an application would)
    ws.sandbox.psql("SELECT txid_current()", database=run.json["database"])
    again = ws.inv("schemas.refresh", "--host", "saas", "--json")
    assert again.code == 0 and again.json["changed"] is False
    # told by the quick check alone, with the same count of tables (every tenant's)
    assert (again.json["dumped"], again.json["tables"]) == ("none", run.json["tables"]), again.json
    assert again.json["tenants"] == run.json["tenants"]

    # one tenant is mended, another drifts: the commit says so in a few words, check first
    ws.sandbox.psql("ALTER TABLE tenant_042.accounts DROP COLUMN legacy_flag;", database=run.json["database"])
    ws.sandbox.psql("ALTER TABLE tenant_150.accounts DROP COLUMN email;", database=run.json["database"])
    check = ws.inv("schemas.check", "--host", "saas", "--json")
    assert check.code == 1 and set(check.json["tenants"]["deviants"]) == {"tenant_107", "tenant_150", "tenant_173"}
    fixed = ws.inv("schemas.refresh", "--host", "saas", "--json")
    assert fixed.code == 0 and fixed.json["changed"] is True and fixed.json["added"] == []
    subject = ws.git("log", "-1", "--format=%s").strip()
    assert subject == "schemas(saas): tenants: 196 same, ~tenant_150(-column email) =tenant_042", subject

    guide = ws.inv("schemas.agent-guide").out
    assert "`tenant_*` are tenants of one shape, written once under `tenant/`" in guide and "_tenants.md" in guide
    listed = ws.inv("schemas.list", "--host", "saas", "--json").json
    assert listed["tenants"]["schemas_now"] == 200 and [t["name"] for t in listed["tables"]] == ["plans"]


def test_rename_schema_handles_quoted_and_non_ascii_names() -> None:
    text = "CREATE TABLE \"Tenant é\".t (a text DEFAULT 'é', b int DEFAULT nextval('\"Tenant é\".s'::regclass));"
    assert rename_schema(text, "Tenant é", PLACEHOLDER) == (
        "CREATE TABLE tenant.t (a text DEFAULT 'é', b int DEFAULT nextval('tenant.s'::regclass));"
    )


def test_rename_schema_touches_identifiers_only() -> None:
    text = (
        "CREATE SCHEMA \"tenant_7\";\nCREATE TABLE tenant_7.t (a int DEFAULT 1, b text DEFAULT 'tenant_7.x');\n"
        "ALTER TABLE ONLY tenant_7.t ADD CONSTRAINT f FOREIGN KEY (a) REFERENCES tenant_7x.u(id); -- tenant_7.t\n"
        "ALTER TABLE ONLY tenant_7.t ALTER COLUMN a SET DEFAULT nextval('tenant_7.t_a_seq'::regclass);\n"
    )
    got = rename_schema(text, "tenant_7", PLACEHOLDER)
    assert got == (
        "CREATE SCHEMA tenant;\nCREATE TABLE tenant.t (a int DEFAULT 1, b text DEFAULT 'tenant_7.x');\n"
        "ALTER TABLE ONLY tenant.t ADD CONSTRAINT f FOREIGN KEY (a) REFERENCES tenant_7x.u(id); -- tenant_7.t\n"
        "ALTER TABLE ONLY tenant.t ALTER COLUMN a SET DEFAULT nextval('tenant.t_a_seq'::regclass);\n"
    )


def test_the_quick_comparison_takes_out_only_the_tenants_own_name() -> None:
    from schemasync.schema.tenants import quick_key

    def table(schema: str, ref: str) -> str:
        return (
            f"-- Name: t; Type: TABLE; Schema: {schema}; Owner: -\n"
            f"CREATE TABLE {schema}.t (a int REFERENCES {ref}.u(id));\nCOMMENT ON TABLE {schema}.t IS 'of {schema}';\n"
        )

    assert quick_key(table("t_1", "t_1"), "t_1") == quick_key(table("t_2", "t_2"), "t_2")
    # a reference into another tenant's schema is a difference
    assert quick_key(table("t_1", "t_9"), "t_1") != quick_key(table("t_2", "t_2"), "t_2")
    # the name inside a longer word: the lexer decides, and renames only the identifier
    assert quick_key(table("t_1", "t_10"), "t_1") == shape_key(table("t_1", "t_10"), "t_1")
    assert "t_10" in quick_key(table("t_1", "t_10"), "t_1")


def test_a_tenant_host_unchanged_is_told_by_the_quick_check(tenanted: Workspace) -> None:
    """No whole dump to find that nothing changed; the template's files are checked as written
    (their header names the template), and a change anywhere refreshes every tenant together."""
    ws = tenanted
    first = ws.inv("schemas.refresh", "--host", "saas", "--json")
    assert first.code == 0, first.err
    check = ws.inv("schemas.check", "--host", "saas", "--json")
    assert (check.code, check.json["stale"], check.json["dumped"]) == (0, False, "none"), check.json

    template = ws.out("saas") / "tenant" / "accounts.sql"
    written = template.read_text()
    template.write_text(written.replace("email text NOT NULL", "email text"))
    mended = ws.inv("schemas.refresh", "--host", "saas", "--json")
    assert mended.code == 0 and mended.json["dumped"] == "full", mended.json
    assert mended.json["dumped_why"] == "edited by hand or removed: tenant/accounts.sql"
    assert template.read_text() == written

    database = first.json["database"]
    ws.sandbox.psql("ALTER TABLE tenant_009.orders ADD COLUMN note text;", database=database)
    drifted = ws.inv("schemas.check", "--host", "saas", "--json")
    assert drifted.code == 1 and drifted.json["dumped"] == "full", drifted.json
    assert drifted.json["dumped_why"].startswith("the catalog changed: tenant schemas are compared")
    assert "tenant_009" in drifted.json["tenants"]["deviants"]
    refreshed = ws.inv("schemas.refresh", "--host", "saas", "--json")
    assert refreshed.json["tenants"]["deviants"]["tenant_009"] == ["orders: column note only in tenant_009"]
    assert refreshed.json["tables"] == first.json["tables"]


def test_a_tenant_pattern_lets_pg_dump_start_before_discovery_ends(tenanted: Workspace) -> None:
    """pg_dump gets `-n tenant_*` at once (the early dump), and discovery writes the very same
    selection, so the script keeps that dump instead of dumping again."""
    from schemasync.core.config import load_config
    from schemasync.transport.remote_script import discovery_sql, early_selection, selection_words

    host = load_config(str(tenanted.path / "hosts.yaml")).host("saas")
    database = tenanted.hosts["saas"]["database"]
    out = tenanted.sandbox.psql(discovery_sql(host, "full"), database=database)
    early = early_selection(host, "full")
    assert early == ["-n", '"public"', "-n", "tenant_*"]
    assert out.strip().split("\n")[-1] == selection_words(early)
