"""`rpdeploy validate`: run the validation cases as real jobs on a deployed endpoint."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, TypeVar

import click
from rich.console import Console

from deploy.api import RunPodApi
from deploy.api.client import KEY_VARIABLE
from deploy.cli.options import check_junit_path, config_option, env_option, validation_options
from deploy.cli.output import Context, cli_command
from deploy.cli.target import target_environ, target_option
from deploy.config import LoadedConfig, load_config
from deploy.config.mask import Masker
from deploy.errors import ExitCode, UsageError
from deploy.release import reports, validate
from deploy.release.cases import Case, CaseSet, load_cases, read_tests_file, require_cases
from deploy.release.validate import CaseResult, ValidationReport

F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True)
class ValidateCommandResult:
    report: ValidationReport
    endpoint_name: str | None = None

    @property
    def exit_code(self) -> ExitCode:
        return ExitCode.OK if self.report.ok else ExitCode.FAILED

    def to_json(self) -> dict[str, Any]:
        return {"endpoint_name": self.endpoint_name, **self.report.to_json()}

    def print_text(self, console: Console) -> None:
        reports.print_table(self.report, console)


@dataclass
class LogListener:
    """One stderr line per finished case (the table comes at the end, on stdout)."""

    ctx: Context

    def case_started(self, case: Case) -> None:
        return None

    def case_finished(self, result: CaseResult) -> None:
        verdict = "pass" if result.passed else "FAIL"
        self.ctx.log(f"{verdict} {result.name} ({result.status}, {result.latency_ms or 0} ms)")


def file_option(flag: str, name: str, text: str) -> Callable[[F], F]:
    """An optional ``PATH`` option for a file, passed as a Path."""
    return click.option(
        flag, name, type=click.Path(dir_okay=False, path_type=Path), default=None, metavar="PATH", help=text
    )


@click.command(name="validate")
@config_option
@env_option
@target_option
@click.option("--endpoint", "endpoint_id", default=None, metavar="ID", help="Validate this endpoint id.")
@file_option(
    "--cases",
    "cases_path",
    "A Hub tests.json to run instead of the config's cases (no config needed with --endpoint).",
)
@validation_options
@cli_command
def validate_command(
    ctx: Context,
    config_path: str,
    environment: str | None,
    target: str,
    endpoint_id: str | None,
    cases_path: Path | None,
    junit_path: Path | None,
    concurrency: int,
) -> ValidateCommandResult:
    """Run the validation cases as jobs on the endpoint and check every answer.

    Cases: the config's tests.path (RunPod Hub's .runpod/tests.json form, read as
    leniently as the Hub) and tests.cases (expected status, output, times, stream
    chunks, free-text checks); or --cases PATH. The endpoint is found by the config's
    name for --env, or given with --endpoint ID (any endpoint). A case past its timeout
    is cancelled. With $GITHUB_STEP_SUMMARY set, a Markdown summary is appended.

    \b
    Examples:
      rpdeploy validate --env staging --target local
      rpdeploy validate --endpoint abc123 --cases .runpod/tests.json --junit report.xml

    Exit codes: 0 every case passed, 1 a case failed, 2 a bad case file or config (one
    line naming file and case) or no such endpoint, 3 the API is unreachable or refused.
    """
    # The config is needed for its cases and to find the endpoint by name; not for --cases + --endpoint.
    check_junit_path(junit_path)
    loaded = load_config(config_path, environment) if cases_path is None or endpoint_id is None else None
    cases = _cases(loaded, cases_path)
    environ = target_environ(target)
    cases = replace(cases, masker=_with_key(cases.masker, environ))
    for warning in cases.warnings:
        ctx.log(f"warning: {warning}")
    if cases_path is not None:  # load_cases checks the config's own
        require_cases(cases, str(cases_path))
    with RunPodApi.from_environ(environ) as api:
        name = None
        if endpoint_id is None and loaded is not None:
            name = loaded.config.endpoint_name(environment)
            endpoint_id = _endpoint_named(api, name, environment)
        if endpoint_id is None:  # pragma: no cover - the config is loaded whenever --endpoint is missing
            raise UsageError("give --endpoint ID or a config with the endpoint")
        ctx.log(f"validating {endpoint_id}: {len(cases.cases)} case(s), {concurrency} at once")
        report = validate.run(api, endpoint_id, cases, concurrency=concurrency, listener=LogListener(ctx))
    if junit_path is not None:
        reports.write_junit(report, junit_path)
    reports.append_step_summary(reports.step_summary(report), os.environ)
    return ValidateCommandResult(report, name)


def _cases(loaded: LoadedConfig | None, cases_path: Path | None) -> CaseSet:
    if cases_path is None:
        if loaded is None:  # pragma: no cover - loaded whenever --cases is missing
            raise UsageError("give --cases PATH or a config with tests")
        return load_cases(loaded)
    default_timeout = loaded.config.tests.timeout_ms if loaded is not None else 300000
    cases = read_tests_file(cases_path, default_timeout_ms=default_timeout)
    return replace(cases, masker=loaded.masker) if loaded is not None else cases


def _with_key(masker: Masker, environ: dict[str, str]) -> Masker:
    key = environ.get(KEY_VARIABLE, "").strip()
    return Masker({**masker.secrets, key: KEY_VARIABLE}) if key else masker


def _endpoint_named(api: RunPodApi, name: str, environment: str | None) -> str:
    found = api.find_endpoint(name)
    if found is None:
        env = f" --env {environment}" if environment else ""
        raise UsageError(
            f"no endpoint named {name!r} to validate",
            hint=f"deploy it first (rpdeploy apply{env}), or pass --endpoint ID",
        )
    return str(found["id"])
