"""Release benchmark: the `make demo` release (`rpdeploy release --promote`) step by step, cold and warm.

Writes bench/release.json. Run with `.venv/bin/python bench/release.py` (the local stack must be
up: `scripts/stack.sh up`; its stack.env gives the index, the S3 server and its credentials).

What is measured, and how:
- a fresh emulator (`rpdeploy emulator serve` on a free port, empty state: no endpoint, no
  network volume, no worker) and a copy of the repository's reference project, committed in
  a temporary git repository; `rpdeploy release --promote -o json` as a fresh process, as CI
  and `make demo` run it; each step's seconds come from the command's own JSON record;
- cold: the first release on that emulator. Its endpoints and their network volume are new, and
  runtime.s3.prefix is one no run used before, so the release's env archive step builds and
  uploads the environment (when the stack's S3 credentials are in the environment) and the first
  worker downloads it, else the first worker installs worker/requirements.txt from the stack's
  index (what a fresh machine pays). The Docker build cache is the shared engine's and is not emptied (other
  engineers use it); the build step's record says how many steps it rebuilt;
- warm: the same release again: same digest, no write, no new release, validated again on warm
  workers (or workers that start from the environment already on the volume).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.conftest import copy_repo_project  # noqa: E402
from tests.emulator.helpers import API_KEY, EmulatorProcess  # noqa: E402

OUT = ROOT / "bench" / "release.json"


def stack_env() -> dict[str, str]:
    """The facts `scripts/stack.sh up` wrote (KEY=value lines)."""
    path = Path(os.environ.get("RPDEPLOY_STATE", ROOT / ".state")) / "stack.env"
    if not path.exists():
        sys.exit(f"bench/release.py: {path} is missing: run scripts/stack.sh up first")
    lines = [line for line in path.read_text().splitlines() if "=" in line and not line.startswith("#")]
    return dict(line.split("=", 1) for line in lines)


def git(root: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-C", str(root), "-c", "user.email=b@example.com", "-c", "user.name=bench", *args],
        check=True,
        capture_output=True,
    )


def project_copy(prefix: str) -> Path:
    """The reference project, its runtime.s3.prefix an unused one, committed."""
    root = copy_repo_project(Path(tempfile.mkdtemp(prefix="rpdeploy-bench-release-")))
    (root / ".gitignore").write_text("build/\n")
    config = (root / "rpdeploy.yaml").read_text()
    # runtime.s3.prefix, the one source of RPDEPLOY_S3_PREFIX: an endpoint.env value that
    # disagrees with it is a config error (it would make the workers read another prefix than
    # the release's env archive step writes).
    marker = "    prefix: envs/\n"
    assert marker in config, "rpdeploy.yaml changed: update bench/release.py"
    (root / "rpdeploy.yaml").write_text(config.replace(marker, f"    prefix: {prefix}\n"))
    git(root, "init", "-q", "-b", "main")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "bench")
    return root


def release(project: Path, env: dict[str, str]) -> tuple[float, dict[str, Any]]:
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "deploy", "release", "--promote", "--timeout", "900", "-o", "json"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    wall = time.perf_counter() - started
    envelope = json.loads(done.stdout)
    if envelope["status"] != "ok":
        sys.exit(f"release failed ({done.returncode}): {envelope.get('error')}\n{done.stderr[-3000:]}")
    data: dict[str, Any] = envelope["data"]
    return wall, data


def summary(wall: float, data: dict[str, Any]) -> dict[str, Any]:
    stages = {}
    for stage in data["environments"]:
        report = stage["validation"]
        stages[stage["env"]] = {
            "action": stage["deploy"]["action"],
            "api_calls": stage["deploy"]["api_calls"],
            "release": stage["deploy"]["release"]["version"],
            "validation": {k: report[k] for k in ("passed", "failed", "p50_ms", "p95_ms", "wall_ms")},
            "cold_cases": sum(1 for t in report["tests"] if t["cold"]),
        }
    return {
        "wall_s": round(wall, 1),
        "steps": {step["step"]: step["seconds"] for step in data["steps"]},
        "build": next(s["detail"] for s in data["steps"] if s["step"] == "build"),
        "image": data["image"],
        "environments": stages,
    }


def main() -> None:
    state = Path(tempfile.mkdtemp(prefix="rpdeploy-bench-release-state-"))
    emulator = EmulatorProcess(state / "emulator").start()
    project = project_copy(f"bench-{uuid.uuid4().hex[:12]}/")
    try:
        env = {
            **os.environ,
            **stack_env(),
            "RUNPOD_API_URL": f"{emulator.api.base}/v2",
            "RUNPOD_API_KEY": API_KEY,
        }
        env.pop("GITHUB_STEP_SUMMARY", None)
        env.pop("GITHUB_OUTPUT", None)
        cold = summary(*release(project, env))
        warm = summary(*release(project, env))
        result = {
            "date": datetime.now(tz=UTC).strftime("%Y-%m-%d"),
            "load_average_1m": round(os.getloadavg()[0], 1),
            "cold": cold,
            "warm": warm,
            "same_digest": cold["image"] == warm["image"],
        }
        OUT.write_text(json.dumps(result, indent=2) + "\n")
        print(json.dumps(result, indent=2))
    finally:
        emulator.stop()
        emulator.remove_volumes()
        shutil.rmtree(project, ignore_errors=True)


if __name__ == "__main__":
    main()
