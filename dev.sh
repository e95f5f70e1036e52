#!/bin/sh
# schemasync developer entry point. Works on a fresh Debian machine, as root or as a normal user.
#   ./dev.sh demo    set everything up, start the sandbox, run a refresh against it, show the result
#   ./dev.sh test    set everything up and run the test suite (extra args go to pytest)
#   ./dev.sh bench   run the benchmark (bench/)
#   ./dev.sh bench-context --musicbrainz DIR   what the agents' answers cost on MusicBrainz
#   ./dev.sh bench-fleet   tenants and several databases per host, against the floor
#   ./dev.sh bench-rtt     round trips of each command on a link with 50 ms of round-trip time
#   ./dev.sh bench-sweep   a sweep against its environments refreshed alone (CPU-bound, 50 ms RTT, 30 envs)
#   ./dev.sh bench-memory  peak memory of a cold refresh: largest process, and the whole local tree
#   ./dev.sh bench-tricks  what each speed trick is worth: the bench with each one off, side by side
#   ./dev.sh bench-big     12,000 and 50,000 tables and 2,500 tenants on PostgreSQL's default lock table
#   ./dev.sh bench-review  review of a 50-statement migration and impact of a column on 5,000 tables
#   ./dev.sh stop    stop the demo's sandbox servers
#   ./dev.sh doctor  check the system packages only, and say what is missing
set -eu
cd "$(dirname "$0")"

missing=""
need() { missing="$missing $1"; }

check_system() {
    command -v python3 >/dev/null 2>&1 || need python3
    if command -v python3 >/dev/null 2>&1; then
        python3 -c 'import sys; sys.exit(sys.version_info < (3, 10))' || { echo "schemasync needs Python 3.10 or newer" >&2; exit 1; }
        python3 -c 'import venv, ensurepip' >/dev/null 2>&1 || need python3-venv
    fi
    command -v git >/dev/null 2>&1 || need git
    command -v ssh-keygen >/dev/null 2>&1 || need openssh-client
    [ -x /usr/sbin/sshd ] || command -v sshd >/dev/null 2>&1 || need openssh-server
    ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null 2>&1 || need postgresql
    command -v ps >/dev/null 2>&1 || need procps
    # runuser starts PostgreSQL as an unprivileged user, which only root needs (it lives in
    # /usr/sbin, which a normal user's PATH does not hold)
    if [ "$(id -u)" = 0 ]; then
        command -v runuser >/dev/null 2>&1 || [ -x /usr/sbin/runuser ] || need util-linux
    fi
    if [ -n "$missing" ]; then
        if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
            echo "installing:$missing"
            export DEBIAN_FRONTEND=noninteractive
            apt-get update -qq
            # shellcheck disable=SC2086
            apt-get install -y -qq --no-install-recommends $missing >/dev/null
        else
            echo "missing system packages:$missing" >&2
            echo "install them with:  sudo apt-get install -y$missing" >&2
            exit 1
        fi
    fi
}

setup_venv() {
    stamp=.venv/.schemasync-installed
    if [ ! -x .venv/bin/python ]; then
        rm -rf .venv
        python3 -m venv .venv
    fi
    if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
        .venv/bin/python -m pip install -q --disable-pip-version-check -e '.[dev]'
        touch "$stamp"
    fi
}

cmd=${1:-}
[ $# -gt 0 ] && shift
case "$cmd" in
    demo)  check_system; setup_venv; exec .venv/bin/python -m sandbox demo "$@" ;;
    test)  check_system; setup_venv; exec .venv/bin/python -m pytest -q -p no:cacheprovider "$@" ;;
    bench) check_system; setup_venv
           .venv/bin/python -c 'import matplotlib' 2>/dev/null || .venv/bin/python -m pip install -q -e '.[bench]'
           exec .venv/bin/python -m bench "$@" ;;
    bench-context) check_system; setup_venv; exec .venv/bin/python -m bench.context "$@" ;;
    bench-fleet) check_system; setup_venv; exec .venv/bin/python -m bench.fleet "$@" ;;
    bench-rtt) check_system; setup_venv; exec .venv/bin/python -m bench.roundtrips "$@" ;;
    bench-memory) check_system; setup_venv; exec .venv/bin/python -m bench.memory "$@" ;;
    bench-sweep) check_system; setup_venv; exec .venv/bin/python -m bench.sweep "$@" ;;
    bench-tricks) check_system; setup_venv; exec .venv/bin/python -m bench.tricks "$@" ;;
    bench-big) check_system; setup_venv; exec .venv/bin/python -m bench.big "$@" ;;
    bench-review) check_system; setup_venv; exec .venv/bin/python -m bench.review "$@" ;;
    stop)  exec .venv/bin/python -m sandbox stop ;;
    doctor) check_system; echo "system packages: all present" ;;
    *)     sed -n '2,/^set -eu/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 2 ;;
esac
