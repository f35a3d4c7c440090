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
    # Text: deploy.runpod.text is the one home of these rules.
    "name-191-characters": section(name="n" * 191),
    "name-with-spaces-and-accents": section(name="Café worker 2"),
    "env-value-spans-lines": section(env={"PEM": "-----BEGIN-----\nabc\n-----END-----"}),
    "env-value-at-the-exec-limit": section(env={"BIG": "x" * (131_072 - len("BIG=") - 1)}),
    "known-data-center-and-cuda": section(
        dataCenterIds=["US-KS-2"], gpu={"pools": ["ADA_24"], "allowedCudaVersions": ["12.4"]}
    ),
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
    # Text the platform cannot carry (issue 8 §1, issue 7 §2 and §5).
    "name-192-characters": section(name="n" * 192),
    "name-100000-characters": section(name="n" * 100_000),
    "name-bidi-override": section(name="abc\u202edef"),
    "name-nul": section(name="a\x00b"),
    "name-zero-width-space": section(name="a\u200bb"),
    "name-byte-order-mark": section(name="\ufeffab"),
    "name-no-break-space": section(name="a\u00a0b"),
    "name-variation-selector": section(name="ab\ufe0f"),
    "name-tag-characters": section(name="ab\U000e0041\U000e007f"),
    "name-line-separator": section(name="a\u2028b"),
    "name-private-use": section(name="a\ue000b"),
    "env-value-nul": section(env={"A": "x\x00y"}),
    "env-key-with-equals": section(env={"A=B": "x"}),
    "env-key-with-esc": section(env={"\x1bA": "x"}),
    "env-key-starting-with-digit": section(env={"1A": "x"}),
    "env-key-zero-width": section(env={"A\u200b": "x"}),
    "env-value-over-the-exec-limit": section(env={"BIG": "x" * 131_072}),
    "env-over-one-mib-in-all": section(env={f"K{i}": "x" * 100_000 for i in range(11)}),
    "excluded-type-with-zero-width": section(
        gpu={"pools": ["AMPERE_48"], "excludedTypes": ["NVIDIA\u200b A40"]}
    ),
    "args-nul": section(args="python\x00 -u x.py"),
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


@pytest.mark.parametrize(
    "change",
    [
        {"name": "abc\u202edef"},
        {"name": "n" * 192},
        {"env": {"A": "x\x00y"}},
        {"env": {"A=B": "x"}},
        {"env": {"\x1b[31mA": "x"}},
        {"args": "python\x00x"},
        {"image": "img\u200b:1"},
    ],
    ids=["name-bidi", "name-192", "env-nul", "env-equals", "env-esc", "args-nul", "image-zero-width"],
)
def test_patch_refuses_what_create_refuses_and_stores_nothing(api: Api, change: dict[str, Any]) -> None:
    created = api.rest("POST", "/v2/serverless", {"name": "patch-text", "image": IMAGE, **section()})
    assert created.status_code == 201, created.text
    endpoint_id = created.json()["id"]
    before = api.rest("GET", f"/v2/serverless/{endpoint_id}").json()
    response = api.rest("PATCH", f"/v2/serverless/{endpoint_id}", change)
    assert response.status_code == 422, response.text
    assert api.rest("GET", f"/v2/serverless/{endpoint_id}").json() == before
    assert api.rest("GET", "/v2/serverless").status_code == 200
    api.rest("DELETE", f"/v2/serverless/{endpoint_id}")


@pytest.mark.parametrize(
    ("fields", "path", "warning"),
    [
        ({"dataCenterIds": ["US-KS-2", "XX-FAKE-1"]}, "dataCenterIds[1]", "unknown data center XX-FAKE-1"),
        (
            {"gpu": {"pools": ["ADA_24"], "allowedCudaVersions": ["99.9"]}},
            "gpu.allowedCudaVersions[0]",
            "unknown CUDA version 99.9 (known: 12.4, 12.6, 12.8, 12.9)",
        ),
        (
            {"gpu": {"pools": ["ADA_24"], "minCudaVersion": "99.9"}},
            "gpu.minCudaVersion",
            "no GPU type offers CUDA 99.9 or newer (newest known: 12.9)",
        ),
    ],
    ids=["data-center", "cuda-version", "cuda-floor"],
)
def test_unknown_catalog_ids_warn_in_config_render_and_are_400_in_the_emulator(
    make_project: MakeProject, api: Api, fields: dict[str, Any], path: str, warning: str
) -> None:
    """Like an unknown pool: the vendored catalog may be older than RunPod's live one."""
    endpoint = section(**fields)
    root = make_project(config_text(endpoint))
    loaded = validate_all(root / "rpdeploy.yaml", environ={})
    assert len(loaded[0].warnings) == 1
    assert f": endpoint.{path}: {warning}" in loaded[0].warnings[0]
    assert render_accepts(endpoint)
    response = api.rest("POST", "/v2/serverless", {"name": "t", "image": IMAGE, **endpoint})
    assert response.status_code == 400, response.text
    assert response.json()["detail"].startswith(f"{path}: {warning}")


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
