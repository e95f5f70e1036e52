"""Exit codes and the one exception type that carries them to the command line."""

from __future__ import annotations

OK = 0
DIFFERENT = 1  # check/diff found differences
USAGE = 2  # bad arguments, bad hosts.yaml, unknown table
SSH = 3  # unreachable, host key, authentication, connection lost
DATABASE = 4  # psql/pg_dump failed, lock wait, permissions
LOCAL = 5  # local files or git
INTERNAL = 6  # the dump could not be split completely: refuse to write a partial reference
# (the README documents these in one table)


class SchemasyncError(Exception):
    """An error with a message meant for the user and the exit code that goes with it."""

    code = INTERNAL

    def __init__(self, message: str, hint: str = "", code: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        if code is not None:
            self.code = code

    def __reduce__(self) -> tuple:
        # a sweep plans each environment in a process of its own: its errors cross back pickled
        return (type(self), (self.message, self.hint, self.code))

    def __str__(self) -> str:
        return self.message + (f"\n  hint: {self.hint}" if self.hint else "")


class ConfigError(SchemasyncError):
    code = USAGE


class SSHError(SchemasyncError):
    code = SSH


class DatabaseError(SchemasyncError):
    code = DATABASE


class LocalError(SchemasyncError):
    code = LOCAL


class SplitError(SchemasyncError):
    code = INTERNAL


INTERRUPTED = 130  # Ctrl-C, as shells report it


class Interrupted(SchemasyncError):
    """Ctrl-C. Before the run's commit: nothing committed, the files as they were. After it: the
    files stay as committed (`commit`)."""

    code = INTERRUPTED

    def __init__(self, commit: str | None, hint: str = "", code: int | None = None) -> None:
        what = (
            f"committed {commit[:12]}, then interrupted" if commit else "interrupted; the output directory is unchanged"
        )
        super().__init__(what, hint, code)
        self.commit = commit

    @classmethod
    def before_commit(cls) -> Interrupted:
        return cls(None)

    def __reduce__(self) -> tuple:
        return (type(self), (self.commit, self.hint, self.code))
