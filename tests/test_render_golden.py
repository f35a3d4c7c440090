"""Golden files: what each scenario renders, byte for byte (`pytest --update-golden` rewrites)."""

from __future__ import annotations

from pathlib import Path

import pytest

from deploy.config import load_config
from deploy.render import render_project
from tests.conftest import GOLDEN, MakeProject
from tests.render_scenarios import IMAGE, SCENARIOS, Scenario


def render_scenario(make_project: MakeProject, scenario: Scenario) -> dict[str, str]:
    root = make_project(scenario.config, name=scenario.name, files=scenario.files)
    result = render_project(load_config(root / "rpdeploy.yaml", scenario.environment), IMAGE)
    return {Path(name).name: content for name, content in result.files.items()}


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s.name for s in SCENARIOS])
def test_golden(make_project: MakeProject, scenario: Scenario, update_golden: bool) -> None:
    rendered = render_scenario(make_project, scenario)
    folder = GOLDEN / scenario.name
    if update_golden:
        folder.mkdir(parents=True, exist_ok=True)
        for old in folder.iterdir():
            old.unlink()
        for name, content in rendered.items():
            (folder / name).write_text(content)
    expected = {p.name: p.read_text() for p in sorted(folder.iterdir())}
    assert rendered == expected


def test_rendering_is_deterministic(make_project: MakeProject) -> None:
    first = render_scenario(make_project, SCENARIOS[0])
    again = Scenario("slim-again", SCENARIOS[0].config)
    second = render_scenario(make_project, again)
    assert first == second


def test_override_template_is_used(make_project: MakeProject) -> None:
    rendered = render_scenario(make_project, next(s for s in SCENARIOS if s.name == "overrides"))
    assert 'ENV APP_FLAVOUR="override"' in rendered["Dockerfile.slim"]
    assert '"--rp_log_level", "ERROR"' in rendered["Dockerfile.slim"]


def test_override_added_later_in_the_same_process_is_used(make_project: MakeProject) -> None:
    root = make_project(name="late-override")
    before = render_project(load_config(root / "rpdeploy.yaml"), IMAGE).files["Dockerfile.slim"]
    assert "LATE=1" not in before
    (root / "templates").mkdir()
    (root / "templates" / "Dockerfile.slim.j2").write_text(
        '{% extends "builtin/Dockerfile.slim.j2" %}'
        "{% block start %}\nENV LATE=1\n{{ super() }}{% endblock %}\n"
    )
    after = render_project(load_config(root / "rpdeploy.yaml"), IMAGE).files["Dockerfile.slim"]
    assert "ENV LATE=1" in after
