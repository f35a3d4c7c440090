"""The runner against the emulator's job API alone (no worker runs, so no Docker): a job no
worker takes is cancelled at its timeout, a request the platform refuses is that case's one
error line, and an endpoint that does not exist is exit 3 at the CLI."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from click.testing import Result

from deploy.api import RunPodApi
from deploy.config.schema import CaseExpect
from deploy.release import validate
from deploy.release.cases import Case, CaseSet
from tests.emulator.helpers import Api


def idle_endpoint(api: Api, name: str) -> str:
    """An endpoint whose workers.max is 0: jobs queue and nobody takes them."""
    return str(api.create_endpoint(name=name)["id"])


def test_a_job_nobody_takes_is_cancelled_at_the_timeout(api: Api, client: RunPodApi) -> None:
    endpoint_id = idle_endpoint(api, "validate-idle")
    cases = CaseSet([Case("queued", {"x": 1}, 1000, expect=CaseExpect())])
    report = validate.run(client, endpoint_id, cases)
    (result,) = report.tests
    assert (result.passed, result.status, result.cancelled) == (False, "CANCELLED", True)
    assert result.failures == [
        "timeout: not finished within 1000 ms: cancelled (status read back: CANCELLED)"
    ]
    assert result.delay_ms is None  # never started
    assert not result.cold
    view = api.job("GET", f"/{endpoint_id}/status/{result.job_id}").json()
    assert view["status"] == "CANCELLED"


def test_a_refused_request_is_the_case_error(api: Api, client: RunPodApi) -> None:
    endpoint_id = idle_endpoint(api, "validate-refused")
    huge = {"blob": "x" * (10 * 1024 * 1024 + 1)}  # over the /run limit of 10 MB
    report = validate.run(client, endpoint_id, CaseSet([Case("huge", huge, 5000)]))
    (result,) = report.tests
    assert (result.passed, result.status, result.job_id) == (False, "ERROR", None)
    assert result.error is not None
    line = (
        f"RunPod job API 400 on POST /{endpoint_id}/run: request body is 10485784 bytes; the limit is 10 MB"
    )
    assert result.error == line


def test_an_endpoint_that_does_not_exist_is_exit_3(
    run_cli: Callable[..., Result], emulator_environ: dict[str, str], tmp_path: Path
) -> None:
    (tmp_path / "tests.json").write_text(json.dumps({"tests": [{"name": "a", "input": {}}]}))
    result = run_cli(
        "validate", "--endpoint", "nope", "--cases", "tests.json", cwd=tmp_path, env=emulator_environ
    )
    assert result.exit_code == 3
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, result.stderr
    assert errors[0].startswith("error: RunPod API 404 on GET /v2/serverless/nope/workers: ")
    assert "Traceback" not in result.stderr
