"""Expectations against job outcomes (pure functions: the outcomes are the job API's shapes, as
the emulator tests show them), cold-start marking, percentiles and the report renderings."""

from __future__ import annotations

import io
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from deploy.config.schema import CaseExpect, OutputCheck
from deploy.errors import FileWriteError, UsageError
from deploy.release import reports
from deploy.release.expect import NOTE_299, Outcome, failures, similarity, subset_mismatch, word_error_rate
from deploy.release.validate import CaseResult, ValidationReport, mark_cold, percentile


def expect(**fields: Any) -> CaseExpect:
    return CaseExpect.model_validate(fields)


def done(output: Any = None, **fields: Any) -> Outcome:
    return Outcome(status="COMPLETED", output=output, has_output=True, **fields)


def test_a_completed_job_passes_by_default() -> None:
    assert failures(expect(), done({"ok": 1})) == []
    assert failures(expect(), Outcome(status="COMPLETED")) == []


def test_a_completed_output_with_an_error_key_fails_unless_expected() -> None:
    outcome = done({"error": "CUDA out of memory"})
    assert failures(expect(), outcome) == [
        'the output carries an error: "CUDA out of memory" (expect.error allows it)'
    ]
    assert failures(expect(error="out of memory"), outcome) == []
    assert failures(expect(error="timeout"), outcome) == [
        'error: expected a match of /timeout/, got "CUDA out of memory"'
    ]


def test_a_non_string_error_always_fails_with_the_note() -> None:
    line = f'error: {{"code":42}}; {NOTE_299}'
    assert failures(expect(), done({"error": {"code": 42}})) == [line]
    assert failures(expect(error="."), done({"error": {"code": 42}})) == [line]
    assert failures(expect(status="FAILED"), Outcome(status="FAILED", error={"code": 42})) == [line]
    top = failures(expect(), Outcome(status="COMPLETED", error={"code": 42}))
    assert top == [f'the job is COMPLETED but reports an error: {{"code":42}}; {NOTE_299}']


def test_status_and_error_pattern() -> None:
    failed = Outcome(status="FAILED", error="width must be divisible by 64")
    assert failures(expect(), failed) == [
        'status: expected COMPLETED, got FAILED (error: "width must be divisible by 64")'
    ]
    assert failures(expect(status="FAILED"), failed) == []
    assert failures(expect(status="FAILED", error="divisible by \\d+"), failed) == []
    assert failures(expect(status="FAILED", error="^height"), failed) == [
        'error: expected a match of /^height/, got "width must be divisible by 64"'
    ]
    assert failures(expect(status="FAILED"), done(1)) == ["status: expected FAILED, got COMPLETED"]


@pytest.mark.parametrize(
    ("wanted", "actual", "problem"),
    [
        ({"a": 1}, {"a": 1, "b": 2}, None),
        ({"a": {"b": [1, {"c": "x"}]}}, {"a": {"b": [1, {"c": "x", "d": 0}]}}, None),
        ({"a": 1}, {"a": 1.0}, None),
        ({"a": 1}, {"a": True}, "output.a: expected 1, got true"),
        ({"a": 1}, {"b": 1}, "output.a: expected 1, missing"),
        ({"a": [1, 2]}, {"a": [1]}, "output.a: expected [1,2], got [1]"),
        ({"a": [{"x": 1}]}, {"a": [{"x": 2}]}, "output.a[0].x: expected 1, got 2"),
        ({"a": 1}, [1], "output: expected an object, got [1]"),
        ("hi", "hi", None),
    ],
)
def test_json_subset(wanted: Any, actual: Any, problem: str | None) -> None:
    assert subset_mismatch(wanted, actual, "output") == problem


def test_a_long_actual_value_is_cut_short() -> None:
    problem = subset_mismatch("x", "y" * 500, "output")
    assert problem is not None
    assert problem.endswith("…")
    assert len(problem) < 160


def test_output_keys_and_a_missing_output() -> None:
    assert failures(expect(output_keys=["image", "seed"]), done({"image": "b64", "seed": 1})) == []
    assert failures(expect(output_keys=["image", "seed"]), done({"image": "b64"})) == [
        'output: expected keys seed, got ["image"]'
    ]
    assert failures(expect(output={"a": 1}), Outcome(status="COMPLETED")) == [
        "output: expected an output, the job has none (runpod-python#299/#309)"
    ]


@pytest.mark.parametrize(
    ("check", "output", "problem"),
    [
        ({"path": "choices.0.text", "regex": "^Hello"}, {"choices": [{"text": "Hello!"}]}, None),
        ({"path": "choices.-1.text", "regex": "bye"}, {"choices": [{"text": "a"}, {"text": "bye"}]}, None),
        ({"path": "choices.2.text", "regex": "x"}, {"choices": []}, "output.choices.2.text: missing"),
        ({"regex": '"n":3'}, {"n": 3}, None),
        ({"path": "n", "regex": "^4$"}, {"n": 3}, "output.n: expected a match of /^4$/, got 3"),
        ({"path": "score", "number": 0.9, "tolerance": 0.05}, {"score": 0.93}, None),
        (
            {"path": "score", "number": 0.9, "tolerance": 0.01},
            {"score": 0.93},
            "output.score: expected 0.9 ± 0.01, got 0.93",
        ),
        ({"path": "score", "number": 1}, {"score": "1"}, 'output.score: expected a number, got "1"'),
        ({"path": "score", "number": 1}, {"score": True}, "output.score: expected a number, got true"),
        (
            {"path": "text", "text": "the cat sat on the mat", "max_wer": 0.2},
            {"text": "The cat sat on a mat."},
            None,
        ),
        (
            {"path": "text", "text": "the cat sat on the mat", "max_wer": 0.1},
            {"text": "The cat sat on a mat."},
            "output.text: word error rate 0.167 over 0.1 "
            '(expected "the cat sat on the mat", got "The cat sat on a mat.")',
        ),
        ({"text": "hello world", "min_similarity": 0.9}, "Hello  world!", None),
        (
            {"text": "hello world", "min_similarity": 0.9},
            "goodbye",
            'output: similarity 0.111 < 0.9 (expected "hello world", got "goodbye")',
        ),
        ({"text": "hi", "max_wer": 0.5}, 5, "output: expected text, got 5"),
    ],
)
def test_output_checks(check: dict[str, Any], output: Any, problem: str | None) -> None:
    found = failures(expect(checks=[OutputCheck.model_validate(check)]), done(output))
    assert found == ([problem] if problem else [])


def test_word_error_rate_and_similarity() -> None:
    assert word_error_rate("the cat sat", "the cat sat") == 0.0
    assert word_error_rate("the cat sat", "the cat sit") == pytest.approx(1 / 3)
    assert word_error_rate("the cat sat", "cat sat") == pytest.approx(1 / 3)
    assert word_error_rate("the cat", "the big fat cat") == 1.0  # two insertions over two words
    assert word_error_rate("", "") == 0.0
    assert word_error_rate("", "x") == 1.0
    assert word_error_rate("don't stop", "Don't  STOP!") == 0.0
    assert similarity("abc", "abc") == 1.0
    assert similarity("abcd", "abxd") == 0.75


def test_times_and_stream_chunks() -> None:
    outcome = done(1, delay_ms=500, execution_ms=1200, latency_ms=2000, chunks=2)
    assert (
        failures(
            expect(max_delay_ms=500, max_execution_ms=1200, max_latency_ms=2000, min_stream_chunks=2), outcome
        )
        == []
    )
    assert failures(
        expect(max_delay_ms=499, max_execution_ms=1000, max_latency_ms=1999, min_stream_chunks=3), outcome
    ) == [
        "executionTime: expected at most 1000 ms, got 1200",
        "delayTime: expected at most 499 ms, got 500",
        "latency: expected at most 1999 ms, got 2000",
        "stream: expected at least 3 chunk(s), got 2",
    ]
    assert failures(expect(max_execution_ms=10), done(1)) == [
        "executionTime: expected at most 10 ms, got none"
    ]


# -- cold starts and percentiles ------------------------------------------------------------


def result(
    name: str, worker: str | None, started: float | None, latency: int = 100, passed: bool = True
) -> CaseResult:
    return CaseResult(name, "COMPLETED", passed, latency_ms=latency, worker_id=worker, started_s=started)


def test_each_new_workers_first_job_is_cold() -> None:
    results = [
        result("a", "w1", 2.0),
        result("b", "w1", 1.0),
        result("c", "w2", 3.0),
        result("d", "old", 0.1),
    ]
    marked = mark_cold(results, warm_before={"old"})
    assert [r.cold for r in marked] == [False, True, True, False]


def test_without_worker_ids_the_first_job_after_zero_workers_is_cold() -> None:
    results = [result("a", None, 2.0), result("b", None, 1.5), result("c", None, None)]
    assert [r.cold for r in mark_cold(results, set())] == [False, True, False]
    assert [r.cold for r in mark_cold(results, {"w"})] == [False, False, False]


def test_percentiles_are_nearest_rank() -> None:
    assert percentile([], 0.5) is None
    assert percentile([7], 0.95) == 7
    values = list(range(1, 21))
    assert (percentile(values, 0.5), percentile(values, 0.95)) == (10, 19)


# -- reports ----------------------------------------------------------------------------------


REPORT = ValidationReport(
    endpoint_id="ep1",
    tests=[
        CaseResult("echo", "COMPLETED", True, 10, 20, 35, cold=True, job_id="j1", worker_id="w1"),
        CaseResult(
            "bad | name",
            "COMPLETED",
            False,
            5,
            6,
            15,
            error="output.sum: expected 6, got 7",
            failures=["output.sum: expected 6, got 7"],
        ),
    ],
    wall_ms=40,
    warnings=["t.json:3:4: not strict JSON"],
)


def test_json_data_has_the_documented_fields() -> None:
    data = REPORT.to_json()
    assert (data["passed"], data["failed"], data["ok"], data["p50_ms"], data["p95_ms"]) == (
        1,
        1,
        False,
        15,
        35,
    )
    assert {"name", "status", "passed", "delay_ms", "execution_ms", "latency_ms", "cold", "error"} <= set(
        data["tests"][0]
    )
    assert data["cold"] == {"count": 1, "p50_ms": 35, "p95_ms": 35}
    assert data["warm"] == {"count": 1, "p50_ms": 15, "p95_ms": 15}


def test_plain_lines_when_not_a_terminal() -> None:
    buffer = io.StringIO()
    reports.print_table(REPORT, Console(file=buffer, force_terminal=False, width=200))
    assert buffer.getvalue().splitlines() == [
        "PASS echo: COMPLETED delay 10 ms, execution 20 ms, latency 35 ms cold",
        "FAIL bad | name: COMPLETED delay 5 ms, execution 6 ms, latency 15 ms",
        "  - output.sum: expected 6, got 7",
        "validation FAILED: 1 passed, 1 failed on ep1 (p50 15 ms, p95 35 ms, wall 40 ms)",
        "cold: 1 (p50 35 ms, p95 35 ms); warm: 1 (p50 15 ms, p95 15 ms)",
    ]


def test_a_table_on_a_terminal() -> None:
    buffer = io.StringIO()
    reports.print_table(REPORT, Console(file=buffer, force_terminal=True, width=120, color_system=None))
    text = buffer.getvalue()
    assert "validation on ep1" in text
    assert "bad | name: output.sum: expected 6, got 7" in text
    assert "┃ case" in text


def test_junit_xml(tmp_path: Path) -> None:
    path = tmp_path / "out.xml"
    reports.write_junit(REPORT, path)
    suite = ET.parse(path).getroot().find("testsuite")
    assert suite is not None
    assert (suite.get("tests"), suite.get("failures"), suite.get("time")) == ("2", "1", "0.040")
    first, second = suite.findall("testcase")
    assert (first.get("name"), first.get("classname"), first.get("time")) == ("echo", "ep1", "0.035")
    failure = second.find("failure")
    assert failure is not None
    assert (failure.get("message"), failure.text) == (
        "output.sum: expected 6, got 7",
        "output.sum: expected 6, got 7",
    )


def test_junit_into_a_missing_folder_is_one_error_and_no_file(tmp_path: Path) -> None:
    with pytest.raises(FileWriteError, match=r"^cannot write the JUnit report .*/nope/out.xml: "):
        reports.write_junit(REPORT, tmp_path / "nope" / "out.xml")


def test_step_summary_escapes_table_cells() -> None:
    markdown = reports.step_summary(REPORT)
    assert "| bad \\| name | **FAIL** | COMPLETED | 5 | 6 | 15 |  |" in markdown
    assert "- **bad \\| name**: output.sum: expected 6, got 7" in markdown
    assert markdown.startswith("### ❌ validation FAILED: 1 passed, 1 failed on ep1")


def test_step_summary_cells_carry_no_raw_html() -> None:
    # GitHub renders HTML in a step summary: a case name or error must not become markup.
    assert reports.markdown_cell("<b>x</b> & <img src=y>") == "&lt;b&gt;x&lt;/b&gt; &amp; &lt;img src=y&gt;"


def test_step_summary_only_when_the_variable_is_set(tmp_path: Path) -> None:
    assert reports.append_step_summary("x", {}) is None
    target = tmp_path / "summary.md"
    assert reports.append_step_summary("x\n", {"GITHUB_STEP_SUMMARY": str(target)}) == target
    assert target.read_text() == "x\n"


def test_a_step_summary_that_cannot_be_written_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match=r"^GITHUB_STEP_SUMMARY=.*: cannot append: Is a directory$"):
        reports.append_step_summary("x", {"GITHUB_STEP_SUMMARY": str(tmp_path)})
