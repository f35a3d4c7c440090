"""The repository-root layout (``handler: {path: ".", file: rp_handler.py}``) gets its local
packages into the image: ``import pkg`` in the handler works in the built worker.

The allowlist used to let in only top-level ``*.py``, ``handler.module`` and the
requirements, so a ``pkg/__init__.py`` beside the handler was silently left out and the
worker failed at import. Every importable folder beside the handler is let in now, except
folders that are never the worker's (tests, build output, environments, hidden folders).
"""

from __future__ import annotations

import tarfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result

from deploy.config import load_config
from deploy.image.build import plan_build
from deploy.render import render_project
from tests.conftest import MakeProject
from tests.test_image_docker import engine, project, push_root_layout, run_one_job  # noqa: F401 - fixtures
from tests.test_image_render_safety import IMAGE, ROOT_LAYOUT, committed

Run = Callable[..., Result]

PACKAGES = {
    "greeting/__init__.py": "",
    "greeting/words.py": "def greet(name):\n    return {'greeting': 'hello ' + name}\n",
    "greeting/data/__init__.py": "SUFFIX = '!'\n",
    "src_helpers/__init__.py": "X = 1\n",
}
NOT_THE_WORKER = {
    "tests/__init__.py": "",
    "tests/test_handler.py": "x\n",
    "build/__init__.py": "",
    "docs/__init__.py": "",
    ".hidden/__init__.py": "",
    "my-tool/__init__.py": "",
    "notes/readme.md": "x\n",
    "greeting/__pycache__/words.cpython-311.pyc": "x\n",
}


def test_root_layout_context_holds_local_packages_and_nothing_else(make_project: MakeProject) -> None:
    root = committed(
        make_project,
        ROOT_LAYOUT,
        files={
            "rp_handler.py": "from greeting.words import greet\n",
            "requirements.txt": "runpod==1.12.0\n",
            **PACKAGES,
            **NOT_THE_WORKER,
        },
    )
    loaded = load_config(root / "rpdeploy.yaml", None)
    allowlist = render_project(loaded, IMAGE).files[".dockerignore"].splitlines()
    assert "!greeting" in allowlist
    assert "!src_helpers" in allowlist
    with tarfile.open(fileobj=plan_build(loaded, {}).context.open()) as tar:
        names = set(tar.getnames())
    assert set(PACKAGES) <= names
    assert not names & set(NOT_THE_WORKER)


ROOT_HANDLER = """\
import runpod

from greeting.words import greet
from greeting.data import SUFFIX


def handler(job):
    out = greet(job["input"]["name"])
    out["greeting"] += SUFFIX
    return out


runpod.serverless.start({"handler": handler})
"""


@pytest.mark.docker  # builds and pushes an image, then runs it under the emulator
def test_root_layout_image_imports_its_local_package_under_the_emulator(
    project: Callable[..., tuple[Path, str]],  # noqa: F811 - the fixture imported above
    engine: Any,  # noqa: F811 - removes this run's images at the end
    run_cli: Run,
    tmp_path: Path,
) -> None:
    image = push_root_layout(
        project, run_cli, {"rp_handler.py": ROOT_HANDLER, **PACKAGES}, "root layout with a local package"
    )
    view = run_one_job(image, {"name": "pkg"}, tmp_path / "emulator")
    assert view["output"] == {"greeting": "hello pkg!"}
