"""Deploy-engine benchmark: API calls and wall time of plan, no-op apply and image-change apply --wait.

Writes bench/deploy.json. Run with `.venv/bin/python bench/deploy.py [--runs N]` (the local stack
must be up: the registry serves the images). Against a fresh emulator (`rpdeploy emulator serve`
on a free port), with the repository's own reference project (rpdeploy.yaml: two GPU pools, two
runpod-secrets and one inline secret), deployed to the `staging` environment.

What is measured, and why that way:
- wall time of each command as users run it: a fresh `python -m deploy … -o json` process, so
  interpreter start and imports count (that is what a CI step pays);
- API calls: `apply` reports its own (`api_calls`: every HTTP request the client sent); `plan`
  does not, so its reads are counted in-process with the same code path (`prepare`);
- the image-change apply alternates between two images (the stack's base image mounted into two
  repositories), so every run is one PATCH and one new release, followed with --wait.
Targets (issue 9): a no-op apply makes 0 writes and at most 4 reads.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from deploy.api import RunPodApi  # noqa: E402
from deploy.config import load_config  # noqa: E402
from deploy.release import desired  # noqa: E402
from deploy.release.apply import prepare  # noqa: E402
from tests.conftest import copy_echo_project  # noqa: E402
from tests.emulator.helpers import API_KEY, EmulatorProcess  # noqa: E402
from tests.release.helpers import mount_image  # noqa: E402

OUT = ROOT / "bench" / "deploy.json"
SECRET_VALUES = {
    "AWS_ACCESS_KEY_ID": "bench-key-id",
    "AWS_SECRET_ACCESS_KEY": "bench-secret",
    "AWS_ENDPOINT_URL": "http://127.0.0.1:9000",
}


@dataclass
class Timing:
    wall: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)

    def summary(self) -> dict[str, float]:
        return {
            "wall_median_s": round(statistics.median(self.wall), 3),
            "cpu_median_s": round(statistics.median(self.cpu), 3),
            "cpu_min_s": round(min(self.cpu), 3),
        }


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run(project: Path, env: dict[str, str], timing: Timing | None, *args: str) -> dict[str, Any]:
    """Run ``rpdeploy <args> -o json`` as a fresh process (its wall and CPU seconds into ``timing``)."""
    started, cpu = time.perf_counter(), _children_cpu()
    done = subprocess.run(
        [sys.executable, "-m", "deploy", *args, "-o", "json"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if timing is not None:
        timing.wall.append(time.perf_counter() - started)
        timing.cpu.append(_children_cpu() - cpu)
    if done.returncode != 0:
        raise SystemExit(f"rpdeploy {' '.join(args)} failed ({done.returncode}):\n{done.stderr}")
    data: dict[str, Any] = json.loads(done.stdout)["data"]
    return data


def plan_reads(project: Path, env: dict[str, str], image: str) -> int:
    """API reads of one plan, counted by the client itself (same code path as `rpdeploy plan`)."""
    loaded = desired.with_inline_secrets(load_config(project / "rpdeploy.yaml", "staging", env), env)
    with RunPodApi.from_environ(env) as api:
        prepare(api, loaded, desired.target(loaded), image, env)
        return api.calls.reads


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    runs = parser.parse_args().runs
    images = [mount_image("rpdeploy-bench/deploy-a"), mount_image("rpdeploy-bench/deploy-b")]
    state = Path(tempfile.mkdtemp(prefix="rpdeploy-bench-deploy-"))
    emulator = EmulatorProcess(state / "emulator").start()
    try:
        project = copy_echo_project(Path(tempfile.mkdtemp(prefix="rpdeploy-bench-project-")))
        env = {**os.environ, **SECRET_VALUES, "RUNPOD_API_URL": emulator.api.base, "RUNPOD_API_KEY": API_KEY}
        run(project, env, None, "apply", "--env", "staging", "--image", images[0])  # create (not measured)
        plans, noops, changes = Timing(), Timing(), Timing()
        noop_calls: list[dict[str, int]] = []
        change_calls: list[dict[str, int]] = []
        for index in range(runs):
            current, other = images[index % 2], images[(index + 1) % 2]
            run(project, env, plans, "plan", "--env", "staging", "--image", current)
            noop_calls.append(
                run(project, env, noops, "apply", "--env", "staging", "--image", current)["api_calls"]
            )
            data = run(project, env, changes, "apply", "--env", "staging", "--image", other, "--wait")
            change_calls.append(data["api_calls"])
        reads = plan_reads(project, env, images[0])
        result = {
            "date": datetime.now(tz=UTC).strftime("%Y-%m-%d"),
            "runs": runs,
            "load_average_1m": round(os.getloadavg()[0], 1),
            "plan": {**plans.summary(), "api_calls": {"reads": reads, "writes": 0}},
            "noop_apply": {**noops.summary(), "api_calls": noop_calls[-1]},
            "image_change_apply_wait": {**changes.summary(), "api_calls": change_calls[-1]},
            "targets": {
                "noop_writes_0": all(c["writes"] == 0 for c in noop_calls),
                "noop_reads_at_most_4": all(c["reads"] <= 4 for c in noop_calls),
            },
        }
        OUT.write_text(json.dumps(result, indent=2) + "\n")
        print(json.dumps(result, indent=2))
        shutil.rmtree(project, ignore_errors=True)
    finally:
        emulator.stop()
        emulator.remove_volumes()


if __name__ == "__main__":
    main()
