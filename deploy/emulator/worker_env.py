"""The environment a worker container gets, as RunPod gives it (runpod-platform.md §5.2, §5.3).

The webhook URL templates pointing at this emulator, RUNPOD_POD_ID,
RUNPOD_AI_API_KEY, the endpoint env with `{{ RUNPOD_SECRET_name }}` resolved.
Platform variables win over the endpoint's env: a user env must not redirect the
worker protocol.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import quote_plus

from deploy.emulator.catalog import placement_gpu
from deploy.emulator.volumes import Placement
from deploy.runpod.secrets import SECRET_REF  # one rule for config, render and the emulator


class WorkerStartError(Exception):
    """A worker could not be started; the message is shown in its log and the workers list."""


def resolve_secrets(env: dict[str, str], secrets: dict[str, str]) -> dict[str, str]:
    """The env with secret references substituted; a missing secret is a start failure."""
    resolved: dict[str, str] = {}
    for key, value in env.items():

        def substitute(match: re.Match[str], key: str = key) -> str:
            name = match.group(1)
            if name not in secrets:
                raise WorkerStartError(
                    f"env {key} references secret '{name}', which does not exist "
                    "(create it with POST /v2/account/secrets)"
                )
            return secrets[name]

        resolved[key] = SECRET_REF.sub(substitute, value)
    return resolved


def worker_environment(
    doc: dict[str, Any],
    worker_id: str,
    where: Placement,
    *,
    base_url: str,
    worker_key: str,
    secrets: dict[str, str],
    ping_interval_ms: int,
) -> dict[str, str]:
    """Environment of worker ``worker_id`` of endpoint ``doc`` placed at ``where``.

    Raises WorkerStartError (a missing secret).
    """
    env = resolve_secrets(doc.get("env", {}), secrets)
    gpu = doc.get("gpu")
    card = placement_gpu(gpu["pools"], gpu.get("excludedTypes", [])) if gpu else None
    query = f"?gpu={quote_plus(card or 'CPU')}"
    root = f"{base_url}/v2/{doc['id']}"
    platform = {
        "RUNPOD_WEBHOOK_GET_JOB": f"{root}/job-take/$ID{query}",
        "RUNPOD_WEBHOOK_POST_OUTPUT": f"{root}/job-done/$RUNPOD_POD_ID/$ID{query}",
        "RUNPOD_WEBHOOK_POST_STREAM": f"{root}/job-stream/$RUNPOD_POD_ID/$ID{query}",
        "RUNPOD_WEBHOOK_PING": f"{root}/ping/$RUNPOD_POD_ID{query}",
        "RUNPOD_POD_ID": worker_id,
        "RUNPOD_AI_API_KEY": worker_key,
        "RUNPOD_ENDPOINT_ID": doc["id"],
        "RUNPOD_PING_INTERVAL": str(ping_interval_ms),
        "RUNPOD_SKIP_AUTO_SYSTEM_CHECKS": "true",
        "RUNPOD_SKIP_GPU_CHECK": "true",
        "RUNPOD_POD_HOSTNAME": f"{worker_id}-emulator",
        "RUNPOD_DC_ID": where.data_center or "",
        "RUNPOD_GPU_COUNT": str(gpu["count"] if gpu else 0),
        "RUNPOD_CPU_COUNT": str(doc["cpu"][0]["vcpuCount"] if doc.get("cpu") else 1),
    }
    if where.volume_id is not None:
        platform["RUNPOD_VOLUME_ID"] = where.volume_id
    return {**env, **platform}
