"""A validation report for people and CI: a rich table in a terminal (plain lines elsewhere),
JUnit XML (read by GitHub, GitLab, Jenkins; the `junit.xsd` subset every reader takes:
``testsuites > testsuite > testcase > failure``), and Markdown for ``$GITHUB_STEP_SUMMARY``.

Every text here comes from the report, whose failure lines were masked by the runner.
"""

from __future__ import annotations

import html
import os
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from deploy.ci import append_github_file
from deploy.errors import FileWriteError
from deploy.release.validate import CaseResult, ValidationReport

#: The variable GitHub Actions sets to the job's Markdown summary file.
STEP_SUMMARY = "GITHUB_STEP_SUMMARY"

__all__ = ["STEP_SUMMARY", "append_step_summary", "print_table", "step_summary", "write_junit"]


def _ms(value: int | None) -> str:
    return "-" if value is None else f"{value:,}"


def _seconds(value: int | None) -> str:
    return f"{(value or 0) / 1000:.3f}"


def headline(report: ValidationReport) -> str:
    verdict = "passed" if report.ok else "FAILED"
    p50, p95 = _ms(report.p50_ms), _ms(report.p95_ms)
    return (
        f"validation {verdict}: {report.passed} passed, {report.failed} failed on {report.endpoint_id} "
        f"(p50 {p50} ms, p95 {p95} ms, wall {_ms(report.wall_ms)} ms)"
    )


def cold_warm_line(report: ValidationReport) -> str:
    data = report.to_json()
    cold, warm = data["cold"], data["warm"]
    return (
        f"cold: {cold['count']} (p50 {_ms(cold['p50_ms'])} ms, p95 {_ms(cold['p95_ms'])} ms); "
        f"warm: {warm['count']} (p50 {_ms(warm['p50_ms'])} ms, p95 {_ms(warm['p95_ms'])} ms)"
    )


def _plain_line(result: CaseResult) -> str:
    verdict = "PASS" if result.passed else "FAIL"
    cold = " cold" if result.cold else ""
    line = (
        f"{verdict} {result.name}: {result.status} delay {_ms(result.delay_ms)} ms, "
        f"execution {_ms(result.execution_ms)} ms, latency {_ms(result.latency_ms)} ms{cold}"
    )
    return line + "".join(f"\n  - {failure}" for failure in result.failures)


def print_table(report: ValidationReport, console: Console) -> None:
    """A rich table on a terminal; plain lines otherwise (CI logs are read by grep). The case
    files' warnings are not repeated here: the caller logs them on stderr as they are found."""
    if console.is_terminal:
        console.print(_table(report))
        for result in report.tests:
            for failure in result.failures:
                console.print(f"[red]{escape(result.name)}[/red]: {escape(failure)}", soft_wrap=True)
    else:
        for result in report.tests:
            console.print(_plain_line(result), markup=False, soft_wrap=True)
    console.print(headline(report), markup=False, soft_wrap=True)
    console.print(cold_warm_line(report), markup=False, soft_wrap=True)


def _table(report: ValidationReport) -> Table:
    table = Table(title=f"validation on {report.endpoint_id}")
    for column in ("case", "result", "status", "delay ms", "execution ms", "latency ms", "cold"):
        table.add_column(column, justify="right" if column.endswith("ms") else "left")
    for result in report.tests:
        verdict = "[green]pass[/green]" if result.passed else "[red]FAIL[/red]"
        table.add_row(
            escape(result.name),
            verdict,
            escape(result.status),
            _ms(result.delay_ms),
            _ms(result.execution_ms),
            _ms(result.latency_ms),
            "cold" if result.cold else "",
        )
    return table


# -- JUnit XML ----------------------------------------------------------------------------


def junit_xml(report: ValidationReport, *, suite: str = "rpdeploy validate") -> bytes:
    root = ET.Element("testsuites", name=suite)
    element = ET.SubElement(
        root,
        "testsuite",
        name=f"{suite} {report.endpoint_id}",
        tests=str(len(report.tests)),
        failures=str(report.failed),
        errors="0",
        skipped="0",
        time=_seconds(report.wall_ms),
    )
    for result in report.tests:
        case = ET.SubElement(
            element,
            "testcase",
            name=result.name,
            classname=report.endpoint_id,
            time=_seconds(result.latency_ms),
        )
        if not result.passed:
            failure = ET.SubElement(
                case, "failure", message=result.failures[0] if result.failures else "failed"
            )
            failure.text = "\n".join(result.failures)
        details = {
            "status": result.status,
            "job_id": result.job_id,
            "worker_id": result.worker_id,
            "delay_ms": result.delay_ms,
            "execution_ms": result.execution_ms,
            "cold": result.cold,
            "source": result.source,
        }
        ET.SubElement(case, "system-out").text = "\n".join(f"{k}: {v}" for k, v in details.items())
    ET.indent(root)
    document: bytes = ET.tostring(root, encoding="utf-8", xml_declaration=True)
    return document + b"\n"


def write_junit(report: ValidationReport, path: Path | str) -> None:
    """Write the JUnit XML whole (a temporary file renamed into place: never half a file)."""
    target = Path(path)
    temporary = target.with_name(f".{target.name}.tmp")
    try:
        temporary.write_bytes(junit_xml(report))
        temporary.replace(target)
    except OSError as exc:
        temporary.unlink(missing_ok=True)
        raise FileWriteError(f"cannot write the JUnit report {target}: {exc.strerror}") from None


# -- GitHub step summary ------------------------------------------------------------------


def markdown_cell(text: str) -> str:
    """Text safe inside a Markdown table cell: pipes and line breaks would break the table, and
    GitHub renders raw HTML (``<b>``, ``<img>``), so ``&``, ``<`` and ``>`` become entities."""
    text = html.escape(text, quote=False)
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\r", " ").replace("\n", " ")


def step_summary(report: ValidationReport) -> str:
    """The run as GitHub-flavoured Markdown: the verdict, a table, the failures."""
    _cell = markdown_cell
    lines = [
        f"### {'✅' if report.ok else '❌'} {_cell(headline(report))}",
        "",
        f"{_cell(cold_warm_line(report))}",
        "",
        "| case | result | status | delay ms | execution ms | latency ms | cold |",
        "|---|---|---|---:|---:|---:|---|",
    ]
    for r in report.tests:
        verdict = "pass" if r.passed else "**FAIL**"
        lines.append(
            f"| {_cell(r.name)} | {verdict} | {_cell(r.status)} | {_ms(r.delay_ms)} | {_ms(r.execution_ms)} "
            f"| {_ms(r.latency_ms)} | {'cold' if r.cold else ''} |"
        )
    failed = [r for r in report.tests if not r.passed]
    if failed:
        lines += ["", "#### Failures", ""]
        lines += [f"- **{_cell(r.name)}**: {_cell(failure)}" for r in failed for failure in r.failures]
    return "\n".join(lines) + "\n"


def append_step_summary(markdown: str, environ: Mapping[str, str] | None = None) -> Path | None:
    """Append to ``$GITHUB_STEP_SUMMARY`` when it is set (in one write); the file, else None."""
    return append_github_file(STEP_SUMMARY, markdown, os.environ if environ is None else environ)
