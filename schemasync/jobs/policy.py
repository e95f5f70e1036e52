"""What an incremental refresh decides, and what it prepares while the server works: why a
refresh dumps everything (`why_whole`), the answer to the script's question from the
fingerprints and the files on disk (`DumpPolicy`), and the work done with discovery's document
while the dump is still running (`Prepare`).
"""

from __future__ import annotations

from collections.abc import Callable

from schemasync import __version__
from schemasync.core import speed
from schemasync.core.background import Background
from schemasync.core.config import HostConfig
from schemasync.core.names import table_file
from schemasync.core.notes import Notes, add_notes
from schemasync.output import manifest, records
from schemasync.output.records import ORPHANED
from schemasync.schema import incremental
from schemasync.schema.discovery import Discovery
from schemasync.schema.redact import redact_text, rules_for
from schemasync.schema.relations import header_lines, table_details
from schemasync.schema.tenants import is_template_file, template_note
from schemasync.transport.remote_script import (
    DISCOVERY_FORMAT,
    owners_selection,
)


class Prepare:
    """What can be done with discovery's document while the server is still dumping: the
    catalog details, and reading the files this run will compare."""

    def __init__(self, host: HostConfig, table: str | None, notes: Notes, previous: records.Previous) -> None:
        self.host, self.table, self.notes, self.previous = host, table, notes, previous
        self.discovery: Discovery | None = None
        self.details: dict = {}
        self.fingerprints: dict | None = None  # as discovery computed them (incremental.py)

    def __call__(self, discovery: Discovery, fingerprints: dict | None) -> None:
        self.fingerprints = fingerprints
        if self.table is not None:
            files = [table_file(*discovery.matches[0])] if discovery.matches else []
        else:
            files = [table_file(t.schema, t.name) for t in discovery.tables]
        self.details = table_details(discovery)
        # Comments go into _index.md and the manifest too: the same secrets come out (they are
        # counted where the files hold them).
        rules = rules_for(self.host.redact)
        if rules.texts:
            for d in self.details.values():
                if d["comment"]:
                    d["comment"] = redact_text(d["comment"], rules, "")[0]
                if d["column_comments"]:
                    d["column_comments"] = {c: redact_text(t, rules, "")[0] for c, t in d["column_comments"].items()}
        for t in discovery.tables:  # the team's notes stand beside the database's comments
            add_notes(self.details[t.key], self.notes, t.schema, t.name)
        manifest.read_more(self.previous, self.host.output, files)
        self.discovery = discovery


TENANTS_WHOLE = "the catalog changed: tenant schemas are compared with each other, so they are dumped together"


def why_whole(host: HostConfig, local: str, head: dict, several: bool) -> str | None:
    """Why this refresh dumps everything without comparing fingerprints; None: it compares. What
    can be known before connecting is decided here, from the manifest's head: the server then
    dumps while discovery runs."""
    fingerprints = head.get("fingerprints")
    if several:
        return "a host with several databases is dumped whole"
    if head.get("format") is None:
        return "a first refresh"  # the server dumps while discovery runs
    if head.get("format") != records.FORMAT:
        return "the manifest's format changed"
    if fingerprints and fingerprints.get("local") != local:
        return incremental.LOCAL_CHANGED
    # no fingerprints yet (the first refresh dumped while discovery ran, so its fingerprints might
    # be newer than its dump): this one takes them first, then dumps everything
    return None


def fingerprints_hold(info: dict[str, str], doc: dict) -> bool:
    """A dump that started before discovery is described by discovery's fingerprints if it
    imported the snapshot discovery's session exported (refresh.sh ss_export_first); where the
    server could not share one, only if the quick check taken before it started is discovery's."""
    if info.get("early") != "used" or info.get("early_snapshot") == "shared":
        return True
    return info.get("quick_before") == doc.get("quick")


def local_key(host: HostConfig, notes: Notes) -> str:
    """What this tool's own inputs are (its format and version, the host's selection and
    settings, the team's notes): the files may change when they do, the database unchanged."""
    return incremental.local_key(
        records.FORMAT,
        DISCOVERY_FORMAT,
        __version__,
        host.name,
        host.database,
        host.schemas,
        host.exclude,
        host.privileges,
        host.redact,
        host.tenants,
        notes,
    )


class DumpPolicy:
    """The incremental decision, made when the script asks: the fingerprints against the
    manifest's, and the files on disk against what the manifest says was written."""

    def __init__(
        self,
        host: HostConfig,
        notes: Notes,
        previous: records.Previous,
        local: str,
        prepare: Callable[[], None] | None = None,
    ) -> None:
        self.host, self.notes, self.previous, self.local = host, notes, previous, local
        self.prepare = prepare  # called when the quick check finds a change: files will likely follow
        self.now: incremental.Fingerprints | None = None
        self.decision: incremental.Decision | None = None
        self.quick: str | None = None
        self.intact: set[str] = set()  # files exactly as the last refresh wrote them
        self.edited: list[str] = []  # files that are not, and are not a relation's
        # the header names the database, as the server will (checked again if it names another)
        self.checked_for = host.database
        self.checking: Background[None] | None = None

    def begin(self) -> None:
        """Check the files while the server runs its quick check. Not before the script is
        sent: checking holds the GIL most of the time, and would slow the handshake and the
        round trips of starting the script down."""
        self.checking = Background(lambda: self._check_files(self.checked_for))

    def quick_arrived(self, quick_doc: dict) -> None:
        """Not the last refresh's quick check: while the server works on the fingerprints (and
        the client has nothing to do), get ready to write and commit."""
        if self.prepare is not None and quick_doc.get("quick") != (self.previous.fingerprints or {}).get("quick"):
            self.prepare()
            self.prepare = None

    def __call__(self, quick_doc: dict, doc: dict | None, pg_dump_version: str) -> str:
        """quick_doc: the quick check; doc: the fingerprints, once the server sent them."""
        previous, local = self.previous, self.local
        if self.quick is None:  # the files are checked by now
            self.quick = quick_doc.get("quick")
            assert self.checking is not None, "fetch begins the check once the script is sent"
            self.checking.result()
            if quick_doc.get("database", "") != self.checked_for:
                self.intact, self.edited = set(), []
                self._check_files(quick_doc.get("database", ""))
        if doc is None:  # the quick check alone: equal, and the files as written, is enough
            records = previous.records.values()
            stamp = {
                "quick": self.quick,
                "server": int(quick_doc["version"]),
                "pg_dump": pg_dump_version,
                "local": local,
            }
            all_intact = not self.edited and all(r.file in self.intact for r in records if r.status != ORPHANED)
            if all_intact and incremental.quick_says_unchanged(previous.fingerprints, stamp):
                kept = {r.file: r.fp for r in records if r.fp}
                self.now = incremental.Fingerprints(kept, dict(previous.fingerprints or {}))
                self.decision = incremental.Decision(incremental.NONE, "nothing changed (the quick check)")
                return self.decision.answer()
            return "more"
        # with the quick check at their own snapshot (not the first step's: something may have
        # changed between the two, and been undone by the next refresh)
        now = incremental.fingerprints(doc.get("fingerprints"), int(doc["version"]), pg_dump_version, local)
        if now is None:
            self.decision = incremental.Decision(incremental.FULL, "the server computed no fingerprints")
            return self.decision.answer()
        self.now = now
        if self.host.tenants is not None:
            # The template's files stand for every tenant, so they are not one per relation: the
            # quick check alone finds nothing changed; anything else is a whole dump.
            why = f"edited by hand or removed: {', '.join(sorted(self.edited)[:3])}" if self.edited else TENANTS_WHOLE
            self.decision = incremental.Decision(incremental.FULL, why)
            return self.decision.answer()
        kept = {f: incremental.Kept(r.fp, r.status != ORPHANED) for f, r in previous.records.items()}
        # a relation's file edited by hand or removed is dumped again; another one (a function's,
        # a type's: they cannot be dumped one by one) means a whole dump
        edited = [f for f in self.edited if f not in now.owners]
        self.decision = incremental.decide(now, previous.fingerprints, kept, self.intact, edited)
        answer = self.decision.answer()
        if self.decision.kind == incremental.PART:
            # and the selection discovery will most likely give: the server dumps it meanwhile
            plain = self.host.command_prefix or not speed.on("speculative_dump")
            guess = "" if plain else owners_selection(self.decision.owners)
            answer += "\n" + ("" if "\n" in guess else guess)
        return answer

    def _check_files(self, database: str) -> None:
        """Which of our files are exactly as the last refresh wrote them."""
        previous, records = self.previous, self.previous.records
        tenants = previous.tenants if self.host.tenants is not None and previous.tenants else None
        manifest.read_more(previous, self.host.output, [f for f, r in records.items() if r.status != ORPHANED])
        for file, rec in records.items():
            if rec.status == ORPHANED:
                continue
            extra = []
            if rec.kind == "table":
                extra = header_lines(rec.details) + self.notes.header_lines(rec.schema, rec.name)
            if tenants is not None and is_template_file(self.host.tenants, file):
                extra.append(template_note(self.host.tenants, tenants["template"]))
            header = incremental.expected_header(rec.kind, rec.schema, rec.name, database, self.host.name, extra)
            if incremental.is_intact(previous.contents.get(file), header, rec.sha):
                self.intact.add(file)
            else:
                self.edited.append(file)
