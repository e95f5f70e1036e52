"""Commit messages (pure): what changed, within a bounded length."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timezone

from schemasync.output.messages import cap_lines, commit_message, sweep_message
from schemasync.output.records import MANIFEST, NewFile, Plan, Previous, Record
from schemasync.output.store import plan_changes

NOW = datetime(2026, 1, 2, 3, 4, tzinfo=timezone.utc)


def plan_of(produced: list[NewFile], previous: Previous | None = None) -> Plan:
    return plan_changes(previous or Previous(), produced, environment="dev", database="db", partial=False, now=NOW)


def table(name: str, content: str = "x", kind: str = "table") -> NewFile:
    folder = "" if kind == "table" else f"{kind}/"
    return NewFile(kind, "public", name, f"{folder}{name}.sql", content, 1)


def test_commit_messages_stay_a_sane_size() -> None:
    message = commit_message("dev", plan_of([table(f"t{i}") for i in range(20000)]))
    assert message.startswith("schemas(dev): +20000 tables")
    assert len(message.encode()) < 32 * 1024 and "... and 19700 more" in message


def test_commit_message_names_tables_and_counts_other_objects() -> None:
    previous = Previous(
        records={"old.sql": Record("table", "public", "old", "old.sql", "current", 1)},
        contents={"users.sql": "v1"},
        present={"old.sql", "users.sql"},
    )
    previous.records["users.sql"] = Record("table", "public", "users", "users.sql", "current", 1)
    message = commit_message("dev", plan_of([table("users", "v2"), table("notes"), table("v", kind="views")], previous))
    subject, _, body = message.partition("\n\n")
    assert subject == "schemas(dev): +notes ~users ⚠old 1 other object"
    assert body.splitlines() == ["+ notes", "⚠ old", "~ users", "+ view v"]  # objects keep their kind


def test_sweep_message_lists_each_environment() -> None:
    dev = plan_of([table("users")])
    prod = plan_of([table(f"t{i}") for i in range(6)] + [table("v", kind="types")])
    subject = sweep_message([("dev", dev), ("prod", prod)]).splitlines()[0]
    assert subject == "schemas: dev(+users) prod(6 tables, 1 other)"  # tables and objects counted apart


def test_a_commit_without_news_says_what_it_holds_alone_and_in_a_sweep() -> None:
    made = plan_of([table("users")])
    quiet = replace(made, records=[replace(r, status="current") for r in made.records])  # no news
    said = []
    for change in ("restored", "references_only", "fingerprints"):
        plan = replace(quiet, writes={MANIFEST: "{}"} if change == "fingerprints" else {"users.sql": "x"})
        if change != "fingerprints":
            setattr(plan, change, ["users.sql"])
        said.append((commit_message("dev", plan).splitlines()[0], sweep_message([("dev", plan)]).splitlines()[0]))
    assert said == [
        ("schemas(dev): restore 1 file edited by hand", "schemas: dev(restore 1 file)"),
        ("schemas(dev): headers (references, notes)", "schemas: dev(headers)"),
        ("schemas(dev): catalog fingerprints (the files did not change)", "schemas: dev(catalog fingerprints)"),
    ]
    # the manifest alone, rewritten because what its fingerprints are valid for changed
    manifest_only = replace(quiet, writes={MANIFEST: "{}"})
    assert [
        commit_message("dev", replace(manifest_only, restamped=why)).splitlines()[0]
        for why in (("local",), ("server",))
    ] == [
        "schemas(dev): manifest for a new schemasync or new settings (the files did not change)",
        "schemas(dev): manifest for a new PostgreSQL or pg_dump (the files did not change)",
    ]


def test_cap_lines() -> None:
    assert cap_lines(["a", "b"], limit=2) == "a\nb"
    assert cap_lines(["a", "b", "c"], limit=2) == "a\nb\n... and 1 more (see _index.md)"


def test_a_subject_keeps_its_details_up_to_100_characters() -> None:
    names = ["customer_payment_methods", "invoices_archive", "customer_contacts"]

    def sql(n: str, extra: str = "") -> str:
        return f"CREATE TABLE public.{n} (\n    id integer{extra}\n);\n"

    before = {f"{n}.sql": Record("table", "public", n, f"{n}.sql", "current", 1) for n in names}
    previous = Previous(records=before, contents={f"{n}.sql": sql(n) for n in names}, present=set(before))
    changed = [table(n, sql(n, ",\n    note text")) for n in names]
    subject = commit_message("dev", plan_of(changed, previous)).split("\n")[0]
    # 97 characters: within the 100 the README gives, so each table keeps what changed in it
    assert subject.count("(+note)") == 3 and 90 < len(subject) <= 100, subject
    longer = [*names, "addresses"]
    previous.records["addresses.sql"] = Record("table", "public", longer[3], f"{longer[3]}.sql", "current", 1)
    previous.contents[f"{longer[3]}.sql"] = sql(longer[3])
    previous.present.add(f"{longer[3]}.sql")
    subject = commit_message("dev", plan_of([table(n, sql(n, ",\n    note text")) for n in longer], previous)).split(
        "\n"
    )[0]
    assert "(+note)" not in subject and len(subject) <= 100 and longer[3] in subject, subject
