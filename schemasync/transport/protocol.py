"""The protocol between schemasync and the remote step (remote/refresh.sh), this side of it:
the lines the script prints, its exit codes, and what they mean. remote/PROTOCOL.md says the
same for a reader; tests/test_protocol.py keeps the two sides equal. Pure: no I/O.
"""

from __future__ import annotations

import gzip
import json
import re
import zlib
from dataclasses import dataclass
from enum import IntEnum

from fabric import Connection

from schemasync.core import gcpause
from schemasync.core.config import HostConfig
from schemasync.core.errors import DatabaseError, SchemasyncError, SSHError
from schemasync.core.progress import Transfer

REMOTE_COMMAND = "sh -s"


class RemoteExit(IntEnum):
    """The remote step's exit codes; remote/refresh.sh names the same numbers SS_EXIT_*."""

    NO_PSQL = 20
    NO_PG_DUMP = 21  # missing, or older than the server
    DISCOVERY = 22
    PG_DUMP = 23
    NO_TMPDIR = 24
    NOTHING_TO_DUMP = 25  # META says why
    LOCK_WAIT = 26
    LOCK_TABLE_FULL = 27  # a batch could not lock its tables: schemasync tries smaller batches


# Lines the remote step prints on stdout ("." is a heartbeat).
INLINE = "-"  # the path of a file sent on stdout, right after its line (remote_script.INLINE_MAX)


META, DISCOVERY, RESULT = "SCHEMASYNC META ", "SCHEMASYNC DISCOVERY ", "SCHEMASYNC RESULT "


INFO = "SCHEMASYNC INFO "
STEP = INFO + "step "  # the server's own step, for the live line: "step dump 2 of 9"


QUICK = "SCHEMASYNC QUICK "  # incremental: the quick check, first


FINGERPRINTS = "SCHEMASYNC FINGERPRINTS "  # then, if asked for, the fingerprints


ASK = "SCHEMASYNC ASK"  # then the script waits for one line saying what to dump
ASK_BATCHES = ASK + " batches"  # too many tables to lock at once: the script waits for the batches


# A host with several databases: the list, then each one's lines after DATABASE <k>.
DATABASES, DATABASE = "SCHEMASYNC DATABASES ", "SCHEMASYNC DATABASE "


FAILED, END = "SCHEMASYNC FAILED ", "SCHEMASYNC END"


_MAX_LINE = 64 * 1024 * 1024


class LockTableFull(DatabaseError):
    """A batch of the dump could not lock its tables: the caller tries again in smaller batches
    (it has discovery's document)."""

    def __init__(self, message: str, meta: dict) -> None:
        super().__init__(message)
        self.meta = meta

    def __reduce__(self) -> tuple:
        return (type(self), (self.message, self.meta))


@dataclass(frozen=True)
class DiscoveryArrived:
    """Discovery's document, while pg_dump still runs: the job can prepare meanwhile. Its big
    arrays are read already (discovery.read_document)."""

    doc: dict


@dataclass(frozen=True)
class QuickArrived:
    """Incremental: the server's quick check, as soon as it comes."""

    doc: dict


@dataclass(frozen=True)
class Asked:
    """Incremental: the script waits for what to dump. The job answers by sending the answer
    into the event stream (`events.send(answer)`), which then goes on."""

    quick: dict
    fingerprints: dict | None  # once the job answered "more" and the server sent them
    pg_dump_version: str


@dataclass(frozen=True)
class AskedBatches:
    """Too many tables for one pg_dump's locks: the script waits for how to split them. The job
    answers (`events.send`) with `batches <n> <token>` and n lines of selection words."""

    meta: dict  # discovery's document, said before


@dataclass(frozen=True)
class Receiving:
    """The dump is on its way: `transfer.done` counts its bytes as they arrive (over SFTP)."""

    transfer: Transfer


@dataclass(frozen=True)
class Said:
    """The server is at a step of its own: `SCHEMASYNC INFO step <words>` ("dump 2 of 9")."""

    words: str


Event = DiscoveryArrived | QuickArrived | Asked | AskedBatches | Receiving | Said


def file_line(line: str, prefix: str) -> tuple[str, int, str]:
    """`<gzip|plain> <bytes> <path>` after the prefix."""
    fmt, size, path = line[len(prefix) :].split(" ", 2)
    return fmt, int(size), path


def _notices(stderr: str) -> list[str]:
    prefix = "schemasync-remote: "
    return [line[len(prefix) :] for line in stderr.splitlines() if line.startswith(prefix)]


def _decode(payload: bytes, fmt: str) -> str:
    try:
        raw = gzip.decompress(payload) if fmt == "gzip" else payload
        return raw.decode("utf-8")
    except (OSError, EOFError, zlib.error, UnicodeDecodeError) as exc:
        raise SSHError(f"the fetched dump is damaged ({exc}); nothing was written") from None


def _json(text: str) -> dict:
    try:
        with gcpause.paused():
            value = json.loads(text)
    except ValueError as exc:
        raise DatabaseError(f"the server's discovery output is not valid JSON: {exc}") from None
    if not isinstance(value, dict):
        raise DatabaseError("the server's discovery output is not a JSON object")
    return value


# the first pattern found in the remote step's stderr gives the hint
_HINTS = {
    "no password supplied": "set password_env in hosts.yaml, or put the password in ~/.pgpass on the server",
    "password authentication failed": "check the password (password_env) and db_user",
    r'database "[^"]*" does not exist': "check database in hosts.yaml",
    r'role "[^"]*" does not exist': "check db_user in hosts.yaml",
    "Connection refused": "check db_host/db_port: is PostgreSQL listening there, as seen from the server?",
    "No such file or directory": "check db_host/db_port: is PostgreSQL running on the server's socket?",
    # pg_dump's ACCESS SHARE lock on each table needs SELECT (README: A database role of its own)
    "permission denied for table": "pg_dump locks each table it dumps, which needs SELECT on it:"
    " GRANT pg_read_all_data TO the role (PostgreSQL 14+), or SELECT on the tables",
    "permission denied for schema": "the role needs USAGE on the schemas it dumps:"
    " GRANT pg_read_all_data TO the role (PostgreSQL 14+), or USAGE ON SCHEMA",
    "permission denied": "the database role needs to read the catalog and the tables' definitions",
    "needs PostgreSQL 11 or later": "PostgreSQL 10 and older are not supported (their support ended in 2022)",
}


def _remote_failure(host: HostConfig, conn: Connection, status: int | None, stderr: str) -> SchemasyncError:
    where = f"{host.name} ({_target(conn)})"
    detail = "\n".join("  " + line for line in stderr.splitlines()[-20:])
    detail = f"\n{detail}" if detail else ""
    if status is None or status < 0:
        return SSHError(f"{where}: connection lost while the remote step ran{detail}")
    hint = next((h for pattern, h in _HINTS.items() if re.search(pattern, stderr)), "")
    if status == RemoteExit.NO_PSQL:
        return DatabaseError(f"{where}: psql not found on the server{detail}", hint="set pg_bin in hosts.yaml")
    if status == RemoteExit.NO_PG_DUMP:
        return DatabaseError(f"{where}: no suitable pg_dump on the server{detail}", hint="set pg_bin in hosts.yaml")
    if status == RemoteExit.DISCOVERY:
        return DatabaseError(f"{where}: could not query database {host.database!r}{detail}", hint=hint)
    if status == RemoteExit.PG_DUMP:
        return DatabaseError(f"{where}: pg_dump failed{detail}", hint=hint)
    if status == RemoteExit.NO_TMPDIR:
        return DatabaseError(f"{where}: the server has no writable temporary directory{detail}")
    if status == RemoteExit.LOCK_WAIT:
        return DatabaseError(
            f"{where}: pg_dump waited {host.lock_wait_timeout}s for a table lock and gave up{detail}",
            hint="another session holds an exclusive lock (a migration?); retry, or raise lock_wait_timeout",
        )
    if status == RemoteExit.LOCK_TABLE_FULL:  # only reaches here for one database of several
        return DatabaseError(
            f"{where}: too many tables to lock in one pg_dump (max_locks_per_transaction){detail}",
            hint="give this database a host entry of its own: there the dump is retried in batches",
        )
    if status == 127:
        return SSHError(f"{where}: the server has no `sh` on its PATH{detail}")
    return SSHError(f"{where}: the remote step failed (exit {status}){detail}")


def _target(conn: Connection) -> str:
    port = "" if int(conn.port) == 22 else f" port {conn.port}"
    return f"{conn.user}@{conn.host}{port}"
