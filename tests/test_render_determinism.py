"""Rendering gives the same bytes in every process, whatever the interpreter's hash seed.

Rendering twice in one process cannot see an order that comes from hashing (a ``set`` of
strings iterates in an order that changes with ``PYTHONHASHSEED``), so each render here
runs in its own interpreter with its own seed, and the files are compared byte for byte.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import BASE_CONFIG, MakeProject
from tests.render_scenarios import IMAGE, SCENARIOS

#: Seeds far enough apart that a hash-ordered collection of a few strings comes out in
#: different orders under at least two of them.
SEEDS = ("0", "1", "2", "3", "12345")

#: The root layout renders a .dockerignore of several entries (handler file, modules,
#: package, requirements): the output most exposed to a set's iteration order.
ROOT_LAYOUT = BASE_CONFIG.replace(
    "handler:\n  path: worker\n  file: handler.py\n",
    'handler:\n  path: "."\n  file: rp_handler.py\n  module: app.main\n',
)

RENDER = """
import json, sys
from pathlib import Path
from deploy.config import load_config
from deploy.render import render_project
image, projects = sys.argv[1], json.loads(sys.argv[2])
rendered = [
    render_project(load_config(Path(root) / "rpdeploy.yaml", environment), image).files
    for root, environment in projects
]
sys.stdout.write(json.dumps(rendered, ensure_ascii=False))
"""


def render_in_process(projects: list[tuple[str, str | None]], seed: str) -> bytes:
    """Every project rendered by one fresh interpreter under ``PYTHONHASHSEED=seed``."""
    done = subprocess.run(
        [sys.executable, "-c", RENDER, IMAGE, json.dumps(projects)],
        capture_output=True,
        env={**os.environ, "PYTHONHASHSEED": seed},
        check=False,
        cwd=Path(__file__).resolve().parent.parent,
    )
    assert done.returncode == 0, done.stderr.decode()
    return done.stdout


CASES = [(s.name, s.config, s.environment, s.files) for s in SCENARIOS] + [
    ("root-layout", ROOT_LAYOUT, None, {"rp_handler.py": "", "app/main.py": "", "worker/x.txt": ""})
]


def test_render_is_byte_identical_across_hash_seeds(make_project: MakeProject) -> None:
    projects = [
        (str(make_project(config, name=name, files=files)), environment)
        for name, config, environment, files in CASES
    ]
    outputs = {seed: render_in_process(projects, seed) for seed in SEEDS}
    first = outputs[SEEDS[0]]
    assert len(json.loads(first)) == len(CASES)
    for seed, output in outputs.items():
        assert output == first, f"PYTHONHASHSEED={seed} rendered different bytes than {SEEDS[0]}"
