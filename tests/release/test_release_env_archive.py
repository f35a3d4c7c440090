"""`rpdeploy release` of a slim image with ``runtime.s3`` builds and uploads the environment
archive as a step after the push and before the deploy; a second release finds it (one HEAD).

Real parts: build and push to the local registry, the bootstrap in the base image, the stack's
seaweedfs. The deploy itself is pointed at a port where nothing listens, so the release stops
right after the step under test: a worker's cold start from the archive is proven by
tests/runtime/test_runtime_docker.py (same key, same format), and a full slim release under the
emulator costs minutes of install and unpack that this check does not need.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable

import pytest

from deploy.runtime import s3 as runtime_s3
from deploy.runtime.settings import s3_settings
from tests.release.helpers import RunCli
from tests.release.test_release_pipeline import EPOCH, Project, new_project
from tests.runtime.conftest import s3_env
from tests.test_image_docker import free_port

pytestmark = pytest.mark.docker
__all__ = ["new_project"]  # the fixture, shared with the release pipeline tests


def slim_s3(project: Project, prefix: str, bucket: str, endpoint: str) -> None:
    """``project`` turned slim, with a small requirement and its archive under ``prefix``."""
    path = project.root / "rpdeploy.yaml"
    text = path.read_text().replace("  strategy: baked\n", "  strategy: slim\n")
    text = text.replace(
        "  index_url: http://127.0.0.1:8099/simple/\n",
        "  index_url: http://127.0.0.1:8099/simple/\n"
        f"  s3: {{bucket: {bucket}, prefix: {prefix}, endpoint_url: '{endpoint}'}}\n"
        "  disk: {min_free_volume_mb: 64}\n",
    )
    path.write_text(text)
    (project.root / "worker" / "requirements.txt").write_text("six==1.17.0\n")
    project.handler("# {repository}\n", "slim with S3")


def test_release_uploads_the_env_archive_after_the_push_and_before_the_deploy(
    new_project: Callable[[], Project], run_cli: RunCli
) -> None:
    stack = s3_env()
    prefix = f"tests/{uuid.uuid4().hex[:12]}/"
    project = new_project()
    slim_s3(project, prefix, stack["RPDEPLOY_S3_BUCKET"], stack["AWS_ENDPOINT_URL"])
    env = {
        "RUNPOD_API_URL": f"http://127.0.0.1:{free_port()}/v2",  # the deploy fails: nothing listens
        "RUNPOD_API_KEY": "rpa_test_unused",
        "AWS_ACCESS_KEY_ID": stack["AWS_ACCESS_KEY_ID"],
        "AWS_SECRET_ACCESS_KEY": stack["AWS_SECRET_ACCESS_KEY"],
        "SOURCE_DATE_EPOCH": EPOCH,
        "GITHUB_STEP_SUMMARY": None,
    }

    def steps_logged() -> tuple[list[str], str]:
        result = run_cli("release", "--timeout", "30", cwd=project.root, env=env)
        assert result.exit_code == 3, result.output  # the unreachable API, after the archive
        lines = [line for line in result.stderr.splitlines() if line.startswith("release: ")]
        return lines, result.stderr

    steps, stderr = steps_logged()
    assert steps == [
        "release: render", "release: build", "release: push", "release: env archive",
        "release: deploy+validate staging",
    ]  # fmt: skip
    settings = s3_settings({**stack, "RPDEPLOY_S3_PREFIX": prefix})
    assert settings is not None
    [uploaded] = [line for line in stderr.splitlines() if line.startswith("env: uploaded s3://")]
    name = uploaded.split(f"s3://{settings.bucket}/", 1)[1].split(" ", 1)[0]
    assert name.startswith(prefix)
    assert runtime_s3.Client(settings).head(name) is not None
    assert stack["AWS_SECRET_ACCESS_KEY"] not in stderr

    # The next release finds it: one HEAD, nothing built or uploaded.
    steps, stderr = steps_logged()
    assert "release: env archive" in steps
    assert f"env: s3://{settings.bucket}/{name} is there already" in stderr
    assert "env: uploaded" not in stderr
    assert "env: installing" not in stderr
