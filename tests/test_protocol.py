"""The line protocol between session.py and remote/refresh.sh (pure: no server needed)."""

from __future__ import annotations

import itertools
import os
import re
import shlex
import subprocess
from importlib import resources
from pathlib import Path
from types import SimpleNamespace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from schemasync.core.config import HostConfig
from schemasync.core.errors import DATABASE, SSH
from schemasync.transport.protocol import (
    DISCOVERY,
    FINGERPRINTS,
    INFO,
    INLINE,
    RESULT,
    RemoteExit,
    _remote_failure,
    file_line,
)
from schemasync.transport.runners import _Output

REPO = Path(__file__).resolve().parent.parent
SCRIPT = resources.files("schemasync.transport.remote").joinpath("refresh.sh").read_text(encoding="utf-8")


def test_exit_codes_are_named_alike_on_both_sides() -> None:
    in_script = {m.group(1): int(m.group(2)) for m in re.finditer(r"^SS_EXIT_([A-Z_]+)=(\d+)$", SCRIPT, re.M)}
    assert in_script == {e.name: e.value for e in RemoteExit}
    # and the script uses the names, not the numbers
    assert not re.search(r"ss_fail 2\d ", SCRIPT) and "exit 25" not in SCRIPT and "exit 27" not in SCRIPT


def test_the_protocol_page_says_what_both_sides_use() -> None:
    """remote/PROTOCOL.md is the one description: every line prefix and exit code of
    transport/protocol.py is on it, under the same name and number."""
    from schemasync.transport import protocol

    page = (REPO / "remote" / "PROTOCOL.md").read_text(encoding="utf-8")
    prefixes = [
        v for k, v in vars(protocol).items() if k.isupper() and isinstance(v, str) and v.startswith("SCHEMASYNC")
    ]
    # META, DISCOVERY, RESULT, INFO, INFO step, QUICK, FINGERPRINTS, ASK, ASK batches, DATABASES, DATABASE,
    # FAILED, END
    assert len(prefixes) == 13
    for prefix in prefixes:
        assert f"`{prefix.strip()}" in page, prefix
    for code in protocol.RemoteExit:
        assert f"| {code.value} | `{code.name}` |" in page, code
    assert f"`{protocol.INLINE}`" in page and "PROTOCOL.md" in SCRIPT


def test_the_script_prints_the_lines_session_reads() -> None:
    assert "printf 'SCHEMASYNC META %s\\n'" in SCRIPT
    assert f"printf '{INFO}pg_dump %s\\n'" in SCRIPT
    for prefix in (DISCOVERY, RESULT, FINGERPRINTS):  # files: `ss_say KIND` announces them
        assert f"ss_say {prefix.split()[1]}\n" in SCRIPT
    # inline, the path is INLINE; otherwise the file's path
    assert f'printf \'SCHEMASYNC %s %s {INLINE}\\n\' "$1" "$ss_packed"' in SCRIPT
    assert 'printf \'SCHEMASYNC %s %s %s\\n\' "$1" "$ss_packed" "$ss_pack_file"' in SCRIPT


class _Chunks:
    """What a channel's recv() returns: the bytes in the pieces given."""

    def __init__(self, data: bytes, cuts: list[int]) -> None:
        bounds = sorted({0, len(data), *(c % (len(data) + 1) for c in cuts)})
        self.pieces = [data[a:b] for a, b in itertools.pairwise(bounds)]

    def recv(self, n: int) -> bytes:
        return self.pieces.pop(0) if self.pieces else b""


@given(
    payload=st.binary(max_size=300),
    cuts=st.lists(st.integers(min_value=0, max_value=2000), max_size=12),
)
def test_a_file_sent_inline_is_read_whole_wherever_the_stream_is_cut(payload: bytes, cuts: list[int]) -> None:
    # newlines and protocol words inside the file's bytes are the file's, not lines
    payload += b"\nSCHEMASYNC RESULT gzip 3 -\n"
    stream = b".\nSCHEMASYNC DISCOVERY gzip %d -\n" % len(payload) + payload + b"SCHEMASYNC INFO pg_dump 18\nlast"
    out = _Output(_Chunks(stream, cuts), SimpleNamespace(kick=lambda: None))  # type: ignore[arg-type]
    lines = out.lines()
    assert next(lines) == "."
    line = next(lines)
    fmt, size, path = file_line(line, DISCOVERY)
    assert (fmt, path) == ("gzip", INLINE) and out.read(size) == payload
    assert list(lines) == ["SCHEMASYNC INFO pg_dump 18", "last"]
    assert out.read(1) == b""  # the stream ended


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


def _function(name: str) -> str:
    """A function's definition in refresh.sh, as written there."""
    m = re.search(rf"^{name}\(\) {{.*?^}}\n", SCRIPT, re.M | re.S)
    assert m, name
    return m.group(0)


def test_heartbeats_never_land_inside_a_file_sent_inline(tmp_path: Path) -> None:
    # the heartbeat takes the same lock as the script's ss_say; here it beats as fast as it can
    lock = '(set -C; : > "$2/say") 2>/dev/null'
    assert lock in SCRIPT and 'rm -f "$2/say"' in SCRIPT
    payload = "".join(f"line {i} of the file\n" for i in range(3000))  # far more than a pipe holds
    (tmp_path / "file").write_text(payload)
    script = (
        f"ss_dir={shlex.quote(str(tmp_path))}\nSS_INLINE_MAX=1000000\n"
        + _function("ss_say")
        + _function("ss_hold")
        + f'sh -c \'while kill -0 "$1" 2>/dev/null; do {lock} || continue; echo . || exit 0; '
        + 'rm -f "$2/say"; done\' sh "$$" "$ss_dir" &\n'
        + "ss_hb_pid=$!\n"
        + 'ss_pack_file="$ss_dir/file"; ss_pack_size=$(wc -c < "$ss_pack_file"); ss_packed="plain $ss_pack_size"\n'
        + "i=0; while [ $i -lt 40 ]; do ss_say RESULT; i=$((i + 1)); done\n"
        + 'kill "$ss_hb_pid"\n'
    )
    proc = subprocess.Popen(["sh", "-c", script], stdout=subprocess.PIPE)
    assert proc.stdout is not None
    fd = proc.stdout.fileno()
    out = _Output(SimpleNamespace(recv=lambda n: os.read(fd, n)), SimpleNamespace(kick=lambda: None))  # type: ignore[arg-type]
    inline = named = beats = 0
    for line in out.lines():
        if line == ".":
            beats += 1
            continue
        fmt, size, path = file_line(line, RESULT)
        if path == INLINE:
            assert fmt == "plain" and out.read(size).decode() == payload
            inline += 1
        else:  # the heartbeat held the lock too long (blocked on a full pipe): the file is named instead
            assert Path(path).read_text() == payload
            named += 1
    assert proc.wait() == 0 and inline + named == 40 and inline > 0 and beats > 0


def test_without_the_lock_a_file_is_announced_for_sftp_and_nothing_spins(tmp_path: Path) -> None:
    (tmp_path / "say").write_text("")  # held, and the holder (a live heartbeat) never lets go
    (tmp_path / "file").write_text("small\n")
    script = (
        f"ss_dir={shlex.quote(str(tmp_path))}\nSS_INLINE_MAX=1000000\n"
        + _function("ss_say")
        + _function("ss_hold")
        + "sleep 30 & ss_hb_pid=$!\n"
        + 'ss_pack_file="$ss_dir/file"; ss_pack_size=6; ss_packed="plain 6"\n'
        + 'ss_say RESULT; kill "$ss_hb_pid"\n'
    )
    done = subprocess.run(["sh", "-c", script], capture_output=True, text=True, timeout=20)
    assert done.stdout == f"SCHEMASYNC RESULT plain 6 {tmp_path / 'file'}\n"


def _speculation_script(tmp_path: Path, dump_seconds: int) -> str:
    """ss_speculate with stand-ins for psql (discovery: the selection of the relations it is
    given) and pg_dump (writes its arguments, after `dump_seconds`); both log when they start."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "psql").write_text(
        "#!/bin/sh\n"
        'echo "psql $*" >> "$LOG"\n'
        "cat > /dev/null\n"
        "printf 'dump 15\\n{}\\n%s\\n' \"'-t' '\\\"public\\\".\\\"t1\\\"'\"\n"
    )
    (bin_dir / "pg_dump").write_text(
        f'#!/bin/sh\necho "pg_dump $*" >> "$LOG"\nsleep {dump_seconds}\necho "-- dump of $*"\n'
    )
    for tool in bin_dir.iterdir():
        tool.chmod(0o755)
    work = tmp_path / "work"
    work.mkdir()
    (work / "discover.sql").write_text("")
    return (
        f"ss_dir={shlex.quote(str(work))}\nLOG={shlex.quote(str(tmp_path / 'log'))}\nexport LOG\n"
        f"ss_psql={shlex.quote(str(bin_dir / 'psql'))}\nss_pg_dump={shlex.quote(str(bin_dir / 'pg_dump'))}\n"
        "SS_PREFIX='' SS_DUMP_FLAGS='' SS_LOCK_WAIT_MS=1000 ss_spec=''\n"
        + re.search(r"^ss_dump_opts=.*\n", SCRIPT, re.M).group(0)  # type: ignore[union-attr]
        + _function("ss_run")
        + _function("ss_psql_discover")
        + _function("ss_discover")
        + _function("ss_speculate")
        + _function("ss_spec_stop")
        + _function("ss_adopt")
    )


def test_a_guessed_dump_waits_for_the_fingerprints_snapshot_and_is_adopted_only_if_asked(tmp_path: Path) -> None:
    # started only once the fingerprints' session has said its quick check and exported its
    # snapshot, which the guess's discovery and dump import: they describe what the fingerprints do
    database = _function("ss_database")
    export = database.index("ss_snapshot=$(sed -n 's/^export ")
    assert database.index("ss_held_said fingerprints together quick") < export < database.index("&& ss_speculate\n")
    words = "'-t' '\"public\".\"t1\"'"
    script = _speculation_script(tmp_path, 0) + (
        "ss_snapshot=00000003-0000001A-1\n"
        "ss_speculate\n"
        f"ss_adopt {shlex.quote(words)} && echo adopted\n"
        'cat "$ss_dir/dump.sql"; [ -n "$ss_spec" ] && echo still-running\n'
    )
    done = subprocess.run(["sh", "-c", script], capture_output=True, text=True, timeout=30)
    assert done.stdout.splitlines() == [
        "adopted",
        "-- dump of -w -v --schema-only --no-owner --lock-wait-timeout=1000 --snapshot=00000003-0000001A-1"
        ' -t "public"."t1"',
    ]
    log = (tmp_path / "log").read_text().splitlines()
    # discovery makes the guess and discovers those relations' file owners, then the dump of its selection
    assert log[0].startswith("psql ") and "ss_mode=guessed" in log[0] and "ss_owners=[]" in log[0]
    assert "ss_snapshot=00000003-0000001A-1" in log[0] and "ss_hold=off" in log[0]
    assert log[1].startswith("pg_dump ") and len(log) == 2


def test_a_guess_that_is_not_what_is_asked_is_stopped_at_once(tmp_path: Path) -> None:
    script = _speculation_script(tmp_path, 30) + (
        "ss_speculate\n"
        'while ! grep -q pg_dump "$LOG" 2>/dev/null; do sleep 0.1; done\n'
        'ss_adopt "\'-t\' \'\\"public\\".\\"other\\"\'" || echo refused\n'
        '[ -z "$ss_spec" ] && [ ! -e "$ss_dir/dump.sql" ] && echo stopped\n'
    )
    done = subprocess.run(["sh", "-c", script], capture_output=True, text=True, timeout=20)
    assert done.stdout.splitlines() == ["refused", "stopped"]
    # the stand-in pg_dump (30 s) was killed, not waited for
    left = subprocess.run(["pgrep", "-f", str(tmp_path / "bin" / "pg_dump")], capture_output=True)
    assert left.returncode == 1


@pytest.mark.parametrize(("says", "late"), [(True, False), (False, False), (True, True), (False, True)])
def test_waiting_for_the_quick_check_ends_whether_or_not_psql_gets_there(
    tmp_path: Path, says: bool, late: bool
) -> None:
    """The fingerprints' session writes its quick check, then says so on a FIFO the script reads;
    one that fails before (a bad password, a timeout) must not leave the script waiting on it. One
    that goes on says its document and holds its snapshot until the script lets it go. late: the
    script starts waiting only after the session has said it, or has failed and gone (a busy
    server may run the script that late): nothing said may be lost."""
    work, bin_dir = tmp_path / "work", tmp_path / "bin"
    work.mkdir()
    bin_dir.mkdir()
    (work / "discover.sql").write_text("")
    psql = bin_dir / "psql"
    if says:  # as discover.sql does: the document, the FIFO, then the fingerprints (here: a second),
        # the snapshot held, and the session open until its input ends
        body = (
            "for a; do case $a in ss_quick_file=*) f=${a#*=} ;; ss_quick_ready=*) r=${a#*=} ;; esac; done\n"
            'echo "quick 15" > "$f"; echo said > "$r"; sleep 1; echo fingerprints; echo "ss-held 00000003-0000001A-1"\n'
            'cat > /dev/null; echo "$*" > "${f%/*}/args"\n'
        )
    else:
        body = "echo 'psql: connection refused' >&2; exit 2\n"
    psql.write_text("#!/bin/sh\n" + body)
    psql.chmod(0o755)
    script = (
        f"ss_dir={shlex.quote(str(work))}\nss_psql={shlex.quote(str(psql))}\nSS_PREFIX=''\n"
        + "ss_pid=$$\n"
        + _function("ss_run")
        + _function("ss_psql_discover")
        + _function("ss_held_start")
        + _function("ss_held_wait")
        + _function("ss_release")
        + _function("ss_held_said")
        # late: the script goes on one second after the session started
        + (
            _function("ss_held_start").replace("ss_held_start()", "ss_held_start_now()", 1)
            + 'ss_held_start() { ss_held_start_now "$@"; ss_started=$?; sleep 1; return $ss_started; }\n'
            if late
            else ""
        )
        + 'ss_held_said fingerprints together quick\n[ -s "$ss_dir/quick.out" ] && echo said\n'
        'ss_held_wait together; echo "ended $? ${ss_snapshot:-none}"; cat "$ss_dir/together"\n'
        '[ -n "$ss_held" ] && { ss_release; wait "$ss_held"; echo "let go $?"; }\n'
    )
    done = subprocess.run(["sh", "-c", script], capture_output=True, text=True, timeout=15)
    if says:
        assert done.stdout.splitlines() == [
            "said",
            "ended 0 00000003-0000001A-1",
            "fingerprints",
            "ss-held 00000003-0000001A-1",
            "let go 0",
        ]
        assert "ss_hold=on" in (work / "args").read_text()
    else:
        assert done.stdout.splitlines() == ["ended 2 none"]


@pytest.mark.parametrize("fifo_anywhere", [True, False])
def test_the_temporary_directory_is_one_that_can_hold_a_fifo(tmp_path: Path, fifo_anywhere: bool) -> None:
    """The run's held snapshot needs FIFOs; a TMPDIR that cannot make one (a network or FUSE file
    system) is passed over for the next candidate that can. Where none can, the first writable
    one is used (each session then reads its own moment), and no candidate is left behind."""
    tmpdir, home = tmp_path / "nofifo", tmp_path / "home"
    tmpdir.mkdir()
    home.mkdir()
    # the shell function stands in for the command: FIFOs can be made only under home, or nowhere
    allowed = f"{home}/*" if fifo_anywhere else "/nowhere/*"
    script = (
        f"TMPDIR={shlex.quote(str(tmpdir))}\nHOME={shlex.quote(str(home))}\n"
        f'mkfifo() {{ case $1 in {allowed}) command mkfifo "$@" ;; *) return 1 ;; esac; }}\n'
        'ss_sweep() { :; }\nss_fail() { echo "failed $*"; exit 1; }\n'
        + _function("ss_mktemp")
        + 'ss_mktemp; echo "$ss_dir"; cat "$ss_dir/pid"; echo $$\n'
    )
    before = {d: set(Path(d).glob("schemasync.*")) for d in ("/var/tmp", "/dev/shm") if os.access(d, os.W_OK)}
    done = subprocess.run(["sh", "-c", script], capture_output=True, text=True, timeout=10, check=True)
    chosen, pid, shell = done.stdout.splitlines()
    assert pid == shell
    if fifo_anywhere:
        assert chosen.startswith(f"{home}/schemasync.") and Path(chosen, "fifo").is_fifo()
        assert list(tmpdir.iterdir()) == []  # the candidate passed over is gone
    else:
        assert chosen.startswith(f"{tmpdir}/schemasync.") and not Path(chosen, "fifo").exists()
        assert list(tmpdir.iterdir()) == [Path(chosen)]
    for d, old in before.items():
        assert set(Path(d).glob("schemasync.*")) <= old  # the system's candidates, tried and removed
