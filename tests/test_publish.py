"""Publishing a run (real git repositories): written and committed together, or not at all."""

from __future__ import annotations

import subprocess
import threading
from pathlib import Path

import pytest

from schemasync.core.errors import LocalError
from schemasync.output.publish import Publication


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, check=True).stdout


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    git(tmp_path, "init", "-q", "-b", "main")
    git(tmp_path, "config", "user.email", "t@example.com")
    git(tmp_path, "config", "user.name", "T")
    (tmp_path / "README").write_text("mine\n")
    git(tmp_path, "add", "README")
    git(tmp_path, "commit", "-q", "-m", "init")
    return tmp_path


def test_files_of_several_directories_land_in_one_commit(repo: Path) -> None:
    with Publication(commit=True) as pub:
        pub.write(repo / "docs" / "dev", repo, {"a.sql": "A\n"})
        pub.write(repo / "docs" / "prod", repo, {"b.sql": "B\n", "views/v.sql": "V\n"})
        commit = pub.commit("schemas: two\n")
    assert commit == git(repo, "rev-parse", "HEAD").strip()
    assert git(repo, "show", "--name-only", "--format=", "HEAD").split() == [
        "docs/dev/a.sql",
        "docs/prod/b.sql",
        "docs/prod/views/v.sql",
    ]
    assert git(repo, "status", "--porcelain") == ""


def test_a_failed_write_is_withdrawn_from_the_commit(repo: Path) -> None:
    (repo / "docs" / "prod" / "b.sql").mkdir(parents=True)  # a directory where a file must go
    with Publication(commit=True) as pub:
        pub.write(repo / "docs" / "dev", repo, {"a.sql": "A\n"})
        with pytest.raises(LocalError, match="is a directory"):
            pub.write(repo / "docs" / "prod", repo, {"c.sql": "C\n", "b.sql": "B\n"})
        pub.commit("schemas: dev only\n")
    assert git(repo, "show", "--name-only", "--format=", "HEAD").split() == ["docs/dev/a.sql"]
    assert not (repo / "docs" / "prod" / "c.sql").exists()  # rolled back with its failed sibling


def test_an_error_inside_puts_everything_back(repo: Path) -> None:
    out = repo / "docs" / "dev"
    out.mkdir(parents=True)
    (out / "a.sql").write_text("old\n")
    head = git(repo, "rev-parse", "HEAD")
    with pytest.raises(RuntimeError), Publication(commit=True) as pub:
        pub.write(out, repo, {"a.sql": "new\n", "b.sql": "B\n"})
        raise RuntimeError("the commit message could not be built")
    assert (out / "a.sql").read_text() == "old\n" and not (out / "b.sql").exists()
    assert git(repo, "rev-parse", "HEAD") == head and sorted(p.name for p in out.iterdir()) == ["a.sql"]


def test_without_commit_only_files_are_written(repo: Path) -> None:
    with Publication(commit=False) as pub:
        pub.write(repo / "docs", repo, {"a.sql": "A\n"})
        assert pub.commit("unused\n") is None
    assert (repo / "docs" / "a.sql").read_text() == "A\n" and git(repo, "rev-list", "--count", "HEAD") == "1\n"


def test_a_prepared_commit_is_used_by_the_writes_or_dropped(repo: Path) -> None:
    warmed = threading.Event()
    with Publication(commit=True) as pub:
        pub.prepare(repo, warmed.set)  # the quick check found a change; warmed in the background
        builder = pub.pending[repo]
        pub.write(repo / "docs", repo, {"a.sql": "A\n"})
        assert pub.pending[repo] is builder  # the writes go to the commit started early
        commit = pub.commit("schemas: a\n")
    assert commit == git(repo, "rev-parse", "HEAD").strip() and warmed.wait(10)
    assert git(repo, "show", "--name-only", "--format=", "HEAD").split() == ["docs/a.sql"]
    # prepared, then nothing to write (the fingerprints found nothing): no commit, no builder left
    with Publication(commit=True) as pub:
        pub.prepare(repo)
        builder = pub.pending[repo]
    assert not builder.thread.is_alive() and git(repo, "rev-parse", "HEAD").strip() == commit
    assert git(repo, "status", "--porcelain") == ""
    # not committing: nothing is started
    with Publication(commit=False) as pub:
        pub.prepare(repo)
        assert pub.pending == {}


def test_a_prepared_commit_writes_a_big_file_as_one_loose_object(repo: Path) -> None:
    """Prepared for a few files, a big one (the manifest of thousands of tables) is written as a
    loose object at once, not packed and unpacked again; the commit holds it byte for byte, with
    the small ones, and the repository is sound."""
    big = "".join(f'{{"file": "t{i:05}.sql", "note": "é {i}"}},\n' for i in range(40_000))  # 1.5 MB
    assert len(big.encode()) >= 1 << 20
    git(repo, "config", "fastimport.unpackLimit", "1")  # fast-import's pack is kept: what went through it shows
    with Publication(commit=True) as pub:
        pub.prepare(repo)
        pub.write(repo / "docs", repo, {"_manifest.json": big, "a.sql": "A\n"})
        pub.commit("schemas: a\n")
    assert git(repo, "show", "HEAD:docs/_manifest.json") == big and git(repo, "show", "HEAD:docs/a.sql") == "A\n"
    blob = git(repo, "rev-parse", "HEAD:docs/_manifest.json").strip()
    small = git(repo, "rev-parse", "HEAD:docs/a.sql").strip()
    assert (repo / ".git" / "objects" / blob[:2] / blob[2:]).is_file()  # loose: never in fast-import's pack
    assert not (repo / ".git" / "objects" / small[:2] / small[2:]).exists()  # the small one is in the pack
    assert git(repo, "status", "--porcelain") == "" and git(repo, "fsck", "--strict") == ""
