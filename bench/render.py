"""Render time for the reference worker: config load + all templates, in-process and via the CLI.

Writes bench/render.json. Run: .venv/bin/python bench/render.py
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from deploy.config import load_config  # noqa: E402
from deploy.render import render_project  # noqa: E402

IMAGE = "127.0.0.1:5000/rpdeploy/echo-worker:sha-0000000"


def in_process(runs: int = 200) -> list[float]:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        render_project(load_config(REPO / "rpdeploy.yaml", "production"), IMAGE)
        times.append((time.perf_counter() - started) * 1000)
    return times


def cli(runs: int = 10) -> list[float]:
    script = Path(sys.executable).parent / "rpdeploy"
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run([str(script), "render", "--check"], cwd=REPO, check=True, capture_output=True)
        times.append((time.perf_counter() - started) * 1000)
    return times


def main() -> None:
    render_ms, cli_ms = in_process(), cli()
    result = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "render_in_process_ms": {
            "median": round(statistics.median(render_ms), 2),
            "p90": round(sorted(render_ms)[int(len(render_ms) * 0.9)], 2),
        },
        "render_check_cli_ms": {"median": round(statistics.median(cli_ms), 1), "min": round(min(cli_ms), 1)},
    }
    (REPO / "bench" / "render.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
