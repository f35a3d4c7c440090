"""`rpdeploy build`, `push` and `image report` against the real engine and the registry on 127.0.0.1:5000.

Nothing is mocked: every test builds real images (on the stack's base image), pushes
them and reads the registry's own answers. Fixture projects are tiny git repositories
in tmp dirs; images are removed from the engine afterwards (the registry keeps a few kB
of layers per run under rpdeploy-test/).
"""

from __future__ import annotations

import contextlib
import http.server
import io
import json
import os
import socket
import subprocess
import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, ClassVar

import docker
import pytest
import requests
from click.testing import Result

from deploy.image.size import instruction_of
from deploy.render.project import bootstrap_files
from tests.conftest import BASE_CONFIG, envelope, json_data
from tests.emulator.helpers import EmulatorProcess

pytestmark = pytest.mark.docker

REGISTRY = "127.0.0.1:5000"
BASE = os.environ.get("RPDEPLOY_BASE_IMAGE", f"{REGISTRY}/python:3.11-slim-local")
INDEX = os.environ.get("RPDEPLOY_INDEX_URL", "http://127.0.0.1:8099/simple/")
MANIFEST_V2 = "application/vnd.docker.distribution.manifest.v2+json"
#: The tests decide every CI variable themselves, whatever CI runs them.
CLEAN_ENV: dict[str, str | None] = dict.fromkeys(
    (
        "GITHUB_EVENT_NAME",
        "GITHUB_REF",
        "GITHUB_OUTPUT",
        "GITHUB_SERVER_URL",
        "GITHUB_REPOSITORY",
        "SOURCE_DATE_EPOCH",
        "REGISTRY_USERNAME",
        "REGISTRY_PASSWORD",
    )
)
TEST_LABEL = "dev.rpdeploy.test"

Run = Callable[..., Result]


def config_text(
    repository: str,
    *,
    registry: str = REGISTRY,
    strategy: str = "slim",
    max_mb: float | None = None,
    latest: bool = False,
) -> str:
    """conftest's small valid config, pointed at this test's repository, registry and base."""
    image = f"  strategy: {strategy}\n  latest: {str(latest).lower()}\n"
    if max_mb is not None:
        image += f"  max_compressed_mb: {max_mb}\n"
    return (
        BASE_CONFIG.replace("project: demo", "project: tiny")
        .replace("registry: 127.0.0.1:5000", f"registry: {registry}")
        .replace("acme/demo-worker", repository)
        .replace("base: 127.0.0.1:5000/python:3.11-slim-local", f"base: {BASE}")
        .replace("  strategy: slim\n", image)
        .replace(
            "  requirements: worker/requirements.txt\n",
            f"  requirements: worker/requirements.txt\n  index_url: {INDEX}\n",
        )
    )


def git(root: Path, *args: str) -> str:
    done = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, check=True)
    return done.stdout.strip()


#: Repositories this run created (each test project gets a fresh random one). Teardown
#: removes only their images: other runs on the same machine (the emulator's SDK worker
#: image, another engineer's suite) share the engine and the ``rpdeploy-test/`` prefix.
CREATED: set[str] = set()


def mine(tags: list[str]) -> bool:
    """True when an image carries a tag of a repository this run created."""
    return any(tag.rsplit(":", 1)[0].split("/", 1)[-1] in CREATED for tag in tags)


@pytest.fixture(scope="module")
def engine() -> Iterator[Any]:
    client = docker.from_env()
    yield client
    # The low-level listing: images.list() inspects each image, and one removed meanwhile fails it.
    for image in client.api.images():
        if mine(image["RepoTags"] or []):
            with contextlib.suppress(docker.errors.NotFound):
                client.images.remove(image["Id"], force=True)
    client.close()


def test_teardown_selects_only_this_runs_repositories() -> None:
    CREATED.add("rpdeploy-test/abc123")
    try:
        assert mine([f"{REGISTRY}/rpdeploy-test/abc123:sha-1234567"])
        assert not mine([f"{REGISTRY}/rpdeploy-test/sdk-worker:0123456789ab"])
        assert not mine([f"{REGISTRY}/rpdeploy-test/abc1234:main", "python:3.11"])
    finally:
        CREATED.discard("rpdeploy-test/abc123")


@pytest.fixture
def project(tmp_path: Path) -> Callable[..., tuple[Path, str]]:
    """Factory: a committed git project; returns (root, repository)."""

    def make(
        branch: str = "main", templates: dict[str, str] | None = None, **config: Any
    ) -> tuple[Path, str]:
        root = tmp_path / "project"
        (root / "worker").mkdir(parents=True)
        repository = f"rpdeploy-test/{uuid.uuid4().hex[:10]}"
        # The repository in the handler makes its layer this test's own: builds are reproducible,
        # so identical layers would be mounted from other tests' repositories, not pushed.
        (root / "worker" / "handler.py").write_text(
            f"# {repository}\ndef handler(job):\n    return job['input']\n"
        )
        (root / "worker" / "requirements.txt").write_text("six==1.17.0\n")
        (root / ".gitignore").write_text("build/\n")
        for name, text in (templates or {}).items():
            (root / "templates").mkdir(exist_ok=True)
            (root / "templates" / name).write_text(text)
        CREATED.add(repository)
        (root / "rpdeploy.yaml").write_text(config_text(repository, **config))
        git(root, "init", "-q", "-b", branch)
        git(root, "-c", "user.email=t@example.com", "-c", "user.name=t", "add", "-A")
        git(root, "-c", "user.email=t@example.com", "-c", "user.name=t", "commit", "-q", "-m", "init")
        return root, repository

    return make


def commit(root: Path, message: str) -> None:
    git(root, "-c", "user.email=t@example.com", "-c", "user.name=t", "commit", "-q", "-am", message)


def invoke(run_cli: Run, root: Path, *args: str, **env: str | None) -> Result:
    return run_cli(*args, cwd=root, env={**CLEAN_ENV, **env})


def as_json(result: Result, command: str = "build") -> dict[str, Any]:
    """The data of ``command``'s JSON envelope (the envelope itself is checked)."""
    return json_data(result.stdout, command)


def registry_digest(repository: str, tag: str, registry: str = REGISTRY) -> str | None:
    response = requests.get(
        f"http://{registry}/v2/{repository}/manifests/{tag}", headers={"Accept": MANIFEST_V2}, timeout=10
    )
    return response.headers["Docker-Content-Digest"] if response.status_code == 200 else None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def test_build_push_report_with_semver_tags_labels_and_github_output(
    project: Callable[..., tuple[Path, str]], run_cli: Run, engine: Any, tmp_path: Path
) -> None:
    root, repository = project(branch="feature/fast-build")
    git(root, "tag", "v1.2.3")
    sha = git(root, "rev-parse", "HEAD")
    outputs = tmp_path / "github_output"
    outputs.write_text("before=1\n")

    built = invoke(run_cli, root, "build", "-o", "json", SOURCE_DATE_EPOCH="1700000000")
    assert built.exit_code == 0, built.stderr
    record = as_json(built)
    assert record["tags"] == ["1.2.3", "1.2", "feature-fast-build", f"sha-{sha[:7]}"]
    assert record["image"] == f"{REGISTRY}/{repository}:sha-{sha[:7]}"
    assert record["context_files"] == 2  # handler.py and requirements.txt: nothing else
    # Plus the slim image's bootstrap, which rpdeploy adds (each file: a 512-byte header, padding).
    bootstrap = sum(len(data) + 1024 for data in bootstrap_files().values())
    assert 0 < record["context_bytes"] < 20_000 + bootstrap
    assert "build: step" in built.stderr
    labels = engine.images.get(record["id"]).labels
    assert labels["org.opencontainers.image.created"] == "2023-11-14T22:13:20Z"
    assert labels["org.opencontainers.image.revision"] == sha
    assert labels["org.opencontainers.image.version"] == "1.2.3"
    assert labels["org.opencontainers.image.title"] == "tiny"
    assert len(labels["dev.rpdeploy.config-hash"]) == 64
    assert len(labels["dev.rpdeploy.lock-hash"]) == 64

    pushed = invoke(run_cli, root, "push", "-o", "json", GITHUB_OUTPUT=str(outputs))
    assert pushed.exit_code == 0, pushed.stderr
    # Per-layer figures come from the engine (uncompressed); the total is compressed: each says which.
    sized = [
        line
        for line in pushed.stderr.splitlines()
        if line.startswith("push:") and " layer " in line and "(" in line
    ]
    assert sized, pushed.stderr
    assert all(line.endswith(" uncompressed)") for line in sized), sized
    result = as_json(pushed, "push")
    digest = result["digest"]
    assert result["image"] == f"{REGISTRY}/{repository}@{digest}"
    for tag in record["tags"]:
        assert registry_digest(repository, tag) == digest
    size = result["size"]
    assert size["compressed_bytes"] == sum(layer["compressed_bytes"] for layer in size["layers"])
    assert size["uncompressed_bytes"] > size["compressed_bytes"]
    assert any(layer["instruction"].startswith("COPY") for layer in size["layers"])
    assert outputs.read_text() == f"before=1\nimage={result['image']}\ndigest={digest}\n"
    # The push record: what `rpdeploy plan`/`apply` deploy unless --image is given.
    pushed_record = json.loads((root / "build/rpdeploy/default/push.json").read_text())
    assert pushed_record["image"] == result["image"]
    assert (pushed_record["digest"], pushed_record["size"]) == (digest, size["compressed_bytes"])
    assert pushed_record["tags"] == result["tags"]

    report = invoke(run_cli, root, "image", "report", f"{REGISTRY}/{repository}:1.2", "-o", "json")
    assert report.exit_code == 0, report.stderr
    assert as_json(report, "image report")["digest"] == digest
    assert as_json(report, "image report")["size"]["layers"] == size["layers"]
    text = invoke(run_cli, root, "image", "report", f"{REGISTRY}/{repository}:1.2")
    assert "COPY dir:" in text.stdout
    assert "compressed" in text.stdout


def test_handler_only_change_rebuilds_only_the_handler_layer_and_dirty_tree_is_marked(
    project: Callable[..., tuple[Path, str]], run_cli: Run, engine: Any
) -> None:
    root, _ = project()
    first = invoke(run_cli, root, "build", "-o", "json")
    assert first.exit_code == 0, first.stderr

    (root / "worker" / "handler.py").write_text("def handler(job):\n    return {'v': 2}\n")
    commit(root, "handler v2")
    second = invoke(run_cli, root, "build", "-o", "json")
    assert second.exit_code == 0, second.stderr
    record = as_json(second)
    sha = git(root, "rev-parse", "--short=7", "HEAD")
    assert record["tags"] == ["main", f"sha-{sha}"]
    layers = {
        s["instruction"].split()[0]: s["cached"]
        for s in record["steps"]
        if s["instruction"].startswith(("ENV", "WORKDIR", "COPY", "RUN"))
    }
    assert layers == {"ENV": True, "WORKDIR": True, "COPY": False}

    (root / "worker" / "handler.py").write_text("def handler(job):\n    return {'v': 3}\n")
    dirty = invoke(run_cli, root, "build", "-o", "json")
    assert dirty.exit_code == 0, dirty.stderr
    dirty_record = as_json(dirty)
    assert len(dirty_record["tags"]) == 1
    assert dirty_record["tags"][0].startswith(f"sha-{sha}-dirty-")
    assert engine.images.get(dirty_record["id"]).labels["dev.rpdeploy.dirty"] == "true"
    # The same dirty content gives the same tag; an untracked file in the context makes a tree dirty too.
    assert as_json(invoke(run_cli, root, "build", "-o", "json"))["tags"] == dirty_record["tags"]
    commit(root, "handler v3")
    (root / "worker" / "extra.py").write_text("X = 1\n")
    untracked = as_json(invoke(run_cli, root, "build", "-o", "json"))
    assert untracked["dirty"] is True
    assert "-dirty-" in untracked["tags"][0]


def test_failed_build_names_the_instruction_and_shows_its_output(
    project: Callable[..., tuple[Path, str]], run_cli: Run
) -> None:
    failing = (
        '{% extends "Dockerfile.base.j2" %}\n'
        "{% block dependencies %}\n"
        'RUN echo "fixture-output-line" && exit 3\n'
        "{% endblock %}\n"
    )
    root, _ = project(templates={"Dockerfile.slim.j2": failing})
    result = invoke(run_cli, root, "build")
    assert result.exit_code == 1
    assert "Traceback" not in result.stderr
    assert "build failed at step" in result.stderr
    assert 'RUN echo "fixture-output-line" && exit 3' in result.stderr
    assert "returned a non-zero code: 3" in result.stderr
    assert "  fixture-output-line" in result.stderr  # the step's own output, in the tail
    assert not (root / "build" / "rpdeploy" / "default" / "build.json").exists()


_UNITS = {"bytes": 1, "byte": 1, "kB": 10**3, "MB": 10**6, "GB": 10**9}


def budget_rows(stderr: str) -> list[tuple[float, str]]:
    """(compressed bytes, instruction) of each row of the over-budget error's layer table."""
    lines = [line.removeprefix("error:").strip() for line in stderr.splitlines()]
    start = next(i for i, line in enumerate(lines) if line.startswith("compressed")) + 1
    rows = []
    for line in lines[start:]:
        parts = line.split(maxsplit=4)
        if len(parts) < 5 or parts[1] not in _UNITS:
            break
        rows.append((float(parts[0]) * _UNITS[parts[1]], parts[4]))
    assert rows, stderr
    return rows


def base_largest_instruction() -> str:
    """The instruction of the base image's largest layer, from the engine's own history."""
    history = docker.from_env().images.get(BASE).history()
    return instruction_of(max(history, key=lambda entry: int(entry.get("Size", 0))))


def test_over_budget_push_fails_with_largest_layers_and_no_moving_tags(
    project: Callable[..., tuple[Path, str]], run_cli: Run, tmp_path: Path
) -> None:
    root, repository = project(max_mb=1, latest=True)
    assert invoke(run_cli, root, "build").exit_code == 0
    outputs = tmp_path / "out"
    result = invoke(run_cli, root, "push", GITHUB_OUTPUT=str(outputs))
    assert result.exit_code == 1
    assert "over the image.max_compressed_mb budget of 1 MB" in result.stderr
    rows = budget_rows(result.stderr)
    # Largest first: the sizes never grow down the table, and the base image's largest layer
    # (as the engine records it; "(Imported from -)" for the stack's imported base) is on top.
    sizes = [size for size, _ in rows]
    assert sizes == sorted(sizes, reverse=True), rows
    assert rows[0][1] == base_largest_instruction(), rows
    assert any(instruction.startswith("COPY dir:") for _, instruction in rows[1:]), rows
    assert result.stdout == ""
    assert not outputs.exists()
    # The moving tags were never pushed.
    assert registry_digest(repository, "main") is None
    assert registry_digest(repository, "latest") is None


def test_registry_down_is_one_line_exit_3_and_nothing_pushed(
    project: Callable[..., tuple[Path, str]], run_cli: Run, tmp_path: Path
) -> None:
    port = free_port()
    root, _ = project(registry=f"127.0.0.1:{port}")
    assert invoke(run_cli, root, "build").exit_code == 0
    outputs = tmp_path / "out"
    result = invoke(run_cli, root, "push", GITHUB_OUTPUT=str(outputs))
    assert result.exit_code == 3
    lines = result.stderr.strip().splitlines()
    assert lines[-1] == f"error: registry 127.0.0.1:{port}: [Errno 111] Connection refused (after 4 attempts)"
    assert "pushed" not in result.stdout + result.stderr.replace("push:", "")
    assert not outputs.exists()
    as_json_result = invoke(run_cli, root, "push", "-o", "json")
    assert as_json_result.exit_code == 3
    payload = envelope(as_json_result.stdout, "push", status="error")
    assert payload["error"]["type"] == "RegistryError"
    assert (
        payload["error"]["message"]
        == f"registry 127.0.0.1:{port}: [Errno 111] Connection refused (after 4 attempts)"
    )


def test_baked_image_installs_from_the_loopback_index(
    project: Callable[..., tuple[Path, str]], run_cli: Run, engine: Any
) -> None:
    root, _ = project(strategy="baked")
    result = invoke(run_cli, root, "build", "-o", "json")
    assert result.exit_code == 0, result.stderr
    image = as_json(result)["image"]
    output = engine.containers.run(
        image,
        ["/opt/venv/bin/python", "-c", "import six; print(six.__version__)"],
        remove=True,
        labels={TEST_LABEL: "1"},
        network_mode="none",
    )
    assert output.decode().strip() == "1.17.0"


def test_push_pushes_the_recorded_build_even_when_another_took_its_tag(
    project: Callable[..., tuple[Path, str]], run_cli: Run, engine: Any
) -> None:
    """The engine pushes by tag: another build of the same commit (another environment, another
    SOURCE_DATE_EPOCH) that took the tag meanwhile must not be pushed under this build's record."""
    root, repository = project()
    built = invoke(run_cli, root, "build", "-o", "json")
    assert built.exit_code == 0, built.stderr
    record = as_json(built)
    # Another image of this test's repository takes every tag of the build (never the shared
    # base itself: teardown removes, by id, every image holding a tag of this run's repositories).
    other, _ = engine.images.build(
        fileobj=io.BytesIO(f"FROM {BASE}\nLABEL {TEST_LABEL}=other\n".encode()),
        tag=f"{REGISTRY}/{repository}:other",
        network_mode="none",
    )
    for tag in record["tags"]:
        engine.api.tag(other.id, f"{REGISTRY}/{repository}", tag)
    pushed = invoke(run_cli, root, "push", "-o", "json")
    assert pushed.exit_code == 0, pushed.stderr
    digest = as_json(pushed, "push")["digest"]
    manifest = requests.get(
        f"http://{REGISTRY}/v2/{repository}/manifests/{digest}", headers={"Accept": MANIFEST_V2}, timeout=10
    ).json()
    # An image's id is the digest of its config.
    assert manifest["config"]["digest"] == record["id"]
    assert engine.images.get(record["image"]).id == record["id"]


def test_push_without_a_build_is_a_usage_error(
    project: Callable[..., tuple[Path, str]], run_cli: Run
) -> None:
    root, _ = project()
    result = invoke(run_cli, root, "push")
    assert result.exit_code == 2
    assert "no build recorded" in result.stderr


def stack_env() -> dict[str, str]:
    """What scripts/stack.sh up wrote (make test brings the stack up first)."""
    state = Path(os.environ.get("RPDEPLOY_STATE", Path(__file__).resolve().parent.parent / ".state"))
    pairs = (line.partition("=") for line in (state / "stack.env").read_text().splitlines())
    return {key: value for key, sep, value in pairs if sep and not key.startswith("#")}


def test_buildx_builder_gets_the_image_from_its_metadata_file(
    project: Callable[..., tuple[Path, str]], run_cli: Run, engine: Any
) -> None:
    # scripts/stack.sh provides the plugin where the system has none.
    plugin_env = {"RPDEPLOY_DOCKER_CONFIG": stack_env().get("RPDEPLOY_DOCKER_CONFIG")}
    root, repository = project()
    built = invoke(run_cli, root, "build", "--builder", "buildx", "-o", "json", **plugin_env)
    assert built.exit_code == 0, built.stderr
    record = as_json(built)
    assert record["builder"] == "buildx"
    # The slim image copies the bootstrap and the requirements before the handler.
    assert [s["instruction"].split()[0] for s in record["steps"]] == [
        "FROM",
        "COPY",
        "COPY",
        "WORKDIR",
        "COPY",
    ]
    assert engine.images.get(record["id"]).labels["org.opencontainers.image.title"] == "tiny"
    pushed = invoke(run_cli, root, "push", "-o", "json")
    assert pushed.exit_code == 0, pushed.stderr
    assert registry_digest(repository, record["tags"][-1]) == as_json(pushed, "push")["digest"]


def test_buildx_failure_shows_the_output_tail(project: Callable[..., tuple[Path, str]], run_cli: Run) -> None:
    failing = (
        '{% extends "Dockerfile.base.j2" %}\n{% block dependencies %}\n'
        "RUN echo buildx-fixture-line && exit 4\n{% endblock %}\n"
    )
    root, _ = project(templates={"Dockerfile.slim.j2": failing})
    plugin_env = {"RPDEPLOY_DOCKER_CONFIG": stack_env().get("RPDEPLOY_DOCKER_CONFIG")}
    failed = invoke(run_cli, root, "build", "--builder", "buildx", **plugin_env)
    assert failed.exit_code == 1
    assert "build failed at step 2/4 `RUN echo buildx-fixture-line && exit 4`" in failed.stderr
    assert "exit code: 4" in failed.stderr
    assert "  buildx-fixture-line" in failed.stderr
    assert "buildx-fixture-line" in failed.stderr
    assert "Traceback" not in failed.stderr


class FlakyRegistry(http.server.BaseHTTPRequestHandler):
    """Answers 503 to the first `failures` requests, then relays to the real registry.

    A stand-in for what cannot be produced on demand here: a registry with a transient outage.
    """

    failures = 0
    served: ClassVar[list[int]] = []

    def do_GET(self) -> None:
        if len(self.served) < self.failures:
            self.served.append(503)
            self.send_response(503)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        upstream = requests.get(
            f"http://{REGISTRY}{self.path}", headers={"Accept": self.headers.get("Accept", "*/*")}, timeout=10
        )
        self.served.append(upstream.status_code)
        self.send_response(upstream.status_code)
        for name in ("Content-Type", "Docker-Content-Digest", "Docker-Distribution-Api-Version"):
            if name in upstream.headers:
                self.send_header(name, upstream.headers[name])
        self.send_header("Content-Length", str(len(upstream.content)))
        self.end_headers()
        self.wfile.write(upstream.content)

    def log_message(self, format: str, *args: Any) -> None:
        pass


def test_transient_registry_errors_are_retried(
    project: Callable[..., tuple[Path, str]], run_cli: Run, engine: Any
) -> None:
    root, repository = project()
    assert invoke(run_cli, root, "push", "--build").exit_code == 0
    tag = f"sha-{git(root, 'rev-parse', '--short=7', 'HEAD')}"
    FlakyRegistry.failures, FlakyRegistry.served = 2, []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), FlakyRegistry)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        port = server.server_address[1]
        ref = f"127.0.0.1:{port}/{repository}:{tag}"
        result = invoke(run_cli, root, "image", "report", ref, "-o", "json")
    finally:
        server.shutdown()
        server.server_close()
    assert result.exit_code == 0, result.stderr
    assert FlakyRegistry.served[:3] == [503, 503, 200]
    assert as_json(result, "image report")["digest"] == registry_digest(repository, tag)


def test_rebuilding_the_same_commit_gives_the_same_image_and_digest(
    project: Callable[..., tuple[Path, str]], run_cli: Run, engine: Any
) -> None:
    root, repository = project()
    first = invoke(run_cli, root, "build", "-o", "json")
    assert first.exit_code == 0, first.stderr
    pushed = invoke(run_cli, root, "push", "-o", "json")
    assert pushed.exit_code == 0, pushed.stderr
    again = invoke(run_cli, root, "build", "-o", "json")
    assert again.exit_code == 0, again.stderr
    record = as_json(again, "build")
    assert record["id"] == as_json(first, "build")["id"]
    assert [
        s for s in record["steps"] if not s["cached"] and not s["instruction"].startswith(("FROM", "ARG"))
    ] == []
    repushed = invoke(run_cli, root, "push", "-o", "json")
    assert as_json(repushed, "push")["digest"] == as_json(pushed, "push")["digest"]
    commit_time = git(root, "log", "-1", "--format=%cd", "--date=format-local:%Y-%m-%dT%H:%M:%SZ")
    labels = engine.images.get(record["id"]).labels
    assert labels["org.opencontainers.image.created"] == commit_time
    assert registry_digest(repository, record["immutable"]) == as_json(pushed, "push")["digest"]


def test_git_credentials_never_reach_label_record_config_or_history(
    project: Callable[..., tuple[Path, str]], run_cli: Run, engine: Any
) -> None:
    canary = "ghp_CANARY" + uuid.uuid4().hex[:12]
    root, _ = project()
    git(
        root,
        "remote",
        "add",
        "origin",
        f"https://ci@corp.example:{canary}@github.com/org/repo.git?t={canary}",
    )
    built = invoke(run_cli, root, "build", "-o", "json")
    assert built.exit_code == 0, built.stderr
    record = as_json(built, "build")
    assert record["labels"]["org.opencontainers.image.source"] == "https://github.com/org/repo"
    image_id = record["id"]
    seen = [
        built.stdout,
        built.stderr,
        (root / "build" / "rpdeploy" / "default" / "build.json").read_text(),
        json.dumps(engine.api.inspect_image(image_id)),
        json.dumps(engine.api.history(image_id)),
    ]
    for text in seen:
        assert canary not in text
    # Every layer and the config, as `docker save` exports them (chunks overlap by the canary's length).
    needle, tail = canary.encode(), b""
    for chunk in engine.api.get_image(image_id):
        assert needle not in tail + chunk
        tail = chunk[-len(needle) :]


ROOT_HANDLER = """\
import runpod

from greeting import greet


def handler(job):
    return greet(job["input"]["name"])


runpod.serverless.start({"handler": handler})
"""


def push_root_layout(
    project: Callable[..., tuple[Path, str]], run_cli: Run, files: dict[str, str], message: str
) -> str:
    """A baked project in RunPod's quickstart / worker-basic layout (everything at the repository
    root: ``rp_handler.py`` beside its modules), built and pushed; returns the pushed image."""
    root, _ = project(strategy="baked")
    config = (root / "rpdeploy.yaml").read_text()
    config = config.replace("requirements: worker/requirements.txt", "requirements: requirements.txt")
    config = config.replace(
        "handler:\n  path: worker\n  file: handler.py", 'handler:\n  path: "."\n  file: rp_handler.py'
    )
    (root / "rpdeploy.yaml").write_text(config)
    for name, text in {"requirements.txt": "runpod==1.12.0\n", **files}.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    git(root, "rm", "-q", "-r", "worker")
    git(root, "add", "-A")
    commit(root, message)
    built = invoke(run_cli, root, "push", "--build", "-o", "json")
    assert built.exit_code == 0, built.stderr
    return str(as_json(built, "push")["image"])


def run_one_job(image: str, job_input: dict[str, Any], state: Path) -> dict[str, Any]:
    """Deploy ``image`` to a fresh emulator, run one job to its end and return its status view."""
    emulator = EmulatorProcess(state).start()
    try:
        endpoint = emulator.api.create_endpoint(image=image, workers={"min": 0, "max": 1, "idleTimeout": 5})
        job = emulator.api.submit(endpoint["id"], job_input)
        view: dict[str, Any] = emulator.api.wait_status(
            endpoint["id"], job, {"COMPLETED", "FAILED"}, timeout=180
        )
        assert view["status"] == "COMPLETED", f"{view}\n{emulator.log()[-3000:]}"
        emulator.api.rest("DELETE", f"/v2/serverless/{endpoint['id']}")
        return view
    finally:
        emulator.stop()
        emulator.remove_volumes()


def test_root_layout_image_runs_its_handler_under_the_emulator(
    project: Callable[..., tuple[Path, str]], run_cli: Run, tmp_path: Path
) -> None:
    files = {
        "rp_handler.py": ROOT_HANDLER,
        "greeting.py": "def greet(name):\n    return {'greeting': 'hello ' + name}\n",
        "test_input.json": '{"input": {"name": "local"}}\n',
    }
    image = push_root_layout(project, run_cli, files, "root layout")
    assert run_one_job(image, {"name": "root"}, tmp_path / "emulator")["output"] == {"greeting": "hello root"}
