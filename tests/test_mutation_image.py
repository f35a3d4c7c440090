"""Image behaviour (the parts without Docker) that mutation testing (`make mutation`,
docs/quality.md) showed no test pinned."""

from __future__ import annotations

import base64
import hashlib
import http.server
import io
import json
import socket
import subprocess
import tarfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import pytest
import requests

from deploy.config import load_config
from deploy.errors import BudgetExceeded, OutsideProject, RegistryError, UsageError
from deploy.gitinfo import GitInfo
from deploy.image.build import plan_build
from deploy.image.context import BuildContext, build_context
from deploy.image.labels import created_at, image_labels
from deploy.image.plan import _buildargs
from deploy.image.record import BuildRecord, BuildStep, read_record, record_path, write_record
from deploy.image.registry import (
    ACCEPT,
    MANIFEST_V2,
    OCI_INDEX,
    Credentials,
    Reference,
    RegistryClient,
    credentials_for,
    reason,
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
        data = json.dumps(body).encode()
        self.send_response(status)
        for name, value in {"Content-Type": "application/json", **headers}.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def registry() -> Iterator[str]:
    _Registry.routes = {}
    _Registry.seen = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Registry)
    # A short poll: shutdown() waits for the loop's next poll (0.5 s by default), which
    # mutation runs paid again for every mutant these tests cover.
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


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
