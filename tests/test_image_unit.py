"""Tags, labels, build context and history parsing, without a Docker engine."""

from __future__ import annotations

import base64
import http.server
import io
import json
import subprocess
import tarfile
import threading
from pathlib import Path
from typing import ClassVar

import pytest

from deploy.errors import BudgetExceeded, RegistryError, UsageError
from deploy.gitinfo import GitInfo, public_remote_url, read_git, untracked_files
from deploy.image.context import build_context, ignore_patterns
from deploy.image.labels import created_at, image_labels, source_url
from deploy.image.registry import (
    MAX_RETRY_AFTER_S,
    Credentials,
    Reference,
    RegistryClient,
    Transient,
    is_loopback,
    retry_wait,
)
from deploy.image.size import MB, ImageSize, Layer, check_budget, format_bytes, instruction_of
from deploy.image.tags import compute_tags, sanitize, semver_tags

SHA = "0123456789abcdef0123456789abcdef01234567"
DIGEST = "sha256:" + "ab" * 32


def git(tag: str | None = None, branch: str | None = "main", remote: str | None = None) -> GitInfo:
    return GitInfo(sha=SHA, tag=tag, branch=branch, dirty=False, remote_url=remote)


# ---- tags (docker/metadata-action rules)


def test_clean_branch_build_gets_branch_and_sha() -> None:
    tags = compute_tags(git(branch="feature/Login_v2"), {}, dirty=False, context_digest=DIGEST)
    assert tags.tags == ("feature-Login_v2", "sha-0123456")
    assert tags.immutable == "sha-0123456"
    assert tags.version == "feature-Login_v2"


def test_semver_tag_on_head_gives_version_and_major_minor_first() -> None:
    tags = compute_tags(git(tag="v1.4.2"), {}, dirty=False, context_digest=DIGEST, latest=True)
    assert tags.tags == ("1.4.2", "1.4", "main", "latest", "sha-0123456")
    assert tags.version == "1.4.2"


def test_prerelease_only_extends_full_version() -> None:
    assert semver_tags("v2.0.0-rc.1") == ["2.0.0-rc.1"]
    assert semver_tags("release-7") == []
    assert semver_tags("1.2.3") == ["1.2.3", "1.2"]


@pytest.mark.parametrize("event", ["pull_request", "pull_request_target"])
def test_pull_request_ci_tags_pr_number_not_branch(event: str) -> None:
    environ = {"GITHUB_EVENT_NAME": event, "GITHUB_REF": "refs/pull/42/merge"}
    tags = compute_tags(git(branch="main"), environ, dirty=False, context_digest=DIGEST)
    assert tags.tags == ("pr-42", "sha-0123456")
    # pull_request_target runs on the base branch: GITHUB_REF names it, never a tag for it.
    target = {"GITHUB_EVENT_NAME": event, "GITHUB_REF": "refs/heads/main"}
    assert compute_tags(git(branch="main"), target, dirty=False, context_digest=DIGEST).tags == (
        "sha-0123456",
    )


def test_github_push_uses_the_ref_branch_and_tag_push_semver() -> None:
    pushed = compute_tags(
        git(branch=None), {"GITHUB_REF": "refs/heads/rel/2"}, dirty=False, context_digest=DIGEST
    )
    assert pushed.tags == ("rel-2", "sha-0123456")
    tag_push = compute_tags(
        git(branch=None), {"GITHUB_REF": "refs/tags/v3.1.0"}, dirty=False, context_digest=DIGEST
    )
    assert tag_push.tags == ("3.1.0", "3.1", "sha-0123456")


def test_dirty_tree_gets_only_a_dirty_tag_even_with_semver_and_latest() -> None:
    tags = compute_tags(git(tag="v1.0.0"), {}, dirty=True, context_digest=DIGEST, latest=True)
    assert tags.tags == ("sha-0123456-dirty-abababababab",)
    assert tags.immutable == tags.version == tags.tags[0]
    assert tags.dirty


def test_sanitize_follows_docker_tag_grammar() -> None:
    assert sanitize("feat/é ü//x") == "feat-x"
    assert sanitize("-.hidden") == "hidden"
    assert len(sanitize("a" * 300)) == 128


# ---- labels


def test_created_honours_source_date_epoch_else_the_commit_time_never_the_clock() -> None:
    assert created_at({"SOURCE_DATE_EPOCH": "1700000000"}, 5) == "2023-11-14T22:13:20Z"
    assert created_at({}, 1700000000) == "2023-11-14T22:13:20Z"
    assert created_at({"SOURCE_DATE_EPOCH": " "}, 0) == "1970-01-01T00:00:00Z"
    for bad in ("yesterday", "١٧٠٠", "1" * 40, "-5"):
        with pytest.raises(UsageError, match="SOURCE_DATE_EPOCH"):
            created_at({"SOURCE_DATE_EPOCH": bad}, 0)


@pytest.mark.parametrize(
    ("remote", "public"),
    [
        ("https://ci@corp.example:TOKEN@github.com/org/repo.git", "https://github.com/org/repo"),
        ("https://bot:ghp_secret@github.com/acme/worker.git", "https://github.com/acme/worker"),
        (
            "https://oauth2:glpat-TOKEN@gitlab.com:8443/a/b.git?private_token=TOKEN#x",
            "https://gitlab.com:8443/a/b",
        ),
        ("https://TOKEN@github.com/org/repo", "https://github.com/org/repo"),
        ("git@github.com:org/repo.git", "https://github.com/org/repo"),
        ("user:TOKEN@host.example:org/repo.git", "https://host.example/org/repo"),
        ("ssh://git:TOKEN@github.com:22/org/repo.git", "https://github.com/org/repo"),
        ("git://github.com/org/repo.git", "https://github.com/org/repo"),
        ("http://127.0.0.1:8080/org/repo/", "http://127.0.0.1:8080/org/repo"),
        ("/srv/git/repo.git", None),
        ("file:///srv/git/repo.git", None),
        ("../sibling", None),
        ("", None),
    ],
)
def test_public_remote_url_drops_every_credential(remote: str, public: str | None) -> None:
    assert public_remote_url(remote) == public


def test_source_url_from_github_or_remote_without_credentials() -> None:
    actions = {"GITHUB_SERVER_URL": "https://github.com", "GITHUB_REPOSITORY": "acme/worker"}
    assert source_url(git(), actions) == "https://github.com/acme/worker"
    assert source_url(git(remote="git@github.com:acme/worker.git"), {}) == "https://github.com/acme/worker"
    leaked = source_url(git(remote="https://bot:ghp_secret@github.com/acme/worker.git"), {})
    assert leaked == "https://github.com/acme/worker"
    assert source_url(git(), {}) is None


def test_labels_carry_oci_and_rpdeploy_keys() -> None:
    labels = image_labels(
        title="demo",
        version="1.2.3",
        git=git(remote="https://github.com/acme/worker"),
        dirty=False,
        config_hash="c" * 64,
        lock_hash="l" * 64,
        strategy="slim",
        environ={"SOURCE_DATE_EPOCH": "0"},
    )
    assert labels["org.opencontainers.image.revision"] == SHA
    assert labels["org.opencontainers.image.created"] == "1970-01-01T00:00:00Z"
    assert labels["org.opencontainers.image.source"] == "https://github.com/acme/worker"
    assert labels["dev.rpdeploy.config-hash"] == "c" * 64
    assert labels["dev.rpdeploy.lock-hash"] == "l" * 64
    assert "dev.rpdeploy.dirty" not in labels


# ---- build context


def _names(data: bytes) -> dict[str, tarfile.TarInfo]:
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        return {m.name: m for m in tar.getmembers()}


def test_context_admits_only_what_dockerignore_lets_through(tmp_path: Path) -> None:
    (tmp_path / "worker" / "__pycache__").mkdir(parents=True)
    (tmp_path / "worker" / "handler.py").write_text("x = 1\n")
    (tmp_path / "worker" / ".env").write_text("SECRET=1\n")
    (tmp_path / "worker" / "__pycache__" / "h.pyc").write_bytes(b"\0")
    (tmp_path / ".git").mkdir()
    (tmp_path / ".git" / "config").write_text("[core]\n")
    (tmp_path / "Dockerfile.slim").write_text("FROM stale-on-disk\n")
    ignore = "# comment\n*\n!worker\nworker/**/__pycache__\nworker/**/.env*\n"
    context = build_context(
        tmp_path, dockerfile_name="Dockerfile.slim", dockerfile="FROM rendered\n", dockerignore=ignore
    )
    members = _names(context.read())
    assert set(members) == {"worker", "worker/handler.py", "Dockerfile.slim", ".dockerignore"}
    assert context.files == ("worker/handler.py",)
    # the rendered Dockerfile wins over a stale one on disk
    with tarfile.open(fileobj=io.BytesIO(context.read())) as tar:
        extracted = tar.extractfile("Dockerfile.slim")
        assert extracted is not None
        assert extracted.read() == b"FROM rendered\n"
    assert {m.mtime for m in members.values()} == {0}
    assert context.size == len(context.read())


def test_context_is_deterministic_and_its_digest_tracks_content(tmp_path: Path) -> None:
    (tmp_path / "worker").mkdir()
    handler = tmp_path / "worker" / "handler.py"
    handler.write_text("x = 1\n")
    kwargs = {"dockerfile_name": "Dockerfile.slim", "dockerfile": "FROM x\n", "dockerignore": "*\n!worker\n"}
    first = build_context(tmp_path, **kwargs)
    handler.touch()  # a new mtime alone changes nothing
    assert build_context(tmp_path, **kwargs).digest == first.digest
    handler.write_text("x = 2\n")
    assert build_context(tmp_path, **kwargs).digest != first.digest


def test_ignore_patterns_drop_comments_and_blanks() -> None:
    assert ignore_patterns("# c\n\n*\n  !worker  \n") == ["*", "!worker"]


# ---- git facts used by tags


def test_untracked_file_in_context_is_seen(tmp_path: Path) -> None:
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    (tmp_path / "worker").mkdir()
    (tmp_path / "worker" / "new.py").write_text("")
    assert untracked_files(tmp_path, ["worker/new.py"]) == ["worker/new.py"]
    assert read_git(tmp_path) is None  # no commit yet


# ---- history and budget


def test_instruction_of_history_entries() -> None:
    assert instruction_of({"created_by": '/bin/sh -c #(nop)  CMD ["python3"]'}) == 'CMD ["python3"]'
    assert (
        instruction_of({"created_by": "|1 PIP_INDEX_URL=http://x/ /bin/sh -c pip install a"})
        == "RUN pip install a"
    )
    copy = "/bin/sh -c #(nop) COPY dir:" + "f" * 64 + " in /app/ "
    assert instruction_of({"created_by": copy}) == "COPY dir:ffffffffffff in /app/"
    assert instruction_of({"created_by": "RUN /bin/sh -c true # buildkit"}) == "RUN /bin/sh -c true"
    assert instruction_of({"comment": "Imported from -"}) == "(Imported from -)"


def test_budget_limit_is_inclusive() -> None:
    exact = ImageSize(10 * MB, None, [Layer("sha256:a", 10 * MB, None, "COPY x")])
    check_budget(exact, 10, "img")  # exactly at the limit: within it
    check_budget(exact, 10.0, "img")
    over = ImageSize(10 * MB + 1, None, [Layer("sha256:a", 10 * MB + 1, None, "COPY x")])
    with pytest.raises(BudgetExceeded):
        check_budget(over, 10, "img")
    check_budget(over, None, "img")  # no budget: nothing to exceed


def test_sizes_use_rich_decimal_units() -> None:
    assert format_bytes(37_852_101) == "37.85 MB"
    assert format_bytes(1_100) == "1.10 kB"
    assert format_bytes(None) == "?"


def test_budget_lists_largest_layers() -> None:
    layers = [
        Layer("sha256:a", 40_000_000, 100_000_000, "(Imported from -)"),
        Layer("sha256:b", 2_000, 5_000, "COPY dir:abc in /app/"),
    ]
    size = ImageSize(40_002_000, 100_005_000, layers)
    check_budget(size, 45, "img")  # under: nothing raised
    with pytest.raises(BudgetExceeded) as caught:
        check_budget(size, 10, "img")
    text = str(caught.value)
    assert "40.00 MB compressed, over the image.max_compressed_mb budget of 10 MB" in text
    assert text.index("(Imported from -)") < text.index("COPY dir:abc")


def test_reference_parsing() -> None:
    ref = Reference.parse("127.0.0.1:5000/acme/w:sha-1234567")
    assert (ref.registry, ref.repository, ref.reference) == ("127.0.0.1:5000", "acme/w", "sha-1234567")
    assert Reference.parse("python:3.11-slim").repository == "library/python"
    with pytest.raises(UsageError):
        Reference.parse("Not A Ref")


# ---- registry client: loopback, retries, challenge auth (against a real HTTP server)


@pytest.mark.parametrize(
    ("registry", "loopback"),
    [
        ("127.0.0.1:5000", True),
        ("127.8.9.10", True),
        ("[::1]:5000", True),
        ("localhost:5000", True),
        ("127.example.com:5000", False),
        ("registry-1.docker.io", False),
        ("10.0.0.1:5000", False),
        ("[2001:db8::1]:5000", False),
    ],
)
def test_loopback_is_decided_by_ipaddress(registry: str, loopback: bool) -> None:
    assert is_loopback(registry) is loopback
    client = RegistryClient(registry)
    assert client.base.startswith("http://" if loopback else "https://")


def test_retry_wait_honours_retry_after_else_backs_off() -> None:
    assert retry_wait(Transient("busy", retry_after=7), 1) == 7
    assert retry_wait(Transient("busy", retry_after=10_000), 1) == MAX_RETRY_AFTER_S
    assert [retry_wait(Transient("down"), n) for n in (1, 2, 3)] == [0.25, 0.5, 1.0]


class _TokenRegistry(http.server.BaseHTTPRequestHandler):
    """A registry that demands a bearer token (from its own realm) and first answers 429."""

    requests_seen: ClassVar[list[tuple[str, str | None]]] = []
    busy = 1

    def do_GET(self) -> None:
        type(self).requests_seen.append((self.path, self.headers.get("Authorization")))
        if self.path.startswith("/token"):
            ok = self.headers.get("Authorization") == "Basic " + base64.b64encode(b"u:p").decode()
            self._answer(200 if ok else 401, {"token": "T0K"})
        elif type(self).busy > 0:
            type(self).busy -= 1
            self.send_response(429)
            self.send_header("Retry-After", "0")
            self.end_headers()
        elif self.headers.get("Authorization") != "Bearer T0K":
            realm = f"http://127.0.0.1:{self.server.server_address[1]}/token"
            self.send_response(401)
            self.send_header(
                "WWW-Authenticate", f'Bearer realm="{realm}",service="r",scope="repository:a:pull"'
            )
            self.end_headers()
        else:
            self._answer(200, {"ok": True})

    def _answer(self, status: int, body: dict[str, object]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: object) -> None:
        pass


def test_bearer_challenge_is_one_auth_step_and_429_is_retried() -> None:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _TokenRegistry)
    # A short poll: shutdown() waits for the loop's next poll (0.5 s by default), which
    # mutation runs paid again for every mutant these tests cover.
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    try:
        # Class state is reset here, not at import: a second run in one process (mutmut's
        # stats and clean runs) must start from the same 429-first registry.
        _TokenRegistry.requests_seen.clear()
        _TokenRegistry.busy = 1
        registry = f"127.0.0.1:{server.server_address[1]}"
        client = RegistryClient(registry, Credentials("u", "p"))
        assert client.get("a/manifests/x").json() == {"ok": True}
        paths = [path for path, _ in _TokenRegistry.requests_seen]
        assert paths[0] == "/v2/a/manifests/x"  # 429, retried
        assert paths[1] == "/v2/a/manifests/x"  # 401 with the challenge
        assert paths[2].startswith("/token?")
        assert "scope=repository%3Aa%3Apull" in paths[2]
        assert _TokenRegistry.requests_seen[3] == ("/v2/a/manifests/x", "Bearer T0K")
        client.get("a/manifests/y")  # the token is reused: no second token request
        assert sum(1 for path, _ in _TokenRegistry.requests_seen if path.startswith("/token")) == 1
        with pytest.raises(RegistryError, match="refused the credentials"):
            RegistryClient(registry, Credentials("u", "wrong")).get("a/manifests/x")
    finally:
        server.shutdown()
