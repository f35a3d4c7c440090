"""The wheel ships the built-in templates, so `pip install rpdeploy` works in any repo."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

from tests.conftest import REPO


def test_wheel_contains_templates(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(tmp_path), str(REPO)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    wheel = next(tmp_path.glob("rpdeploy-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    for template in sorted((REPO / "templates").glob("*.j2")):
        assert f"deploy/templates/{template.name}" in names
    assert "deploy/py.typed" in names
    # RunPod's contract travels with the code that reads it (deploy.runpod).
    for data in ("spec/runpod-openapi-v2.json", "spec/runpod-openapi-v2-secrets.json", "spec/README.md",
                 "catalog.json"):  # fmt: skip
        assert f"deploy/runpod/{data}" in names
    assert any(n.endswith("entry_points.txt") for n in names)
