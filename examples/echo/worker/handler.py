"""Reference worker for rpdeploy: a small but real RunPod serverless handler.

Input:  {"message": str, "numbers": [number, ...], "fail": bool}
Output: {"echo": message, "sum": sum(numbers), "count": len(numbers), "worker": <id>}
A handler that returns {"error": ...} makes the job FAILED (RunPod semantics), which
the validation suite uses to prove that failures are detected.
"""

from __future__ import annotations

import os
import time
from typing import Any

import runpod


def handler(job: dict[str, Any]) -> dict[str, Any]:
    started = time.perf_counter()
    payload = job.get("input") or {}
    if not isinstance(payload, dict):
        return {"error": "input must be a JSON object"}
    if payload.get("fail"):
        return {"error": "failure requested by the input (fail=true)"}
    numbers = payload.get("numbers", [])
    if not isinstance(numbers, list) or not all(isinstance(n, int | float) for n in numbers):
        return {"error": "numbers must be a list of numbers"}
    return {
        "echo": payload.get("message", ""),
        "sum": sum(numbers),
        "count": len(numbers),
        "worker": os.environ.get("RUNPOD_POD_ID", "local"),
        "handler_ms": round((time.perf_counter() - started) * 1000, 3),
    }


if __name__ == "__main__":
    runpod.serverless.start({"handler": handler})
