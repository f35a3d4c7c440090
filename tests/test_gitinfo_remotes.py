"""Git remotes: only a repository on a real host becomes the image's source label.

A remote is user input copied into `org.opencontainers.image.source`, build.json and
every terminal that prints them, so anything that is not a plain http(s)/ssh/git/scp
URL on a valid host gives no label rather than a mangled one (`ext::ssh -i TOKEN ...`
once became ``https://ext/:ssh -i TOKEN host %S repo``). Uses the real git CLI.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import Result
from hypothesis import given
from hypothesis import strategies as st

from deploy.gitinfo import GitInfo, inside_work_tree, public_remote_url, read_git
from deploy.image.labels import image_labels
from tests.conftest import MakeProject

RunCli = Callable[..., Result]

SOURCE = "org.opencontainers.image.source"


@pytest.mark.parametrize(
    ("remote", "public"),
    [
        ("https://github.com/org/repo.git", "https://github.com/org/repo"),
        ("https://GitHub.com/org/repo", "https://github.com/org/repo"),
        ("http://git.internal.example:8080/a/b/", "http://git.internal.example:8080/a/b"),
        ("https://ci@corp.example:TOKEN@github.com/org/repo.git", "https://github.com/org/repo"),
        ("ssh://git@github.com:22/org/repo.git", "https://github.com/org/repo"),
        ("git+ssh://git@github.com/org/repo", "https://github.com/org/repo"),
        ("git://github.com/org/repo.git", "https://github.com/org/repo"),
        ("git@github.com:org/repo.git", "https://github.com/org/repo"),
        ("user:TOKEN@host.example:org/repo.git", "https://host.example/org/repo"),
        ("gitlab:group/repo", "https://gitlab/group/repo"),
        ("https://10.0.0.7/org/repo", "https://10.0.0.7/org/repo"),
        ("ssh://git@[2001:db8::1]/org/repo", "https://[2001:db8::1]/org/repo"),
    ],
)
def test_server_remotes_become_https_urls_without_credentials(remote: str, public: str) -> None:
    assert public_remote_url(remote) == public


@pytest.mark.parametrize(
    "remote",
    [
        # git's transport::address forms run commands or name descriptors, not places.
        "ext::ssh -i TOKEN host %S repo",
        "ext::sh -c touch% /tmp/pwned",
        "fd::3",
        "fd::3,4",
        "persistent-https::https://github.com/org/repo",
        "hg::https://example.com/repo",
        # Local repositories.
        "/srv/git/repo.git",
        "../sibling",
        "./repo",
        "repo.git",
        "~/repo",
        "file:///srv/git/repo.git",
        "file://localhost/srv/repo",
        r"C:\repos\worker",
        "C:/repos/worker",
        # Other schemes.
        "rsync://host.example/repo",
        "ftp://host.example/repo",
        # No host, or one that is not a host name.
        "https:///org/repo",
        "https://-bad.example/org/repo",
        "https://bad-.example/org/repo",
        "https://under_score.example/repo",
        "https://1.2.3/repo",
        "https://ex..ample/repo",
        "https://host.example:99999/repo",
        "https://exämple.com/repo",
        "[::1]:org/repo",
        # Control characters, format characters and whitespace, anywhere.
        "https://github.com/org/repo\x1b]0;PWNED\x07.git",
        "https://git\x00hub.com/org/repo",
        "https://github.com/org/\u202erepo",
        "https://github.com/org/\u200brepo",
        "https://github.com/org/re po",
        "https://github.com/org/repo\n",
        " https://github.com/org/repo",
        "https://github.com/org/repo\t",
        "git@github.com:org/repo\r",
        "https://github.com/org/re\u00a0po",
        "https://github.com\\org\\repo",
        "",
    ],
)
def test_anything_else_gives_no_source(remote: str) -> None:
    assert public_remote_url(remote) is None
    git = GitInfo(sha="0" * 40, tag=None, branch="main", dirty=False, remote_url=remote)
    labels = image_labels(
        title="demo",
        version="sha-0000000",
        git=git,
        dirty=False,
        config_hash="sha256:x",
        lock_hash=None,
        strategy="slim",
        environ={},
    )
    assert SOURCE not in labels


@given(st.text())
def test_a_source_url_is_always_plain_https_or_http(remote: str) -> None:
    url = public_remote_url(remote)
    if url is not None:
        assert url.startswith(("https://", "http://"))
        assert url.isascii()
        assert url.isprintable()
        assert not any(ch.isspace() for ch in url)
        assert "@" not in url.split("/", 3)[2]  # no user info survives


def _git(root: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(root), *args], check=True, capture_output=True)


def test_a_fresh_git_init_is_a_work_tree_without_commits(tmp_path: Path) -> None:
    assert not inside_work_tree(tmp_path)
    _git(tmp_path, "init", "-q")
    assert inside_work_tree(tmp_path)
    assert read_git(tmp_path) is None


def test_a_hostile_origin_reaches_no_label(tmp_path: Path) -> None:
    _git(tmp_path, "init", "-q")
    _git(tmp_path, "-c", "user.name=t", "-c", "user.email=t@x", "commit", "-q", "--allow-empty", "-m", "x")
    _git(tmp_path, "remote", "add", "origin", "ext::ssh -i TOKEN host %S repo")
    git = read_git(tmp_path)
    assert git is not None
    assert git.remote_url == "ext::ssh -i TOKEN host %S repo"
    assert public_remote_url(git.remote_url) is None


def test_a_repository_without_commits_says_so(make_project: MakeProject, run_cli: RunCli) -> None:
    root = make_project()
    plain = run_cli("render", "--out", "out", cwd=root)
    assert plain.exit_code == 2
    assert "not a git checkout" in plain.stderr
    _git(root, "init", "-q")
    fresh = run_cli("render", "--out", "out", cwd=root)
    assert fresh.exit_code == 2
    assert "a git checkout with no commit yet" in fresh.stderr, fresh.stderr
    assert not (root / "out").exists()
