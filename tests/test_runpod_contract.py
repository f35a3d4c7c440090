"""deploy.runpod without a server: release diffs, secret names, the catalog, range rules, config warnings."""

from __future__ import annotations

import ast
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result

from deploy.config import load_config
from deploy.config import patterns as config_patterns
from deploy.emulator import worker_env as emulator_worker_env
from deploy.render.endpoint_spec import endpoint_env
from deploy.runpod import endpoint, release, secrets
from deploy.runpod.catalog import catalog
from tests.conftest import BASE_CONFIG, MakeProject

BODY: dict[str, Any] = {
    "name": "x",
    "type": "QUEUE",
    "image": "i",
    "gpu": {"pools": ["ADA_24"]},
    "scaling": {"type": "QUEUE_DELAY", "queueDelay": 4},
}


def test_release_diff_uses_dotted_fields_and_compares_env_whole() -> None:
    old = {"id": "a", "image": "i:1", "workers": {"min": 0, "max": 1}, "env": {"A": "1", "B": "2"}}
    new = {"id": "b", "image": "i:2", "workers": {"min": 0, "max": 3}, "env": {"A": "1"}}
    changes = release.diff(old, new)
    assert changes == [
        {"field": "env", "old": {"A": "1", "B": "2"}, "new": {"A": "1"}},
        {"field": "image", "old": "i:1", "new": "i:2"},
        {"field": "workers.max", "old": 1, "new": 3},
    ]
    assert release.rolls_workers(changes)
    assert not release.rolls_workers([c for c in changes if c["field"] == "workers.max"])
    assert release.rolls_workers([{"field": "gpu.pools", "old": ["ADA_24"], "new": ["ADA_32_PRO"]}])
    assert release.diff({"timeout": 1}, {}) == [{"field": "timeout", "old": 1, "new": None}]


@pytest.mark.parametrize("name", ["hf", "hf.token", "team/hf-token", "_x", "a" * 191])
def test_valid_secret_names_are_valid_everywhere(name: str) -> None:
    assert secrets.name_problem(name) is None
    assert config_patterns.SECRET_NAME.fullmatch(name)
    reference = secrets.reference(name)
    assert reference == "{{ RUNPOD_SECRET_" + name + " }}"
    match = emulator_worker_env.SECRET_REF.fullmatch(reference)
    assert match is not None
    assert match.group(1) == name


@pytest.mark.parametrize(
    "name", ["", "1x", "has space", "runpod_key", "RunPod", "a" * 192, "é", "a\nb", "x;y"]
)
def test_invalid_secret_names_are_invalid_everywhere(name: str) -> None:
    assert secrets.name_problem(name) is not None
    assert not config_patterns.SECRET_NAME.fullmatch(name)
    assert emulator_worker_env.SECRET_REF.fullmatch(secrets.reference(name)) is None


def test_the_catalog_holds_every_pool_the_platform_facts_name() -> None:
    pools = catalog().pools
    documented = {"AMPERE_16", "AMPERE_24", "ADA_24", "AMPERE_48", "ADA_48_PRO", "AMPERE_80", "ADA_80_PRO"}
    newer = {"ADA_32_PRO", "HOPPER_141", "BLACKWELL_96", "BLACKWELL_180"}
    assert documented | newer == set(pools)
    assert [gpu.id for gpu in pools["ADA_32_PRO"].gpu_types] == ["NVIDIA GeForce RTX 5090"]
    assert pools["ADA_24"].price_per_hour == pytest.approx(1.1, abs=0.02)  # the spec's own example
    for pool in pools.values():
        assert pool.gpu_types, pool.id
        assert pool.price_per_second > 0
        for gpu in pool.gpu_types:
            assert all(re.fullmatch(r"[0-9]+\.[0-9]+", v) for v in gpu.cuda_versions)
    assert catalog().cpu_memory_gb("cpu5m", 4) == 32
    assert catalog().placement_gpu(["AMPERE_48"], [" NVIDIA RTX A6000"]) == "NVIDIA A40"
    assert catalog().placement_gpu(["NOPE"], []) is None


@pytest.mark.parametrize(
    ("change", "path", "status"),
    [
        ({"timeout": -1}, ("timeout",), 422),
        ({"timeout": 10**4000}, ("timeout",), 422),
        ({"disk": 2**31}, ("disk",), 422),
        ({"workers": {"max": 2**40}}, ("workers", "max"), 422),
        ({"gpu": {"pools": ["ADA_24"], "count": 2**31}}, ("gpu", "count"), 422),
        ({"workers": {"min": 2, "max": 1}}, ("workers", "max"), 400),
        ({"gpu": {"pools": ["NOPE_1"]}}, ("gpu", "pools", 0), 400),
        ({"cpu": [{"id": "cpu3c", "vcpuCount": 2}]}, ("cpu",), 400),
    ],
)
def test_endpoint_problems_name_path_and_status(
    change: dict[str, Any], path: tuple[Any, ...], status: int
) -> None:
    found = endpoint.create_problems({**BODY, **change})
    assert [(p.path, p.status) for p in found] == [(path, status)]
    assert len(found[0].line()) < 200  # a 4,000-digit value is never echoed


def test_boundary_values_are_accepted() -> None:
    for change in ({"timeout": 5000}, {"timeout": 604_800_000}, {"disk": 2**31 - 1}):
        assert endpoint.create_problems({**BODY, **change}) == []


def test_an_unknown_pool_is_a_catalog_problem_and_a_stray_type_only_beside_one() -> None:
    unknown = endpoint.create_problems({**BODY, "gpu": {"pools": ["NEW_1"], "excludedTypes": ["X"]}})
    assert all(p.catalog for p in unknown)
    stray = endpoint.create_problems({**BODY, "gpu": {"pools": ["ADA_24"], "excludedTypes": ["X"]}})
    assert [p.catalog for p in stray] == [False]


def test_config_validate_warns_about_an_unknown_pool_on_stderr(
    make_project: MakeProject, run_cli: Callable[..., Result]
) -> None:
    root = make_project(BASE_CONFIG.replace("pools: [ADA_24]", "pools: [ADA_24, FUTURE_1]"))
    result = run_cli("config", "validate", cwd=root)
    assert result.exit_code == 0, result.output
    assert result.stderr.startswith(
        "warning: rpdeploy.yaml:16: endpoint.gpu.pools[1]: unknown GPU pool FUTURE_1"
    )
    assert result.stderr.count("warning:") == 1  # base config and staging say it once
    assert "warning" not in result.stdout
    assert load_config(root / "rpdeploy.yaml", environ={}).warnings[0].endswith("BLACKWELL_180)")


def test_config_accepts_dotted_secret_names_and_refuses_an_invalid_default(make_project: MakeProject) -> None:
    dotted = BASE_CONFIG.replace(
        "  - name: AWS_ACCESS_KEY_ID\n", "  - name: AWS_ACCESS_KEY_ID\n    secret: aws.key/id\n"
    )
    loaded = load_config(make_project(dotted, name="dotted") / "rpdeploy.yaml", environ={})
    assert endpoint_env(loaded.config)["AWS_ACCESS_KEY_ID"] == "{{ RUNPOD_SECRET_aws.key/id }}"
    digit_project = BASE_CONFIG.replace("project: demo", "project: 9lives")
    with pytest.raises(Exception, match=r"secrets\[0\]\.name: the default RunPod secret name fails"):
        load_config(make_project(digit_project, name="digit") / "rpdeploy.yaml", environ={})


def test_the_contract_package_is_a_leaf() -> None:
    """deploy.runpod imports nothing from rpdeploy but deploy.errors (and itself)."""
    package = Path(endpoint.__file__).parent
    for module in package.glob("*.py"):
        tree = ast.parse(module.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            names = [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            names += [alias.name for alias in node.names] if isinstance(node, ast.Import) else []
            for name in names:
                if name == "deploy" or name.startswith("deploy."):
                    assert name.startswith(("deploy.runpod", "deploy.errors")), (
                        f"{module.name} imports {name}"
                    )
