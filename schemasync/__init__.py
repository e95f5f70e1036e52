"""schemasync: a PostgreSQL schema as per-table files in git, refreshed over SSH."""

__version__ = "0.1.0"
