"""The speech-to-text reference worker (rpdeploy.yaml, worker/, .runpod/) released as `make demo`
releases it: the slim image built and pushed to the local registry, deployed to the session
emulator, its dependencies (runpod, pocketsphinx, ...) provisioned by the runtime bootstrap at
cold start (from the stack's S3 archive when an earlier run left one, else from the stack's
index), and every validation case run as a real job, the S3 case reading the stack's seaweedfs.

Nothing is mocked. One Docker test: a first run on a fresh machine installs about 250 MB of
wheels at the worker's cold start (minutes on 2 cores); a run that finds the archive downloads it.
"""

from __future__ import annotations

import contextlib
import subprocess
import uuid
from pathlib import Path

import docker
import pytest

from tests.conftest import copy_repo_project, json_data
from tests.release.helpers import RunCli
from tests.runtime.conftest import stack_env

pytestmark = pytest.mark.docker

#: The commit time of the project: a reproducible build.
EPOCH = "1700000000"


def committed_copy(root: Path, name: str, repository: str) -> Path:
    """The reference project under names of its own (endpoints, secrets, image repository)."""
    root.mkdir()
    copy_repo_project(root)
    config = root / "rpdeploy.yaml"
    text = config.read_text()
    for old, new in (
        ("project: stt-worker", f"project: {name}"),
        ("repository: rpdeploy/stt-worker", f"repository: {repository}"),
        ("secret: stt_worker_", f"secret: {name}_"),
    ):
        assert old in text, f"rpdeploy.yaml changed: update {__name__} ({old!r})"
        text = text.replace(old, new)
    config.write_text(text)
    (root / ".gitignore").write_text("build/\n")
    identity = ["-c", "user.email=t@example.com", "-c", "user.name=t"]
    for args in (["init", "-q", "-b", "main"], [*identity, "add", "-A"], [*identity, "commit", "-qm", "stt"]):
        subprocess.run(["git", "-C", str(root), *args], check=True, capture_output=True)
    return root


def test_the_stt_cases_pass_under_the_emulator_from_the_slim_image(
    tmp_path: Path, run_cli: RunCli, api_env: dict[str, str]
) -> None:
    name = f"t{uuid.uuid4().hex[:8]}"
    repository = f"rpdeploy-test/stt-{name}"
    root = committed_copy(tmp_path / "stt", name, repository)
    # What `make demo` gives the release: the stack's registry, base, index and S3 (stack.env).
    env = {**stack_env(), **api_env, "SOURCE_DATE_EPOCH": EPOCH, "GITHUB_STEP_SUMMARY": None}
    try:
        result = run_cli("release", "--timeout", "900", "-o", "json", cwd=root, env=env)
        status = "ok" if result.exit_code == 0 else "failed"
        data = json_data(result.stdout, "release", status)
        [staging] = data["environments"]
        report = staging["validation"]
        failures = {t["name"]: t["error"] for t in report["tests"] if not t["passed"]}
        assert result.exit_code == 0, (failures, staging.get("rollout_error"), result.stderr[-2000:])
        names = [t["name"] for t in report["tests"]]
        assert names == ["grammar", "keywords", "not_wav", "wrong_rate", "s3_grammar"]
        assert (report["passed"], report["failed"]) == (5, 0)
        # Observations for the report (never asserted: no timed tests), shown with -s.
        for t in report["tests"]:
            print(f"stt case {t['name']}: {t['status']} latency {t['latency_ms']} ms, cold {t['cold']}")
        # The slim image: the base plus the handler, no dependency layer (it stays under its budget).
        assert data["image"].startswith(f"127.0.0.1:5000/{repository}@sha256:")
    finally:
        run_cli("destroy", "--env", "staging", "--yes", cwd=root, env=env)
        client = docker.from_env()
        for image in client.api.images(name=f"127.0.0.1:5000/{repository}"):
            with contextlib.suppress(docker.errors.APIError):
                client.images.remove(image["Id"], force=True)
        client.close()
