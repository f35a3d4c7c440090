"""Cold start: submit -> COMPLETED for a scaled-to-zero endpoint, slim against baked, warm and cold hosts.

Writes bench/coldstart.json (or --out). Run with `make bench-coldstart` (brings the stack up first)
or `.venv/bin/python bench/coldstart.py [--only 1,2,3,4,cold,heavy] [--runs N] [--install-runs N]
[--skip-heavy] [--out PATH]`.

`--only` runs a subset of the scenarios (below; default all) and writes its own file: the JSON has
the full run's shape with only the chosen figures, the ratios whose inputs it measured, and what
identifies the run (`run`: id, start and end time, scenarios, the worker's project name and
requirements hash, the machine's load average). Figures from different files are different runs
(the machine is shared, its load varies): compare ratios within one file.

The worker is the project's own: a copy of rpdeploy.yaml, its handler folder and the templates in
a temporary git repository, built and pushed with rpdeploy's build and push code (as
`rpdeploy build` / `rpdeploy push` do) as `strategy: baked` and `strategy: slim`; the job input is
the first case of the project's tests file, so the bench follows whichever reference worker the
project has. The endpoint env is the config's `endpoint.env` plus the stack's S3 values
(`.state/stack.env`) where a scenario uses the archive.

Each figure is the wall time from `runpod.Endpoint(...).run(...)` (the unmodified SDK against the
emulator) until the SDK sees COMPLETED (status polled every 0.1 s), with no worker running:
the endpoint has `workers.min` 0 and `idleTimeout` 1 s, and the bench waits until its last
worker has stopped before each run.

Scenarios (warm host: the image is on the engine; each number the median of the runs):
  1. baked image;
  2. slim, warm volume: the environment is already on the endpoint's network volume;
  3. slim, empty volume, the environment archive in S3 (downloaded, checked, unpacked);
  4. slim, nothing cached (empty volume, no S3): installed from the index, with pip and with uv.
Cold host (the emulator's --cold-host: every start removes the image and pulls it from the
registry): 1 against 2, for the project's worker and for a baked image of realistic size (the
worker's requirements plus numpy, scipy and onnxruntime from the index); pull and container start
times come from the emulator's worker log. Layers the images share with the base image stay on
the engine (other images use the base), so the cold pulls fetch everything above the base; the
base's own size is reported beside them.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import re
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import runpod

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.build import build, git, push, stack_env  # noqa: E402
from deploy import emulator as server  # noqa: E402
from deploy.config import load_config  # noqa: E402
from deploy.emulator.containers import LABEL  # noqa: E402
from deploy.emulator.settings import state_label  # noqa: E402
from deploy.image.engine import connect  # noqa: E402
from deploy.image.registry import Reference, RegistryClient  # noqa: E402
from deploy.image.size import image_size  # noqa: E402
from tests.emulator.helpers import free_port  # noqa: E402

KEY = "rpa_bench_" + "c" * 24
OUT = ROOT / "bench" / "coldstart.json"
MB = 1_000_000
#: Real, heavy dependencies of the "realistic size" baked image (pinned in scripts/stack.sh too).
HEAVY_PINS = ("numpy==2.3.5", "scipy==1.16.3", "onnxruntime==1.23.2")
DATA_CENTER = "US-KS-2"
GIVE_UP_S = 1500
PULLED = re.compile(r"image (\S+) pulled in ([0-9.]+) s")
#: The cold-host knob's removal, timed apart: a fresh host has nothing to remove, so it is subtracted.
REMOVED = re.compile(r"cold host: .* \(([0-9.]+) s\)$", re.MULTILINE)
STARTED = re.compile(r"container \S+ created and started in ([0-9.]+) s")
#: `--only` names: warm host 1-4, the cold-host phase, the realistic-size images (warm phase
#: prepares them, the cold-host phase measures them).
SCENARIOS = ("1", "2", "3", "4", "cold", "heavy")


def scenarios(text: str) -> frozenset[str]:
    """``--only``'s comma-separated list; a bad name is argparse's one-line error (exit 2)."""
    chosen = frozenset(part.strip() for part in text.split(",") if part.strip())
    unknown = sorted(chosen - set(SCENARIOS))
    if unknown or not chosen:
        raise argparse.ArgumentTypeError(
            f"unknown scenario {', '.join(unknown) or '(none)'}; choose from {','.join(SCENARIOS)}"
        )
    return chosen


def load_average() -> list[float]:
    """The host's 1, 5 and 15 min load averages (the machine is shared: they say how busy it was)."""
    return [round(value, 2) for value in os.getloadavg()]


def median(values: list[float]) -> float:
    return round(statistics.median(values), 2)


def spread(values: list[float], loads: list[float] | None = None) -> dict[str, Any]:
    """Median and runs; ``loads``: the 1 min load average at each run's submit."""
    record: dict[str, Any] = {
        "median_s": median(values),
        "runs_s": [round(v, 2) for v in values],
        "n": len(values),
    }
    if loads is not None:
        record["load_1m_at_submit"] = loads
    return record


def measured(emu: Emulator, runs: Any) -> dict[str, Any]:
    """``spread`` of the times ``runs()`` returns, with the load average at each submit."""
    emu.loads = []
    times = runs()
    return spread(times, list(emu.loads))


class Emulator:
    """One emulator process (state kept across restarts, so volumes and endpoints persist)."""

    def __init__(self, state: Path) -> None:
        self.state = state
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.http = httpx.Client(timeout=120, headers={"Authorization": f"Bearer {KEY}"})
        #: 1 min load average at each timed submit (`measured` resets and reads it).
        self.loads: list[float] = []

    def start(self, *, cold_host: bool) -> None:
        server.start(
            self.state, host="127.0.0.1", port=self.port, api_key=KEY, allow_remote=False, cold_host=cold_host
        )
        runpod.api_key = KEY
        runpod.endpoint_url_base = f"{self.base}/v2"

    def stop(self) -> None:
        server.stop(self.state)

    def remove_volumes(self, client: Any) -> None:
        """The network volumes' Docker volumes (several hundred MB each) go with the bench's state."""
        mine = {"label": f"{LABEL}={state_label(self.state)}"}
        for volume in client.volumes.list(filters=mine):
            volume.remove(force=True)

    def rest(self, method: str, path: str, body: Any = None) -> Any:
        response = self.http.request(method, f"{self.base}{path}", json=body)
        response.raise_for_status()
        return response.json() if response.content else None

    def volume(self, name: str) -> str:
        body = {"name": name, "size": 20, "dataCenter": DATA_CENTER}
        return str(self.rest("POST", "/v2/network-volumes", body)["id"])

    def endpoint(self, name: str, image: str, env: dict[str, str], volume: str | None) -> str:
        body: dict[str, Any] = {
            "name": name,
            "type": "QUEUE",
            "image": image,
            "gpu": {"pools": ["ADA_24"]},
            "scaling": {"type": "QUEUE_DELAY", "queueDelay": 4},
            "workers": {"min": 0, "max": 1, "idleTimeout": 1},
            "env": env,
        }
        if volume is not None:
            body["networkVolumes"] = [volume]
        return str(self.rest("POST", "/v2/serverless", body)["id"])

    def delete(self, endpoint_id: str, volume: str | None = None) -> None:
        self.rest("DELETE", f"/v2/serverless/{endpoint_id}")
        if volume is not None:
            self.rest("DELETE", f"/v2/network-volumes/{volume}")

    def wait_scaled_to_zero(self, endpoint_id: str) -> None:
        while self.rest("GET", f"/v2/serverless/{endpoint_id}/workers")["workers"]:
            time.sleep(0.2)

    def cold_start(self, endpoint_id: str, job_input: Any) -> float:
        """Seconds from the SDK's submit to COMPLETED, from a scaled-to-zero endpoint."""
        self.wait_scaled_to_zero(endpoint_id)
        self.loads.append(load_average()[0])
        started = time.perf_counter()
        job = runpod.Endpoint(endpoint_id).run({"input": job_input})
        while (status := job.status()) not in {"COMPLETED", "FAILED", "CANCELLED", "TIMED_OUT"}:
            if time.perf_counter() - started > GIVE_UP_S:  # a worker that cannot start retries forever
                status = f"still {status} after {GIVE_UP_S} s"
                break
            time.sleep(0.1)
        elapsed = time.perf_counter() - started
        if status != "COMPLETED":
            raise SystemExit(
                f"bench: a job on {endpoint_id} ended {status}; see {self.state}/logs/{endpoint_id}"
            )
        return elapsed

    def worker_timings(self, endpoint_id: str) -> list[dict[str, float]]:
        """Pull and container start seconds of each worker start, from the emulator's worker logs."""
        timings = []
        logs = sorted((self.state / "logs" / endpoint_id).glob("*.log"), key=lambda p: p.stat().st_mtime)
        for path in logs:
            text = path.read_text(errors="replace")
            started = STARTED.search(text)
            if started is None:
                continue
            pulled = PULLED.search(text)
            removed = REMOVED.search(text)
            timings.append(
                {
                    "removal_s": float(removed.group(1)) if removed else 0.0,
                    "pull_s": float(pulled.group(2)) if pulled else 0.0,
                    "container_start_s": float(started.group(1)),
                    "cold": "cold host: removed " in text,
                }
            )
        return timings


def copy_reference(dest: Path, strategy: str) -> Path:
    """The project's reference worker (rpdeploy.yaml, its handler folder, tests file and the
    templates) in a new git repository, built as ``strategy`` (bench/build.py's copy is the echo
    example: the build's own cost; this bench is about the reference worker's dependencies)."""
    loaded = load_config(ROOT / "rpdeploy.yaml", None, stack_env())
    for part in (loaded.config.handler.path, "templates", str(Path(loaded.config.tests.path).parent)):
        shutil.copytree(ROOT / part, dest / part, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    config = (ROOT / "rpdeploy.yaml").read_text()
    config = re.sub(r"(?m)^(\s*strategy:).*$", rf"\1 {strategy}", config, count=1)
    # The size budget is the bench's subject, not a gate here: baked is far over it by design.
    (dest / "rpdeploy.yaml").write_text(re.sub(r"(?m)^\s*max_compressed_mb:.*\n", "", config))
    (dest / ".gitignore").write_text("build/\n")
    git(dest, "init", "-q", "-b", f"bench-{strategy}")
    git(dest, "add", "-A")
    git(dest, "commit", "-q", "-m", "bench")
    return dest


def project(dest: Path, strategy: str, repository: str, extra: tuple[str, ...] = ()) -> Path:
    """A committed copy of the reference worker, pushed to ``repository``; ``extra`` pins appended
    to its requirements (the realistic-size variant)."""
    root = copy_reference(dest, strategy)
    config_path = root / "rpdeploy.yaml"
    config = re.sub(r"(?m)^(\s*repository:).*$", rf"\1 {repository}", config_path.read_text(), count=1)
    config_path.write_text(config)
    if extra:
        loaded = load_config(config_path, None, stack_env())
        requirements = root / loaded.config.runtime.requirements
        requirements.write_text(requirements.read_text() + "".join(f"{pin}\n" for pin in extra))
    git(root, "commit", "-q", "-am", "bench variant")
    return root


def build_and_push(client: Any, root: Path, environ: dict[str, str], *, no_cache: bool) -> dict[str, Any]:
    """Build and push; the pushed reference (repo@digest), compressed size, and build/push seconds.

    The build's local tags are removed afterwards (the bench's own repository only): the
    endpoint names the image by digest, and a leftover tag would keep a cold host warm. Baked
    images build without the cache: a cached dependency layer is byte-identical to one other
    images on the engine hold, and a cold host never removes a layer another image holds, so
    its "pull" would move only the manifest (the earlier run's 0.1 s pull of the echo worker).
    """
    record, build_s = build(client, root, environ, no_cache=no_cache)
    pushed, push_s = push(client, record, environ)
    for tag in record.tags:
        client.images.remove(f"{record.repository}:{tag}")
    return {
        "image": pushed["image"],
        "compressed_bytes": pushed["size"]["compressed_bytes"],
        "build_s": round(build_s, 2),
        "push_s": round(push_s, 2),
        "built_without_cache": no_cache,
    }


def first_case(root: Path, environ: dict[str, str]) -> tuple[Any, dict[str, str], dict[str, str]]:
    """The job input of the project's first validation case, the config's endpoint env, and the
    worker's identity (project name, sha256 of its requirements file)."""
    loaded = load_config(root / "rpdeploy.yaml", None, environ)
    tests = json.loads((root / loaded.config.tests.path).read_text())
    requirements = (root / loaded.config.runtime.requirements).read_bytes()
    worker = {
        "project": loaded.config.project,
        "requirements_sha256": hashlib.sha256(requirements).hexdigest(),
    }
    # What render puts into the endpoint env: endpoint.env plus the runtime settings (index, S3 endpoint).
    env = {
        **loaded.config.endpoint.env,
        **{name: value for name, (value, _) in loaded.config.runtime_env().items()},
    }
    return tests["tests"][0]["input"], env, worker


def s3_env(environ: dict[str, str], prefix: str) -> dict[str, str]:
    names = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_ENDPOINT_URL", "AWS_REGION")
    return {**{name: environ[name] for name in names}, "RPDEPLOY_S3_PREFIX": prefix}


def scale_runs(emu: Emulator, endpoint_id: str, job_input: Any, runs: int) -> list[float]:
    return [emu.cold_start(endpoint_id, job_input) for _ in range(runs)]


def fresh_volume_runs(
    emu: Emulator, name: str, image: str, env: dict[str, str], job_input: Any, runs: int
) -> list[float]:
    """Each run on a new endpoint with a new, empty network volume."""
    times = []
    for index in range(runs):
        volume = emu.volume(f"{name}-{index}")
        endpoint_id = emu.endpoint(f"{name}-{index}", image, env, volume)
        times.append(emu.cold_start(endpoint_id, job_input))
        emu.delete(endpoint_id, volume)
    return times


def quiet_http_logs() -> None:
    """The SDK turns on INFO logging; one line per poll would bury the bench's own lines."""
    for name in ("httpx", "urllib3", "runpod"):
        logging.getLogger(name).setLevel(logging.WARNING)


def checkpoint(out: Path, results: dict[str, Any], message: str) -> None:
    """What is measured so far goes to the JSON (marked partial), then the next step is logged."""
    out.write_text(json.dumps({**results, "partial": True}, indent=2) + "\n", encoding="utf-8")
    log(message)


def log(message: str) -> None:
    print(f"[{datetime.now(UTC):%H:%M:%S}] {message}", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="timed runs per scenario (default 3)")
    parser.add_argument("--install-runs", type=int, default=2, help="runs of the install scenarios (2)")
    parser.add_argument(
        "--skip-heavy", action="store_true", help="no realistic-size image (--only without heavy)"
    )
    parser.add_argument(
        "--only",
        type=scenarios,
        default=frozenset(SCENARIOS),
        metavar="LIST",
        help=f"comma-separated scenarios to run, of {','.join(SCENARIOS)} (default all)",
    )
    parser.add_argument(
        "--out", type=Path, default=OUT, help=f"the JSON written (default {OUT.relative_to(ROOT)})"
    )
    parser.add_argument(
        "--cold-host-again", type=Path, metavar="STATE", help="repeat only the cold-host phase on STATE"
    )
    args = parser.parse_args()
    quiet_http_logs()
    if args.cold_host_again:
        return cold_host_again(args.cold_host_again, args.runs, args.out)
    only = args.only - {"heavy"} if args.skip_heavy else args.only
    results = measure(only, args.runs, args.install_runs, args.out)
    finish(results, args.out)
    return 0


def measure(only: frozenset[str], runs: int, install_runs: int, out: Path) -> dict[str, Any]:
    """Build, push and time the scenarios in ``only``; the results (ratios come in `finish`)."""
    environ = stack_env()
    client = connect()
    run_id = uuid.uuid4().hex[:8]
    run: dict[str, Any] = {
        "id": run_id,
        "started": datetime.now(UTC).isoformat(timespec="seconds"),
        "scenarios": [name for name in SCENARIOS if name in only],
        "load_average_1_5_15m_at_start": load_average(),
    }
    base_ref = environ.get("BASE_IMAGE", "127.0.0.1:5000/python:3.11-slim-local")
    base = Reference.parse(base_ref)
    _, base_size = image_size(RegistryClient(base.registry), base.repository, base.reference)
    heavy, cold = "heavy" in only, "cold" in only

    with tempfile.TemporaryDirectory(prefix="rpdeploy-coldstart-") as tmp:
        log("building and pushing the baked and slim images of the project's worker")
        images = {
            "baked": build_and_push(
                client, project(Path(tmp) / "b", "baked", "rpdeploy-bench/coldstart"), environ, no_cache=cold
            ),
            "slim": build_and_push(
                client, project(Path(tmp) / "s", "slim", "rpdeploy-bench/coldstart"), environ, no_cache=False
            ),
        }
        job_input, endpoint_env, run["worker"] = first_case(Path(tmp) / "s", environ)
        if heavy:
            log(f"building and pushing the realistic-size images (+ {' '.join(HEAVY_PINS)})")
            heavy_repo = "rpdeploy-bench/coldstart-heavy"
            images["heavy_baked"] = build_and_push(
                client, project(Path(tmp) / "hb", "baked", heavy_repo, HEAVY_PINS), environ, no_cache=cold
            )
            images["heavy_slim"] = build_and_push(
                client, project(Path(tmp) / "hs", "slim", heavy_repo, HEAVY_PINS), environ, no_cache=False
            )

    emu = Emulator(Path(tempfile.mkdtemp(prefix="rpdeploy-coldstart-")) / "state")
    results: dict[str, Any] = {
        "date": datetime.now(UTC).strftime("%Y-%m-%d"),
        "machine": "2-core VM shared with other work; emulator, workers, registry, S3, client: one host",
        "run": run,
        "worker_input": job_input,
        "base_image": {"image": base_ref, "compressed_bytes": base_size.compressed_bytes},
        "images": images,
        "slim_minus_base_bytes": images["slim"]["compressed_bytes"] - base_size.compressed_bytes,
    }
    s3_prefix = f"bench-coldstart/{run_id}/"
    slim_s3_env = {**endpoint_env, **s3_env(environ, s3_prefix)}
    results["warm_host"], results["cold_host"] = {}, {}
    emu.start(cold_host=False)
    try:
        warm_phase(emu, results, only, images, endpoint_env, slim_s3_env, job_input, runs, install_runs, out)
    finally:
        emu.stop()
    # "heavy" alone only builds and warms the realistic-size endpoints: their figures are cold-host ones.
    if "cold" in only or "heavy" in only:
        emu.start(cold_host=True)  # the same state: endpoints and the warm volumes are still there
        try:
            cold_host_phase(emu, results, job_input, runs, out)
        finally:
            emu.stop()
    emu.remove_volumes(client)
    run["ended"] = datetime.now(UTC).isoformat(timespec="seconds")
    run["load_average_1_5_15m_at_end"] = load_average()
    return results


def warm_phase(
    emu: Emulator,
    results: dict[str, Any],
    only: frozenset[str],
    images: dict[str, Any],
    endpoint_env: dict[str, str],
    slim_s3_env: dict[str, str],
    job_input: Any,
    runs: int,
    install_runs: int,
    out: Path,
) -> None:
    """Scenarios 1-4 on a warm host, and the endpoints the cold-host phase measures."""
    warm: dict[str, Any] = results["warm_host"]
    if only & {"1", "cold"}:
        checkpoint(out, results, "warm host (1): baked")
        baked_ep = emu.endpoint("baked", images["baked"]["image"], endpoint_env, None)
        if "1" in only:
            emu.cold_start(baked_ep, job_input)  # untimed: brings the image onto the engine
            warm["1_baked"] = measured(emu, lambda: scale_runs(emu, baked_ep, job_input, runs))
    if only & {"2", "3", "cold"}:
        # (3) downloads the archive the first start of (2) uploads.
        checkpoint(out, results, "warm host (2): slim, warm volume (the first start installs, uploads)")
        volume = emu.volume("warm")
        warm_ep = emu.endpoint("slim-warm", images["slim"]["image"], slim_s3_env, volume)
        warm["first_start_install_and_upload_pip_s"] = round(emu.cold_start(warm_ep, job_input), 2)
        if "2" in only:
            warm["2_slim_warm_volume"] = measured(emu, lambda: scale_runs(emu, warm_ep, job_input, runs))
    if "3" in only:
        checkpoint(out, results, "warm host (3): slim, empty volume, archive in S3")
        warm["3_slim_s3_archive"] = measured(
            emu, lambda: fresh_volume_runs(emu, "s3", images["slim"]["image"], slim_s3_env, job_input, runs)
        )
    if "4" in only:
        for installer in ("pip", "uv"):
            checkpoint(out, results, f"warm host (4): slim, nothing cached, {installer}")
            env = {**endpoint_env, "RPDEPLOY_INSTALLER": installer}
            warm[f"4_slim_nothing_cached_{installer}"] = measured(
                emu,
                lambda env=env, installer=installer: fresh_volume_runs(
                    emu, f"none-{installer}", images["slim"]["image"], env, job_input, install_runs
                ),
            )
    if "heavy" in only:
        checkpoint(out, results, "realistic size: warming a volume with the heavy environment (uv)")
        heavy_volume = emu.volume("heavy")
        # uv compiles bytecode as pip does (the runtime passes --compile-bytecode).
        heavy_env = {**endpoint_env, "RPDEPLOY_INSTALLER": "uv"}
        heavy_slim = emu.endpoint("heavy-slim", images["heavy_slim"]["image"], heavy_env, heavy_volume)
        warm["heavy_first_start_install_uv_s"] = round(emu.cold_start(heavy_slim, job_input), 2)
        emu.endpoint("heavy-baked", images["heavy_baked"]["image"], endpoint_env, None)


def cold_host_phase(emu: Emulator, results: dict[str, Any], job_input: Any, runs: int, out: Path) -> None:
    """(1) against (2) on a cold host, for each worker whose endpoints the warm phase made."""
    by_name = {doc["name"]: doc["id"] for doc in emu.rest("GET", "/v2/serverless")["endpoints"]}
    cold: dict[str, Any] = results["cold_host"]
    plan = [
        ("reference", "baked", "baked"),
        ("reference", "slim_warm_volume", "slim-warm"),
        ("realistic_size", "baked", "heavy-baked"),
        ("realistic_size", "slim_warm_volume", "heavy-slim"),
    ]
    for name, kind, endpoint_name in plan:
        if endpoint_name not in by_name:
            continue
        endpoint_id = by_name[endpoint_name]
        checkpoint(out, results, f"cold host: {name} {kind}")
        if kind.startswith("slim"):
            emu.cold_start(endpoint_id, job_input)  # untimed: the volume is warm (again, if it was lost)
        before = len(emu.worker_timings(endpoint_id))
        record = measured(emu, lambda endpoint_id=endpoint_id: scale_runs(emu, endpoint_id, job_input, runs))
        times = record["runs_s"]
        emu.wait_scaled_to_zero(endpoint_id)
        starts = emu.worker_timings(endpoint_id)[before:]
        removal = [s["removal_s"] for s in starts]
        cold[f"{name}_{kind}"] = {
            **record,
            "minus_removal": spread([t - r for t, r in zip(times, removal, strict=False)]),
            "removal_s": removal,
            "pull_s": [s["pull_s"] for s in starts],
            "container_start_s": [s["container_start_s"] for s in starts],
            "image_removed_each_start": all(s["cold"] for s in starts),
        }


def ratio(
    numerator: dict[str, Any] | None, denominator: dict[str, Any] | None, digits: int = 3
) -> float | None:
    """Median over median, or None when either figure was not measured in this run."""
    if numerator is None or denominator is None:
        return None
    return round(float(numerator["median_s"]) / float(denominator["median_s"]), digits)


def finish(results: dict[str, Any], out: Path) -> None:
    """Ratios and targets of what this run measured, then the JSON."""
    warm, cold = results["warm_host"], results["cold_host"]
    baked = warm.get("1_baked")
    pip, uv = warm.get("4_slim_nothing_cached_pip"), warm.get("4_slim_nothing_cached_uv")
    ratios: dict[str, float | None] = {
        "warm_volume_over_baked": ratio(warm.get("2_slim_warm_volume"), baked),
        "s3_over_baked": ratio(warm.get("3_slim_s3_archive"), baked),
        "nothing_cached_pip_over_baked": ratio(pip, baked, 2),
        "nothing_cached_uv_over_baked": ratio(uv, baked, 2),
        "pip_over_uv": ratio(pip, uv, 2),
    }
    for name in ("reference", "realistic_size"):
        if f"{name}_baked" in cold and f"{name}_slim_warm_volume" in cold:
            ratios[f"cold_host_{name}_slim_over_baked"] = ratio(
                cold[f"{name}_slim_warm_volume"]["minus_removal"], cold[f"{name}_baked"]["minus_removal"]
            )
    measured_ratios = {key: value for key, value in ratios.items() if value is not None}
    limits = {"warm_volume_over_baked": 1.15, "s3_over_baked": 2.0}
    results["ratios"] = measured_ratios
    results["targets"] = {
        key: {"limit": limits.get(key, 0.6), "met": value <= limits.get(key, 0.6)}
        for key, value in measured_ratios.items()
        if key in limits or key.startswith("cold_host_")
    }
    results.pop("partial", None)
    out.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(results, indent=2))


def cold_host_again(state: Path, runs: int, out: Path) -> int:
    """Repeat the cold-host phase on the state a full run left (its endpoints, warm volumes and
    ``out``), replacing that phase's figures."""
    results = json.loads(out.read_text(encoding="utf-8"))
    results["cold_host"] = {}
    emu = Emulator(state)
    emu.start(cold_host=True)
    try:
        cold_host_phase(emu, results, results["worker_input"], runs, out)
    finally:
        emu.stop()
        emu.remove_volumes(connect())
    finish(results, out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
