"""`rpdeploy release`'s step summary (also the GitHub release notes), without an API: it carries
each environment's preflight, cost and releases (issue 13), and an error message cannot break
its tables. The same summary from a real release is checked in tests/test_workflows_steps.py."""

from __future__ import annotations

import re
from pathlib import Path

from deploy.cli.release_cmd import ReleaseResult, Step
from deploy.config import LoadedConfig, load_config
from deploy.release.apply import Applied
from deploy.release.checks import Check
from deploy.release.pipeline import Stage
from deploy.release.plan import Plan
from tests.conftest import MakeProject

IMAGE = "r/w@sha256:" + "1" * 64


def stage(root: Path, *, rollback: bool) -> tuple[Stage, LoadedConfig]:
    loaded = load_config(str(root / "rpdeploy.yaml"), "staging")
    preflight = [Check("gpu.pools", ok=False, detail="pool ADA_24 | short: 0 of 2 free", where="x")]
    cost = {"always_on": 0.0, "ceiling": 1.116}
    plan = Plan("demo-staging", "ep1", "update", [], {}, None, {}, IMAGE, preflight=preflight, cost=cost)
    applied = Applied(plan, "ep1", 5, {"reads": 1, "writes": 1})
    back = Applied(plan, "ep1", 6, {"reads": 1, "writes": 1}) if rollback else None
    error = "rollout of v5: worker w1 | exited <b>1</b>"
    return Stage("staging", applied, 4, None, rollout_error=error, rollback=back), loaded


def summary(root: Path, detail: str, *, rollback: bool) -> str:
    """The step summary of a release whose one stage failed (``detail``: its step's cell)."""
    result = ReleaseResult(IMAGE, built=False)
    result.steps.append(Step("deploy+validate staging", 1.0, detail))
    result.stages.append(stage(root, rollback=rollback))
    return result.step_summary()


def test_summary_has_preflight_cost_and_releases(make_project: MakeProject) -> None:
    markdown = summary(make_project(), "FAILED (worker | exited)", rollback=True)
    assert "preflight:" in markdown
    assert "pool ADA_24 | short" in markdown, "the plan block is fenced: its text as the terminal shows it"
    assert "cost: $0.00/h always-on, up to $1.116/h" in markdown
    assert "Releases: before v4, deployed v5, rolled back to v4 as v6" in markdown


def test_an_error_message_cannot_break_the_tables(make_project: MakeProject) -> None:
    markdown = summary(make_project(), "FAILED (worker | exited)\nnext", rollback=False)
    assert "| deploy+validate staging | 1.0 | FAILED (worker \\| exited) next |" in markdown
    verdict = next(line for line in markdown.splitlines() if line.startswith("**staging: FAILED"))
    assert "worker w1 \\| exited &lt;b&gt;1&lt;/b&gt;" in verdict
    table = [line for line in markdown.splitlines() if line.startswith("| ")]
    # Three columns: four unescaped pipes on every row, whatever the messages hold.
    assert all(len(re.findall(r"(?<!\\)\|", line)) == 4 for line in table), table
