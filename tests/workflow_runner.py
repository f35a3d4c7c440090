"""Run a job of this repository's GitHub workflows here, step by step, from the YAML itself.

The `run:` blocks are executed exactly as written (bash with GitHub's flags), with the
variables a runner gives them: GITHUB_OUTPUT (a fresh file per step, parsed into
``steps.<id>.outputs``), GITHUB_STEP_SUMMARY (one file per step, kept), RUNNER_TEMP,
GITHUB_WORKSPACE and, inside the composite action, GITHUB_ACTION_PATH. The composite action
``.github/actions/rpdeploy`` is expanded from its action.yml with its inputs and outputs.

What cannot run here is named, not faked: ``actions/checkout`` (the test's working directory
already is the checkout) and ``actions/setup-python`` (the test's own Python runs). Expressions
are the small subset the workflows may use outside `run:` (dotted lookups such as
``inputs.env`` or ``steps.x.outputs.y``, and ``always()`` in a step's `if:`): anything else
fails the test, which keeps the YAML thin.
"""

from __future__ import annotations

import re
import subprocess
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parent.parent
WORKFLOWS = REPO / ".github" / "workflows"
ACTION_DIR = REPO / ".github" / "actions" / "rpdeploy"
LOCAL_ACTIONS = ("$/.github/actions/rpdeploy", "./.github/actions/rpdeploy")
#: Remote actions that set up what this machine already has (see the module docstring).
NOT_RUN_HERE = ("actions/checkout@", "actions/setup-python@")

EXPRESSION = re.compile(r"\$\{\{\s*(.*?)\s*\}\}")
DOTTED = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*(\.[A-Za-z_][A-Za-z0-9_-]*)*")
#: GitHub's default for `shell: bash` (docs: "jobs.<job_id>.steps[*].shell").
BASH = ["bash", "--noprofile", "--norc", "-eo", "pipefail"]


def load(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(path.read_text(encoding="utf-8"))
    return data


def run_blocks(document: dict[str, Any]) -> list[tuple[str, str]]:
    """Every `run:` block of a workflow or an action, as (where, script)."""
    found: list[tuple[str, str]] = []
    jobs = document.get("jobs") or {"runs": document.get("runs", {})}
    for job_name, job in jobs.items():
        for index, step in enumerate(job.get("steps") or []):
            if "run" in step:
                found.append((f"{job_name}.steps[{index}] {step.get('name', '')}".strip(), step["run"]))
    return found


def lookup(expression: str, context: dict[str, Any]) -> str:
    """The value of a dotted ``expression`` in ``context`` as GitHub prints it ('' when absent)."""
    if not DOTTED.fullmatch(expression):
        raise NotImplementedError(f"expression outside the supported subset: {expression!r}")
    value: Any = context
    for part in expression.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def evaluate(text: Any, context: dict[str, Any]) -> str:
    return EXPRESSION.sub(lambda match: lookup(match.group(1), context), str(text))


def parse_outputs(text: str) -> dict[str, str]:
    """GitHub's output-file format: ``name=value`` lines and ``name<<DELIMITER`` blocks."""
    outputs: dict[str, str] = {}
    lines = iter(text.splitlines())
    for line in lines:
        if "<<" in line and ("=" not in line or line.index("<<") < line.index("=")):
            name, delimiter = line.split("<<", 1)
            block: list[str] = []
            for inner in lines:
                if inner == delimiter:
                    break
                block.append(inner)
            outputs[name] = "\n".join(block)
        elif "=" in line:
            name, value = line.split("=", 1)
            outputs[name] = value
    return outputs


@dataclass
class StepResult:
    where: str
    code: int
    outputs: dict[str, str]
    summary: str
    stdout: str
    stderr: str


@dataclass
class JobRun:
    """What a job's steps did: each step's result in order, and the outputs by step id."""

    steps: list[StepResult] = field(default_factory=list)
    outputs: dict[str, dict[str, str]] = field(default_factory=dict)
    #: The job's own `outputs:` (what a later job reads as ``needs.<job>.outputs``).
    job_outputs: dict[str, str] = field(default_factory=dict)

    @property
    def failed(self) -> bool:
        return any(step.code != 0 for step in self.steps)

    @property
    def summary(self) -> str:
        """The job's step summary as GitHub shows it: every step's summary file, in order."""
        return "".join(step.summary for step in self.steps)

    def log(self) -> str:
        return "\n".join(
            f"--- {step.where}: exit {step.code}\n{step.stdout}{step.stderr}" for step in self.steps
        )


@dataclass
class Runner:
    """Runs steps in ``workspace`` with ``environ`` as the runner's process environment."""

    workspace: Path
    temp: Path
    environ: dict[str, str]
    github: dict[str, Any]
    secrets: dict[str, str]

    def run_job(
        self, workflow: str, job_name: str, inputs: dict[str, Any], needs: dict[str, Any] | None = None
    ) -> JobRun:
        job = load(WORKFLOWS / workflow)["jobs"][job_name]
        context = {"github": self.github, "inputs": inputs, "secrets": self.secrets, "needs": needs or {}}
        job_env = {key: evaluate(value, context) for key, value in (job.get("env") or {}).items()}
        run = JobRun()
        self._steps(job["steps"], context, job_env, run, action_path=None)
        scope = {**context, "steps": {key: {"outputs": value} for key, value in run.outputs.items()}}
        run.job_outputs = {key: evaluate(value, scope) for key, value in (job.get("outputs") or {}).items()}
        return run

    def run_action(self, with_: dict[str, Any], env: dict[str, str] | None = None) -> JobRun:
        """The composite action alone, as a step ``id: action`` with ``with_`` as its inputs
        and ``env`` as the step's `env:` (where a caller puts its secrets)."""
        run = JobRun()
        context = {"github": self.github, "secrets": self.secrets}
        step = {"id": "action", "uses": LOCAL_ACTIONS[0], "with": with_, "env": env or {}}
        self._steps([step], context, {}, run, action_path=None)
        return run

    def _steps(
        self,
        steps: list[dict[str, Any]],
        context: dict[str, Any],
        env: dict[str, str],
        run: JobRun,
        action_path: Path | None,
    ) -> dict[str, dict[str, str]]:
        outputs: dict[str, dict[str, str]] = {}
        failed = False
        for index, step in enumerate(steps):
            condition = step.get("if")
            if condition not in (None, "always()"):
                raise NotImplementedError(f"step if: {condition!r}")
            if failed and condition != "always()":
                continue
            scope = {**context, "steps": {key: {"outputs": value} for key, value in outputs.items()}}
            step_env = {**env, **{k: evaluate(v, scope) for k, v in (step.get("env") or {}).items()}}
            where = evaluate(step.get("name") or step.get("uses") or f"step {index}", scope)
            if "run" in step:
                result = self._run(str(where), step["run"], step_env, action_path)
                run.steps.append(result)
                produced = result.outputs
                failed = failed or result.code != 0
            elif step["uses"] in LOCAL_ACTIONS:
                before = len(run.steps)
                produced = self._action(step, scope, step_env, run)
                failed = failed or any(s.code != 0 for s in run.steps[before:])
            elif step["uses"].startswith(NOT_RUN_HERE):
                continue
            else:
                raise NotImplementedError(f"a step this runner cannot run: {step['uses']}")
            if "id" in step:
                outputs[step["id"]] = produced
                if action_path is None:
                    run.outputs[step["id"]] = produced
        return outputs

    def _action(
        self, step: dict[str, Any], context: dict[str, Any], env: dict[str, str], run: JobRun
    ) -> dict[str, str]:
        action = load(ACTION_DIR / "action.yml")
        given = {key: evaluate(value, context) for key, value in (step.get("with") or {}).items()}
        unknown = set(given) - set(action["inputs"])
        if unknown:
            raise AssertionError(f"inputs the action does not declare: {sorted(unknown)}")
        inputs = {name: given.get(name, spec.get("default", "")) for name, spec in action["inputs"].items()}
        inner = {"github": context["github"], "inputs": inputs}
        steps = self._steps(action["runs"]["steps"], inner, env, run, action_path=ACTION_DIR)
        scope = {**inner, "steps": {key: {"outputs": value} for key, value in steps.items()}}
        return {name: evaluate(spec["value"], scope) for name, spec in action["outputs"].items()}

    def _run(self, where: str, script: str, env: dict[str, str], action_path: Path | None) -> StepResult:
        token = uuid.uuid4().hex[:8]
        script_file = self.temp / f"step-{token}.sh"
        output_file = self.temp / f"output-{token}"
        summary_file = self.temp / f"summary-{token}"
        script_file.write_text(script, encoding="utf-8")
        output_file.touch()
        summary_file.touch()
        environ = {
            **self.environ,
            **env,
            "GITHUB_ACTIONS": "true",
            "GITHUB_WORKSPACE": str(self.workspace),
            "GITHUB_OUTPUT": str(output_file),
            "GITHUB_STEP_SUMMARY": str(summary_file),
            "RUNNER_TEMP": str(self.temp),
        }
        if action_path is not None:
            environ["GITHUB_ACTION_PATH"] = str(action_path)
        done = subprocess.run(
            [*BASH, str(script_file)],
            cwd=self.workspace,
            env=environ,
            capture_output=True,
            text=True,
            check=False,
        )
        return StepResult(
            where=where,
            code=done.returncode,
            outputs=parse_outputs(output_file.read_text(encoding="utf-8")),
            summary=summary_file.read_text(encoding="utf-8"),
            stdout=done.stdout,
            stderr=done.stderr,
        )
