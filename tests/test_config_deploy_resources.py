"""Config for deploy-time resources: `image.registry_auth` and network volumes by name (issue 9)."""

from __future__ import annotations

import pytest

from deploy.config import load_config
from deploy.config.schema import NetworkVolumeConfig
from deploy.errors import ConfigError
from deploy.render.endpoint_spec import create_request
from tests.conftest import BASE_CONFIG, MakeProject

AUTH = "  registry_auth: {username_env: REG_USER, password_env: REG_PASSWORD}\n"
VOLUMES = """\
  dataCenterIds: [EU-RO-1, US-KS-2]
  networkVolumes:
    - vol123
    - {name: models, size: 50, dataCenter: EU-RO-1}
    - {name: cache, size: 10, dataCenter: US-KS-2, type: HIGH_PERFORMANCE}
"""


def with_image(extra: str, config: str = BASE_CONFIG) -> str:
    return config.replace("  strategy: slim\n", "  strategy: slim\n" + extra)


def with_endpoint(extra: str, config: str = BASE_CONFIG) -> str:
    return config.replace("  type: QUEUE\n", "  type: QUEUE\n" + extra)


def problems(make_project: MakeProject, text: str) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load_config(make_project(text) / "rpdeploy.yaml", environ={})
    return info.value.problems


def test_registry_auth_names_variables(make_project: MakeProject) -> None:
    loaded = load_config(make_project(with_image(AUTH)) / "rpdeploy.yaml", environ={})
    auth = loaded.config.image.registry_auth
    assert auth is not None
    assert (auth.username_env, auth.password_env) == ("REG_USER", "REG_PASSWORD")


def test_registry_auth_refuses_a_value_in_place_of_a_name(make_project: MakeProject) -> None:
    text = with_image("  registry_auth: {username_env: bob, password_env: 'hunter 2'}\n")
    found = problems(make_project, text)
    assert any("image.registry_auth.password_env" in line for line in found), found


def test_registry_auth_excludes_an_explicit_registry_id(make_project: MakeProject) -> None:
    text = with_endpoint("  registry: reg_abc\n", with_image(AUTH))
    found = problems(make_project, text)
    assert any("endpoint.registry: set either endpoint.registry" in line for line in found), found


def test_the_registry_password_read_into_the_config_is_masked(make_project: MakeProject) -> None:
    canary = "canary-reg-9f3b2c7d1e"
    text = with_endpoint("  env: {NOTE: '${REG_PASSWORD}'}\n", with_image(AUTH))
    root = make_project(text)
    loaded = load_config(root / "rpdeploy.yaml", environ={"REG_PASSWORD": canary})
    assert loaded.masker.text(f"x {canary} y") == "x *** y"


def test_volumes_by_id_and_by_name_keep_config_order(make_project: MakeProject) -> None:
    loaded = load_config(make_project(with_endpoint(VOLUMES)) / "rpdeploy.yaml", environ={})
    ep = loaded.config.endpoint
    assert ep.volume_ids() == ["vol123"]
    assert [v.name for v in ep.named_volumes()] == ["models", "cache"]
    assert ep.named_volumes()[1].type == "HIGH_PERFORMANCE"
    assert loaded.config.volume_name(ep.named_volumes()[0]) == "demo/models"
    # Render writes the ids it knows; named volumes get theirs at deploy time.
    body = create_request(loaded.config, "staging", "127.0.0.1:5000/acme/demo-worker:abc")
    assert body["networkVolumes"] == ["vol123"]


def test_volume_names_of_two_projects_never_collide() -> None:
    from deploy.config.schema import Config  # noqa: PLC0415  (only this test builds configs by hand)

    def name(project: str, volume: str) -> str:
        base = {
            "project": project,
            "image": {"registry": "r", "repository": "a/b", "base": "python:3.11"},
            "runtime": {"requirements": "r.txt"},
        }
        vol = NetworkVolumeConfig.model_validate({"name": volume, "size": 10, "dataCenter": "EU-RO-1"})
        return Config.model_validate(base).volume_name(vol)

    assert name("a-b", "c") != name("a", "b-c")


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ("{name: models, size: 5, dataCenter: EU-RO-1}", "size: must be greater than or equal to 10"),
        ("{name: models, size: 5000, dataCenter: EU-RO-1}", "size: must be less than or equal to 4096"),
        ("{name: Models, size: 10, dataCenter: EU-RO-1}", "name:"),
        ("{name: models, size: 10}", "dataCenter: required"),
        ("{name: models, size: 10, dataCenter: EU-RO-1, type: FAST}", "type:"),
        ("{name: models, size: 10, data_center: EU-RO-1}", "unknown key"),
        ("'bad id!'", "networkVolumes[0]"),
    ],
)
def test_bad_volume_entries_name_the_field(make_project: MakeProject, entry: str, message: str) -> None:
    found = problems(make_project, with_endpoint(f"  networkVolumes: [{entry}]\n"))
    assert any("endpoint.networkVolumes[0]" in line and message in line for line in found), found


def test_a_volume_outside_the_allowed_data_centers_is_refused(make_project: MakeProject) -> None:
    text = with_endpoint(
        "  dataCenterIds: [US-KS-2]\n  networkVolumes: [{name: models, size: 10, dataCenter: EU-RO-1}]\n"
    )
    found = problems(make_project, text)
    assert any(
        "endpoint.networkVolumes[0].dataCenter: EU-RO-1 is not in endpoint.dataCenterIds" in line
        for line in found
    ), found


def test_a_volume_name_listed_twice_is_refused(make_project: MakeProject) -> None:
    entry = "{name: models, size: 10, dataCenter: EU-RO-1}"
    found = problems(make_project, with_endpoint(f"  networkVolumes: [{entry}, {entry}]\n"))
    assert any("networkVolumes[1].name: volume 'models' is listed twice" in line for line in found), found
