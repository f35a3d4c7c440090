"""Emulator benchmark: per-job overhead, throughput and scale-from-zero, with the real SDK worker.

Writes bench/emulator.json. Run with `make bench` or `.venv/bin/python bench/emulator.py
[--image REF]` (default image: the SDK test worker of tests/emulator/fixtures, built if missing).

What is measured, and why that way:
- overhead: `delayTime` (submit -> a worker took the job) with one warm worker and a trivial
  handler. The SDK worker re-polls up to 1 s after each job (runpod rp_scale.get_jobs sleeps 1 s
  while its one slot is busy), so jobs are sent 1.2 s apart to find the worker in its long poll;
  back-to-back figures are recorded too, to show that SDK pause.
- throughput: 1,000 trivial jobs through 4 warm workers. With the SDK's default concurrency of 1
  each worker tops out near 1 job/s (the pause above), so the workers run an async handler with
  a concurrency_modifier of 64 (job-take-batch); a default-concurrency run is recorded for contrast.
- scale-from-zero: submit -> COMPLETED for an endpoint with no worker, three times.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from deploy import emulator as server  # noqa: E402
from tests.emulator.helpers import build_sdk_image, free_port  # noqa: E402

KEY = "rpa_bench_" + "b" * 24
OUT = ROOT / "bench" / "emulator.json"


class Bench:
    def __init__(self, base: str) -> None:
        self.base = base
        self.http = httpx.Client(timeout=120, headers={"Authorization": f"Bearer {KEY}"})

    def endpoint(self, image: str, env: dict[str, str], workers: dict[str, int]) -> str:
        body = {
            "name": "bench",
            "type": "QUEUE",
            "image": image,
            "gpu": {"pools": ["ADA_24"]},
            "scaling": {"type": "QUEUE_DELAY", "queueDelay": 4},
            "workers": workers,
            "env": env,
        }
        response = self.http.post(f"{self.base}/v2/serverless", json=body)
        response.raise_for_status()
        return str(response.json()["id"])

    def wait_idle(self, endpoint_id: str, count: int) -> None:
        while True:
            listed = self.http.get(f"{self.base}/v2/serverless/{endpoint_id}/workers").json()["workers"]
            if sum(1 for w in listed if w["status"] == "IDLE") >= count:
                return
            time.sleep(0.2)

    def wait_gone(self, endpoint_id: str) -> None:
        while self.http.get(f"{self.base}/v2/serverless/{endpoint_id}/workers").json()["workers"]:
            time.sleep(0.2)

    def runsync(self, endpoint_id: str, job_input: Any) -> tuple[dict[str, Any], float]:
        started = time.perf_counter()
        response = self.http.post(f"{self.base}/v2/{endpoint_id}/runsync", json={"input": job_input})
        elapsed = time.perf_counter() - started
        view: dict[str, Any] = response.json()
        assert view["status"] == "COMPLETED", view
        return view, elapsed

    def delete(self, endpoint_id: str) -> None:
        self.http.delete(f"{self.base}/v2/serverless/{endpoint_id}").raise_for_status()

    def health(self, endpoint_id: str) -> dict[str, Any]:
        health: dict[str, Any] = self.http.get(f"{self.base}/v2/{endpoint_id}/health").json()
        return health


def summary(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    return {
        "median": round(statistics.median(ordered), 2),
        "p90": round(ordered[int(0.9 * (len(ordered) - 1))], 2),
        "min": round(ordered[0], 2),
        "max": round(ordered[-1], 2),
        "n": len(ordered),
    }


def overhead(bench: Bench, image: str, jobs: int) -> dict[str, Any]:
    endpoint_id = bench.endpoint(image, {"HANDLER_MODE": "plain"}, {"min": 1, "max": 1, "idleTimeout": 60})
    bench.wait_idle(endpoint_id, 1)
    bench.runsync(endpoint_id, {})  # first job warms the handler path
    delays, round_trips = [], []
    for _ in range(jobs):
        time.sleep(1.2)
        view, elapsed = bench.runsync(endpoint_id, {})
        delays.append(float(view["delayTime"]))
        round_trips.append((elapsed * 1000) - view["executionTime"])
    back_to_back = [float(bench.runsync(endpoint_id, {})[0]["delayTime"]) for _ in range(10)]
    bench.delete(endpoint_id)
    return {
        "delay_ms_idle_worker": summary(delays),
        "runsync_round_trip_minus_execution_ms": summary(round_trips),
        "delay_ms_back_to_back": summary(back_to_back),
        "target_median_ms": 20,
    }


def throughput(bench: Bench, image: str, jobs: int, concurrency: str) -> dict[str, Any]:
    env = {"HANDLER_MODE": "async", "CONCURRENCY": concurrency}
    endpoint_id = bench.endpoint(image, env, {"min": 4, "max": 4, "idleTimeout": 60})
    bench.wait_idle(endpoint_id, 4)

    def submit(_: int) -> None:
        bench.http.post(f"{bench.base}/v2/{endpoint_id}/run", json={"input": {}}).raise_for_status()

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(submit, range(jobs)))
    submitted = time.perf_counter() - started
    while bench.health(endpoint_id)["jobs"]["completed"] < jobs:
        time.sleep(0.05)
    elapsed = time.perf_counter() - started
    bench.delete(endpoint_id)
    return {
        "jobs": jobs,
        "workers": 4,
        "concurrency_per_worker": int(concurrency),
        "submit_s": round(submitted, 2),
        "total_s": round(elapsed, 2),
        "jobs_per_s": round(jobs / elapsed, 1),
    }


def scale_from_zero(bench: Bench, image: str, runs: int) -> dict[str, Any]:
    endpoint_id = bench.endpoint(image, {"HANDLER_MODE": "plain"}, {"min": 0, "max": 1, "idleTimeout": 1})
    totals, delays = [], []
    for _ in range(runs):
        bench.wait_gone(endpoint_id)
        view, elapsed = bench.runsync(endpoint_id, {})
        totals.append(elapsed)
        delays.append(view["delayTime"] / 1000)
    bench.delete(endpoint_id)
    return {"image": image, "submit_to_completed_s": summary(totals), "delay_s": summary(delays)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--image", default=None, help="image for scale-from-zero (default: SDK test worker)")
    parser.add_argument("--jobs", type=int, default=1000)
    args = parser.parse_args()
    worker = build_sdk_image()
    state = Path(tempfile.mkdtemp(prefix="rpdeploy-bench-")) / "state"
    port = free_port()
    server.start(state, host="127.0.0.1", port=port, api_key=KEY, allow_remote=False)
    try:
        bench = Bench(f"http://127.0.0.1:{port}")
        results = {
            "date": datetime.now(UTC).strftime("%Y-%m-%d"),
            "machine": "2-core VM shared with other work; emulator, workers and client on one host",
            "overhead": overhead(bench, worker, 30),
            "throughput": throughput(bench, worker, args.jobs, "64"),
            "throughput_default_concurrency": throughput(bench, worker, 40, "1"),
            "scale_from_zero": scale_from_zero(bench, args.image or worker, 3),
        }
    finally:
        server.stop(state)
    OUT.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
