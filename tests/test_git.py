"""gitops against real git repositories: the fast-import commit, and the `git commit` it yields to
where hooks, signing, filters or ignore rules are in play."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest

from schemasync.core.errors import LocalError
from schemasync.output import commit


def git(repo: Path, *args: str, check: bool = True) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, check=check).stdout


@pytest.fixture(autouse=True)
def isolated_git(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No global or system git configuration leaks in (hooksPath, signing, identity)."""
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(tmp_path / "gitconfig-global"))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    for var in ("GIT_AUTHOR_NAME", "GIT_AUTHOR_EMAIL", "GIT_COMMITTER_NAME", "GIT_COMMITTER_EMAIL", "EMAIL"):
        monkeypatch.delenv(var, raising=False)


def make_repo(path: Path, *, initial: bool = True) -> Path:
    path.mkdir()
    git(path, "init", "-q", "-b", "main")
    git(path, "config", "user.name", "Schema Bot")
    git(path, "config", "user.email", "bot@example.com")
    if initial:
        (path / "app.py").write_text("print(1)\n")
        git(path, "add", "app.py")
        git(path, "commit", "-q", "-m", "app")
    return path


def put(files: dict[Path, str]) -> dict[Path, str]:
    for path, text in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return files


def committed(repo: Path, rev: str = "HEAD") -> dict[str, str]:
    names = git(repo, "ls-tree", "-r", "-z", "--name-only", rev).split("\0")
    return {n: git(repo, "show", f"{rev}:{n}") for n in names if n}


def test_commit_holds_exactly_the_files_and_leaves_the_rest_staged(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "r")
    (repo / "app.py").write_text("print(2)\n")
    git(repo, "add", "app.py")  # the user's own staged change
    (repo / "notes.txt").write_text("mine\n")  # untracked, not ours
    out = repo / "docs" / "schemas" / "dev"
    files = put({out / "users.sql": "CREATE TABLE users ();\n", out / "views" / "v.sql": "CREATE VIEW v;\n"})
    before = git(repo, "rev-parse", "HEAD").strip()

    pending = commit.PendingCommit(repo)
    pending.add(files)
    sha = pending.finish("schemas(dev): +users  \n\n\n+ users\n\n")

    assert pending.commit == sha  # built by fast-import, not by `git commit`
    assert sha == git(repo, "rev-parse", "HEAD").strip()
    assert git(repo, "rev-parse", "HEAD^").strip() == before
    tree = committed(repo)
    assert tree["docs/schemas/dev/users.sql"] == "CREATE TABLE users ();\n"
    assert tree["docs/schemas/dev/views/v.sql"] == "CREATE VIEW v;\n"
    assert tree["app.py"] == "print(1)\n" and "notes.txt" not in tree
    assert git(repo, "diff", "--cached", "--name-only").split() == ["app.py"]  # still staged
    # the index matches the commit for our paths, stat data included: plumbing sees no change
    assert subprocess.run(["git", "-C", str(repo), "diff-index", "--quiet", "HEAD", "--", "docs"]).returncode == 0
    assert subprocess.run(["git", "-C", str(repo), "diff-files", "--quiet", "--", "docs"]).returncode == 0
    assert git(repo, "log", "-1", "--format=%B") == "schemas(dev): +users\n\n+ users\n\n"  # %B adds one \n
    assert (
        git(repo, "log", "-1", "--format=%an <%ae>|%cn <%ce>")
        == "Schema Bot <bot@example.com>|Schema Bot <bot@example.com>\n"
    )
    assert "commit: schemas(dev): +users" in git(repo, "reflog", "-1")
    assert git(repo, "for-each-ref").count("refs/schemasync") == 0  # no scratch ref left behind


def test_many_files_go_into_one_pack(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "r")
    loose_before = git(repo, "count-objects").split()[0]
    commit.commit_files(repo, put({repo / "out" / f"t{i}.sql": f"-- {i}\n" for i in range(300)}), "many")
    counts = dict(line.split(": ") for line in git(repo, "count-objects", "-v").splitlines())
    assert counts["count"] == loose_before and counts["packs"] == "1" and int(counts["in-pack"]) >= 302
    assert len(committed(repo)) == 301 and git(repo, "status", "--porcelain") == ""


def test_message_is_stored_as_git_commit_would(tmp_path: Path) -> None:
    message = "\n\nsubject   \n\n\n\nbody line \t\n  indented\n~odd\u2028name\u00a0\n\n"
    plumbing = make_repo(tmp_path / "a")
    commit.commit_files(plumbing, put({plumbing / "x.sql": "x\n"}), message)
    porcelain = make_repo(tmp_path / "b")
    put({porcelain / "x.sql": "x\n"})
    git(porcelain, "add", "x.sql")
    git(porcelain, "commit", "-q", "-m", message)
    assert (
        git(plumbing, "cat-file", "-p", "HEAD").split("\n\n", 1)[1]
        == git(porcelain, "cat-file", "-p", "HEAD").split("\n\n", 1)[1]
    )


def test_repository_without_commits_and_odd_names(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "r", initial=False)
    out = repo / "out"
    names = ["plain.sql", "with space.sql", 'quote"d.sql', "back\\slash.sql", "tab\there.sql", "ünï.sql"]
    files = put({out / n: f"-- {n}\n" for n in names})
    sha = commit.commit_files(repo, files, "first")
    assert git(repo, "rev-list", "--count", "HEAD").strip() == "1"
    assert "commit (initial): first" in git(repo, "reflog", "-1")
    assert committed(repo, sha) == {f"out/{n}": f"-- {n}\n" for n in names}
    assert git(repo, "status", "--porcelain") == ""


def test_detached_head_moves_only_head(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "r")
    main = git(repo, "rev-parse", "main").strip()
    git(repo, "checkout", "-q", "--detach")
    sha = commit.commit_files(repo, put({repo / "x.sql": "x\n"}), "detached")
    assert git(repo, "rev-parse", "HEAD").strip() == sha
    assert git(repo, "rev-parse", "main").strip() == main


def test_a_commit_hook_runs_through_git_commit(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "r")
    hook = repo / ".git" / "hooks" / "pre-commit"
    hook.write_text(f"#!/bin/sh\necho ran >> {tmp_path / 'hook-ran'}\n")
    hook.chmod(0o755)
    pending = commit.PendingCommit(repo)
    pending.add(put({repo / "x.sql": "x\n"}))
    pending.finish("with hook")
    assert pending.commit is None  # git commit made it
    assert (tmp_path / "hook-ran").read_text() == "ran\n"
    assert committed(repo)["x.sql"] == "x\n"


def test_a_failing_hook_commits_nothing_and_unstages(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "r")
    hooks = tmp_path / "hooks"  # core.hooksPath is honoured too
    hooks.mkdir()
    (hooks / "commit-msg").write_text("#!/bin/sh\necho 'message rejected' >&2\nexit 1\n")
    (hooks / "commit-msg").chmod(0o755)
    git(repo, "config", "core.hooksPath", str(hooks))
    head = git(repo, "rev-parse", "HEAD").strip()
    with pytest.raises(LocalError, match="message rejected"):
        commit.commit_files(repo, put({repo / "x.sql": "x\n"}), "nope")
    assert git(repo, "rev-parse", "HEAD").strip() == head
    assert git(repo, "diff", "--cached", "--name-only") == ""


def test_a_clean_filter_applies_as_with_git_add(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "r")
    git(repo, "config", "filter.upper.clean", "tr a-z A-Z")
    git(repo, "config", "filter.upper.smudge", "cat")
    (repo / ".gitattributes").write_text("*.sql filter=upper\n")
    commit.commit_files(repo, put({repo / "x.sql": "create table x ();\n"}), "filtered")
    assert committed(repo)["x.sql"] == "CREATE TABLE X ();\n"  # stored as git add stores it
    assert git(repo, "diff", "--cached", "--name-only") == ""


def test_an_ignored_output_directory_is_refused_with_a_hint(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "r")
    (repo / ".gitignore").write_text("docs/\n")
    head = git(repo, "rev-parse", "HEAD").strip()
    with pytest.raises(LocalError) as err:
        commit.commit_files(repo, put({repo / "docs" / "x.sql": "x\n"}), "ignored")
    assert "ignored by .gitignore" in str(err.value)
    assert git(repo, "rev-parse", "HEAD").strip() == head


def test_a_missing_identity_is_explained(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "r")
    git(repo, "config", "--unset", "user.name")
    git(repo, "config", "--unset", "user.email")
    git(repo, "config", "user.useConfigOnly", "true")
    with pytest.raises(LocalError) as err:
        commit.commit_files(repo, put({repo / "x.sql": "x\n"}), "who")
    assert "git config user.name" in err.value.hint
    assert git(repo, "rev-list", "--count", "HEAD").strip() == "1"


def test_a_branch_that_moves_meanwhile_is_not_overwritten(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "r")
    files = put({repo / "x.sql": "x\n"})
    pending = commit.PendingCommit(repo)
    pending.add(files)
    deadline = time.monotonic() + 30
    while pending.parent is None and time.monotonic() < deadline:  # the commit is built on the old HEAD...
        time.sleep(0.01)
    (repo / "app.py").write_text("print(3)\n")
    git(repo, "commit", "-q", "-am", "theirs")  # ...and someone commits before it lands
    theirs = git(repo, "rev-parse", "HEAD").strip()
    with pytest.raises(LocalError, match="HEAD moved"):
        pending.finish("ours")
    assert git(repo, "rev-parse", "HEAD").strip() == theirs
    assert git(repo, "diff", "--cached", "--name-only") == ""  # our path unstaged again


def test_quote_path_round_trips_through_fast_import_syntax() -> None:
    assert commit._quote_path('a "b"\\c\n') == b'"a \\"b\\"\\\\c\\012"'
    assert commit._quote_path("ü") == '"ü"'.encode()


def test_files_added_in_batches_make_one_commit_and_abort_makes_none(tmp_path: Path) -> None:
    """A sweep adds each environment's files as it finishes; an interrupted run aborts."""
    repo = make_repo(tmp_path / "r")
    pending = commit.PendingCommit(repo)
    pending.add(put({repo / "dev" / "a.sql": "a\n"}))
    pending.add(put({repo / "prod" / "a.sql": "b\n", repo / "_drift.md": "d\n"}))
    sha = pending.finish("sweep")
    assert pending.commit == sha
    assert {k: v for k, v in committed(repo).items() if k != "app.py"} == {
        "dev/a.sql": "a\n",
        "prod/a.sql": "b\n",
        "_drift.md": "d\n",
    }
    head = git(repo, "rev-parse", "HEAD").strip()
    aborted = commit.PendingCommit(repo)
    aborted.add(put({repo / "dev" / "a.sql": "changed\n"}))
    aborted.abort()
    assert git(repo, "rev-parse", "HEAD").strip() == head
    assert git(repo, "diff", "--cached", "--name-only") == ""
    leftovers = [p.name for p in (repo / ".git").rglob("*") if "crash" in p.name or p.name.startswith("tmp_")]
    assert leftovers == []


@pytest.mark.parametrize("hook", [False, True], ids=["fast-import", "git-commit"])
def test_removed_files_leave_the_commit_and_unknown_ones_are_ignored(tmp_path: Path, hook: bool) -> None:
    repo = make_repo(tmp_path / "r")
    out = repo / "docs" / "_erd"
    first = put({out / "a.md": "A\n", out / "b.md": "B\n"})
    commit.commit_files(repo, first, "pages")
    if hook:  # a hook sends the commit through `git commit`
        (repo / ".git" / "hooks" / "pre-commit").write_text("#!/bin/sh\nexit 0\n")
        (repo / ".git" / "hooks" / "pre-commit").chmod(0o755)
    (out / "a.md").unlink()
    never_committed = out / "c.md"  # written by a run that did not commit: git does not know it
    files = put({repo / "docs" / "_erd.md": "one page\n"})
    assert commit.commit_files(repo, files, "fewer pages", removed=[out / "a.md", never_committed])
    assert set(committed(repo)) == {"app.py", "docs/_erd.md", "docs/_erd/b.md"}
    assert git(repo, "status", "--porcelain") == ""
