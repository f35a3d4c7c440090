"""Where a slim cold start's seconds go: the bootstrap's steps and the first import, timed by the engine.

Writes bench/coldstart_steps.json. Run after `bench/coldstart.py` (it names the images and the S3
prefix its first slim start uploaded the environment archive to):
`.venv/bin/python bench/coldstart_steps.py [--from bench/coldstart.json] [--runs N]`.

Each start is one `docker run` of the image (network_mode host, as the emulator's workers) whose
command is a probe instead of the handler: it prints a line as soon as its interpreter runs, then
imports the runpod SDK and the handler module and loads the handler's model (what the handler does
before it takes a job), printing the seconds of each. Docker's per-line log timestamps (taken by
the engine as each line arrives) split the start into: container start (create → running), the
bootstrap up to its first line (interpreter and runtime import, work disk, settings), each
bootstrap step to its next line (S3 head and download, unpack and check, publish), the handler
process's interpreter start, and the probe's imports. Scenarios, as bench/coldstart.py's:
(3) slim, an empty volume and the archive in S3; (2) slim, the volume (3) left; (1) baked (no
bootstrap). No job is taken: the emulator, the SDK's job loop and the job itself are not in these
figures (bench/coldstart.py's totals minus these are that part).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.build import stack_env  # noqa: E402
from deploy.image.engine import connect  # noqa: E402

OUT = ROOT / "bench" / "coldstart_steps.json"
#: The probe: what the handler runs before it takes a job (worker/handler.py: import, model load).
PROBE = """
import sys, time
print("probe: interpreter up", flush=True)
began = time.monotonic()
import runpod
runpod_s = time.monotonic() - began
sys.path.insert(0, "/app")
import handler
handler_s = time.monotonic() - began - runpod_s
handler.recognizer()
model_s = time.monotonic() - began - runpod_s - handler_s
print(f"probe: import runpod {runpod_s:.2f} s, handler {handler_s:.2f} s, model {model_s:.2f} s", flush=True)
"""
#: Scenario (3)'s provisioning, step by step, with the bootstrap's own code inside the slim image
#: (its runtime package is /opt/rpdeploy/rpdeploy_runtime), on an empty volume; then the first
#: import from the unpacked site, as the handler process gets it (PYTHONPATH).
STEPS = """
import json, os, subprocess, sys, tarfile, time
sys.path.insert(0, "/opt/rpdeploy")
from rpdeploy_runtime import archive, bootstrap, envstore, s3, settings as loader
settings = loader.load(os.environ)
key = envstore.env_key(bootstrap.read_requirements(settings))
name = bootstrap.object_key(settings, key)
staging = "/runpod-volume/steps/" + key
os.makedirs(staging)
download = "/runpod-volume/steps/archive.tar.gz"
took = {}
mark = time.monotonic()
def step(label):
    global mark
    now = time.monotonic()
    took[label] = round(now - mark, 2)
    mark = now
client = s3.Client(settings.s3)
info = client.head(name)
step("s3_head_s")
client.get_file(name, download)
step("download_s")
subprocess.run(["gzip", "-dc", download], stdout=subprocess.DEVNULL, check=True)
step("gunzip_to_null_s")
root = os.path.realpath(staging)
with tarfile.open(download, "r:gz") as tar:
    members = tar.getmembers()
    step("tarfile_list_members_s")
    for member in members:
        archive._check_member(member, root)
    step("check_members_s")
archive._extract_with_tar(archive._gnu_tar(), download, staging)
step("gnu_tar_extract_s")
problem = envstore.check(staging)
step("envstore_check_files_s")
os.unlink(download)
site = envstore.site_of(staging)
envstore.relocate(staging, site)  # as publishing does: the bytecode follows the site
step("relocate_bytecode_s")
probe = "import time; t=time.monotonic(); import runpod, sys; sys.path.insert(0, '/app'); import handler; " \\
    "handler.recognizer(); print(round(time.monotonic()-t, 2))"
# What the bootstrap gives the handler (bootstrap.handler_environment).
env = dict(os.environ, PYTHONPATH=site, PYTHONPYCACHEPREFIX=envstore.bytecode_of(staging))
env["PYTHONDONTWRITEBYTECODE"] = "1"
first = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True)
step("first_import_and_model_s")
second = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True)
step("second_import_and_model_s")
took["archive_bytes"] = info.size
took["members"] = len(members)
took["problem"] = problem
took["probe_inner_s"] = [run.stdout.strip() or run.stderr[-300:] for run in (first, second)]
print("steps: " + json.dumps(took), flush=True)
"""
S3_NAMES = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_ENDPOINT_URL", "AWS_REGION")


def parse_time(stamp: str) -> float:
    """Docker's RFC 3339 timestamp (nanoseconds) as epoch seconds."""
    whole, _, fraction = stamp.rstrip("Z").partition(".")
    parsed = datetime.strptime(whole, "%Y-%m-%dT%H:%M:%S").replace(tzinfo=UTC)
    return parsed.timestamp() + float(f"0.{fraction or '0'}")


def start(client: Any, image: str, env: dict[str, str], volume: str | None) -> dict[str, Any]:
    """One start of ``image`` with the probe; its timed lines, relative to the container's start."""
    mounts = {volume: {"bind": "/runpod-volume", "mode": "rw"}} if volume else None
    created = time.time()
    container = client.containers.run(
        image,
        ["python3", "-u", "-c", PROBE],
        environment=env,
        volumes=mounts,
        network_mode="host",
        detach=True,
    )
    try:
        status = container.wait(timeout=900)["StatusCode"]
        container.reload()
        started = parse_time(container.attrs["State"]["StartedAt"])
        raw = container.logs(timestamps=True).decode(errors="replace")
    finally:
        container.remove(force=True)
    lines = []
    for row in raw.splitlines():
        stamp, _, text = row.partition(" ")
        lines.append({"at_s": round(parse_time(stamp) - started, 2), "line": text[:200]})
    return {"exit": status, "container_start_s": round(started - created, 2), "lines": lines}


def steps(client: Any, image: str, env: dict[str, str]) -> dict[str, Any]:
    """Scenario (3)'s steps timed inside the slim image on an empty volume (STEPS)."""
    volume = client.volumes.create(f"rpdeploy-bench-steps-{uuid.uuid4().hex[:8]}")
    try:
        output = client.containers.run(
            image,
            ["-c", STEPS],
            entrypoint=["python3"],
            environment=env,
            volumes={volume.name: {"bind": "/runpod-volume", "mode": "rw"}},
            network_mode="host",
            remove=True,
        ).decode(errors="replace")
    finally:
        volume.remove(force=True)
    line = next(row for row in output.splitlines() if row.startswith("steps: "))
    result: dict[str, Any] = json.loads(line.removeprefix("steps: "))
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--from", dest="source", type=Path, default=ROOT / "bench" / "coldstart.json")
    parser.add_argument("--runs", type=int, default=2, help="starts per scenario (default 2)")
    args = parser.parse_args()
    bench = json.loads(args.source.read_text(encoding="utf-8"))
    environ = stack_env()
    slim, baked = bench["images"]["slim"]["image"], bench["images"]["baked"]["image"]
    s3 = {name: environ[name] for name in S3_NAMES}
    slim_env = {**s3, "RPDEPLOY_S3_PREFIX": f"bench-coldstart/{bench['run']['id']}/"}
    if environ.get("RPDEPLOY_INDEX_URL"):
        slim_env["RPDEPLOY_INDEX_URL"] = environ["RPDEPLOY_INDEX_URL"]
    client = connect()
    results: dict[str, Any] = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "from_run": bench["run"],
    }
    results["3_slim_s3_archive"], results["2_slim_warm_volume"], results["1_baked"] = [], [], []
    for _ in range(args.runs):
        volume = client.volumes.create(f"rpdeploy-bench-steps-{uuid.uuid4().hex[:8]}")
        try:
            results["3_slim_s3_archive"].append(start(client, slim, slim_env, volume.name))
            results["2_slim_warm_volume"].append(start(client, slim, slim_env, volume.name))
        finally:
            volume.remove(force=True)
        results["1_baked"].append(start(client, baked, {}, None))
    results["3_steps"] = [steps(client, slim, slim_env) for _ in range(args.runs)]
    results["load_1_5_15m_at_end"] = [round(value, 2) for value in os.getloadavg()]
    OUT.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    for name in ("3_slim_s3_archive", "2_slim_warm_volume", "1_baked"):
        for run in results[name]:
            print(f"== {name}: exit {run['exit']}, container start {run['container_start_s']} s")
            for line in run["lines"]:
                print(f"  {line['at_s']:7.2f}  {line['line']}")
    for run in results["3_steps"]:
        print(f"== 3 steps: {json.dumps(run)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
