"""Config validation, rendering and the emulator accept and reject the SAME endpoint documents.

Each row is an `endpoint:` section in REST v2 spelling, which is also the body of a
`POST /v2/serverless` (plus name and image). It goes through all three real paths:
`validate_all` on an rpdeploy.yaml, `create_request` on a config the model accepts
(render's own pre-write check), and a real emulator process over HTTP.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from deploy.config import validate_all
from deploy.config.schema import Config
from deploy.errors import ConfigError, RenderError
from deploy.render.endpoint_spec import create_request
from tests.conftest import BASE_CONFIG, MakeProject
from tests.emulator.helpers import Api
from tests.render_scenarios import IMAGE

GPU = {"pools": ["ADA_24"]}
QUEUE_DELAY = {"type": "QUEUE_DELAY", "queueDelay": 4}
REQUEST_COUNT = {"type": "REQUEST_COUNT", "requestCount": 2}


def section(**fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"type": "QUEUE", "gpu": GPU, "scaling": QUEUE_DELAY}
    base.update(fields)
    return {k: v for k, v in base.items() if v is not None}


GOOD: dict[str, dict[str, Any]] = {
    "gpu-minimal": section(),
    "rtx-5090-pool": section(gpu={"pools": ["ADA_32_PRO"]}),
    "blackwell-pools": section(gpu={"pools": ["BLACKWELL_96", "BLACKWELL_180"]}),
    "cpu-request-count": section(gpu=None, cpu=[{"id": "cpu3c", "vcpuCount": 2}], scaling=REQUEST_COUNT),
    "load-balancer-idle": section(type="LOAD_BALANCER", scaling=REQUEST_COUNT, workers={"idleTimeout": 60}),
    "timeout-low-edge": section(timeout=5000),
    "timeout-high-edge": section(timeout=604_800_000),
    "cuda-empty-set-and-floor": section(
        gpu={"pools": ["ADA_24"], "allowedCudaVersions": [], "minCudaVersion": "12.4"}
    ),
    "excluded-type-in-pool": section(gpu={"pools": ["AMPERE_48"], "excludedTypes": ["NVIDIA A40"]}),
    "workers-big-but-sane": section(workers={"min": 0, "max": 2**31 - 1}),
    "queue-delay-fractional": section(scaling={"type": "QUEUE_DELAY", "queueDelay": 0.5}),
}
BAD: dict[str, dict[str, Any]] = {
    "timeout-negative": section(timeout=-1),
    "timeout-below-5s": section(timeout=4999),
    "timeout-over-7-days": section(timeout=604_800_001),
    "timeout-4000-digits": section(timeout=int("9" * 4000)),
    "workers-max-over-int32": section(workers={"min": 0, "max": 2**31}),
    "gpu-count-absurd": section(gpu={"pools": ["ADA_24"], "count": 10**30}),
    "gpu-and-cpu": section(cpu=[{"id": "cpu3c", "vcpuCount": 2}]),
    "neither-gpu-nor-cpu": section(gpu=None),
    "min-over-max": section(workers={"min": 3, "max": 1}),
    "idle-timeout-on-queue-request-count": section(scaling=REQUEST_COUNT, workers={"idleTimeout": 5}),
    "load-balancer-queue-delay": section(type="LOAD_BALANCER"),
    "cuda-set-and-floor": section(
        gpu={"pools": ["ADA_24"], "allowedCudaVersions": ["12.4"], "minCudaVersion": "12.1"}
    ),
    "excluded-type-not-in-pool": section(gpu={"pools": ["ADA_24"], "excludedTypes": ["NVIDIA A40"]}),
    "excluded-types-leave-nothing": section(
        gpu={"pools": ["ADA_24"], "excludedTypes": ["NVIDIA GeForce RTX 4090"]}
    ),
    "vcpu-not-power-of-two": section(gpu=None, cpu=[{"id": "cpu3c", "vcpuCount": 6}]),
    "gpu-count-zero": section(gpu={"pools": ["ADA_24"], "count": 0}),
    "queue-delay-too-small": section(scaling={"type": "QUEUE_DELAY", "queueDelay": 0.1}),
    "idle-timeout-over-an-hour": section(workers={"idleTimeout": 3601}),
    "disk-zero": section(disk=0),
    "queue-delay-missing": section(scaling={"type": "QUEUE_DELAY"}),
    "request-count-missing": section(scaling={"type": "REQUEST_COUNT"}),
    "both-scaling-values": section(scaling={"type": "REQUEST_COUNT", "requestCount": 2, "queueDelay": 4}),
    "queue-delay-absurd": section(scaling={"type": "QUEUE_DELAY", "queueDelay": 1e300}),
}


def config_text(endpoint: dict[str, Any]) -> str:
    start, end = BASE_CONFIG.index("endpoint:\n"), BASE_CONFIG.index("secrets:\n")
    # JSON is YAML: the section arrives in the file exactly as the table spells it.
    return BASE_CONFIG[:start] + f"endpoint: {json.dumps(endpoint)}\n" + BASE_CONFIG[end:]


def config_accepts(make_project: MakeProject, endpoint: dict[str, Any]) -> bool:
    root = make_project(config_text(endpoint))
    try:
        validate_all(root / "rpdeploy.yaml", environ={})
    except ConfigError:
        return False
    return True


def render_accepts(endpoint: dict[str, Any]) -> bool:
    data = yaml.safe_load(config_text(endpoint))
    data.pop("environments")
    try:
        config = Config.model_validate(data)  # the model alone, without config's rules
    except ValueError:
        return False  # a document the config model cannot hold cannot be rendered
    try:
        create_request(config, None, IMAGE)
    except RenderError:
        return False
    return True


def emulator_accepts(api: Api, endpoint: dict[str, Any]) -> bool:
    response = api.rest("POST", "/v2/serverless", {"name": "contract-table", "image": IMAGE, **endpoint})
    assert response.status_code in (201, 400, 422), response.text
    if response.status_code == 201:
        api.rest("DELETE", f"/v2/serverless/{response.json()['id']}")
    return response.status_code == 201


@pytest.mark.parametrize(
    ("endpoint", "accepted"),
    [pytest.param(doc, True, id=f"good-{name}") for name, doc in GOOD.items()]
    + [pytest.param(doc, False, id=f"bad-{name}") for name, doc in BAD.items()],
)
def test_config_render_and_emulator_agree(
    make_project: MakeProject, api: Api, endpoint: dict[str, Any], accepted: bool
) -> None:
    verdicts = {
        "config validate": config_accepts(make_project, endpoint),
        "render": render_accepts(endpoint),
        "emulator": emulator_accepts(api, endpoint),
    }
    assert verdicts == dict.fromkeys(verdicts, accepted)


def test_an_unknown_pool_warns_in_config_renders_and_is_400_in_the_emulator(
    make_project: MakeProject, api: Api, tmp_path: Path
) -> None:
    endpoint = section(gpu={"pools": ["ADA_24", "FUTURE_999"]})
    root = make_project(config_text(endpoint))
    loaded = validate_all(root / "rpdeploy.yaml", environ={})
    assert loaded[0].warnings == (
        "rpdeploy.yaml:13: endpoint.gpu.pools[1]: unknown GPU pool FUTURE_999 (known pools: "
        "AMPERE_16, AMPERE_24, ADA_24, ADA_32_PRO, AMPERE_48, ADA_48_PRO, AMPERE_80, ADA_80_PRO, "
        "BLACKWELL_96, HOPPER_141, BLACKWELL_180)",
    )
    assert render_accepts(endpoint)
    response = api.rest("POST", "/v2/serverless", {"name": "t", "image": IMAGE, **endpoint})
    assert response.status_code == 400
    assert response.json()["detail"].startswith("gpu.pools[1]: unknown GPU pool FUTURE_999")
