"""Validation-runner benchmark: 20 cases of a handler that sleeps 0.5 s, on 4 warm workers.

Writes bench/validate.json. Run with `make bench` or `.venv/bin/python bench/validate.py`
(the SDK test worker image of tests/emulator/fixtures, built if missing; an emulator of its own).

What is measured, and why that way:
- wall time of `deploy.release.validate.run` with concurrency 4 against the same cases run one
  at a time (concurrency 1); the target is concurrent <= 0.4 x serial. Workers are warm
  (workers.min 4) so that cold starts do not count, and each figure is the median of 3 runs.
- the runner's overhead per case: its latency (submit to final status, as the runner saw it)
  minus the emulator's own delayTime + executionTime for that job. That is the HTTP round trips
  plus the poll interval the runner waits past the job's end (polls back off from 50 ms to 1 s).
"""

from __future__ import annotations

import json
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from deploy import emulator as server  # noqa: E402
from deploy.api import RunPodApi  # noqa: E402
from deploy.config.schema import CaseExpect  # noqa: E402
from deploy.release import validate  # noqa: E402
from deploy.release.cases import Case, CaseSet  # noqa: E402
from deploy.release.validate import ValidationReport  # noqa: E402
from tests.emulator.helpers import build_sdk_image, free_port  # noqa: E402

KEY = "rpa_bench_" + "v" * 24
OUT = ROOT / "bench" / "validate.json"
CASES = 20
SLEEP_S = 0.5
WORKERS = 4
RUNS = 3


def make_endpoint(http: httpx.Client, base: str, image: str) -> str:
    body = {
        "name": "bench-validate",
        "type": "QUEUE",
        "image": image,
        "gpu": {"pools": ["ADA_24"]},
        "scaling": {"type": "QUEUE_DELAY", "queueDelay": 4},
        "workers": {"min": WORKERS, "max": WORKERS, "idleTimeout": 60},
        "env": {"HANDLER_MODE": "plain"},
    }
    response = http.post(f"{base}/v2/serverless", json=body)
    response.raise_for_status()
    endpoint_id = str(response.json()["id"])
    while True:
        listed = http.get(f"{base}/v2/serverless/{endpoint_id}/workers").json()["workers"]
        if sum(1 for w in listed if w["status"] == "IDLE") >= WORKERS:
            return endpoint_id
        time.sleep(0.2)


def cases() -> CaseSet:
    expect = CaseExpect.model_validate({"output": {"echo": {"mock_delay": SLEEP_S}}})
    return CaseSet([Case(f"sleep-{i}", {"mock_delay": SLEEP_S}, 60000, expect=expect) for i in range(CASES)])


def overheads(report: ValidationReport) -> list[int]:
    return [
        r.latency_ms - r.delay_ms - r.execution_ms
        for r in report.tests
        if r.latency_ms is not None and r.delay_ms is not None and r.execution_ms is not None
    ]


def timed_runs(api: RunPodApi, endpoint_id: str, concurrency: int) -> tuple[list[int], list[int]]:
    walls: list[int] = []
    extra: list[int] = []
    for _ in range(RUNS):
        report = validate.run(api, endpoint_id, cases(), concurrency=concurrency)
        assert report.ok, [r.failures for r in report.tests if not r.passed]
        walls.append(report.wall_ms)
        extra += overheads(report)
        time.sleep(1.5)  # let every SDK worker return to its long poll between runs
    return walls, extra


def summary(values: list[int]) -> dict[str, Any]:
    ordered = sorted(values)
    return {
        "median": statistics.median(ordered),
        "p95": ordered[max(0, -(-len(ordered) * 95 // 100) - 1)],
        "min": ordered[0],
        "max": ordered[-1],
    }


def main() -> None:
    image = build_sdk_image()
    state = Path(tempfile.mkdtemp(prefix="rpdeploy-bench-")) / "state"
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    server.start(state, host="127.0.0.1", port=port, api_key=KEY, allow_remote=False)
    try:
        with httpx.Client(timeout=120, headers={"Authorization": f"Bearer {KEY}"}) as http:
            endpoint_id = make_endpoint(http, base, image)
            with RunPodApi(base, KEY) as api:
                serial, serial_extra = timed_runs(api, endpoint_id, 1)
                parallel, parallel_extra = timed_runs(api, endpoint_id, WORKERS)
            http.delete(f"{base}/v2/serverless/{endpoint_id}").raise_for_status()
    finally:
        server.stop(state)
    ratio = statistics.median(parallel) / statistics.median(serial)
    results = {
        "date": datetime.now(UTC).strftime("%Y-%m-%d"),
        "machine": "2-core VM shared with other work; emulator, workers and runner on one host",
        "cases": CASES,
        "handler_sleep_s": SLEEP_S,
        "workers": WORKERS,
        "runs": RUNS,
        "serial_wall_ms": summary(serial),
        "concurrent_wall_ms": summary(parallel),
        "ratio_concurrent_to_serial": round(ratio, 3),
        "target_ratio": 0.4,
        "runner_overhead_ms_serial": summary(serial_extra),
        "runner_overhead_ms_concurrent": summary(parallel_extra),
    }
    OUT.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
