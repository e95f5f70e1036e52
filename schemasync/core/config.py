"""hosts.yaml into validated objects. Every error names the file, the host and the key."""

from __future__ import annotations

import fnmatch
import itertools
import os
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

from schemasync.core.errors import ConfigError


@dataclass(frozen=True)
class TenantSpec:
    schemas: str  # a glob over schema names
    template: str | None = None  # None: a tenant of the most common shape
    folder: str = "tenant"

    def matches(self, schema: str | None) -> bool:
        return schema is not None and fnmatch.fnmatchcase(schema, self.schemas)


def parse_pattern(pattern: str) -> str | re.Pattern[str]:
    """A hosts.yaml `redact:` item: `/regex/` or an option-name glob. Raises ValueError."""
    if len(pattern) >= 2 and pattern.startswith("/") and pattern.endswith("/"):
        try:
            compiled = re.compile(pattern[1:-1])
        except re.error as exc:
            raise ValueError(f"invalid regular expression {pattern!r}: {exc}") from None
        if compiled.search(""):
            raise ValueError(f"regular expression {pattern!r} matches the empty string")
        return compiled
    if not pattern.strip() or any(ch.isspace() for ch in pattern):
        raise ValueError(f"{pattern!r}: an option name or glob (no spaces), or /regex/")
    return pattern.lower()


ENV_VAR = "SCHEMASYNC_HOSTS"
DEFAULT_FILE = "hosts.yaml"

# key -> (type, description); the types are checked as YAML gives them.
HOST_KEYS: dict[str, tuple[type | tuple[type, ...], str]] = {
    "ssh": (str, "[user@]host[:port] or a Host alias from the SSH config"),
    "database": ((str, list), "database name, or a list of names and glob patterns (one folder each)"),
    "exclude_databases": (list, "database names or glob patterns to leave out of `database:`"),
    "db_user": (str, "database role"),
    "db_host": (str, "database host as seen from the server"),
    "db_port": (int, "database port"),
    "password_env": (str, "name of a local environment variable holding the password"),
    "schemas": (list, "schema names or glob patterns"),
    "exclude": (list, "table name glob patterns to leave out"),
    "pg_bin": (str, "directory of psql and pg_dump on the server"),
    "command_prefix": (str, "runs psql/pg_dump through this, e.g. 'sudo -u postgres' or 'docker exec -i pg'"),
    "output": (str, "output directory, relative to hosts.yaml"),
    "lock_wait_timeout": (int, "seconds pg_dump may wait for a table lock"),
    "host_key": (str, "strict or accept-new"),
    "ssh_config": (str, "SSH config file (default ~/.ssh/config)"),
    "connect_timeout": (int, "seconds to wait for the SSH and database connections"),
    "command_timeout": (int, "seconds the server may stay silent before the run is abandoned"),
    "run_timeout": (int, "seconds a whole run may take before it is abandoned, heartbeat or not"),
    "privileges": (bool, "include GRANT/REVOKE statements"),
    "redact": (list, "more secrets to redact: option names or globs, or /regular expressions/"),
    "tenants": (dict, "schema-per-tenant: {schemas: glob, template: schema (optional), folder: name (optional)}"),
    "via": (str, "ssh (psql and pg_dump run on the server) or tunnel (only the database port is forwarded)"),
    "sslmode": (str, "libpq sslmode: disable, allow, prefer, require, verify-ca or verify-full"),
    "sslrootcert": (str, "CA certificate file for verify-ca/verify-full (a local path with via: tunnel)"),
}
VIA_MODES = ("ssh", "tunnel")
SSL_MODES = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")
HOST_KEY_MODES = ("strict", "accept-new")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_HOST_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")


@dataclass(frozen=True)
class HostConfig:
    name: str
    ssh: str
    database: str
    output: Path
    db_user: str | None = None
    db_host: str = ""
    db_port: int = 5432
    password_env: str | None = None
    schemas: list[str] = field(default_factory=lambda: ["public"])
    exclude: list[str] = field(default_factory=list)
    pg_bin: str | None = None
    command_prefix: str | None = None
    lock_wait_timeout: int = 30
    host_key: str = "strict"
    ssh_config: Path | None = None
    connect_timeout: int = 10
    command_timeout: int = 60
    # the server's heartbeat keeps a run alive however long it takes; this ends one that hangs
    # (a database that stopped answering mid-dump) instead of waiting for ever
    run_timeout: int = 1800
    privileges: bool = False
    redact: tuple[str, ...] = ()  # patterns added to the built-in secret rules (redact.py)
    # Several databases (a list of more than one, or any glob): the patterns, and one folder per
    # database under `output`. Empty for the usual one database, whose layout never changes.
    databases: tuple[str, ...] = ()
    exclude_databases: tuple[str, ...] = ()
    # `tunnel`: forward the database port through the SSH connection and run psql and pg_dump here
    # (managed databases: no shell on the database host, a bastion without pg_dump)
    tenants: TenantSpec | None = None  # schema-per-tenant: one shape written once (tenants.py)
    via: str = "ssh"
    sslmode: str | None = None
    sslrootcert: str | None = None
    one_of_several: bool = False  # made by for_database

    @property
    def several(self) -> bool:
        return bool(self.databases)

    def for_database(self, database: str) -> HostConfig:
        """One database of a several-database host: its own folder, `<output>/<database>`."""
        from schemasync.core.names import name_part

        return replace(
            self,
            database=database,
            databases=(),
            exclude_databases=(),
            output=self.output / name_part(database),
            one_of_several=True,
        )

    def database_folders(self) -> list[Path]:
        """The folders of the databases refreshed so far (a host with several): those with a manifest."""
        try:
            return sorted(p.parent for p in self.output.glob("*/_manifest.json"))
        except OSError:
            return []

    @property
    def label(self) -> str:
        """`dev`, or `dev/app` for one database of several."""
        return f"{self.name}/{self.database}" if self.one_of_several else self.name

    def password(self) -> str | None:
        """The database password from the local environment, if password_env is set."""
        if not self.password_env:
            return None
        value = os.environ.get(self.password_env)
        if value is None:
            raise ConfigError(
                f"hosts.{self.name}.password_env: the environment variable {self.password_env} is not set",
                hint=f"export {self.password_env}=... (or remove password_env to use ~/.pgpass on the server)",
            )
        return value


@dataclass(frozen=True)
class Config:
    path: Path
    hosts: dict[str, HostConfig]
    default: str | None = None

    def host(self, name: str | None, database: str | None = None, *, whole: bool = False) -> HostConfig:
        """A host by name (None: the default, or the only one). For a host with several databases,
        `database` (or the name `dev/app`) picks one, with its own folder; `whole` accepts the
        host itself (a refresh or check of all its databases), which reading commands cannot use."""
        if name is not None and "/" in name and database is None:
            env, database = name.split("/", 1)
            name = env or None  # `/app`: that database of the default host
        if name is None:
            if self.default:
                name = self.default
            elif len(self.hosts) == 1:
                name = next(iter(self.hosts))
            else:
                raise ConfigError(
                    f"{self.path}: several hosts and no `default:`; choose one with --host",
                    hint="hosts: " + ", ".join(sorted(self.hosts)),
                )
        if name not in self.hosts:
            raise ConfigError(f"{self.path}: unknown host {name!r}", hint="hosts: " + ", ".join(sorted(self.hosts)))
        host = self.hosts[name]
        if database is not None:
            return self._one_database(host, database)
        if host.several and not whole:
            raise ConfigError(
                f"{self.path}: hosts.{name} has several databases ({host.database}); choose one with --database "
                f"(or the host {name}/<database>)",
                hint=_folders_hint(host),
            )
        return host

    def _one_database(self, host: HostConfig, database: str) -> HostConfig:
        import fnmatch

        if not host.several:
            if database == host.database:
                return host
            raise ConfigError(
                f"{self.path}: hosts.{host.name} has one database, {host.database!r}, not {database!r}",
                hint="--database is for hosts whose `database:` is a list or a pattern",
            )
        chosen = any(fnmatch.fnmatchcase(database, p) for p in host.databases) and not any(
            fnmatch.fnmatchcase(database, p) for p in host.exclude_databases
        )
        if not chosen:
            raise ConfigError(
                f"{self.path}: {database!r} is not one of hosts.{host.name}'s databases ({host.database})",
                hint=_folders_hint(host),
            )
        return host.for_database(database)


def _folders_hint(host: HostConfig) -> str:
    """The databases refreshed so far: folders with a manifest."""
    found = [folder.name for folder in host.database_folders()]
    if not found:
        return "refresh the host first: inv schemas.refresh --host " + host.name
    return "databases refreshed so far: " + ", ".join(found)


def config_path(explicit: str | None = None, start: Path | None = None) -> Path:
    """--hosts-file, else $SCHEMASYNC_HOSTS, else hosts.yaml in this directory or the nearest parent
    that has one (as Invoke finds tasks.py), else ./hosts.yaml (which then does not exist)."""
    given = explicit or os.environ.get(ENV_VAR)
    if given:
        return Path(given).expanduser()
    here = (start or Path.cwd()).resolve()
    for directory in (here, *here.parents):
        if (directory / DEFAULT_FILE).is_file():
            return directory / DEFAULT_FILE if directory != here else Path(DEFAULT_FILE)
    return Path(DEFAULT_FILE)


def load_config(explicit: str | None = None) -> Config:
    path = config_path(explicit)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(
            f"{path}: no such file",
            hint=f"create hosts.yaml (see the README; looked here and in every parent directory), "
            f"or give --hosts-file, or point {ENV_VAR} at one",
        ) from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        problem = getattr(exc, "problem", None) or "invalid YAML"
        raise ConfigError(f"{path}: invalid YAML{where}: {problem}") from None
    return parse_config(data, path)


def parse_config(data: Any, path: Path) -> Config:
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping with a `hosts:` key")
    unknown = set(data) - {"defaults", "hosts", "default"}
    if unknown:
        raise ConfigError(f"{path}: unknown top-level key {sorted(unknown)[0]!r} (known: default, defaults, hosts)")
    defaults = data.get("defaults") or {}
    if not isinstance(defaults, dict):
        raise ConfigError(f"{path}: defaults: expected a mapping")
    _check_keys(path, "defaults", defaults)
    hosts_raw = data.get("hosts")
    if not isinstance(hosts_raw, dict) or not hosts_raw:
        raise ConfigError(f"{path}: hosts: expected a mapping of host names to settings")
    base = path.resolve().parent
    hosts = {}
    for name, raw in hosts_raw.items():
        if not isinstance(name, str) or not _HOST_NAME.fullmatch(name):
            raise ConfigError(f"{path}: hosts.{name}: host names are letters, digits, '.', '_' and '-'")
        if raw is None:
            raw = {}
        if not isinstance(raw, dict):
            raise ConfigError(f"{path}: hosts.{name}: expected a mapping of settings")
        _check_keys(path, f"hosts.{name}", raw)
        merged = {k: v for k, v in {**defaults, **raw}.items() if v is not None}
        hosts[name] = _host(path, base, name, merged)
    outputs = sorted((h.output, h.name) for h in hosts.values())
    for (out_a, a), (out_b, b) in itertools.pairwise(outputs):
        if out_b == out_a or out_b.is_relative_to(out_a):
            raise ConfigError(
                f"{path}: hosts.{b}.output: {out_b} is inside hosts.{a}'s output {out_a}; "
                "each host needs a directory of its own"
            )
    default = data.get("default")
    if default is not None and default not in hosts:
        raise ConfigError(f"{path}: default: {default!r} is not one of the hosts ({', '.join(sorted(hosts))})")
    return Config(path=path, hosts=hosts, default=default)


def _check_keys(path: Path, where: str, raw: dict[Any, Any]) -> None:
    for key, value in raw.items():
        if key not in HOST_KEYS:
            raise ConfigError(f"{path}: {where}.{key}: unknown key (known: {', '.join(HOST_KEYS)})")
        expected, what = HOST_KEYS[key]
        if value is None:
            continue  # `key: ~` means "not set": the default applies
        # bool is an int in Python; a port of `true` is still wrong.
        wrong_bool = isinstance(value, bool) and expected is not bool
        if wrong_bool or not isinstance(value, expected):
            kind = expected.__name__ if isinstance(expected, type) else "/".join(t.__name__ for t in expected)
            kind = {"str": "a string", "int": "an integer", "list": "a list", "bool": "true or false"}.get(kind, kind)
            raise ConfigError(f"{path}: {where}.{key}: expected {kind} ({what}), got {value!r}")
        if expected is list and not all(isinstance(v, str) and v for v in value):
            raise ConfigError(f"{path}: {where}.{key}: expected a list of non-empty strings, got {value!r}")


def _tenants(where: str, raw: Any) -> TenantSpec | None:
    if raw is None:
        return None
    unknown = set(raw) - {"schemas", "template", "folder"}
    if unknown:
        raise ConfigError(f"{where}.tenants.{sorted(unknown)[0]}: unknown key (known: schemas, template, folder)")
    for key in ("schemas", "template", "folder"):
        if key in raw and not (isinstance(raw[key], str) and raw[key]):
            raise ConfigError(f"{where}.tenants.{key}: expected a non-empty string, got {raw[key]!r}")
    if "schemas" not in raw:
        raise ConfigError(f'{where}.tenants.schemas: required (a glob over schema names, e.g. "tenant_*")')
    if any(ch in raw["schemas"] for ch in "[]"):
        raise ConfigError(f"{where}.tenants.schemas: only * and ? wildcards are supported")
    folder = raw.get("folder", "tenant")
    if (
        folder.startswith(("_", "."))
        or "/" in folder
        or folder
        in (
            "views",
            "materialized_views",
            "functions",
            "types",
            "sequences",
            "other",
        )
    ):
        raise ConfigError(f"{where}.tenants.folder: {folder!r} would share a name with the tool's own files")
    return TenantSpec(raw["schemas"], raw.get("template"), folder)


def _with_tenants(schemas: list[str], tenants: TenantSpec | None) -> list[str]:
    """The tenant schemas are dumped too: their pattern joins `schemas` (unless that is every schema)."""
    if tenants is None or schemas == ["*"] or tenants.schemas in schemas:
        return schemas
    return [*schemas, tenants.schemas]


def _databases(where: str, raw: dict[str, Any]) -> tuple[list[str], bool]:
    """The names and patterns of `database:`, and whether they can name several databases."""
    for key in ("ssh", "database"):
        if not raw.get(key):
            raise ConfigError(f"{where}.{key}: required ({HOST_KEYS[key][1]})")
    database = raw["database"]
    names = [database] if isinstance(database, str) else database
    if not all(isinstance(d, str) and d for d in names):
        raise ConfigError(f"{where}.database: expected a name or a list of names and patterns, got {database!r}")
    for pattern in names + raw.get("exclude_databases", []):
        if any(ch in pattern for ch in "[]"):
            raise ConfigError(f"{where}: database pattern {pattern!r}: only * and ? wildcards are supported")
    # One folder per database when the selection can name several: a list of more than one, or
    # a pattern (even one that matches a single database today, so paths never move).
    several = len(set(names)) > 1 or any(ch in d for d in names for ch in "*?")
    if raw.get("exclude_databases") and not several:
        raise ConfigError(f"{where}.exclude_databases: only with several databases (a list or a pattern)")
    return names, several


def _check_values(where: str, raw: dict[str, Any]) -> None:
    """The values whose type is right but whose value is not."""
    if raw.get("host_key", "strict") not in HOST_KEY_MODES:
        raise ConfigError(f"{where}.host_key: expected strict or accept-new, got {raw['host_key']!r}")
    if raw.get("password_env") and not _ENV_NAME.fullmatch(raw["password_env"]):
        raise ConfigError(f"{where}.password_env: {raw['password_env']!r} is not an environment variable name")
    if "db_port" in raw and not 0 < raw["db_port"] < 65536:
        raise ConfigError(f"{where}.db_port: expected a port number, got {raw['db_port']!r}")
    for key in ("lock_wait_timeout", "connect_timeout", "command_timeout", "run_timeout"):
        if key in raw and raw[key] <= 0:
            raise ConfigError(f"{where}.{key}: expected a positive number of seconds, got {raw[key]!r}")
    for pattern in raw.get("schemas", []) + raw.get("exclude", []):
        if any(ch in pattern for ch in "[]"):
            raise ConfigError(f"{where}: pattern {pattern!r}: only * and ? wildcards are supported")
    for pattern in raw.get("redact", []):
        try:
            parse_pattern(pattern)
        except ValueError as exc:
            raise ConfigError(f"{where}.redact: {exc}") from None


def _check_transport(where: str, raw: dict[str, Any]) -> None:
    """`via`, TLS and `command_prefix`: the combinations that cannot work."""
    if raw.get("via", "ssh") not in VIA_MODES:
        raise ConfigError(f"{where}.via: expected ssh or tunnel, got {raw['via']!r}")
    if raw.get("sslmode") is not None and raw["sslmode"] not in SSL_MODES:
        raise ConfigError(f"{where}.sslmode: expected one of {', '.join(SSL_MODES)}, got {raw['sslmode']!r}")
    if raw.get("via") == "tunnel":
        if raw.get("command_prefix"):
            raise ConfigError(f"{where}.command_prefix: not with via: tunnel (nothing runs on the server)")
        if str(raw.get("db_host", "")).startswith("/"):
            raise ConfigError(
                f"{where}.db_host: a socket directory cannot be forwarded; with via: tunnel give the database's "
                "host name as the bastion sees it (e.g. the RDS endpoint)"
            )
    if raw.get("command_prefix") and raw.get("password_env"):
        raise ConfigError(
            f"{where}.password_env: not supported with command_prefix (a password file cannot cross into a "
            "container or to another user)",
            hint="use ~/.pgpass of the user inside the prefix, or peer authentication",
        )


def _host(path: Path, base: Path, name: str, raw: dict[str, Any]) -> HostConfig:
    where = f"{path}: hosts.{name}"
    names, several = _databases(where, raw)
    _check_values(where, raw)
    tenants = _tenants(where, raw.get("tenants"))
    _check_transport(where, raw)
    output = base / raw.get("output", f"docs/schemas/{name}")
    ssh_config = raw.get("ssh_config")
    return HostConfig(
        name=name,
        ssh=raw["ssh"],
        database=names[0] if not several else ", ".join(names),
        databases=tuple(dict.fromkeys(names)) if several else (),
        exclude_databases=tuple(raw.get("exclude_databases", [])),
        output=output.resolve(),
        db_user=raw.get("db_user"),  # None: libpq uses the SSH user, as psql on the server would
        db_host=raw.get("db_host") or "",
        db_port=raw.get("db_port", 5432),
        password_env=raw.get("password_env"),
        schemas=_with_tenants(list(raw.get("schemas", ["public"])), tenants),
        tenants=tenants,
        exclude=list(raw.get("exclude", [])),
        pg_bin=raw.get("pg_bin"),
        command_prefix=raw.get("command_prefix") or None,
        lock_wait_timeout=raw.get("lock_wait_timeout", 30),
        host_key=raw.get("host_key", "strict"),
        ssh_config=(base / Path(ssh_config).expanduser()).resolve() if ssh_config else None,
        connect_timeout=raw.get("connect_timeout", 10),
        command_timeout=raw.get("command_timeout", 60),
        run_timeout=raw.get("run_timeout", 1800),
        privileges=raw.get("privileges", False),
        redact=tuple(raw.get("redact", [])),
        via=raw.get("via", "ssh"),
        sslmode=raw.get("sslmode"),
        sslrootcert=str((base / Path(raw["sslrootcert"]).expanduser()).resolve())
        if raw.get("sslrootcert") and raw.get("via") == "tunnel"
        else raw.get("sslrootcert"),
    )
