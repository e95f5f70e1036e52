"""Team notes in schema-notes.yaml: where they show, how they are checked, and how they are validated."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from schemasync.core.errors import ConfigError
from schemasync.core.notes import parse_notes

from .conftest import Workspace

NOTES = {
    "groups": {"billing": ["invoices", "payments"], "field work": ["survey_*", "site_photos"]},
    "tables": {
        "company": {"description": "One row per installer we sell to."},
        "users": {
            "description": "People who sign in.",
            "columns": {"email": {"description": "Sign-in address", "tags": ["pii"]}},
        },
        "customers": {"tags": ["pii"]},
        "ghost_table": "was dropped last year",
    },
    "environments": {"dev": {"tables": {"users": {"columns": {"nope": "a column that never existed"}}}}},
}


def test_notes_show_where_people_and_agents_look(workspace: Workspace, database: str) -> None:
    workspace.add_host("dev", database)
    (workspace.path / "schema-notes.yaml").write_text(yaml.safe_dump(NOTES))
    run = workspace.inv("schemas.refresh", "--host", "dev")
    assert run.code == 0, run.err
    assert "notes for what does not exist: column users.nope, table ghost_table" in run.out
    users = (workspace.out() / "users.sql").read_text()
    assert "-- Note: People who sign in.\n" in users and "-- Note on email: Sign-in address [pii]\n" in users
    assert "-- Group: billing\n" in (workspace.out() / "invoices.sql").read_text()
    index = (workspace.out() / "_index.md").read_text()
    assert "## billing\n" in index and "## field work\n" in index and "## Other tables\n" in index
    assert index.index("| ✓ | `invoices`") > index.index("## billing") > 0
    assert index.index("| ✓ | `users`") > index.index("## Other tables")
    # a note stands beside the database's comment, never in its place
    assert "Installer companies (tenants) · One row per installer we sell to." in index
    # show and search read the notes as they are now
    shown = workspace.inv("schemas.show", "users", "--json").json
    assert shown["note"] == "People who sign in." and shown.get("group") is None  # no empty fields
    email = next(c for c in shown["columns"] if c["name"] == "email")
    assert email["note"] == "Sign-in address" and email["tags"] == ["pii"]
    pii = workspace.inv("schemas.search", "*", "--tag", "pii", "--json").json["matches"]
    tables = {m["table"] for m in pii}
    assert tables == {"users", "customers"} and [m["column"] for m in pii if m["table"] == "users"] == ["email"]
    # list filters by group and tag, and pages
    billing = workspace.inv("schemas.list", "--group", "billing", "--json").json
    assert [t["name"] for t in billing["tables"]] == ["invoices", "payments"] and billing["total"] == 2
    assert billing["tables"][0]["group"] == "billing"
    pii_tables = workspace.inv("schemas.list", "--tag", "pii", "--json").json["tables"]
    assert [(t["name"], t["note"]) for t in pii_tables] == [("customers", None), ("users", "People who sign in.")]
    page = workspace.inv("schemas.list", "--limit", "5", "--offset", "5", "--json").json
    assert (page["total"], page["offset"], page["next_offset"], len(page["tables"])) == (16, 5, 10, 5)
    assert "... 6 more: --offset 10" in workspace.inv("schemas.list", "--limit", "10").out
    # check: current files pass; --strict-notes makes the stale notes fail the job
    assert workspace.inv("schemas.check", "--host", "dev").code == 0
    strict = workspace.inv("schemas.check", "--host", "dev", "--strict-notes", "--json")
    assert strict.code == 1 and strict.json["stale"] is False
    assert strict.json["stale_notes"] == ["column users.nope", "table ghost_table"]
    # changing a note alone rewrites the header, and says so; the table is not "updated"
    NOTES["tables"]["users"]["description"] = "People who sign in to the app."
    (workspace.path / "schema-notes.yaml").write_text(yaml.safe_dump(NOTES))
    again = workspace.inv("schemas.refresh", "--host", "dev", "--json")
    assert again.json["updated"] == [] and again.json["references_only"] == ["users.sql"]


@pytest.mark.parametrize(
    "data, message",
    [
        ({"tabels": {}}, "unknown key 'tabels'"),
        ({"tables": {"users": {"tags": "pii"}}}, "tables.users.tags: expected a list"),
        ({"groups": {"billing": "invoices"}}, "groups.billing: expected a list"),
        ({"tables": {"users": {"columns": {"email": {"colour": 1}}}}}, "expected description and tags"),
    ],
)
def test_bad_notes_are_configuration_errors(data: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_notes(data, Path("schema-notes.yaml"))


def test_groups_match_names_and_globs_and_stale_notes_are_found() -> None:
    notes = parse_notes(NOTES, Path("schema-notes.yaml"), "dev")
    assert notes.group_of("public", "survey_notes") == "field work" and notes.group_of("public", "users") is None
    assert notes.group_of("billing", "invoices") is None  # a bare name means public
    live = {("public", "users"): {"id", "email"}, ("public", "company"): {"id"}, ("public", "customers"): set()}
    assert notes.stale(live) == ["column users.nope", "table ghost_table"]
    assert parse_notes(NOTES, Path("x"), "prod").stale(live) == ["table ghost_table"]  # dev's own note only in dev
