"""The line protocol between session.py and remote/refresh.sh (pure: no server needed)."""

from __future__ import annotations

import re
from importlib import resources
from types import SimpleNamespace

import pytest

from schemasync.config import HostConfig
from schemasync.errors import DATABASE, SSH
from schemasync.session import DISCOVERY, INFO, RESULT, RemoteExit, _remote_failure, file_line

SCRIPT = resources.files("schemasync.remote").joinpath("refresh.sh").read_text(encoding="utf-8")


def test_exit_codes_are_named_alike_on_both_sides() -> None:
    in_script = {m.group(1): int(m.group(2)) for m in re.finditer(r"^SS_EXIT_([A-Z_]+)=(\d+)$", SCRIPT, re.M)}
    assert in_script == {e.name: e.value for e in RemoteExit}
    # and the script uses the names, not the numbers
    assert not re.search(r"ss_fail 2\d ", SCRIPT) and "exit 25" not in SCRIPT and "exit 27" not in SCRIPT


def test_the_script_prints_the_lines_session_reads() -> None:
    for prefix in (DISCOVERY, RESULT, "SCHEMASYNC META "):
        assert f"printf '{prefix}%s\\n'" in SCRIPT
    assert f"printf '{INFO}pg_dump %s\\n'" in SCRIPT


def test_file_lines_parse_paths_with_spaces() -> None:
    assert file_line(RESULT + "gzip 1234 /tmp/schemasync.Ab 9/result", RESULT) == (
        "gzip",
        1234,
        "/tmp/schemasync.Ab 9/result",
    )
    with pytest.raises(ValueError):
        file_line(RESULT + "gzip", RESULT)


HOST = HostConfig(name="dev", ssh="deploy@db", database="app", output=SimpleNamespace())  # type: ignore[arg-type]
CONN = SimpleNamespace(user="deploy", host="db", port=22)


@pytest.mark.parametrize(
    "status, code, words",
    [
        (RemoteExit.NO_PSQL, DATABASE, "psql not found"),
        (RemoteExit.NO_PG_DUMP, DATABASE, "no suitable pg_dump"),
        (RemoteExit.DISCOVERY, DATABASE, "could not query database 'app'"),
        (RemoteExit.PG_DUMP, DATABASE, "pg_dump failed"),
        (RemoteExit.NO_TMPDIR, DATABASE, "no writable temporary directory"),
        (RemoteExit.LOCK_WAIT, DATABASE, "waited 30s for a table lock"),
        (127, SSH, "no `sh`"),
        (-1, SSH, "connection lost"),
    ],
)
def test_each_exit_code_has_its_message(status: int, code: int, words: str) -> None:
    err = _remote_failure(HOST, CONN, status, "schemasync-remote: detail")  # type: ignore[arg-type]
    assert err.code == code and words in err.message and err.message.startswith("dev (deploy@db)")
