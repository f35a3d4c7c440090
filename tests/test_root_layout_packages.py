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

from click.testing import Result

from deploy.config import load_config
from deploy.image.build import plan_build
from deploy.render import render_project
from tests.conftest import MakeProject
from tests.emulator.helpers import EmulatorProcess
from tests.test_image_docker import as_json, commit, engine, git, invoke, project  # noqa: F401 - fixtures
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


def test_root_layout_image_imports_its_local_package_under_the_emulator(
    project: Callable[..., tuple[Path, str]],  # noqa: F811 - the fixture imported above
    engine: Any,  # noqa: F811 - removes this run's images at the end
    run_cli: Run,
    tmp_path: Path,
) -> None:
    root, _ = project(strategy="baked")
    config = (root / "rpdeploy.yaml").read_text()
    config = config.replace("requirements: worker/requirements.txt", "requirements: requirements.txt")
    config = config.replace(
        "handler:\n  path: worker\n  file: handler.py", 'handler:\n  path: "."\n  file: rp_handler.py'
    )
    (root / "rpdeploy.yaml").write_text(config)
    (root / "rp_handler.py").write_text(ROOT_HANDLER)
    for name, text in PACKAGES.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    (root / "requirements.txt").write_text("runpod==1.12.0\n")
    git(root, "rm", "-q", "-r", "worker")
    git(root, "add", "-A")
    commit(root, "root layout with a local package")
    built = invoke(run_cli, root, "push", "--build", "-o", "json")
    assert built.exit_code == 0, built.stderr
    image = as_json(built, "push")["image"]

    emulator = EmulatorProcess(tmp_path / "emulator").start()
    try:
        endpoint = emulator.api.create_endpoint(image=image, workers={"min": 0, "max": 1, "idleTimeout": 5})
        job = emulator.api.submit(endpoint["id"], {"name": "pkg"})
        view = emulator.api.wait_status(endpoint["id"], job, {"COMPLETED", "FAILED"}, timeout=180)
        assert view["status"] == "COMPLETED", f"{view}\n{emulator.log()[-3000:]}"
        assert view["output"] == {"greeting": "hello pkg!"}
        emulator.api.rest("DELETE", f"/v2/serverless/{endpoint['id']}")
    finally:
        emulator.stop()
        emulator.remove_volumes()
