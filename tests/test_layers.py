"""The import-linter contracts in pyproject.toml hold, and they break when a layer reaches up."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO

LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"


def lint_imports(root: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(root)}  # the copy's `deploy`, not the installed one
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache"], cwd=root, env=env, capture_output=True, text=True, check=False
    )


@pytest.fixture
def copy(tmp_path: Path) -> Path:
    shutil.copytree(REPO / "deploy", tmp_path / "deploy", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy2(REPO / "pyproject.toml", tmp_path / "pyproject.toml")
    return tmp_path


def append(path: Path, line: str) -> None:
    path.write_text(path.read_text() + f"\n{line}\n")


def test_the_repository_keeps_every_contract() -> None:
    done = lint_imports(REPO)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "0 broken" in done.stdout


def test_a_lower_layer_importing_the_cli_breaks_the_layers(copy: Path) -> None:
    assert lint_imports(copy).returncode == 0
    append(copy / "deploy" / "config" / "__init__.py", "import deploy.cli.output  # reaching up")
    done = lint_imports(copy)
    assert done.returncode == 1
    assert "deploy.config is not allowed to import deploy.cli" in done.stdout


def test_leaves_stay_leaves(copy: Path) -> None:
    append(copy / "deploy" / "ci.py", "import deploy.gitinfo  # a sibling leaf")
    done = lint_imports(copy)
    assert done.returncode == 1
    assert "deploy.ci is not allowed to import deploy.gitinfo" in done.stdout


def test_the_emulator_is_reached_only_through_its_package(copy: Path) -> None:
    # Once deploy/emulator has its __init__.py (the boundary, issue 8 §4) the contracts see it.
    (copy / "deploy" / "emulator" / "__init__.py").write_text('"""The emulator."""\n')
    render = copy / "deploy" / "render" / "__init__.py"
    append(render, "import deploy.emulator.settings  # the pipeline reaching into the emulator")
    done = lint_imports(copy)
    assert done.returncode == 1
    assert "deploy.render is not allowed to import deploy.emulator.settings" in done.stdout
