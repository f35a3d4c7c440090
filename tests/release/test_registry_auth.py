"""Registry credentials against the emulator over HTTP: named by a fingerprint of user and
password, created once, replaced on a new password, superseded ones deleted once unused."""

from __future__ import annotations

import pytest

from deploy.errors import UsageError
from deploy.release import registry_auth
from deploy.release.checks import pending_id
from tests.conftest import BASE_CONFIG, MakeProject
from tests.emulator.helpers import endpoint_body
from tests.release.resources import connect, load, project_config, unique_project

AUTH = "  registry_auth: {username_env: REG_USER, password_env: REG_PASSWORD}\n"


def config(project: str) -> str:
    return project_config(project, BASE_CONFIG.replace("  strategy: slim\n", "  strategy: slim\n" + AUTH))


def creds(password: str, user: str = "deployer") -> dict[str, str]:
    return {"REG_USER": user, "REG_PASSWORD": password}


def test_one_credential_per_user_and_password_found_again_by_name(
    make_project: MakeProject, emulator_environ: dict[str, str]
) -> None:
    project = unique_project()
    loaded = load(make_project, config(project))
    name = registry_auth.credential_name(loaded, "deployer", "pw-one")
    assert name.startswith(f"{project}/127.0.0.1:5000/")
    assert len(name.rsplit("/", 1)[1]) == 8
    assert name == registry_auth.credential_name(loaded, "deployer", "pw-one")
    assert name != registry_auth.credential_name(loaded, "deployer", "pw-two")
    assert name != registry_auth.credential_name(loaded, "deployer2", "pw-one")
    with connect(emulator_environ) as api:
        assert registry_auth.ensure(api, loaded, creds("pw-one"), dry_run=True) == pending_id(name)
        assert api.calls.writes == 0
        assert "is missing: apply creates it" in registry_auth.check(api, loaded, creds("pw-one"))[0].detail

        first = registry_auth.ensure(api, loaded, creds("pw-one"), dry_run=False)
        assert {"id": first, "name": name} in api.list_registries()
        reads, writes = api.calls.reads, api.calls.writes
        assert registry_auth.ensure(api, loaded, creds("pw-one"), dry_run=False) == first
        assert (api.calls.reads, api.calls.writes) == (reads + 1, writes)  # one list, nothing written
        assert registry_auth.check(api, loaded, creds("pw-one"))[0].detail == f"credential {name} exists"


def test_a_new_password_makes_a_new_credential_and_the_old_one_goes_once_unused(
    make_project: MakeProject, emulator_environ: dict[str, str]
) -> None:
    project = unique_project()
    loaded = load(make_project, config(project))
    with connect(emulator_environ) as api:
        old = registry_auth.ensure(api, loaded, creds("pw-old"), dry_run=False)
        endpoint = api.create_endpoint(endpoint_body(f"{project}-ep", registry=old))
        # Someone else's credential for the same host is never touched.
        foreign = api.create_registry(f"other/127.0.0.1:5000/{'0' * 8}", "u", "p")["id"]

        new = registry_auth.ensure(api, loaded, creds("pw-new"), dry_run=False)
        assert new != old
        ids = {r["id"] for r in api.list_registries()}
        assert {old, new, foreign} <= ids  # the endpoint still pulls with the old one

        api.update_endpoint(endpoint["id"], {"registry": new})
        assert registry_auth.prune(api, loaded, keep=new) == [
            registry_auth.credential_name(loaded, "deployer", "pw-old")
        ]
        ids = {r["id"] for r in api.list_registries()}
        assert old not in ids
        assert {new, foreign} <= ids

        # A credential no endpoint uses goes at the next ensure.
        api.update_endpoint(endpoint["id"], {"registry": None})
        newest = registry_auth.ensure(api, loaded, creds("pw-newest"), dry_run=False)
        ids = {r["id"] for r in api.list_registries()}
        assert newest in ids
        assert new not in ids
        api.delete_endpoint(endpoint["id"])
        api.delete_registry(foreign)


def test_unset_variables_are_named_and_nothing_is_called(
    make_project: MakeProject, emulator_environ: dict[str, str]
) -> None:
    loaded = load(make_project, config(unique_project()))
    with connect(emulator_environ) as api:
        with pytest.raises(UsageError, match="REG_USER, REG_PASSWORD"):
            registry_auth.ensure(api, loaded, {"REG_PASSWORD": ""}, dry_run=False)
        checks = registry_auth.check(api, loaded, {"REG_USER": "u"})
        assert [(c.ok, c.detail) for c in checks] == [
            (False, "$REG_PASSWORD not set: no credential to pull with")
        ]
        assert api.calls.to_json() == {"reads": 0, "writes": 0}


def test_without_registry_auth_the_configured_id_is_used_without_a_call(
    make_project: MakeProject, emulator_environ: dict[str, str]
) -> None:
    plain = load(make_project, project_config(unique_project()))
    text = project_config(unique_project()).replace("  type: QUEUE\n", "  type: QUEUE\n  registry: reg_abc\n")
    explicit = load(make_project, text)
    with connect(emulator_environ) as api:
        assert registry_auth.ensure(api, plain, {}, dry_run=False) is None
        assert registry_auth.ensure(api, explicit, {}, dry_run=False) == "reg_abc"
        assert registry_auth.check(api, plain, {}) == []
        assert api.calls.to_json() == {"reads": 0, "writes": 0}
