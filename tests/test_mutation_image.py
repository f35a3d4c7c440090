"""Image behaviour (the parts without Docker) that mutation testing (`make mutation`,
docs/quality.md) showed no test pinned."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import http.server
import io
import json
import os
import resource
import signal
import socket
import subprocess
import tarfile
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import ClassVar
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from deploy.config import load_config
from deploy.errors import BudgetExceeded, FileWriteError, OutsideProject, RegistryError, UsageError
from deploy.gitinfo import GitInfo
from deploy.image.build import plan_build
from deploy.image.context import BuildContext, build_context
from deploy.image.labels import created_at, image_labels, source_url
from deploy.image.plan import _buildargs
from deploy.image.record import BuildRecord, BuildStep, read_record, record_path, write_record
from deploy.image.registry import (
    ACCEPT,
    MANIFEST_LIST,
    MANIFEST_V2,
    OCI_INDEX,
    Credentials,
    Reference,
    RegistryClient,
    Transient,
    credentials_for,
    is_loopback,
    raise_if_transient,
    reason,
    retry_after,
    retry_wait,
    retrying,
)
from deploy.image.size import (
    MB,
    ImageSize,
    Layer,
    check_budget,
    image_size,
    instruction_of,
    layer_table,
    within_budget,
)
from deploy.image.tags import compute_tags, default_image, ref_tag, sanitize, semver_tags
from deploy.render.project import bootstrap_files
from tests.conftest import BASE_CONFIG, MakeProject

SHA = "0123456789abcdef0123456789abcdef01234567"


def git(tag: str | None = None, branch: str | None = "main") -> GitInfo:
    return GitInfo(sha=SHA, tag=tag, branch=branch, dirty=False, remote_url=None)


@pytest.mark.parametrize("event", ["pull_request", "pull_request_target"])
def test_both_pull_request_events_tag_the_pr_number(event: str) -> None:
    environ = {"GITHUB_EVENT_NAME": event, "GITHUB_REF": "refs/pull/42/merge"}
    assert ref_tag(git(), environ) == "pr-42"
    assert compute_tags(git(), environ, dirty=False, context_digest="sha256:0").tags == (
        "pr-42",
        "sha-0123456",
    )


def test_a_pull_request_without_a_pr_ref_has_no_ref_tag() -> None:
    assert ref_tag(git(), {"GITHUB_EVENT_NAME": "pull_request", "GITHUB_REF": "refs/heads/x"}) is None


def test_refs_choose_branch_tag_or_nothing() -> None:
    assert ref_tag(git(branch="local"), {"GITHUB_REF": "refs/heads/feature/a b"}) == "feature-a-b"
    assert ref_tag(git(branch="local"), {"GITHUB_REF": "refs/tags/v1.0.0"}) is None
    assert ref_tag(git(branch="local/x"), {}) == "local-x"
    assert ref_tag(git(branch=None), {}) is None
    assert ref_tag(git(branch="local"), {"GITHUB_EVENT_NAME": "push"}) == "local"


def test_sanitize_follows_docker_tag_grammar() -> None:
    assert sanitize("..-feature/x") == "feature-x"
    assert sanitize("a" * 200) == "a" * 128
    assert sanitize("a@@b") == "a-b"


def test_semver_tags() -> None:
    assert semver_tags("v1.2.3") == ["1.2.3", "1.2"]
    assert semver_tags("1.2.3+build.5") == ["1.2.3", "1.2"]
    assert semver_tags("v1.2.0-rc.1") == ["1.2.0-rc.1"]
    assert semver_tags("v01.2.3") == []
    assert semver_tags(None) == []


def test_tag_order_latest_and_version() -> None:
    tags = compute_tags(git(tag="v1.2.3"), {}, dirty=False, context_digest="sha256:0", latest=True)
    assert tags.tags == ("1.2.3", "1.2", "main", "latest", "sha-0123456")
    assert tags.version == "1.2.3"
    assert tags.immutable == "sha-0123456"
    assert tags.dirty is False
    on_latest = compute_tags(git(branch="latest"), {}, dirty=False, context_digest="sha256:0", latest=True)
    assert on_latest.tags == ("latest", "sha-0123456")
    assert on_latest.version == "sha-0123456"


def test_a_dirty_tree_gets_one_content_tag() -> None:
    tags = compute_tags(git(tag="v1.2.3"), {}, dirty=True, context_digest="sha256:" + "ab" * 32, latest=True)
    assert tags.tags == ("sha-0123456-dirty-abababababab",)
    assert tags.immutable == tags.version == "sha-0123456-dirty-abababababab"
    assert tags.dirty is True


def test_a_tag_push_on_github_gives_semver_tags() -> None:
    tags = compute_tags(git(branch=None), {"GITHUB_REF": "refs/tags/v2.0.1"}, dirty=False, context_digest="x")
    assert tags.tags == ("2.0.1", "2.0", "sha-0123456")


def test_the_size_budget_is_inclusive() -> None:
    assert within_budget(10 * MB, 10)
    assert not within_budget(10 * MB + 1, 10)
    assert within_budget(10**12, None)


# ---- sizes, layers and the registry client over HTTP (a local stand-in registry)


class _Registry(http.server.BaseHTTPRequestHandler):
    """Answers from `routes` (path -> status, headers, JSON body); records what it was asked."""

    routes: ClassVar[dict[str, tuple[int, dict[str, str], object]]] = {}
    seen: ClassVar[list[tuple[str, str | None]]] = []

    def do_GET(self) -> None:
        type(self).seen.append((self.path, self.headers.get("Accept")))
        status, headers, body = type(self).routes.get(self.path, (404, {}, {"errors": []}))
        send_answer(self, status, headers, body)

    def log_message(self, format: str, *args: object) -> None:
        pass


def send_answer(
    handler: http.server.BaseHTTPRequestHandler, status: int, headers: dict[str, str], body: object
) -> None:
    """Send ``body`` (`bytes` as they are, anything else as JSON) with ``status`` and ``headers``."""
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    handler.send_response(status)
    for name, value in {"Content-Type": "application/json", **headers}.items():
        handler.send_header(name, value)
    handler.send_header("Content-Length", str(len(data)))
    handler.end_headers()
    handler.wfile.write(data)


@contextlib.contextmanager
def serving(handler: type[http.server.BaseHTTPRequestHandler]) -> Iterator[str]:
    """``handler`` on a free loopback port (``127.0.0.1:<port>``), shut down after."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    # A short poll: shutdown() waits for the loop's next poll (0.5 s by default), which
    # mutation runs paid again for every mutant these tests cover.
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def registry() -> Iterator[str]:
    _Registry.routes = {}
    _Registry.seen = []
    with serving(_Registry) as address:
        yield address


CONFIG_DIGEST = "sha256:" + "c" * 64
HISTORY = [
    {"created_by": "/bin/sh -c #(nop) ADD file:" + "a" * 64 + " in / "},
    {"created_by": "/bin/sh -c #(nop)  ENV A=1", "empty_layer": True},
    {"created_by": "RUN /bin/sh -c pip install x # buildkit"},
]
MANIFEST = {
    "mediaType": MANIFEST_V2,
    "config": {"digest": CONFIG_DIGEST},
    "layers": [{"digest": "sha256:l1", "size": 3_000_000}, {"digest": "sha256:l2", "size": 500}],
}


def serve_image(repository: str = "acme/w", reference: str = "t") -> None:
    _Registry.routes[f"/v2/{repository}/manifests/{reference}"] = (
        200,
        {"Docker-Content-Digest": "sha256:m"},
        MANIFEST,
    )
    _Registry.routes[f"/v2/{repository}/blobs/{CONFIG_DIGEST}"] = (200, {}, {"history": HISTORY})


def test_image_size_pairs_layers_with_history_and_engine_sizes(registry: str) -> None:
    serve_image()
    client = RegistryClient(registry)
    engine = [{"Size": 7}, {"Size": 0}, {"Size": 9_000_000}]  # newest first, as the engine lists it
    digest, size = image_size(client, "acme/w", "t", engine, uncompressed_total=9_000_007)
    assert digest == "sha256:m"
    assert size == ImageSize(
        3_000_500,
        9_000_007,
        [
            Layer("sha256:l1", 3_000_000, 9_000_000, "ADD file:aaaaaaaaaaaa in /"),
            Layer("sha256:l2", 500, 7, "RUN /bin/sh -c pip install x"),  # BuildKit's spelling, kept
        ],
    )
    assert _Registry.seen[0] == ("/v2/acme/w/manifests/t", ACCEPT)
    # Without engine figures, or with a history that does not line up, sizes stay unknown.
    _, bare = image_size(client, "acme/w", "t")
    assert [layer.uncompressed_bytes for layer in bare.layers] == [None, None]
    assert bare.uncompressed_bytes is None
    _, short = image_size(client, "acme/w", "t", [{"Size": 1}])
    assert [layer.uncompressed_bytes for layer in short.layers] == [None, None]
    _Registry.routes[f"/v2/acme/w/blobs/{CONFIG_DIGEST}"] = (200, {}, {"history": HISTORY[:1]})
    _, unaligned = image_size(client, "acme/w", "t")
    assert [layer.instruction for layer in unaligned.layers] == ["(no history)", "(no history)"]
    _Registry.routes[f"/v2/acme/w/blobs/{CONFIG_DIGEST}"] = (200, {}, {})
    _, none = image_size(client, "acme/w", "t")
    assert none.compressed_bytes == 3_000_500


def test_an_index_resolves_to_linux_amd64(registry: str) -> None:
    serve_image(reference="sha256:amd")
    _Registry.routes["/v2/acme/w/manifests/multi"] = (
        200,
        {},
        {
            "mediaType": OCI_INDEX,
            "manifests": [
                {"digest": "sha256:arm", "platform": {"os": "linux", "architecture": "arm64"}},
                {"digest": "sha256:win", "platform": {"os": "windows", "architecture": "amd64"}},
                {"digest": "sha256:nop"},
                {"digest": "sha256:amd", "platform": {"os": "linux", "architecture": "amd64"}},
            ],
        },
    )
    assert RegistryClient(registry).manifest("acme/w", "multi") == ("sha256:m", MANIFEST)
    _Registry.routes["/v2/acme/w/manifests/arm"] = (
        200,
        {},
        {"manifests": [{"digest": "sha256:arm", "platform": {"os": "linux", "architecture": "arm64"}}]},
    )
    with pytest.raises(RegistryError, match=r"^acme/w:arm: the index has no linux/amd64 image$"):
        RegistryClient(registry).manifest("acme/w", "arm")


def test_registry_errors_name_the_image_and_status(registry: str) -> None:
    client = RegistryClient(registry)
    with pytest.raises(RegistryError, match=rf"^{registry}/acme/w:gone is not in the registry$"):
        client.manifest("acme/w", "gone")
    _Registry.routes["/v2/acme/w/manifests/locked"] = (403, {}, {})
    with pytest.raises(RegistryError, match=rf"^{registry}/acme/w:locked: manifest answered HTTP 403$"):
        client.manifest("acme/w", "locked")
    with pytest.raises(RegistryError, match=rf"^{registry}/acme/w: blob sha256:x answered HTTP 404$"):
        client.blob_json("acme/w", "sha256:x")
    with pytest.raises(RegistryError, match=rf"^registry {registry}: /v2/ answered HTTP 404$"):
        client.ping()
    # Still 401 after answering the challenge (wrong login): the registry is up, so ping passes.
    _Registry.routes["/v2/"] = (401, {"WWW-Authenticate": 'Basic realm="r"'}, {})
    RegistryClient(registry, Credentials("u", "p")).ping()
    _Registry.routes["/v2/"] = (200, {}, {})
    client.ping()
    assert client.base == f"http://{registry}"
    assert RegistryClient("ghcr.io").base == "https://ghcr.io"


def test_a_registry_that_stays_down_is_one_registry_error(registry: str) -> None:
    _Registry.routes["/v2/"] = (503, {"Retry-After": "0"}, {})
    with pytest.raises(
        RegistryError, match=rf"^registry {registry}: HTTP 503 for /v2/ \(after 4 attempts\)$"
    ):
        RegistryClient(registry).ping()
    assert len(_Registry.seen) == 4


def test_basic_and_unsupported_challenges(registry: str) -> None:
    _Registry.routes["/v2/"] = (401, {"WWW-Authenticate": 'Basic realm="r"'}, {})
    with pytest.raises(RegistryError, match=rf"^registry {registry} requires credentials$"):
        RegistryClient(registry, None).get("")
    _Registry.routes["/v2/"] = (401, {"WWW-Authenticate": 'Digest realm="r"'}, {})
    with pytest.raises(
        RegistryError, match=rf"^registry {registry} sent an unsupported auth challenge: Digest$"
    ):
        RegistryClient(registry, Credentials("u", "p")).get("")
    _Registry.routes["/v2/"] = (401, {"WWW-Authenticate": 'Bearer service="s"'}, {})
    with pytest.raises(RegistryError, match="unsupported auth challenge: Bearer"):
        RegistryClient(registry, Credentials("u", "p")).get("")


def test_credentials_come_from_the_environment_else_the_docker_config(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path))
    assert credentials_for("r.example", {"REGISTRY_USERNAME": "u", "REGISTRY_PASSWORD": "p"}) == Credentials(
        "u", "p"
    )
    assert credentials_for("r.example", {"REGISTRY_USERNAME": "u"}) is None
    auth = base64.b64encode(b"du:dp").decode()
    (tmp_path / "config.json").write_text(json.dumps({"auths": {"r.example": {"auth": auth}}}))
    assert credentials_for("r.example", {"REGISTRY_PASSWORD": "p"}) == Credentials("du", "dp")
    assert credentials_for("other.example", {}) is None
    user_only = base64.b64encode(b"du:").decode()
    (tmp_path / "config.json").write_text(json.dumps({"auths": {"r.example": {"auth": user_only}}}))
    assert credentials_for("r.example", {}) is None


def test_reasons_are_short() -> None:
    refused = requests.ConnectionError(
        "HTTPConnectionPool(...): Max retries ([Errno 111] Connection refused)"
    )
    assert reason(refused) == "[Errno 111] Connection refused"
    assert reason(requests.ConnectionError("[Errno -2] Name or service not known'")) == (
        "[Errno -2] Name or service not known"
    )
    assert reason(requests.Timeout("read timed out somewhere")) == "timed out"
    assert reason(requests.RequestException("first\nsecond")) == "first"


def test_reference_parse_fills_docker_hub_and_latest() -> None:
    assert Reference.parse("python") == Reference("registry-1.docker.io", "library/python", "latest")
    assert Reference.parse("acme/w:1") == Reference("registry-1.docker.io", "acme/w", "1")
    assert Reference.parse("127.0.0.1:5000/acme/w:t").name == "127.0.0.1:5000/acme/w"
    digest = "sha256:" + "a" * 64
    assert Reference.parse(f"ghcr.io/a/b@{digest}") == Reference("ghcr.io", "a/b", digest)
    assert str(Reference.parse(f"ghcr.io/a/b@{digest}")) == f"ghcr.io/a/b@{digest}"
    assert str(Reference.parse("127.0.0.1:5000/acme/w:t")) == "127.0.0.1:5000/acme/w:t"
    with pytest.raises(UsageError, match="is not an image reference"):
        Reference.parse("not a ref")


def test_layer_table_aligns_and_cuts() -> None:
    layers = [Layer("d1", 1_500_000, None, "RUN " + "x" * 80), Layer("d2", 98, 2_000, "COPY a b")]
    assert layer_table(layers, width=10) == [
        " compressed  uncompressed  instruction",
        "    1.50 MB             ?  RUN xxxxx…",
        "   98 bytes       2.00 kB  COPY a b",
    ]
    assert layer_table(layers[1:], width=8)[1].endswith("  COPY a b")
    assert layer_table([])[0] == " compressed  uncompressed  instruction"


def test_instruction_of_each_history_spelling() -> None:
    assert instruction_of({"CreatedBy": "/bin/sh -c apt-get update"}) == "RUN apt-get update"
    assert instruction_of({"created_by": "|2 A=1 B= /bin/sh -c make"}) == "RUN make"
    assert instruction_of({"created_by": "  ", "comment": " buildkit.dockerfile.v0 "}) == (
        "(buildkit.dockerfile.v0)"
    )
    assert instruction_of({"Comment": "imported"}) == "(imported)"
    assert instruction_of({}) == "(no history)"
    assert (
        instruction_of({"created_by": "COPY multi:" + "f" * 64 + " /app"}) == "COPY multi:ffffffffffff /app"
    )
    assert (
        instruction_of({"created_by": "COPY dir:" + "0" * 63 + " /app"}) == "COPY dir:" + "0" * 63 + " /app"
    )
    assert instruction_of({"created_by": 'CMD ["x"]'}) == 'CMD ["x"]'


def test_budget_message_names_image_size_and_budget() -> None:
    size = ImageSize(12 * MB, None, [Layer("d", 12 * MB, None, "RUN big")])
    with pytest.raises(BudgetExceeded) as caught:
        check_budget(size, 10.5, "r/w:t")
    lines = str(caught.value).splitlines()
    assert (
        lines[0]
        == "r/w:t is 12.00 MB compressed, over the image.max_compressed_mb budget of 10.5 MB; largest layers:"
    )
    assert lines[2] == "     12.00 MB             ?  RUN big"
    check_budget(size, 12, "r/w:t")
    check_budget(size, None, "r/w:t")
    assert size.to_json()["layers"] == [
        {"digest": "d", "compressed_bytes": 12 * MB, "uncompressed_bytes": None, "instruction": "RUN big"}
    ]
    many = ImageSize(0, None, [Layer(str(n), n, None, "") for n in range(7)])
    assert [layer.digest for layer in many.largest()] == ["6", "5", "4", "3", "2"]
    assert [layer.digest for layer in many.largest(2)] == ["6", "5"]


def test_the_budget_message_lists_the_five_largest_layers_largest_first() -> None:
    # Recorded smallest first (as a base image's history often is): the message must sort them,
    # not keep the recorded order, and stop at five (issue 11: the order was never checked).
    layers = [Layer(str(n), n * MB, None, f"RUN step{n}") for n in range(1, 8)]
    with pytest.raises(BudgetExceeded) as caught:
        check_budget(ImageSize(28 * MB, None, layers), 1, "r/w:t")
    rows = str(caught.value).splitlines()[2:]
    assert [row.split()[-1] for row in rows] == ["step7", "step6", "step5", "step4", "step3"]


# ---- labels and the build record


def test_created_at_refuses_what_is_not_an_epoch() -> None:
    assert created_at({"SOURCE_DATE_EPOCH": " 86400 "}, 5) == "1970-01-02T00:00:00Z"
    assert created_at({"SOURCE_DATE_EPOCH": ""}, 0) == "1970-01-01T00:00:00Z"
    assert created_at({"SOURCE_DATE_EPOCH": "253402300799"}, 0) == "9999-12-31T23:59:59Z"
    with pytest.raises(UsageError, match=r"^SOURCE_DATE_EPOCH='999999999999' is past the year 9999$"):
        created_at({"SOURCE_DATE_EPOCH": "9" * 12}, 0)
    for bad in ("-1", "1.5", "²", "9" * 13):
        with pytest.raises(UsageError, match=r"^SOURCE_DATE_EPOCH=.* is not a number of seconds since 1970$"):
            created_at({"SOURCE_DATE_EPOCH": bad}, 0)


def test_labels_mark_dirty_lock_and_source_only_when_known() -> None:
    labels = image_labels(
        title="t", version="v", git=git(), dirty=False, config_hash="c", lock_hash=None,
        strategy="slim", environ={},
    )  # fmt: skip
    assert labels == {
        "dev.rpdeploy.config-hash": "c",
        "dev.rpdeploy.strategy": "slim",
        "org.opencontainers.image.created": "1970-01-01T00:00:00Z",
        "org.opencontainers.image.revision": SHA,
        "org.opencontainers.image.title": "t",
        "org.opencontainers.image.version": "v",
    }
    assert list(labels) == sorted(labels)
    more = image_labels(
        title="t", version="v", git=git(), dirty=True, config_hash="c", lock_hash="l", strategy="baked",
        environ={"GITHUB_SERVER_URL": "https://github.com/", "GITHUB_REPOSITORY": "a/b"},
    )  # fmt: skip
    assert more["dev.rpdeploy.dirty"] == "true"
    assert more["dev.rpdeploy.lock-hash"] == "l"
    assert more["org.opencontainers.image.source"] == "https://github.com/a/b"


def test_the_build_record_is_written_and_read_back(make_project: MakeProject) -> None:
    root = make_project(BASE_CONFIG)
    loaded = load_config(root / "rpdeploy.yaml", "staging")
    assert record_path(loaded) == root / "build" / "rpdeploy" / "staging" / "build.json"
    with pytest.raises(UsageError, match="no build recorded for this project/environment"):
        read_record(loaded)
    built = BuildRecord(
        repository="r/w", id="sha256:i", tags=["main", "sha-1"], immutable="sha-1", oci_version="main",
        dirty=False, labels={}, builder="docker", dockerfile="Dockerfile.slim", context_bytes=1,
        context_files=1, context_digest="sha256:d", steps=[BuildStep(1, "FROM x", True)], seconds=1.0,
        environment="staging", max_compressed_mb=None,
    )  # fmt: skip
    path = write_record(loaded, built)
    assert path == record_path(loaded)
    assert path.read_text().endswith("}\n")
    assert json.loads(path.read_text())["image"] == "r/w:sha-1"
    assert read_record(loaded) == built
    assert built.refs == ["r/w:main", "r/w:sha-1"]
    assert built.created is None
    path.write_text("{not json")
    with pytest.raises(UsageError, match=r"unreadable build record .*; run `rpdeploy build` again$"):
        read_record(loaded)
    path.write_text('{"repository": "r"}')
    with pytest.raises(UsageError, match="unreadable build record"):
        read_record(loaded)


def test_plan_adds_extra_tags_once_and_refuses_index_credentials(make_project: MakeProject) -> None:
    root = make_project(BASE_CONFIG)
    (root / ".gitignore").write_text("build/\n")
    for args in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-q", "-m", "init"]):
        subprocess.run(["git", "-C", str(root), *args], check=True, capture_output=True)
    loaded = load_config(root / "rpdeploy.yaml", None)
    plan = plan_build(loaded, {}, extra_tags=["extra", "main"])
    assert plan.tags.tags == ("main", plan.tags.immutable, "extra")
    assert plan.repository == "127.0.0.1:5000/acme/demo-worker"
    assert plan.buildargs == {}
    assert plan.labels["org.opencontainers.image.title"] == "demo"
    baked = BASE_CONFIG.replace("strategy: slim", "strategy: baked").replace(
        "runtime:\n", "runtime:\n  index_url: http://127.0.0.1:8099/simple\n"
    )
    (root / "rpdeploy.yaml").write_text(baked)
    loaded = load_config(root / "rpdeploy.yaml", None)
    assert _buildargs(loaded) == {"PIP_INDEX_URL": "http://127.0.0.1:8099/simple"}
    for secret in ("http://u:p@127.0.0.1:8099/simple", "http://u@127.0.0.1:8099/simple"):
        (root / "rpdeploy.yaml").write_text(baked.replace("http://127.0.0.1:8099/simple", secret))
        with pytest.raises(UsageError, match=r"runtime\.index_url carries credentials"):
            _buildargs(load_config(root / "rpdeploy.yaml", None))


# --- the build context: links, sockets, modes, extra files, a missing folder ---------------


def _context(root: Path, **extra: bytes) -> tuple[BuildContext, dict[str, tarfile.TarInfo], dict[str, bytes]]:
    context = build_context(
        root,
        dockerfile_name="Dockerfile.slim",
        dockerfile="FROM x\n",
        dockerignore="*\n!worker\n",
        mtime=7,
        extra=extra or None,
    )
    with tarfile.open(fileobj=io.BytesIO(context.read())) as tar:
        members = {m.name: m for m in tar.getmembers()}
        contents = {
            m.name: handle.read() for m in members.values() if (handle := tar.extractfile(m)) is not None
        }
    return context, members, contents


def test_context_keeps_links_modes_and_extra_files_and_skips_sockets(tmp_path: Path) -> None:
    worker = tmp_path / "worker"
    worker.mkdir()
    (worker / "run.sh").write_text("#!/bin/sh\n")
    (worker / "run.sh").chmod(0o750)
    (worker / "handler.py").write_text("x = 1\n")
    (worker / "link.py").symlink_to("handler.py")
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(worker / "sock"))
        context, members, contents = _context(
            tmp_path, **{"worker/handler.py": b"supplied\n", "boot.py": b"b\n"}
        )
    assert context.files == ("worker/link.py", "worker/run.sh")  # files and links, not folders
    assert sorted(members) == [
        ".dockerignore",
        "Dockerfile.slim",
        "boot.py",
        "worker",
        "worker/handler.py",
        "worker/link.py",
        "worker/run.sh",
    ]
    assert members["worker"].isdir()
    assert (members["worker/link.py"].issym(), members["worker/link.py"].linkname) == (True, "handler.py")
    assert members["worker/run.sh"].mode == 0o750
    assert (members["boot.py"].mode, members["boot.py"].uid, members["boot.py"].uname) == (0o644, 0, "")
    assert {m.mtime for m in members.values()} == {7}
    assert contents["worker/handler.py"] == b"supplied\n"  # what rpdeploy supplies wins
    assert contents["worker/run.sh"] == b"#!/bin/sh\n"
    assert contents["Dockerfile.slim"] == b"FROM x\n"
    assert contents[".dockerignore"] == b"*\n!worker\n"
    data = context.read()
    assert (context.size, context.digest) == (len(data), "sha256:" + hashlib.sha256(data).hexdigest())


def test_a_context_folder_that_does_not_exist_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match=r"/missing: build context directory does not exist$"):
        _context(tmp_path / "missing")


def test_a_link_leading_out_of_the_context_is_refused(tmp_path: Path) -> None:
    (tmp_path / "worker").mkdir()
    (tmp_path / "worker" / "out").symlink_to("/etc/hostname")
    with pytest.raises(OutsideProject, match=r"/worker/out: a link leading outside the project"):
        _context(tmp_path)


# --- the image `rpdeploy render` names by default: this commit's immutable tag -------------


def test_the_default_image_is_this_commits_immutable_tag(make_project: MakeProject) -> None:
    root = make_project(BASE_CONFIG)
    loaded = load_config(root / "rpdeploy.yaml", None)
    with pytest.raises(
        UsageError, match=r": not a git checkout, so there is no commit to tag the image with$"
    ):
        default_image(loaded)
    subprocess.run(["git", "-C", str(root), "init", "-q", "-b", "main"], check=True, capture_output=True)
    with pytest.raises(UsageError, match=r": a git checkout with no commit yet, so there") as caught:
        default_image(loaded)
    assert caught.value.hint == "pass --image REF (an immutable tag or digest)"
    for args in (["add", "-A"], ["commit", "-q", "-m", "init"]):
        subprocess.run(["git", "-C", str(root), *args], check=True, capture_output=True)
    sha = subprocess.run(
        ["git", "-C", str(root), "rev-parse", "HEAD"], check=True, capture_output=True, text=True
    ).stdout.strip()
    assert default_image(loaded) == f"127.0.0.1:5000/acme/demo-worker:sha-{sha[:7]}"


# --- the registry client's HTTP, auth and retries, against a scripted stand-in registry --------
# (http.server in this process: the real registry runs in Docker, which these fast tests avoid)

Answer = tuple[int, dict[str, str], object]


class _Scripted(http.server.BaseHTTPRequestHandler):
    """Answers every GET with `script(path, headers)`; records each request's path and headers.

    A `bytes` body is sent as it is, anything else as JSON. `stall` names requests (by
    `stall_key(path, headers)`) whose first occurrence is held until the test ends (10 s at
    most), then answered 418: how a client's read timeout is seen without a clock.
    """

    script: ClassVar[Callable[[str, dict[str, str]], Answer]]
    seen: ClassVar[list[tuple[str, dict[str, str]]]] = []
    stall: ClassVar[set[str]] = set()
    release: ClassVar[threading.Event] = threading.Event()

    def do_GET(self) -> None:
        headers = dict(self.headers.items())
        type(self).seen.append((self.path, headers))
        key = stall_key(self.path, headers)
        if key in type(self).stall:
            type(self).stall.discard(key)
            type(self).release.wait(10)
            # Only a client without a read timeout is still here to see this answer.
            answer: Answer = (418, {}, {"stalled": key})
        else:
            answer = type(self).script(self.path, headers)
        send_answer(self, *answer)

    def log_message(self, format: str, *args: object) -> None:
        pass


def stall_key(path: str, headers: dict[str, str]) -> str:
    """``token``, ``authorized`` (a registry request with a login) or ``plain``."""
    if path.startswith("/token"):
        return "token"
    return "authorized" if "Authorization" in headers else "plain"


@pytest.fixture
def scripted() -> Iterator[str]:
    """A scripted registry on a free loopback port (``127.0.0.1:<port>``), torn down after."""
    _Scripted.seen = []
    _Scripted.stall = set()
    _Scripted.release = threading.Event()
    with serving(_Scripted) as address:
        try:
            yield address
        finally:
            _Scripted.release.set()  # before the shut-down, which waits for held requests


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def bearer_registry(
    registry: str,
    *,
    challenge: str = 'Bearer realm="{realm}",service="reg",scope="repository:a:pull"',
    token_answer: Answer = (200, {}, {"token": "T0K"}),
    login: str | None = None,
) -> None:
    """A registry that wants ``Bearer T0K`` and sends ``challenge`` (``{realm}`` is its own
    /token); its token service answers ``token_answer`` to ``login`` (any caller when None)."""
    realm = f"http://{registry}/token"

    def script(path: str, headers: dict[str, str]) -> Answer:
        if path.startswith("/token"):
            if login is not None and headers.get("Authorization") != login:
                return 401, {}, {}
            return token_answer
        if headers.get("Authorization") != "Bearer T0K":
            return 401, {"WWW-Authenticate": challenge.format(realm=realm)}, {}
        return 200, {}, {"ok": path}

    _Scripted.script = script


def token_queries() -> list[dict[str, list[str]]]:
    return [
        parse_qs(urlsplit(path).query, keep_blank_values=True)
        for path, _ in _Scripted.seen
        if path.startswith("/token")
    ]


def test_a_bearer_token_is_fetched_with_the_login_and_the_challenges_scope(scripted: str) -> None:
    bearer_registry(scripted, login=basic("u", "p"))
    client = RegistryClient(scripted, Credentials("u", "p"))
    answered = client.get("a/manifests/x")
    assert answered.json() == {"ok": "/v2/a/manifests/x"}
    # The caller sees the replay's answer, its request, and the 401 before it in the history.
    assert answered.request.headers["Authorization"] == "Bearer T0K"
    assert [earlier.status_code for earlier in answered.history] == [401]
    assert token_queries() == [{"service": ["reg"], "scope": ["repository:a:pull"]}]
    first, token, replay = (headers for _, headers in _Scripted.seen)
    assert "Authorization" not in first  # nothing to offer before the challenge
    assert token["Authorization"] == basic("u", "p")
    assert replay["Authorization"] == "Bearer T0K"
    assert replay["Accept"] == "*/*"  # no media type asked: requests' default


def test_an_anonymous_token_is_fetched_without_a_login_and_without_an_absent_scope(scripted: str) -> None:
    # Docker Hub's public pulls: no credentials, a token all the same.
    bearer_registry(
        scripted, challenge='Bearer realm="{realm}"', token_answer=(200, {}, {"access_token": "T0K"})
    )
    assert RegistryClient(scripted).get("a/manifests/x").status_code == 200
    assert token_queries() == [{"service": [""]}]
    assert "Authorization" not in _Scripted.seen[1][1]


def test_challenge_parameters_may_be_separated_by_spaces(scripted: str) -> None:
    bearer_registry(scripted, challenge='Bearer realm="{realm}", service="reg", scope="repository:a:pull"')
    assert RegistryClient(scripted, Credentials("u", "p")).get("a/manifests/x").status_code == 200
    assert token_queries() == [{"service": ["reg"], "scope": ["repository:a:pull"]}]


@pytest.mark.parametrize(
    ("answer", "problem"),
    [
        ((200, {}, {}), " answered no token"),
        ((200, {}, {"token": ""}), " answered no token"),
        ((200, {}, {"token": 7}), " answered no token"),
        ((200, {}, b"<html>proxy</html>"), ": the answer is not a JSON object"),
        ((200, {}, ["T0K"]), ": the answer is not a JSON object"),
    ],
)
def test_a_token_service_without_a_token_is_one_registry_error(
    scripted: str, answer: Answer, problem: str
) -> None:
    bearer_registry(scripted, token_answer=answer)
    with pytest.raises(RegistryError, match=rf"^the token service of {scripted}{problem}$"):
        RegistryClient(scripted).get("a/manifests/x")


def test_refused_credentials_name_the_registry_and_what_to_check(scripted: str) -> None:
    bearer_registry(scripted, login=basic("u", "p"))
    with pytest.raises(
        RegistryError, match=rf"^registry {scripted} refused the credentials \(HTTP 401\)$"
    ) as caught:
        RegistryClient(scripted, Credentials("u", "wrong")).get("a/manifests/x")
    assert caught.value.hint == "check REGISTRY_USERNAME/REGISTRY_PASSWORD or `docker login`"


def test_a_token_service_that_stays_down_is_retried_then_one_error(scripted: str) -> None:
    bearer_registry(scripted, token_answer=(503, {"Retry-After": "0"}, {}))
    with pytest.raises(
        RegistryError,
        match=rf"^token service of {scripted}: HTTP 503 for the token service \(after 4 attempts\)$",
    ):
        RegistryClient(scripted).get("a/manifests/x")
    assert len(token_queries()) == 4


def test_unreachable_registries_and_token_services_give_the_short_reason(scripted: str) -> None:
    # A loopback port nothing listens on: refused at once, retried with the default back-off.
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()
    with pytest.raises(
        RegistryError,
        match=rf"^registry 127\.0\.0\.1:{port}: \[Errno 111\] Connection refused \(after 4 attempts\)$",
    ):
        RegistryClient(f"127.0.0.1:{port}").get("")
    _Scripted.script = lambda path, headers: (
        401, {"WWW-Authenticate": f'Bearer realm="http://127.0.0.1:{port}/token"'}, {}
    )  # fmt: skip
    with pytest.raises(
        RegistryError,
        match=rf"^token service of {scripted}: \[Errno 111\] Connection refused \(after 4 attempts\)$",
    ):
        RegistryClient(scripted).get("")


def test_every_request_honours_the_clients_timeout(scripted: str) -> None:
    # The first plain request, token request and authorized request are each held unanswered:
    # each times out (a Transient), is retried, and the request still succeeds.
    bearer_registry(scripted)
    _Scripted.stall = {"plain", "token", "authorized"}
    client = RegistryClient(scripted, timeout=1.5)
    assert client.get("a/manifests/x").json() == {"ok": "/v2/a/manifests/x"}
    assert [stall_key(path, headers) for path, headers in _Scripted.seen] == [
        "plain",  # held: timed out
        "plain",  # 401 with the challenge
        "token",  # held: timed out, the token fetch retried
        "token",
        "authorized",  # the replay, held: timed out, the whole request retried
        "authorized",
    ]
    assert _Scripted.stall == set()


def test_a_basic_challenge_is_answered_with_the_login(scripted: str) -> None:
    def script(path: str, headers: dict[str, str]) -> Answer:
        if headers.get("Authorization") == basic("u", "p"):
            return 200, {}, {"ok": path}
        return 401, {"WWW-Authenticate": 'Basic realm="r"'}, {}

    _Scripted.script = script
    client = RegistryClient(scripted, Credentials("u", "p"))
    assert client.get("a/manifests/x").json() == {"ok": "/v2/a/manifests/x"}
    assert client.get("a/manifests/y").status_code == 200  # the login is sent from then on
    assert [headers.get("Authorization") for _, headers in _Scripted.seen] == [
        None,
        basic("u", "p"),
        basic("u", "p"),
    ]
    anonymous = RegistryClient(scripted)
    with pytest.raises(RegistryError, match=rf"^registry {scripted} requires credentials$") as caught:
        anonymous.get("a/manifests/x")
    assert caught.value.hint == "set REGISTRY_USERNAME and REGISTRY_PASSWORD, or `docker login`"
    assert len(_Scripted.seen) == 4  # not a Transient: asked once, not retried


def test_a_401_without_a_challenge_is_one_error(scripted: str) -> None:
    _Scripted.script = lambda path, headers: (401, {}, {})
    with pytest.raises(
        RegistryError, match=rf"^registry {scripted} answered HTTP 401 without an auth challenge$"
    ):
        RegistryClient(scripted).get("")
    _Scripted.script = lambda path, headers: (401, {"WWW-Authenticate": ""}, {})
    with pytest.raises(RegistryError, match=rf"^registry {scripted} sent an unsupported auth challenge: $"):
        RegistryClient(scripted).get("")


def test_a_manifest_digest_is_the_headers_else_the_sha256_of_its_bytes(scripted: str) -> None:
    body = json.dumps(MANIFEST).encode()
    _Scripted.script = lambda path, headers: (
        200,
        {} if path.endswith("/bare") else {"Docker-Content-Digest": "sha256:m"},
        body,
    )
    client = RegistryClient(scripted)
    assert client.manifest("acme/w", "t") == ("sha256:m", MANIFEST)
    assert client.manifest("acme/w", "bare") == ("sha256:" + hashlib.sha256(body).hexdigest(), MANIFEST)
    assert _Scripted.seen[0][1]["Accept"] == ACCEPT


def test_an_index_without_entries_and_unreadable_bodies_are_registry_errors(scripted: str) -> None:
    answers: dict[str, object] = {
        "/v2/acme/w/manifests/empty": {"mediaType": OCI_INDEX},
        "/v2/acme/w/manifests/list": {"mediaType": MANIFEST_LIST},
        "/v2/acme/w/manifests/html": b"<html>",
        f"/v2/acme/w/blobs/{CONFIG_DIGEST}": [1],
    }
    _Scripted.script = lambda path, headers: (200, {}, answers[path])
    client = RegistryClient(scripted)
    for reference in ("empty", "list"):
        with pytest.raises(RegistryError, match=rf"^acme/w:{reference}: the index has no linux/amd64 image$"):
            client.manifest("acme/w", reference)
    with pytest.raises(RegistryError, match=rf"^{scripted}/acme/w:html: the answer is not a JSON object$"):
        client.manifest("acme/w", "html")
    with pytest.raises(
        RegistryError, match=rf"^{scripted}/acme/w: blob {CONFIG_DIGEST}: the answer is not a JSON object$"
    ):
        client.blob_json("acme/w", CONFIG_DIGEST)


# --- retries: what is transient, how long to wait, what is retried ---------------------------


def response(status: int, headers: dict[str, str] | None = None) -> requests.Response:
    """A real `requests.Response` as the adapter builds it (status and headers only)."""
    made = requests.Response()
    made.status_code = status
    made.headers.update(headers or {})
    return made


def test_retry_after_reads_seconds_and_ignores_dates_and_absence() -> None:
    assert retry_after(response(429, {"Retry-After": " 5 "})) == 5.0
    assert retry_after(response(429)) is None
    assert retry_after(response(429, {"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"})) is None
    assert retry_after(response(429, {"Retry-After": "-3"})) is None


@pytest.mark.parametrize("status", [429, 500, 503])
def test_429_and_5xx_are_transient_with_their_retry_after(status: int) -> None:
    with pytest.raises(Transient, match=rf"^HTTP {status} for /v2/$") as caught:
        raise_if_transient(response(status, {"Retry-After": "7"}), "/v2/")
    assert caught.value.retry_after == 7.0


@pytest.mark.parametrize("status", [200, 401, 404, 499])
def test_other_answers_are_not_transient(status: int) -> None:
    answered = response(status)
    assert raise_if_transient(answered, "/v2/") is answered


def test_the_back_off_doubles_to_four_seconds_and_retry_after_is_bounded() -> None:
    assert [retry_wait(Transient("down"), n) for n in range(1, 7)] == [0.25, 0.5, 1.0, 2.0, 4.0, 4.0]
    assert retry_wait(None, 2) == 0.5
    assert retry_wait(Transient("busy", retry_after=0), 3) == 0.0
    assert retry_wait(Transient("busy", retry_after=-5), 3) == 0.0


def test_retrying_waits_as_told_and_retries_only_transient_failures() -> None:
    waits: list[float] = []
    outcomes: list[Exception | str] = [Transient("busy", retry_after=3), Transient("down"), "done"]

    def action() -> str:
        outcome = outcomes.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    assert retrying(action, "x", sleep=waits.append) == "done"
    assert waits == [3.0, 0.5]  # the server's Retry-After, then the back-off of attempt 2
    calls: list[int] = []

    def broken() -> None:
        calls.append(1)
        raise ValueError("not transient")

    with pytest.raises(ValueError, match="not transient"):
        retrying(broken, "x", sleep=waits.append)
    assert calls == [1]
    waits.clear()

    def down() -> None:
        raise Transient("HTTP 503 for /v2/")

    with pytest.raises(RegistryError, match=r"^x: HTTP 503 for /v2/ \(after 4 attempts\)$"):
        retrying(down, "x", sleep=waits.append)
    assert waits == [0.25, 0.5, 1.0]


@pytest.mark.parametrize(
    ("registry", "loopback"),
    [
        ("LOCALHOST:5000", True),  # host names are case-insensitive
        ("localhost", True),
        ("[::1]", True),
        ("[::1x", False),  # malformed: no closing bracket
        ("::1", False),  # an IPv6 host needs its brackets when written with a port
        ("", False),
        (":5000", False),
        ("localhost.example.com", False),
    ],
)
def test_loopback_needs_a_well_formed_loopback_host(registry: str, loopback: bool) -> None:
    assert is_loopback(registry) is loopback


def test_the_client_waits_30_seconds_for_an_answer_by_default() -> None:
    assert RegistryClient("ghcr.io").timeout == 30


def test_a_docker_credential_helpers_login_is_used(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A real credential helper (the protocol docker-py speaks: `docker-credential-<name> get`,
    # the registry on stdin, JSON with "Username"/"Secret" on stdout), as a script on PATH.
    helper = tmp_path / "bin" / "docker-credential-fake"
    helper.parent.mkdir()
    helper.write_text(
        '#!/bin/sh\nread registry\necho "{\\"Username\\": \\"hu\\", \\"Secret\\": \\"hp-$registry\\"}"\n'
    )
    helper.chmod(0o755)
    monkeypatch.setenv("PATH", f"{helper.parent}:{os.environ['PATH']}")
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path))
    (tmp_path / "config.json").write_text(json.dumps({"credHelpers": {"r.example": "fake"}}))
    assert credentials_for("r.example", {}) == Credentials("hu", "hp-r.example")
    # The environment still wins, and a registry the helper is not named for has no login.
    assert credentials_for("r.example", {"REGISTRY_USERNAME": "u", "REGISTRY_PASSWORD": "p"}) == Credentials(
        "u", "p"
    )
    assert credentials_for("other.example", {}) is None


# --- sizes, the build record and the plan, pinned whole ---------------------------------------


def test_size_json_names_every_figure() -> None:
    size = ImageSize(5, 9, [Layer("d", 5, 9, "RUN x")])
    assert size.to_json() == {
        "compressed_bytes": 5,
        "uncompressed_bytes": 9,
        "layers": [{"digest": "d", "compressed_bytes": 5, "uncompressed_bytes": 9, "instruction": "RUN x"}],
    }


def test_an_engine_entry_without_a_size_counts_as_empty(registry: str) -> None:
    serve_image()
    engine = [{"Size": 7}, {}, {}]  # newest first: the two oldest entries carry no size
    _, size = image_size(RegistryClient(registry), "acme/w", "t", engine)
    assert [layer.uncompressed_bytes for layer in size.layers] == [0, 7]


def test_layer_instructions_are_cut_at_70_characters_by_default() -> None:
    fits, cut = Layer("a", 1, None, "x" * 70), Layer("b", 1, None, "y" * 71)
    table = layer_table([fits, cut])
    assert table[1].endswith("  " + "x" * 70)
    assert table[2].endswith("  " + "y" * 69 + "…")


def test_the_budget_error_says_how_to_get_under_it() -> None:
    with pytest.raises(BudgetExceeded) as caught:
        check_budget(ImageSize(2 * MB, None, []), 1, "r/w:t")
    assert (
        caught.value.hint
        == "move dependencies out of the image (strategy: slim) or raise image.max_compressed_mb"
    )


def test_the_record_is_dated_in_utc_indented_and_reads_without_steps(
    make_project: MakeProject, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = make_project(BASE_CONFIG)
    loaded = load_config(root / "rpdeploy.yaml", None)
    with pytest.raises(UsageError) as caught:
        read_record(loaded)
    assert caught.value.hint == "run `rpdeploy build` first, or `rpdeploy push --build`"
    # Far from UTC: a local-time clock would be 14 hours off.
    monkeypatch.setenv("TZ", "Etc/GMT-14")
    time.tzset()
    try:
        built = BuildRecord(
            repository="r/w", id="sha256:i", tags=["sha-1"], immutable="sha-1", oci_version="sha-1",
            dirty=False, labels={}, builder="docker", dockerfile="Dockerfile.slim", context_bytes=1,
            context_files=1, context_digest="sha256:d", steps=[], seconds=1.0, environment=None,
            max_compressed_mb=None,
        )  # fmt: skip
    finally:
        monkeypatch.undo()
        time.tzset()
    age = datetime.now(UTC) - datetime.strptime(built.built_at, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    assert abs(age.total_seconds()) < 3600
    path = write_record(loaded, built)
    assert path.read_text() == json.dumps(built.to_json(), indent=2) + "\n"
    data = built.to_json()
    del data["steps"]
    path.write_text(json.dumps(data))
    assert read_record(loaded) == built  # steps are optional (records of early builds lack them)


def _committed_project(make_project: MakeProject, config: str) -> Path:
    root = make_project(config)
    (root / ".gitignore").write_text("build/\n")
    for args in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-q", "-m", "init"]):
        subprocess.run(["git", "-C", str(root), *args], check=True, capture_output=True)
    return root


def test_a_plan_needs_a_commit_and_says_how_to_make_one(make_project: MakeProject) -> None:
    loaded = load_config(make_project(BASE_CONFIG) / "rpdeploy.yaml", None)
    with pytest.raises(UsageError, match="not a git checkout") as caught:
        plan_build(loaded, {})
    assert caught.value.hint == "run `git init && git commit` in the project (tags come from git)"


def test_a_plan_carries_its_context_tags_and_every_label(make_project: MakeProject) -> None:
    root = _committed_project(
        make_project, BASE_CONFIG.replace("strategy: slim", "strategy: slim\n  latest: true")
    )
    loaded = load_config(root / "rpdeploy.yaml", None)
    plan = plan_build(loaded, {"SOURCE_DATE_EPOCH": "86400"})
    short = plan.tags.immutable.removeprefix("sha-")
    assert plan.tags.tags == ("main", "latest", f"sha-{short}")
    assert plan.context.files == ("worker/handler.py", "worker/requirements.txt")
    # The slim image's bootstrap is supplied by rpdeploy, in the context beside the project's files.
    with tarfile.open(fileobj=io.BytesIO(plan.context.read())) as tar:
        supplied = {m.name: handle.read() for m in tar.getmembers() if (handle := tar.extractfile(m))}
    assert bootstrap_files().items() <= supplied.items()
    assert plan.context.digest.startswith("sha256:")
    labels = dict(plan.labels)
    assert len(labels.pop("org.opencontainers.image.revision")) == 40
    assert labels == {
        "dev.rpdeploy.config-hash": loaded.config_hash,
        "dev.rpdeploy.lock-hash": loaded.lock_hash,
        "dev.rpdeploy.strategy": "slim",
        "org.opencontainers.image.created": "1970-01-02T00:00:00Z",
        "org.opencontainers.image.title": "demo",
        "org.opencontainers.image.version": "main",
    }
    assert loaded.lock_hash is not None


def test_an_untracked_file_in_the_context_makes_the_plan_dirty_extra_tags_and_all(
    make_project: MakeProject,
) -> None:
    root = _committed_project(make_project, BASE_CONFIG)
    (root / "worker" / "new.py").write_text("x = 1\n")
    loaded = load_config(root / "rpdeploy.yaml", None)
    plan = plan_build(loaded, {}, extra_tags=["extra"])
    dirty = plan.tags.immutable
    assert dirty.endswith("-dirty-" + plan.context.digest.removeprefix("sha256:")[:12])
    assert plan.tags.tags == (dirty, "extra")
    assert (plan.tags.version, plan.tags.dirty) == (dirty, True)
    assert plan.labels["dev.rpdeploy.dirty"] == "true"
    assert plan.labels["org.opencontainers.image.version"] == dirty


def test_only_a_baked_build_passes_the_index_and_never_one_with_a_login(make_project: MakeProject) -> None:
    index = "runtime:\n  index_url: http://127.0.0.1:8099/simple\n"
    slim = BASE_CONFIG.replace("runtime:\n", index)
    root = make_project(slim)
    assert _buildargs(load_config(root / "rpdeploy.yaml", None)) == {}  # slim: the runtime installs
    (root / "rpdeploy.yaml").write_text(slim.replace("strategy: slim", "strategy: baked"))
    assert _buildargs(load_config(root / "rpdeploy.yaml", None)) == {
        "PIP_INDEX_URL": "http://127.0.0.1:8099/simple"
    }
    (root / "rpdeploy.yaml").write_text(
        slim.replace("strategy: slim", "strategy: baked").replace("http://", "http://:secret@")
    )
    with pytest.raises(
        UsageError,
        match=r"^runtime\.index_url carries credentials, which a build would record in the image history$",
    ) as caught:
        _buildargs(load_config(root / "rpdeploy.yaml", None))
    assert (
        caught.value.hint == "use an index without credentials (e.g. the loopback index of scripts/stack.sh)"
    )


# --- tags, labels and the build context: the edges no test had reached ------------------------


def test_only_a_tag_ref_names_a_version_and_sanitizing_keeps_letters() -> None:
    assert compute_tags(git(branch=None), {"GITHUB_REF": "v1.2.3"}, dirty=False, context_digest="x").tags == (
        "sha-0123456",
    )
    assert sanitize("Xmas-.x") == "Xmas-.x"  # only leading '.' and '-' go


def test_source_url_needs_both_github_variables() -> None:
    remote = GitInfo(sha=SHA, tag=None, branch="main", dirty=False, remote_url="https://git.example/a/b.git")
    assert source_url(remote, {"GITHUB_SERVER_URL": "https://github.com"}) == "https://git.example/a/b"
    assert source_url(remote, {"GITHUB_REPOSITORY": "c/d"}) == "https://git.example/a/b"
    assert (
        source_url(remote, {"GITHUB_SERVER_URL": "https://ghes.example/", "GITHUB_REPOSITORY": "c/d"})
        == "https://ghes.example/c/d"
    )


def test_created_is_utc_whatever_the_zone_and_names_a_bad_epoch_shortly(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TZ", "Etc/GMT-14")  # 14 hours east of UTC
    time.tzset()
    try:
        assert created_at({}, 86400) == "1970-01-02T00:00:00Z"
    finally:
        monkeypatch.undo()
        time.tzset()
    with pytest.raises(UsageError) as caught:
        created_at({"SOURCE_DATE_EPOCH": "x" * 50}, 0)
    assert str(caught.value) == f"SOURCE_DATE_EPOCH={'x' * 40!r} is not a number of seconds since 1970"


def test_a_dockerfile_on_disk_stays_out_unless_admitted_and_the_tar_is_gnu(tmp_path: Path) -> None:
    # docker-py admits a file called "Dockerfile" unless told the Dockerfile's real name.
    (tmp_path / "Dockerfile").write_text("FROM stale\n")
    (tmp_path / "worker").mkdir()
    (tmp_path / "worker" / "handler.py").write_text("x = 1\n")
    context, members, _ = _context(tmp_path)
    assert "Dockerfile" not in members
    assert (context.files, context.dockerfile) == (("worker/handler.py",), "Dockerfile.slim")
    # GNU tar headers (magic "ustar  \0"), as chosen for stable bytes, not PAX.
    assert context.read()[257:265] == b"ustar  \x00"


def test_a_file_that_cannot_be_opened_is_one_usage_error(tmp_path: Path) -> None:
    (tmp_path / "worker").mkdir()
    (tmp_path / "worker" / "handler.py").write_text("x = 1\n")
    # No file descriptor left for the project file (root reads any file, so a mode would not do):
    # the lowest free descriptor goes to the context's temporary file, the next one is refused.
    probe = os.open(os.devnull, os.O_RDONLY)
    os.close(probe)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (probe + 1, hard))
    try:
        with pytest.raises(UsageError) as caught:
            _context(tmp_path)
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    assert (
        str(caught.value)
        == f"{tmp_path}/worker/handler.py: cannot read for the build context: Too many open files"
    )


def test_a_temporary_file_that_cannot_grow_is_one_file_write_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A file size limit (RLIMIT_FSIZE, SIGXFSZ ignored) fails the context's writes with EFBIG,
    # as a full disk fails them with ENOSPC, without needing a small disk.
    (tmp_path / "worker").mkdir()
    (tmp_path / "worker" / "data.bin").write_bytes(b"\1" * 256 * 1024)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    previous = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (64 * 1024, hard))
    try:
        with pytest.raises(FileWriteError) as caught:
            _context(tmp_path)
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, previous)
    assert str(caught.value) == f"build context: File too large (writing its temporary file in {tmp_path})"
    assert caught.value.hint == "free space there, or set TMPDIR to a folder with room for the context"
