"""`deploy.release.validate` against the emulator over HTTP, with the real runpod SDK worker in
Docker: passing cases, a failing output assertion, a handler that raises, a FAILED-expected
negative case, an overdue job cancelled (read back from the emulator), streams, runsync, cold
starts; the JUnit XML and step summary of a real run parsed and checked."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

from deploy.api import RunPodApi
from deploy.config.schema import CaseExpect
from deploy.release import reports, validate
from deploy.release.cases import Case, CaseSet
from deploy.release.expect import NOTE_299
from deploy.release.validate import CaseResult, ValidationReport
from tests.emulator.helpers import Api

pytestmark = pytest.mark.docker


def case(name: str, payload: Any, timeout_ms: int = 60000, **expect: Any) -> Case:
    mode = expect.pop("mode", "run")
    return Case(name, payload, timeout_ms, mode, CaseExpect.model_validate(expect), source=f"test: {name}")


class Recorder:
    """A listener that keeps what it was told (the runner calls it from its threads)."""

    def __init__(self) -> None:
        self.started: list[str] = []
        self.finished: list[str] = []

    def case_started(self, case: Case) -> None:
        self.started.append(case.name)

    def case_finished(self, result: CaseResult) -> None:
        self.finished.append(result.name)


MIXED = [
    case("echo", {"mock_return": {"sum": 6}}, output={"echo": {"sum": 6}}, max_latency_ms=60000),
    case("wrong-output", {"mock_return": {"sum": 7}}, output={"echo": {"sum": 6}}),
    case("raises", {"mock_error": "boom"}),
    case("expected-failure", {"mock_error": "bad width"}, status="FAILED", error="bad width"),
    case("error-key", {"mock_error_return": "no such voice"}, status="FAILED", error="voice"),
    case("non-string-error", {"mock_error_return": {"code": 42}}, status="FAILED"),
    case("overdue", {"mock_delay": 60}, timeout_ms=1500),
]


@pytest.fixture(scope="module")
def mixed_run(plain_endpoint: str, emulator_environ_module: dict[str, str]) -> ValidationReport:
    with RunPodApi.from_environ(emulator_environ_module) as api:
        recorder = Recorder()
        report = validate.run(api, plain_endpoint, CaseSet(MIXED), concurrency=4, listener=recorder)
    assert sorted(recorder.started) == sorted(recorder.finished) == sorted(c.name for c in MIXED)
    return report


@pytest.fixture(scope="module")
def emulator_environ_module(api: Api) -> dict[str, str]:
    return {"RUNPOD_API_URL": f"{api.base}/v2", "RUNPOD_API_KEY": api.key}


def by_name(report: ValidationReport) -> dict[str, CaseResult]:
    return {result.name: result for result in report.tests}


def test_each_case_gets_its_verdict(mixed_run: ValidationReport) -> None:
    results = by_name(mixed_run)
    assert [r.name for r in mixed_run.tests] == [c.name for c in MIXED]  # the cases' order, not finish order
    verdicts = {name: result.passed for name, result in results.items()}
    assert verdicts == {
        "echo": True,
        "wrong-output": False,
        "raises": False,
        "expected-failure": True,
        "error-key": True,
        "non-string-error": False,
        "overdue": False,
    }
    assert (mixed_run.passed, mixed_run.failed, mixed_run.ok) == (3, 4, False)
    assert results["wrong-output"].failures == ["output.echo.sum: expected 6, got 7"]
    assert results["raises"].status == "FAILED"
    assert results["raises"].failures[0].startswith("status: expected COMPLETED, got FAILED (error: ")
    assert "boom" in results["raises"].failures[0]
    assert results["non-string-error"].failures == [f'error: {{"code":42}}; {NOTE_299}']


def test_times_come_from_the_platform(mixed_run: ValidationReport) -> None:
    echo = by_name(mixed_run)["echo"]
    assert echo.status == "COMPLETED"
    assert echo.delay_ms is not None
    assert echo.execution_ms is not None
    assert echo.latency_ms is not None
    assert echo.latency_ms >= echo.execution_ms
    assert echo.job_id
    assert echo.worker_id
    assert mixed_run.p50_ms is not None
    assert mixed_run.p95_ms is not None
    assert mixed_run.p50_ms <= mixed_run.p95_ms


def test_an_overdue_job_is_cancelled_on_the_platform(
    mixed_run: ValidationReport, api: Api, plain_endpoint: str
) -> None:
    overdue = by_name(mixed_run)["overdue"]
    assert overdue.cancelled
    assert overdue.status == "CANCELLED"
    assert overdue.failures == [
        "timeout: not finished within 1500 ms: cancelled (status read back: CANCELLED)"
    ]
    view = api.job("GET", f"/{plain_endpoint}/status/{overdue.job_id}").json()
    assert view["status"] == "CANCELLED"  # the emulator's own record: no job left running


def test_the_first_jobs_on_new_workers_are_cold(mixed_run: ValidationReport) -> None:
    cold = [r for r in mixed_run.tests if r.cold]
    assert cold, "the endpoint started from zero workers: its first job met a cold worker"
    workers = [r.worker_id for r in cold]
    assert len(workers) == len(set(workers))  # one cold job per worker
    data = mixed_run.to_json()
    assert data["cold"]["count"] == len(cold)
    assert data["warm"]["count"] == sum(1 for r in mixed_run.tests if not r.cold and r.latency_ms is not None)


def test_a_second_run_on_warm_workers_has_no_cold_job(
    mixed_run: ValidationReport, plain_endpoint: str, client: RunPodApi
) -> None:
    again = validate.run(client, plain_endpoint, CaseSet([case("echo", {"mock_return": 1})]))
    assert again.ok
    assert not again.tests[0].cold


def test_junit_xml_of_a_real_run(mixed_run: ValidationReport, tmp_path: Path) -> None:
    path = tmp_path / "junit.xml"
    reports.write_junit(mixed_run, path)
    root = ET.parse(path).getroot()
    assert root.tag == "testsuites"
    suite = root.find("testsuite")
    assert suite is not None
    assert (suite.get("tests"), suite.get("failures"), suite.get("errors")) == ("7", "4", "0")
    cases = {element.get("name"): element for element in suite.findall("testcase")}
    assert list(cases) == [c.name for c in MIXED]
    assert cases["echo"].find("failure") is None
    failure = cases["wrong-output"].find("failure")
    assert failure is not None
    assert failure.get("message") == "output.echo.sum: expected 6, got 7"
    overdue = cases["overdue"].find("failure")
    assert overdue is not None
    assert "cancelled" in str(overdue.get("message"))
    out = cases["echo"].find("system-out")
    assert out is not None
    assert "status: COMPLETED" in str(out.text)
    assert not list(tmp_path.glob(".*.tmp"))


def test_step_summary_of_a_real_run(mixed_run: ValidationReport, tmp_path: Path) -> None:
    markdown = reports.step_summary(mixed_run)
    lines = markdown.splitlines()
    assert lines[0].startswith("### ❌ validation FAILED: 3 passed, 4 failed on ")
    assert "| case | result | status | delay ms | execution ms | latency ms | cold |" in lines
    rows = [line for line in lines if line.startswith("| ") and not line.startswith("| case")]
    assert [row.split(" | ")[0].removeprefix("| ") for row in rows] == [c.name for c in MIXED]
    assert "- **wrong-output**: output.echo.sum: expected 6, got 7" in lines
    summary = tmp_path / "summary.md"
    summary.write_text("earlier step\n")
    reports.append_step_summary(markdown, {"GITHUB_STEP_SUMMARY": str(summary)})
    assert summary.read_text() == "earlier step\n" + markdown


def test_stream_cases_count_chunks(stream_endpoint: str, client: RunPodApi) -> None:
    cases = CaseSet(
        [
            case(
                "three", {"chunks": 3}, min_stream_chunks=3, output=[{"chunk": 0}, {"chunk": 1}, {"chunk": 2}]
            ),
            case("too-few", {"chunks": 2}, min_stream_chunks=5),
        ]
    )
    results = by_name(validate.run(client, stream_endpoint, cases, concurrency=2))
    assert results["three"].passed, results["three"].failures
    assert results["three"].chunks == 3
    assert results["too-few"].failures == ["stream: expected at least 5 chunk(s), got 2"]


def test_runsync_cases(plain_endpoint: str, client: RunPodApi) -> None:
    cases = CaseSet(
        [
            case("sync", {"mock_return": "hi"}, mode="runsync", checks=[{"path": "echo", "regex": "^hi$"}]),
            case(
                "sync-slow",
                {"mock_delay": 1, "mock_return": 2},
                mode="runsync",
                checks=[{"path": "echo", "number": 2}],
            ),
        ]
    )
    report = validate.run(client, plain_endpoint, cases)
    assert report.ok, [r.failures for r in report.tests]
    assert all(r.job_id and r.job_id.startswith("sync-") for r in report.tests)


class Exploding(Recorder):
    """A listener that fails on one case, as a bug or a Ctrl-C would stop the run."""

    def case_started(self, case: Case) -> None:
        super().case_started(case)
        if case.name == "boom":
            raise KeyboardInterrupt


def test_a_stopped_run_leaves_no_job_running(api: Api, sdk_image: str, client: RunPodApi) -> None:
    from tests.validate.conftest import make_endpoint  # noqa: PLC0415

    endpoint_id = make_endpoint(api, sdk_image, "validate-stopped", {"HANDLER_MODE": "plain"}, 1)
    cases = CaseSet([case("long", {"mock_delay": 120}, timeout_ms=300000), case("boom", {})])
    with pytest.raises(KeyboardInterrupt):
        validate.run(client, endpoint_id, cases, concurrency=2, listener=Exploding())
    jobs = api.job("GET", f"/{endpoint_id}/health").json()["jobs"]
    # The long job was cancelled at once: neither left running and billing nor waited out.
    assert (jobs["inQueue"], jobs["inProgress"], jobs["completed"]) == (0, 0, 0)
