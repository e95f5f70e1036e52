from __future__ import annotations

from pathlib import Path

import pytest

from schemasync.core.config import load_config
from schemasync.core.errors import USAGE, ConfigError


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "hosts.yaml"
    p.write_text(text)
    return p


def test_defaults_merge_and_paths_are_relative_to_the_file(tmp_path: Path) -> None:
    p = write(
        tmp_path,
        """
defaults:
  database: skyfire
  schemas: ["*"]
hosts:
  dev:
    ssh: deploy@dev.example.com:2222
  prod:
    ssh: prod
    database: skyfire_prod
    output: out/prod
""",
    )
    cfg = load_config(str(p))
    assert cfg.hosts["dev"].database == "skyfire"
    assert cfg.hosts["dev"].schemas == ["*"]
    assert cfg.hosts["dev"].output == (tmp_path / "docs/schemas/dev").resolve()
    assert cfg.hosts["prod"].output == (tmp_path / "out/prod").resolve()
    assert cfg.hosts["prod"].host_key == "strict"
    assert cfg.hosts["dev"].db_user is None
    assert cfg.hosts["dev"].run_timeout == 1800  # a hung run ends after half an hour at most


def test_env_var_names_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    p = write(tmp_path, "hosts:\n  a:\n    ssh: a\n    database: d\n")
    monkeypatch.setenv("SCHEMASYNC_HOSTS", str(p))
    assert list(load_config().hosts) == ["a"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "hosts:\n  dev:\n    ssh: x\n    database: d\n    db_port: '5432'\n",
            "hosts.dev.db_port: expected an integer",
        ),
        ("hosts:\n  dev:\n    ssh: x\n    database: d\n    colour: red\n", "hosts.dev.colour: unknown key"),
        ("hosts:\n  dev:\n    ssh: x\n", "hosts.dev.database: required"),
        ("hosts:\n  dev: [1, 2]\n", "hosts.dev: expected a mapping"),
        (
            "hosts:\n  dev:\n    ssh: x\n    database: d\n    host_key: yolo\n",
            "host_key: expected strict or accept-new",
        ),
        ("hosts:\n  dev: {ssh: x\n", "invalid YAML"),
        ("hosts: {}\n", "hosts: expected a mapping"),
        ("hosts:\n  dev:\n    ssh: x\n    database: d\n    schemas: public\n", "hosts.dev.schemas: expected a list"),
        ("hosts:\n  dev:\n    ssh: x\n    database: d\n    db_port: true\n", "hosts.dev.db_port: expected an integer"),
        ("hosts:\n  dev:\n    ssh: x\n    database: d\ndefault: prod\n", "default: 'prod' is not one of the hosts"),
        (
            "hosts:\n  dev:\n    ssh: x\n    database: d\n    run_timeout: 0\n",
            "hosts.dev.run_timeout: expected a positive number of seconds",
        ),
    ],
)
def test_bad_files_give_one_clear_line_naming_file_host_and_key(tmp_path: Path, text: str, expected: str) -> None:
    p = write(tmp_path, text)
    with pytest.raises(ConfigError) as err:
        load_config(str(p))
    assert expected in err.value.message
    assert str(p) in err.value.message
    assert err.value.code == USAGE
    assert "\n" not in err.value.message


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such file"):
        load_config(str(tmp_path / "nope.yaml"))


def test_host_selection(tmp_path: Path) -> None:
    two = load_config(str(write(tmp_path, "hosts:\n  a: {ssh: a, database: d}\n  b: {ssh: b, database: d}\n")))
    with pytest.raises(ConfigError, match="several hosts"):
        two.host(None)
    with pytest.raises(ConfigError, match="unknown host 'c'"):
        two.host("c")
    assert two.host("b").name == "b"
    one = load_config(str(write(tmp_path, "hosts:\n  a: {ssh: a, database: d}\n")))
    assert one.host(None).name == "a"


def test_missing_password_variable_is_a_config_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = load_config(str(write(tmp_path, "hosts:\n  a: {ssh: a, database: d, password_env: NOPE_PW}\n")))
    monkeypatch.delenv("NOPE_PW", raising=False)
    with pytest.raises(ConfigError, match="NOPE_PW is not set"):
        cfg.host("a").password()


def test_hosts_need_output_directories_of_their_own(tmp_path: Path) -> None:
    p = write(tmp_path, "hosts:\n  a: {ssh: a, database: d, output: out}\n  b: {ssh: b, database: d, output: out/b}\n")
    with pytest.raises(ConfigError, match=r"inside hosts\.a's output"):
        load_config(str(p))


def test_the_example_hosts_file_and_its_commented_hosts_are_valid(tmp_path: Path) -> None:
    """The README sends people to hosts.yaml: what it shows, commented out or not, must load."""
    import re

    example = (Path(__file__).resolve().parent.parent / "hosts.yaml").read_text()
    assert sorted(load_config(str(write(tmp_path, example))).hosts) == ["dev", "prod", "staging"]
    uncommented = re.sub(r"(?m)^  # (\w+):$", r"  \1:", example)
    uncommented = re.sub(r"(?m)^  #   ", "    ", uncommented)
    hosts = load_config(str(write(tmp_path, uncommented))).hosts
    assert hosts["shards"].several and hosts["shards"].databases == ("app", "shard_*")
    assert hosts["saas"].tenants is not None and hosts["saas"].tenants.template == "tenant_0001"
    assert hosts["managed"].via == "tunnel" and hosts["managed"].sslmode == "verify-full"
