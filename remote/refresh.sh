# schemasync remote step: sent to `sh -s` over the SSH channel on every run; nothing is installed.
#
# schemasync prepends a header that sets SS_MODE, SS_PG_BIN, SS_PREFIX, SS_LOCK_WAIT_MS,
# SS_DUMP_FLAGS, SS_MORE_BIN (one more directory to look for a new enough pg_dump in), the PG* connection variables, and two functions: ss_write_sql (the discovery SQL)
# and ss_write_pgpass (only when a password is given; it arrives inside this script, on stdin, so it
# never appears on a command line). Everything here is POSIX sh plus psql, pg_dump and coreutils.
#
# What this script and schemasync say to each other (lines, answers, modes, exit codes):
# remote/PROTOCOL.md. tests/test_protocol.py keeps that page, this script and
# schemasync/transport/protocol.py equal.

set -u
set -f  # SS_PREFIX and SS_DUMP_FLAGS are split into words, never globbed
umask 077
# Exit codes, named alike in session.py (RemoteExit); tests/test_protocol.py keeps them equal.
SS_EXIT_NO_PSQL=20
SS_EXIT_NO_PG_DUMP=21
SS_EXIT_DISCOVERY=22
SS_EXIT_PG_DUMP=23
SS_EXIT_NO_TMPDIR=24
SS_EXIT_NOTHING_TO_DUMP=25
SS_EXIT_LOCK_WAIT=26
SS_EXIT_LOCK_TABLE_FULL=27
LC_ALL=C
export LC_ALL
# pg_dump's options, the same for every dump of a run: a dump made early must be the ordinary
# one byte for byte. -v adds "-- TOC entry N (class C OID O)" lines: they tell which table each
# statement belongs to. Split into words as SS_DUMP_FLAGS is (no value here has a space).
ss_dump_opts="-w -v --schema-only --no-owner $SS_DUMP_FLAGS --lock-wait-timeout=$SS_LOCK_WAIT_MS"

ss_fail() {
    code=$1
    shift
    printf 'schemasync-remote: %s\n' "$*" >&2
    exit "$code"
}

ss_pid=$$  # this script's, as its background jobs see it
ss_dir=""
ss_hb=""
ss_hb_pid=""  # the heartbeat's, kept after ss_hb is cleared (ss_hold)
ss_early=""
ss_early_shared=""
ss_spec=""
ss_together=""
ss_feed=""
ss_dumping=""  # ss_dump's pg_dump
ss_sub=""  # ss_several: the database being dumped (its subshell)
ss_exec=""  # exec: ss_run takes the place of the subshell that calls it (ss_dump)
ss_psql=""
ss_cut=""  # a job that may hold a session was ended (ss_stop_jobs)
ss_stop_jobs() {  # what a run, or one database's part of it (ss_several), started and must end
    [ -n "$ss_sub$ss_dumping" ] && ss_cut=yes
    [ -n "$ss_sub" ] && kill "$ss_sub" 2>/dev/null  # it ends its own jobs (its trap)
    [ -n "$ss_feed" ] && kill "$ss_feed" 2>/dev/null  # the held session's input ends: it ends too
    [ -n "$ss_dumping" ] && kill "$ss_dumping" 2>/dev/null
    [ -n "$ss_early" ] && kill "$ss_early" 2>/dev/null  # never leave a pg_dump holding locks
    [ -n "$ss_spec" ] && kill "$ss_spec" 2>/dev/null
    [ -n "$ss_together" ] && kill "$ss_together" 2>/dev/null
}
ss_cleanup() {
    ss_stop_jobs
    [ -n "$ss_cut" ] && [ -n "$SS_PREFIX" ] && [ -n "$ss_psql" ] && ss_end_sessions
    [ -n "$ss_hb" ] && kill "$ss_hb" 2>/dev/null
    [ -n "$ss_dir" ] && rm -rf "$ss_dir"
}
ss_end_sessions() {  # the server ends this run's sessions: killing `docker exec` (a prefix)
    # leaves its pg_dump running in the container, holding a lock on every table it has read
    printf '%s\n' "SET search_path = pg_catalog, pg_temp;" "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
        WHERE application_name = :'ss_app' AND usename = current_user AND pid <> pg_backend_pid();" |
        ss_run "$ss_psql" -X -w -q -A -t -v ss_app="$PGAPPNAME" -f - > /dev/null 2>&1
}
ss_traps() {  # ss_traps ACTION: run at exit, however the shell ends (a subshell sets its own)
    trap "$1" EXIT
    trap 'exit 129' HUP
    trap 'exit 130' INT
    trap 'exit 141' PIPE
    trap 'exit 143' TERM
}
ss_traps ss_cleanup

ss_mktemp() {  # the first candidate that can hold a FIFO (the run's held snapshot needs them: a
    # TMPDIR on a network or FUSE file system may not); failing that, the first writable one
    for ss_fifo in yes no; do
        for base in "${TMPDIR:-/tmp}" /var/tmp /dev/shm "$HOME"; do
            [ -d "$base" ] && [ -w "$base" ] || continue
            ss_dir=$(mktemp -d "$base/schemasync.XXXXXXXX" 2>/dev/null) || continue
            if [ "$ss_fifo" = yes ] && ! mkfifo "$ss_dir/fifo" 2>/dev/null; then
                rm -rf "$ss_dir"
                ss_dir=""
                continue
            fi
            echo "$$" > "$ss_dir/pid"
            # every session of this run says which run it is (ss_end_sessions)
            PGAPPNAME="schemasync/${ss_dir##*.}"
            export PGAPPNAME
            ss_sweep "$base"
            return 0
        done
    done
    ss_fail "$SS_EXIT_NO_TMPDIR" "no writable temporary directory (tried \$TMPDIR, /tmp, /var/tmp, /dev/shm, \$HOME)"
}

ss_sweep() {  # remove directories left by runs that were killed outright (their script is gone)
    set +f
    set -- "$1"/schemasync.*
    set -f
    for old in "$@"; do
        [ "$old" != "$ss_dir" ] && [ -d "$old" ] && [ -O "$old" ] || continue
        old_pid=$(cat "$old/pid" 2>/dev/null) || old_pid=""
        if [ -n "$old_pid" ] && kill -0 "$old_pid" 2>/dev/null; then
            continue  # another run, still working
        fi
        if [ -z "$old_pid" ] && [ -z "$(find "$old" -maxdepth 0 -mmin +60 2>/dev/null)" ]; then
            continue  # no pid yet: a run that is just starting, unless it is an hour old
        fi
        rm -rf "$old" && printf 'schemasync-remote: removed %s, left by an interrupted earlier run\n' "$old" >&2
    done
}

ss_which() {  # the program in SS_PG_BIN, else on PATH; no output and false if missing
    if [ -n "$SS_PG_BIN" ]; then
        [ -x "$SS_PG_BIN/$1" ] && printf '%s\n' "$SS_PG_BIN/$1"
    else
        command -v "$1"
    fi
}

ss_find() {  # ss_find VAR program: the program in SS_PG_BIN, else on PATH
    if [ -n "$SS_PREFIX" ]; then
        # inside a container or as another user: that side's PATH (or pg_bin) decides
        if [ -n "$SS_PG_BIN" ]; then eval "$1=\$SS_PG_BIN/\$2"; else eval "$1=\$2"; fi
    elif [ -n "$SS_PG_BIN" ]; then
        [ -x "$SS_PG_BIN/$2" ] || ss_fail "$SS_EXIT_NO_PSQL" "$2 not found in pg_bin ($SS_PG_BIN)"
        eval "$1=\$SS_PG_BIN/\$2"
    else
        ss_path=$(command -v "$2") || ss_fail "$SS_EXIT_NO_PSQL" "$2 not found on the server's PATH ($PATH); set pg_bin in hosts.yaml"
        eval "$1=\$ss_path"
    fi
}

ss_run() {  # ss_run program args...: directly, or through SS_PREFIX with the settings passed along
    # (with ss_exec=exec, in place of the subshell that calls it)
    if [ -n "$SS_PREFIX" ]; then
        # sudo and docker exec drop the environment, so the connection settings go explicitly
        # (none of them is secret: a password is refused with a prefix)
        $ss_exec $SS_PREFIX env ${PGHOST+"PGHOST=$PGHOST"} ${PGPORT+"PGPORT=$PGPORT"} ${PGUSER+"PGUSER=$PGUSER"} \
            ${PGDATABASE+"PGDATABASE=$PGDATABASE"} ${PGCONNECT_TIMEOUT+"PGCONNECT_TIMEOUT=$PGCONNECT_TIMEOUT"} \
            PGAPPNAME="$PGAPPNAME" PGCLIENTENCODING=UTF8 "$@"
    else
        $ss_exec "$@"
    fi
}

ss_version() {  # the whole version of a pg_dump binary, spaces as _: 15.18_(Debian_15.18-0+deb12u1)
    ss_run "$1" --version 2>/dev/null | sed -n 's/^pg_dump (PostgreSQL) //p' | tr ' ' '_'
}

ss_dump() {  # one pg_dump of the selection in "$@", appended to dump.sql. A job this script waits
    # for: a signal (the heartbeat's, once schemasync is gone) is acted on at once, and the EXIT
    # trap ends it, rather than a dump nobody will read running on, holding its locks
    (ss_exec=exec; ss_run "$ss_pg_dump" $ss_dump_opts ${ss_snapshot:+"--snapshot=$ss_snapshot"} "$@") \
        >> "$ss_dir/dump.sql" 2> "$ss_dir/dump.err" &
    ss_dumping=$!
    wait "$ss_dumping"
    ss_status=$?
    ss_dumping=""
    [ "$ss_status" -eq 0 ] && return 0
    # too many tables for the server's lock table: the caller dumps in batches, if it may
    [ -n "${ss_may_batch:-}" ] && ss_locks_full && return 1
    ss_dump_failed
}

ss_locks_full() {  # the dump failed because the server's shared lock table is full
    grep -q -e 'out of shared memory' -e 'max_locks_per_transaction' "$ss_dir/dump.err" 2>/dev/null
}

ss_dump_batches() {  # too many tables for one pg_dump's locks. schemasync, which has discovery's
    # document, says how to split them: "batches <n> <token>", then n lines of pg_dump selection
    # words. Every batch imports the run's snapshot (ss_dump), so all describe one moment; a
    # table changed after that moment and before its batch locked it would be dumped half old,
    # half new, so the quick check is taken again once they are done, outside the snapshot: if
    # it differs from discovery's, schemasync does not use the dump (quick_after).
    printf 'SCHEMASYNC ASK batches\n'
    IFS= read -r ss_answer || ss_fail "$SS_EXIT_PG_DUMP" "schemasync did not say how to batch the dump"
    set -- $ss_answer
    { [ "$#" -eq 3 ] && [ "$1" = batches ]; } || ss_fail "$SS_EXIT_PG_DUMP" "unexpected answer from schemasync"
    case $2$3 in *[!0-9a-f]*) ss_fail "$SS_EXIT_PG_DUMP" "unexpected answer from schemasync" ;; esac
    ss_n=$2
    SS_BOUNDARY="-- schemasync: next batch $3"
    ss_k=0
    while [ "$ss_k" -lt "$ss_n" ]; do
        ss_k=$((ss_k + 1))
        IFS= read -r ss_line || ss_fail "$SS_EXIT_PG_DUMP" "unexpected end of input"
        printf '%s\n' "$ss_line" > "$ss_dir/batch.$ss_k"
    done
    : > "$ss_dir/dump.sql"
    ss_k=0
    while [ "$ss_k" -lt "$ss_n" ]; do
        ss_k=$((ss_k + 1))
        [ "$ss_k" -eq 1 ] || ss_boundary
        printf 'SCHEMASYNC INFO step dump %s of %s\n' "$ss_k" "$ss_n"
        eval "set -- $(cat "$ss_dir/batch.$ss_k")"
        ss_dump "$@"
        rm -f "$ss_dir/batch.$ss_k"
    done
    if (ss_snapshot=""; ss_discover quick '[]' quick.after); then
        printf 'SCHEMASYNC INFO quick_after %s\n' \
            "$(sed -n 2p "$ss_dir/quick.after" | sed -n 's/.*"quick" *: *"\([0-9:,-]*\)".*/\1/p')"
    fi
}

ss_dump_failed() {  # explain dump.err and exit with the matching code
    grep -i -e 'error' -e 'detail' -e 'hint' -e 'fatal' "$ss_dir/dump.err" | tail -n 20 >&2
    # first: the lock table is full (its message also quotes a LOCK TABLE query)
    if ss_locks_full; then
        # schemasync, which has discovery's document, tries again in smaller batches
        ss_fail "$SS_EXIT_LOCK_TABLE_FULL" "one pg_dump cannot lock all the tables (max_locks_per_transaction)"
    fi
    # pg_dump's lock wait ends as a statement timeout on its LOCK TABLE
    if grep -q -e 'could not obtain lock' -e 'canceling statement due to statement timeout' "$ss_dir/dump.err" &&
            grep -q 'LOCK TABLE' "$ss_dir/dump.err"; then
        ss_fail "$SS_EXIT_LOCK_WAIT" "pg_dump gave up waiting for a table lock (lock_wait_timeout ${SS_LOCK_WAIT_MS} ms)"
    fi
    ss_fail "$SS_EXIT_PG_DUMP" "pg_dump failed"
}

ss_pack() {  # ss_pack name file: a copy to fetch, gzipped when gzip is there; sets ss_packed
    if command -v gzip >/dev/null 2>&1; then
        gzip -c "$2" > "$ss_dir/$1" || ss_fail "$SS_EXIT_PG_DUMP" "gzip failed (disk full?)"
        ss_packed="gzip"
    else
        cat "$2" > "$ss_dir/$1" || ss_fail "$SS_EXIT_PG_DUMP" "writing $1 failed (disk full?)"
        ss_packed="plain"
    fi
    ss_pack_size=$(wc -c < "$ss_dir/$1" | tr -d ' ')
    ss_pack_file="$ss_dir/$1"
    ss_packed="$ss_packed $ss_pack_size"
}

ss_say() {  # ss_say KIND: the line announcing the file ss_pack made. A small one follows the line
    # on stdout (a fetch over SFTP costs two round trips at least, on a link that may be 150 ms
    # long), while stdout is ours alone (ss_hold); otherwise the line names the file to fetch.
    if [ "$ss_pack_size" -le "$SS_INLINE_MAX" ] && ss_hold; then
        printf 'SCHEMASYNC %s %s -\n' "$1" "$ss_packed"
        cat "$ss_pack_file"
        rm -f "$ss_dir/say"
    else
        printf 'SCHEMASYNC %s %s %s\n' "$1" "$ss_packed" "$ss_pack_file"
    fi
}

ss_hold() {  # take the "say" lock: the heartbeat skips a beat rather than write into a file's
    # bytes. A file created with noclobber (O_EXCL: one creator wins), by a builtin: no tool, no
    # fork. Fails after a few thousand tries (the heartbeat blocked on a full channel, a full
    # disk): the file then goes over SFTP, and nothing spins on the server.
    ss_tries=0
    while :; do
        set -C
        true 2>/dev/null > "$ss_dir/say"
        ss_got=$?
        set +C
        [ "$ss_got" -ne 0 ] || return 0
        ss_tries=$((ss_tries + 1))
        [ "$ss_tries" -lt 5000 ] || return 1
        # held by the heartbeat for one `echo`; or left by one that was killed while holding it
        { [ -n "$ss_hb_pid" ] && kill -0 "$ss_hb_pid" 2>/dev/null; } || rm -f "$ss_dir/say"
    done
}

ss_psql_discover() {  # ss_psql_discover [mode owners]: the read-only discovery query, read from our
    # input; -w: never prompt for a password; -X: no ~/.psqlrc. mode and owners override the run's
    # (incremental.py asks for them). ss_relations=on: owners are relations (a guess); SS_SINCE,
    # SS_QUICK_EXPECT: the last refresh's, for the guess and the quick check; ss_snapshot: the
    # run's snapshot, imported; ss_hold=on: this is the run's first session (ss_held_start).
    ss_run "$ss_psql" -X -w -q -A -t -v ON_ERROR_STOP=1 -v ss_mode="${1:-}" -v ss_owners="${2:-[]}" \
        -v ss_relations="${ss_relations:-off}" -v ss_since="${SS_SINCE:-}" \
        -v ss_expect="${SS_QUICK_EXPECT:-}" -v ss_quick_given="${ss_quick_given:-}" \
        -v ss_quick_snapshot="${ss_quick_snapshot:-}" -v ss_quick_file="${ss_quick_file:-}" \
        -v ss_quick_ready="${ss_quick_ready:-}" -v ss_export_file="${ss_export_file:-}" \
        -v ss_export_ready="${ss_export_ready:-}" -v ss_snapshot="${ss_snapshot:-}" -v ss_hold="${ss_hold:-off}" -f -
}

ss_discover() {  # ss_discover [mode owners [file]]: the discovery query into $ss_dir/file (discovery)
    ss_psql_discover "${1:-}" "${2:-[]}" < "$ss_dir/discover.sql" > "$ss_dir/${3:-discovery}" \
        2> "$ss_dir/${3:-discovery}.err"
}

# One snapshot per run. The fingerprints kept in the manifest describe the catalog at their
# session's snapshot; a dump taken at another moment could hold a change they do not (made in
# between), and once it is undone the next refresh would find the fingerprints equal and call a
# stale file current. So the run's first session that a dump may follow exports its snapshot and
# stays open (held) until the run is done, and every later discovery and pg_dump imports it.
ss_held_start() {  # ss_held_start mode owners file [quick|export]: that first session, in the
    # background (ss_held): discovery as ss_discover runs it, fed discover.sql and then nothing
    # until the script ends its input (ss_release, or the script's end); ss_held_wait reads its
    # document. quick, export: it also says something early (ss_held_said).
    rm -f "$ss_dir/$3.feed" "$ss_dir/$3.stream"
    mkfifo "$ss_dir/$3.feed" "$ss_dir/$3.stream" 2> /dev/null || return 1  # no mkfifo: ss_discover_held
    # the document, up to the line that says the session holds its snapshot (or to its end)
    sed '/^ss-held /q' < "$ss_dir/$3.stream" > "$ss_dir/$3" &
    ss_collect=$!
    {
        cat "$ss_dir/discover.sql"
        # then a blank line (psql skips it) every second while this script runs: a psql that has
        # ended breaks the pipe, and this ends too
        while kill -0 "$ss_pid" 2>/dev/null; do sleep 1 > /dev/null; echo || exit 0; done
    } > "$ss_dir/$3.feed" 2> /dev/null < /dev/null &
    ss_feed=$!
    {
        ss_hold=on
        case ${4:-} in
            quick) ss_quick_file=$ss_dir/quick.out ss_quick_ready=$ss_dir/quick.ready ;;
            export) ss_export_file=$ss_dir/export.id ss_export_ready=$ss_dir/export.ready ;;
        esac
        ss_psql_discover "$1" "$2" < "$ss_dir/$3.feed" > "$ss_dir/$3.stream" 2> "$ss_dir/$3.err"
        ss_status=$?
        # the script waiting on the FIFO (ss_held_said) reads a line, said or not (opening it
        # read-write does not wait: once the script has read its line, this one is dropped)
        [ -n "${4:-}" ] && echo ended 3<> "$ss_dir/$4.ready" >&3
        exit "$ss_status"
    } < /dev/null > /dev/null 2>&1 &  # not the channel's: it ends when the script does
    ss_held=$!
}

ss_held_wait() {  # ss_held_wait file: the held session's document is out and its snapshot is the
    # run's (ss_snapshot); or the session ended (at the quick check, or failing): its exit status
    wait "$ss_collect"
    ss_held_id=$(sed -n '$s/^ss-held \([0-9A-F-]*\)$/\1/p' "$ss_dir/$1")
    if [ -n "$ss_held_id" ]; then
        ss_snapshot=$ss_held_id
        return 0
    fi
    ss_snapshot=""  # said by its quick check, but the session is gone
    wait "$ss_held"
    ss_held_status=$?
    ss_held=""
    ss_release
    return "$ss_held_status"
}

ss_discover_held() {  # ss_discover_held mode owners file: ss_discover as the run's first session
    # (ss_held_start); where the server cannot make a FIFO, at its own snapshot
    if ss_held_start "$1" "$2" "$3"; then
        ss_held_wait "$3"
    else
        ss_discover "$1" "$2" "$3"
    fi
}

ss_release() {  # the held session's input ends: it ends its transaction (read only) and its connection
    [ -n "$ss_feed" ] && kill "$ss_feed" 2>/dev/null
    ss_feed=""
}

ss_quick() {  # ss_quick [key]: the quick check's value (or snapshot) in the document discovery just wrote
    sed -n 2p "$ss_dir/discovery" | sed -n "s/.*\"${1:-quick}\" *: *\"\([0-9:,-]*\)\".*/\1/p"
}

ss_ask() {  # schemasync's answer, one line on our input
    printf 'SCHEMASYNC ASK\n'
    IFS= read -r ss_answer || ss_fail "$SS_EXIT_PG_DUMP" "schemasync did not say what to dump"
}

ss_discovery_failed() {
    cat "$ss_dir/discovery.err" >&2
    ss_fail "$SS_EXIT_DISCOVERY" "discovery query failed (psql)"
}

ss_version_start() {  # the first candidate's version, asked while the catalog is queried
    (ss_find ss_pg_dump pg_dump) >/dev/null 2>&1 || return 0  # missing: said when it is needed
    ss_find ss_pg_dump pg_dump
    ss_version "$ss_pg_dump" > "$ss_dir/pg_dump.version" &
    ss_version_pid=$!
}

ss_choose_pg_dump() {  # the server's pg_dump, new enough for it (ss_pg_dump, ss_dump_major)
    # one `pg_dump --version` per candidate: through a prefix (sudo, docker exec) each one costs
    if [ -n "$ss_version_pid" ]; then
        wait "$ss_version_pid"
        ss_dump_version=$(cat "$ss_dir/pg_dump.version")
    else
        ss_find ss_pg_dump pg_dump
        ss_dump_version=$(ss_version "$ss_pg_dump")
    fi
    ss_version_pid="" ss_chosen=1
    ss_dump_major=${ss_dump_version%%[!0-9]*}
    if [ -z "$SS_PG_BIN$SS_PREFIX" ] && [ "${ss_dump_major:-0}" -lt "$ss_server_major" ]; then
        # pg_dump refuses a newer server: look for the server's own version's binaries.
        for ss_cand in "/usr/lib/postgresql/$ss_server_major/bin" "/usr/pgsql-$ss_server_major/bin" \
                "/usr/local/pgsql-$ss_server_major/bin" "/opt/postgresql/$ss_server_major/bin" "$(dirname "$ss_psql")" \
                "${SS_MORE_BIN:-/nonexistent}"; do
            [ -x "$ss_cand/pg_dump" ] || continue
            ss_cand_version=$(ss_version "$ss_cand/pg_dump")
            if [ "${ss_cand_version%%[!0-9]*}" -ge "$ss_server_major" ] 2>/dev/null; then
                ss_pg_dump=$ss_cand/pg_dump
                ss_dump_version=$ss_cand_version
                ss_dump_major=${ss_dump_version%%[!0-9]*}
                break
            fi
        done
    fi
    if [ "${ss_dump_major:-0}" -lt "$ss_server_major" ]; then
        ss_fail "$SS_EXIT_NO_PG_DUMP" "pg_dump $ss_pg_dump is version ${ss_dump_major:-unknown}, older than the server ($ss_server_major); set pg_bin to the server's bin directory"
    fi
    # the whole version: a minor release may print a dump differently (incremental.py keeps it)
    printf 'SCHEMASYNC INFO pg_dump_version %s\n' "$ss_dump_version"
}

ss_boundary() {  # separates the dumps of a batched run
    printf '\n%s\n' "$SS_BOUNDARY" >> "$ss_dir/dump.sql"
}

ss_prepare() {  # the temporary directory, psql, the password file
    ss_mktemp
    ss_find ss_psql psql
    if command -v ss_write_pgpass >/dev/null 2>&1; then
        ss_write_pgpass "$ss_dir/pgpass"
        PGPASSFILE=$ss_dir/pgpass
        export PGPASSFILE
    fi
}

ss_heartbeat() {
    # The heartbeat also stops by itself within a second of this script ending: a `kill` sent
    # before its exec can be swallowed by the traps it inherits, and it must not hold the channel.
    # Each beat takes the "say" lock (ss_hold), or skips. A beat that cannot be written means
    # schemasync is gone (interrupted, its connection lost, or its run_timeout passed): it tells
    # this script to stop (TERM), whose EXIT trap ends its dumps and sessions at once.
    sh -c 'trap "" PIPE; n=0; while kill -0 "$1" 2>/dev/null; do sleep 1 </dev/null >/dev/null 2>&1; n=$((n + 1)); [ $((n % 5)) -eq 0 ] && (set -C; : > "$2/say") 2>/dev/null || continue; echo . 2>/dev/null || { kill -TERM "$1" 2>/dev/null; exit 0; }; rm -f "$2/say"; done' sh "$$" "$ss_dir" </dev/null &
    ss_hb=$!
    ss_hb_pid=$ss_hb
}

ss_start_early() {  # ss_start_early WORDS: pg_dump of schemasync's guess at the selection (the
    # exact schema names, the --table, the changed relations), while discovery runs. Used only
    # if discovery's selection is the same text; otherwise, and on any failure here, the
    # ordinary dump runs after discovery and reports.
    SS_EARLY=$1
    ss_early_shared=${ss_snapshot:-}  # the run's snapshot, imported (or none)
    eval "set -- $SS_EARLY"
    "$ss_path" $ss_dump_opts ${ss_snapshot:+"--snapshot=$ss_snapshot"} "$@" > "$ss_dir/dump.sql" 2> "$ss_dir/dump.err" &
    ss_early=$!
}

ss_speculate() {  # while the fingerprints are computed: discovery guesses what changed since the
    # last refresh (mode guessed) and discovers those relations' file owners, then their pg_dump,
    # in the background (ss_spec). Used only if schemasync then asks for exactly that selection.
    # Called once the fingerprints' session has said its quick check, and exported its snapshot:
    # both import it, and describe what the fingerprints do.
    (
        ss_discover guessed '[]' spec.discovery || exit 1
        read -r ss_flag ss_server_major < "$ss_dir/spec.discovery"
        [ "$ss_flag" = dump ] || exit 1
        sed 1,2d "$ss_dir/spec.discovery" > "$ss_dir/spec.args"
        eval "set -- $(cat "$ss_dir/spec.args")"
        exec "$ss_pg_dump" $ss_dump_opts ${ss_snapshot:+"--snapshot=$ss_snapshot"} "$@" \
            > "$ss_dir/spec.sql" 2> "$ss_dir/spec.err"
    ) &
    ss_spec=$!
}

ss_held_said() {  # ss_held_said mode file quick|export: ss_held_start's session, in the
    # background, held, which says something as soon as it is known (discover.sql: quick, the
    # quick check's document in quick.out; export, its exported snapshot in export.id), then a line
    # on the FIFO quick.ready or export.ready. Returns once that line is read, said or not (the
    # session's own end writes one); 1 if nothing was started (no FIFO here).
    # The FIFO is held open (read-write: that does not wait) from before the session starts, so a
    # line is kept however early it comes: waiting to open it instead would wait for ever if the
    # session had failed and gone before this script got there.
    mkfifo "$ss_dir/$3.ready" 2>/dev/null || return 1
    exec 8<> "$ss_dir/$3.ready"
    if ! ss_held_start "$1" '[]' "$2" "$3" 8<&-; then
        exec 8<&-
        return 1
    fi
    IFS= read -r ss_said <&8 || :
    exec 8<&-
}

ss_export_first() {  # a whole refresh: its first session (discovery with the fingerprints, held)
    # starts before the early dump and says its exported snapshot at once (ss_held_said), and the
    # early dump imports it: the dump, discovery and the fingerprints describe one state of the
    # catalog. (A dump that took its own snapshot could see a change committed after discovery's.)
    # Returns 1 if no snapshot came; ss_first_held says the session was started (ss_discover_main
    # waits for its document).
    ss_held_said "" discovery export || return 1
    ss_first_held=1
    ss_snapshot=$(cat "$ss_dir/export.id" 2>/dev/null) || ss_snapshot=""
    [ -n "$ss_snapshot" ]
}

ss_spec_stop() {
    [ -n "$ss_spec" ] || return 0
    kill "$ss_spec" 2>/dev/null
    wait "$ss_spec" 2>/dev/null
    ss_spec=""
}

ss_adopt() {  # ss_adopt WORDS: the speculative discovery and dump become this run's, if their
    # selection is exactly WORDS (schemasync's for the file owners it asks for)
    if [ -z "$1" ] || { [ -s "$ss_dir/spec.args" ] && [ "$(cat "$ss_dir/spec.args")" != "$1" ]; }; then
        ss_spec_stop
        return 1
    fi
    wait "$ss_spec" || { ss_spec=""; return 1; }
    ss_spec=""
    [ "$(cat "$ss_dir/spec.args")" = "$1" ] || return 1
    mv "$ss_dir/spec.discovery" "$ss_dir/discovery" && mv "$ss_dir/spec.sql" "$ss_dir/dump.sql"
}

ss_main() {
    ss_prepare
    ss_write_sql "$ss_dir/discover.sql"
    ss_early=""
    ss_first_held=""
    if [ -n "${SS_EARLY+x}" ] && [ -z "$SS_PREFIX" ] && ss_path=$(ss_which pg_dump); then
        if [ "$SS_MODE" != full ]; then
            ss_start_early "$SS_EARLY"  # --table: no fingerprints are kept
        elif ss_export_first; then
            ss_start_early "$SS_EARLY"  # at the run's snapshot, which discovery's session holds
        elif [ -z "$ss_first_held" ]; then
            # No FIFO here: the quick check before the early dump starts; if discovery's is the
            # same, schemasync keeps its fingerprints for the dump (refresh.py)
            if ss_discover quick '[]'; then
                printf 'SCHEMASYNC INFO quick_before %s\n' "$(ss_quick)"
            fi
            ss_start_early "$SS_EARLY"
        fi  # else a server that cannot export a snapshot: the dump follows discovery
    fi
    ss_heartbeat
    ss_database
    kill "$ss_hb" 2>/dev/null; ss_hb=""
    printf 'SCHEMASYNC INFO pg_dump %s\n' "${ss_dump_major:-unknown}"  # recorded in the manifest
    [ -n "$ss_packed" ] || exit 0  # incremental, and nothing changed: no dump
    ss_say RESULT
    # Wait until schemasync has the file (it closes our input), or the connection is gone.
    cat > /dev/null
    exit 0
}

ss_several() {  # a host with several databases: list them, then each one's discovery and pg_dump
    ss_prepare
    ss_heartbeat
    ss_write_databases_sql "$ss_dir/databases.sql"
    if ! ss_run "$ss_psql" -X -w -q -A -t -v ON_ERROR_STOP=1 -f - \
            < "$ss_dir/databases.sql" > "$ss_dir/databases" 2> "$ss_dir/psql.err"; then
        cat "$ss_dir/psql.err" >&2
        ss_fail "$SS_EXIT_DISCOVERY" "could not list the databases (psql)"
    fi
    printf 'SCHEMASYNC DATABASES %s\n' "$(sed -n 2p "$ss_dir/databases")"
    eval "set -- $(sed -n 1p "$ss_dir/databases")"
    ss_top=$ss_dir
    ss_k=0
    exec 9<&0  # our input, for each database's subshell: a job's own input is /dev/null
    for ss_db in "$@"; do
        ss_k=$((ss_k + 1))
        mkdir "$ss_top/$ss_k" || ss_fail "$SS_EXIT_NO_TMPDIR" "cannot make $ss_top/$ss_k (disk full?)"
        printf 'SCHEMASYNC DATABASE %s\n' "$ss_k"
        # In a subshell: a database that fails ends only its own part (its exit code and last
        # error lines are reported), and the next one runs.
        # A job this script waits for (ss_sub): if schemasync goes, the heartbeat's TERM reaches
        # this script at once, and its EXIT trap ends the subshell, whose own trap ends its jobs.
        (
            exec 0<&9 9<&-
            ss_sub=""
            # its own jobs end when it does (its held session, not at the end of the whole run);
            # its directory stays until schemasync has fetched its files, and the heartbeat beats on
            ss_traps ss_stop_jobs
            ss_dir=$ss_top/$ss_k
            PGDATABASE=$ss_db
            export PGDATABASE
            ss_write_sql "$ss_dir/discover.sql"
            ss_database
            printf 'SCHEMASYNC INFO pg_dump %s\n' "${ss_dump_major:-unknown}"
            ss_say RESULT
        ) 2> "$ss_top/$ss_k.err" &
        ss_sub=$!
        wait "$ss_sub"
        ss_status=$?
        ss_sub=""
        if [ "$ss_status" -ne 0 ]; then
            printf 'SCHEMASYNC FAILED %s %s %s\n' "$ss_k" "$ss_status" \
                "$(grep -v '^schemasync-remote: removed ' "$ss_top/$ss_k.err" | tail -n 8 | tr '\r\n' '\037\037')"
        fi
    done
    kill "$ss_hb" 2>/dev/null; ss_hb=""
    printf 'SCHEMASYNC END\n'
    cat > /dev/null
    exit 0
}

ss_database() {  # discovery and pg_dump of PGDATABASE into $ss_dir; the packed dump in ss_packed
    ss_mode="" ss_owners="[]" ss_pg_dump="" ss_version_pid="" ss_chosen="" ss_spec_ok="" ss_quick_given="" ss_quick_snapshot=""
    # this database's own (ss_held_start), unless its first session has started (ss_export_first)
    [ -n "${ss_first_held:-}" ] || { ss_snapshot="" ss_feed=""; }
    [ "$SS_MODE" = list ] || ss_version_start
    if [ -n "${SS_ASK+x}" ]; then
        # Incremental: the quick check, then if asked the fingerprints. schemasync compares them
        # with the last refresh's and answers on our input: nothing to dump, more (the
        # fingerprints), everything, or these file owners (OIDs).
        ss_together=""
        if [ -n "${SS_QUICK_EXPECT:-}" ] && [ -z "$SS_PREFIX" ] && ss_held_said fingerprints together quick; then
            # One session: the quick check, said as soon as it is known, then (unless it is the
            # last refresh's) the fingerprints, at the same snapshot. Its pid: the EXIT trap kills it.
            ss_together=$ss_held
            if [ ! -s "$ss_dir/quick.out" ]; then
                ss_held_wait together
                ss_together=""
                mv "$ss_dir/together.err" "$ss_dir/discovery.err"
                ss_discovery_failed
            fi
            mv "$ss_dir/quick.out" "$ss_dir/discovery"
            # its exported snapshot, for the speculative discovery and dump
            ss_snapshot=$(sed -n 's/^export \([0-9A-F-]*\)$/\1/p' "$ss_dir/discovery")
        else
            ss_discover quick '[]' || ss_discovery_failed
        fi
        read -r ss_flag ss_server_major < "$ss_dir/discovery"
        # the fingerprints keep this value only if their snapshot is the same (discover.sql)
        ss_quick_given=$(ss_quick) ss_quick_snapshot=$(ss_quick snapshot)
        printf 'SCHEMASYNC QUICK %s\n' "$(sed -n 2p "$ss_dir/discovery")"
        ss_choose_pg_dump
        if [ -n "${SS_QUICK_EXPECT:-}" ] && [ "$(ss_quick)" != "$SS_QUICK_EXPECT" ]; then
            ss_answer=more  # not the last refresh's: schemasync would ask for the fingerprints
            # the fingerprints' session is under way (not with a prefix: two sessions, no guess)
            [ -n "$ss_together" ] && [ -n "${SS_SINCE:-}" ] && ss_speculate
        else
            if [ -n "$ss_together" ]; then  # it ended at the quick check
                ss_held_wait together
                ss_together=""
            fi
            ss_ask
        fi
        if [ "$ss_answer" = more ]; then
            if [ -n "$ss_together" ]; then
                if ! ss_held_wait together; then
                    ss_together=""
                    mv "$ss_dir/together.err" "$ss_dir/discovery.err"
                    ss_discovery_failed
                fi
                ss_together=""
                mv "$ss_dir/together" "$ss_dir/discovery"
            else
                ss_discover_held fingerprints '[]' discovery || ss_discovery_failed
            fi
            sed -n 2p "$ss_dir/discovery" > "$ss_dir/meta.json"
            ss_pack fingerprints.out "$ss_dir/meta.json"
            ss_say FINGERPRINTS
            ss_ask
        fi
        [ "${ss_answer%% *}" = part ] || ss_spec_stop
        case $ss_answer in
            none)
                ss_release
                ss_packed=""
                rm -f "$ss_dir/pgpass" "$ss_dir/discovery" "$ss_dir/meta.json"
                return 0 ;;
            full) ss_mode=full ;;
            "part "*[!0-9\ ]*) ss_fail "$SS_EXIT_PG_DUMP" "unexpected answer from schemasync" ;;
            "part "*)
                ss_mode=owners
                ss_owners="[$(printf '%s\n' "${ss_answer#part }" | tr -s ' ' ',')]"
                # then a line: schemasync's guess at their pg_dump selection (may be empty)
                IFS= read -r ss_guess || ss_fail "$SS_EXIT_PG_DUMP" "unexpected end of input"
                if [ -n "$ss_spec" ] && ss_adopt "$ss_guess"; then
                    ss_spec_ok=1  # discovered and dumped already
                elif [ -n "$ss_guess" ] && [ -z "$SS_PREFIX" ]; then
                    ss_path=$ss_pg_dump
                    ss_start_early "$ss_guess"
                fi ;;
            *) ss_fail "$SS_EXIT_PG_DUMP" "unexpected answer from schemasync" ;;
        esac
    fi
    if [ -n "${ss_spec_ok:-}" ]; then
        :
    elif ! ss_discover_main; then
        if [ -n "$ss_early" ] && grep -q 'out of shared memory' "$ss_dir/discovery.err"; then
            # The early pg_dump filled the server's lock table before discovery got its own few
            # locks: stop it and ask again; the ordinary dump (or batches) follows discovery.
            kill "$ss_early" 2>/dev/null
            wait "$ss_early" 2>/dev/null
            ss_early=""
            ss_discover_main && ss_second_ok=1
        fi
        [ -n "${ss_second_ok:-}" ] || ss_discovery_failed
    fi
    read -r ss_flag ss_server_major < "$ss_dir/discovery"
    sed -n 2p "$ss_dir/discovery" > "$ss_dir/meta.json"
    sed '1,2d; /^ss-held /d' "$ss_dir/discovery" > "$ss_dir/args"
    if [ "$ss_flag" != dump ]; then
        [ -n "$ss_early" ] && kill "$ss_early" 2>/dev/null && wait "$ss_early" 2>/dev/null
        [ -n "${ss_top:-}" ] || { kill "$ss_hb" 2>/dev/null; ss_hb=""; }
        printf 'SCHEMASYNC META %s\n' "$(cat "$ss_dir/meta.json")"
        [ "$SS_MODE" = list ] && exit 0
        exit "$SS_EXIT_NOTHING_TO_DUMP"
    fi
    ss_pack discovery.out "$ss_dir/meta.json"
    ss_say DISCOVERY
    [ -n "$ss_chosen" ] || ss_choose_pg_dump

    ss_early_ok=""
    if [ -n "$ss_early" ]; then
        # Discovery decides; the early dump counts only if it dumped exactly that selection.
        if [ "$ss_path" = "$ss_pg_dump" ] && [ "$(cat "$ss_dir/args")" = "$SS_EARLY" ]; then
            if wait "$ss_early"; then
                ss_early_ok=1
                printf 'SCHEMASYNC INFO early used\n'
                # at the run's snapshot, discovery's: its fingerprints describe the dump. Else
                # schemasync keeps them only if the quick check taken before it started is the same
                [ -n "$ss_early_shared" ] && printf 'SCHEMASYNC INFO early_snapshot shared\n'
            elif [ -n "${SS_BATCHES:-}" ] && ss_locks_full; then
                ss_need_batches=1
            elif grep -q -e 'could not obtain lock' -e 'canceling statement due to statement timeout' \
                    -e 'out of shared memory' "$ss_dir/dump.err" 2>/dev/null; then
                ss_early=""
                ss_dump_failed  # the same lock trouble would meet the second try
            fi
        else
            kill "$ss_early" 2>/dev/null
            wait "$ss_early" 2>/dev/null
        fi
        ss_early=""
    fi
    if [ -n "$ss_early_ok" ]; then
        :
    elif [ -n "${ss_spec_ok:-}" ]; then
        # made at the fingerprints' snapshot (ss_speculate imports it)
        printf 'SCHEMASYNC INFO early speculated\n'
    elif [ -z "${ss_need_batches:-}" ]; then
        : > "$ss_dir/dump.sql"
        eval "set -- $(cat "$ss_dir/args")"
        ss_may_batch=${SS_BATCHES:-}
        ss_dump "$@" || ss_need_batches=1
        ss_may_batch=""
    fi
    if [ -n "${ss_need_batches:-}" ]; then
        ss_need_batches=""
        ss_dump_batches
    fi

    ss_release  # every dump is done
    ss_pack result "$ss_dir/dump.sql"
    rm -f "$ss_dir/pgpass" "$ss_dir/dump.sql" "$ss_dir/discovery" "$ss_dir/meta.json" "$ss_dir/args"
}

ss_discover_main() {  # the run's discovery: at the run's snapshot if a session holds one; else,
    # unless only listing, it is the session that holds it for the dump
    if [ -n "${ss_first_held:-}" ]; then
        ss_first_held=""
        ss_held_wait discovery  # started before the early dump (ss_export_first)
    elif [ -n "${ss_snapshot:-}" ] || [ "$SS_MODE" = list ]; then
        ss_discover "$ss_mode" "$ss_owners"
    else
        ss_discover_held "$ss_mode" "$ss_owners" discovery
    fi
}

if command -v ss_write_databases_sql >/dev/null 2>&1; then ss_several; else ss_main; fi
