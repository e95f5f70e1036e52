"""The shell and SQL that schemasync sends to the server on each run (nothing is installed there)."""
