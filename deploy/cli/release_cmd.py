"""`rpdeploy release`: render, build, push; then per environment deploy, validate, roll back on failure."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click
from rich.console import Console

from deploy.ci import secret_values, write_github_output
from deploy.cli.apply_cmd import force_timeout_options
from deploy.cli.build_cmd import build_with_progress
from deploy.cli.deploy_options import connect, environ_for, image_options, wait_timeout
from deploy.cli.options import check_junit_path, config_option, validation_options
from deploy.cli.output import Context, cli_command
from deploy.cli.plan_cmd import print_plan
from deploy.cli.push_cmd import push_built
from deploy.cli.target import target_option
from deploy.cli.validate_cmd import LogListener
from deploy.config import LoadedConfig, load_config
from deploy.errors import ExitCode, UsageError
from deploy.image import envbuild
from deploy.image.push_record import deploy_image
from deploy.image.tags import default_image
from deploy.release import desired, reports
from deploy.release.cases import load_cases
from deploy.release.pipeline import Stage, StageOptions, run_stage
from deploy.release.summary import plan_lines
from deploy.release.validate import ValidationReport
from deploy.render import render_project, write_files

#: The environment `--promote` deploys to once the first one passed.
PROMOTE_TO = "production"


@dataclass
class Step:
    """One step of the release as shown and recorded: what it was, how long, how it ended."""

    step: str
    seconds: float
    detail: str

    def to_json(self) -> dict[str, Any]:
        return {"step": self.step, "seconds": round(self.seconds, 3), "detail": self.detail}


@dataclass
class ReleaseResult:
    image: str
    built: bool
    steps: list[Step] = field(default_factory=list)
    stages: list[tuple[Stage, LoadedConfig]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(stage.ok for stage, _ in self.stages)

    @property
    def exit_code(self) -> ExitCode:
        return ExitCode.OK if self.ok else ExitCode.FAILED

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "image": self.image,
            "digest": self.image.partition("@")[2] or None,
            "built": self.built,
            "steps": [step.to_json() for step in self.steps],
            "environments": [stage.to_json(loaded) for stage, loaded in self.stages],
            "rolled_back": [stage.env for stage, _ in self.stages if stage.rollback is not None],
            "scaled_to_zero": [stage.env for stage, _ in self.stages if stage.scaled_to_zero],
        }

    def print_text(self, console: Console) -> None:
        console.print(f"image: {self.image}", markup=False)
        for stage, loaded in self.stages:
            console.print(f"\n== {stage.env}", markup=False)
            print_plan(console, stage.applied.plan, loaded)
            console.print(f"deploy: {stage.deploy_line}", markup=False)
            if stage.report is not None:
                reports.print_table(stage.report, console)
            console.print(stage.verdict, markup=False)
        console.print("", markup=False)
        for step in self.steps:
            console.print(f"{step.step:<28} {step.seconds:7.1f} s  {step.detail}", markup=False)
        console.print("release: " + ("passed" if self.ok else "FAILED"), markup=False)

    def step_summary(self) -> str:
        """The release as Markdown for $GITHUB_STEP_SUMMARY (and the GitHub release notes): the
        verdict, the image, the steps table, then per environment its plan (changes, preflight,
        cost), its releases (before, deployed, rolled back to), its verdict and its cases.
        Table cells and verdicts are escaped (reports.markdown_cell): an error message holding
        ``|`` or HTML cannot break the table."""
        cell = reports.markdown_cell
        verdict = "✅ release passed" if self.ok else "❌ release FAILED"
        lines = [f"## {verdict}", "", f"Image: `{self.image}`", "", "| step | seconds | |", "|---|---:|---|"]
        lines += [f"| {cell(s.step)} | {s.seconds:.1f} | {cell(s.detail)} |" for s in self.steps]
        lines.append("")
        for stage, loaded in self.stages:
            # A fenced block shows the plan as the terminal does; a backtick could close it.
            shown = [line.replace("`", "'") for line in plan_lines(stage.applied.plan, loaded)]
            lines += [f"### {cell(stage.env)}", "", "```text", *shown, "```", ""]
            lines += [f"Releases: {cell(_releases(stage))}", "", f"**{cell(stage.verdict)}**", ""]
            if stage.report is not None:
                lines.append(reports.step_summary(stage.report))
        return "\n".join(lines) + "\n"


def _releases(stage: Stage) -> str:
    """The endpoint's releases in one line: the one before, the one deployed, the rollback."""
    deployed = f"v{stage.applied.version}" if stage.applied.version is not None else "none"
    before = f"v{stage.previous_version}" if stage.previous_version is not None else "none (new endpoint)"
    line = f"before {before}, deployed {deployed}"
    if stage.rollback is not None:
        line += f", rolled back to v{stage.previous_version} as v{stage.rollback.version}"
    return line


@contextmanager
def _step(ctx: Context, result: ReleaseResult, name: str) -> Iterator[Callable[[str], None]]:
    """Time one step, log its start, record it with the detail the body sets."""
    ctx.log(f"release: {name}")
    detail: list[str] = [""]
    started = time.perf_counter()
    yield lambda text: detail.__setitem__(0, text)
    result.steps.append(Step(name, time.perf_counter() - started, detail[0]))


def _build_and_push(ctx: Context, loaded: LoadedConfig, result: ReleaseResult) -> None:
    """render -> build -> push, each the same code as its own command; the push record is written."""
    with _step(ctx, result, "render") as said:
        rendered = render_project(loaded, default_image(loaded))
        written = write_files(rendered, loaded.root)
        said(", ".join(path.name for path in written))
    with _step(ctx, result, "build") as said:
        record = build_with_progress(ctx, loaded, builder=None, no_cache=False, tags=())
        rebuilt = sum(1 for s in record.steps if not s.cached)
        said(f"{record.image} ({rebuilt}/{len(record.steps)} steps rebuilt)")
    with _step(ctx, result, "push") as said:
        pushed = push_built(ctx, loaded, record)
        said(pushed.image)


def _env_archive(ctx: Context, loaded: LoadedConfig, result: ReleaseResult, environ: dict[str, str]) -> None:
    """`rpdeploy env build --push` as a step, for a slim image with ``runtime.s3``
    (`envbuild.distinct_archives`): the first cold start then downloads the environment instead
    of installing it (a HEAD that finds the archive makes the step a no-op)."""
    with _step(ctx, result, "env archive") as said:
        said(envbuild.build_env(loaded, environ, push=True, log=ctx.log).summary)


def _merged(stages: list[Stage]) -> ValidationReport:
    """Every stage's cases in one report (case names prefixed by the environment) for one JUnit file."""
    validated = [(stage, stage.report) for stage in stages if stage.report is not None]
    tests = [
        dataclasses.replace(result, name=f"{stage.env}: {result.name}")
        for stage, report in validated
        for result in report.tests
    ]
    return ValidationReport(
        endpoint_id=", ".join(stage.applied.endpoint_id for stage, _ in validated),
        tests=tests,
        wall_ms=sum(report.wall_ms for _, report in validated),
    )


@click.command()
@config_option
@target_option
@click.option(
    "--env-first",
    default="staging",
    show_default=True,
    metavar="ENV",
    help="Environment deployed and validated first.",
)
@click.option(
    "--promote",
    is_flag=True,
    default=False,
    help=f"When the first environment passes, deploy the same digest to {PROMOTE_TO} and validate it.",
)
@validation_options
@click.option(
    "--skip-validation",
    is_flag=True,
    default=False,
    help="Deploy and wait for the rollout without running the cases (no --promote): a failed rollout"
    " still rolls back. For re-applying an image already validated (scripts/redeploy.sh).",
)
@image_options
@force_timeout_options
@cli_command
def release(
    ctx: Context,
    config_path: str,
    target: str,
    env_first: str,
    promote: bool,
    junit_path: Path | None,
    concurrency: int,
    skip_validation: bool,
    image: str | None,
    allow_mutable_tag: bool,
    force: bool,
    timeout: float | None,
) -> ReleaseResult:
    """Release: render, build, push, deploy to --env-first by digest, wait, validate; roll back on failure.

    The first environment (default staging) gets the pushed image@digest (or --image
    REF, which skips render/build/push), the rollout is followed to the end, and the
    config's validation cases run as jobs. A slim image with runtime.s3 gets its
    environment archive built and uploaded first (`rpdeploy env build --push`; a no-op
    when it is there), so a first cold start downloads it instead of installing. A
    failure (or a rollout that does not finish within --timeout) rolls the endpoint
    back to the release it ran before, automatically, and the command exits 1. With
    --promote, a passing release goes on to production with the same digest, is
    validated there, and is rolled back there on failure. A release where nothing
    changed deploys nothing ("no change") and still validates. An endpoint the release
    created is, on failure, scaled to zero workers (no release to return to; kept for
    its logs, not billing). --skip-validation deploys and waits for the rollout only (a
    failed rollout still rolls back).
    In GitHub Actions, a summary goes to $GITHUB_STEP_SUMMARY and image/digest/endpoint
    ids to $GITHUB_OUTPUT.

    \b
    Examples:
      rpdeploy release --target local --promote
      rpdeploy release --env-first staging --promote --junit validation.xml
      rpdeploy release --image registry.example/worker@sha256:... --env-first staging

    Exit codes: 0 released (every environment validated), 1 validation failed or the
    rollout failed or timed out (rolled back, or scaled to zero), preflight failed or
    build failed, 2 bad usage or config (S3 credentials missing for the env archive),
    3 Docker engine, registry, S3 or RunPod API unreachable.
    """
    # Always waits for the rollout: validating before the workers run the release would test the old one.
    if promote and env_first == PROMOTE_TO:
        raise UsageError(
            f"--env-first {PROMOTE_TO} with --promote: promote goes from one environment to another"
        )
    if promote and skip_validation:
        raise UsageError("--promote with --skip-validation: promote goes on only after a validation passed")
    check_junit_path(junit_path)
    environ = environ_for(target)
    # Every environment's config, then its cases, are read (and refused, exit 2) before anything
    # is built or deployed.
    first = desired.with_inline_secrets(load_config(config_path, env_first), environ)
    second = desired.with_inline_secrets(load_config(config_path, PROMOTE_TO), environ) if promote else None
    if second is not None and image is None:
        # It builds and pushes once, with the first environment's image settings.
        desired.check_promotion(first, second)
    envs = [(first, None if skip_validation else load_cases(first))]
    if second is not None:
        envs.append((second, load_cases(second)))
    if image is None:
        result = ReleaseResult("", built=True)
        _build_and_push(ctx, first, result)
        # One archive per place the environments' workers look (runtime: may differ per environment).
        for loaded in envbuild.distinct_archives(config for config, _ in envs):
            _env_archive(ctx, loaded, result, environ)
    else:
        result = ReleaseResult("", built=False)
    result.image = deploy_image(first, image, allow_mutable_tag=allow_mutable_tag)
    options = StageOptions(timeout=wait_timeout(True, timeout), force=force, concurrency=concurrency)
    for loaded, cases in envs:
        env = loaded.environment or env_first
        # One client per environment: its call counts (the deploy's reads and writes) are that stage's.
        with connect(environ) as api, _step(ctx, result, f"deploy+validate {env}") as said:
            stage = run_stage(
                api, loaded, result.image, cases, environ,
                options=options, progress=ctx.log, listener=LogListener(ctx),
            )  # fmt: skip
            said(stage.verdict)
        result.stages.append((stage, loaded))
        ctx.log(stage.verdict)
        if not stage.ok:
            break
    _reports(result, junit_path, first, environ)
    return result


def _reports(
    result: ReleaseResult, junit_path: Path | None, loaded: LoadedConfig, environ: dict[str, str]
) -> None:
    """JUnit XML, the step summary and the CI outputs, once the stages ran."""
    stages = [stage for stage, _ in result.stages]
    if junit_path is not None:
        reports.write_junit(_merged(stages), junit_path)
    reports.append_step_summary(result.step_summary(), environ)
    outputs = {"image": result.image, "digest": result.image.partition("@")[2]}
    outputs.update({f"{stage.env}_endpoint_id": stage.applied.endpoint_id for stage in stages})
    secret_vars = [s.from_env or s.name for s in loaded.config.secrets]
    write_github_output(outputs, environ, secrets=secret_values(secret_vars, environ))
