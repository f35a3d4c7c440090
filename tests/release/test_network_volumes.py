"""Network volumes by name against the emulator over HTTP: created when missing, found again by
``<project>/<name>``, ids in config order; the preflight's data-center, size and duplicate checks."""

from __future__ import annotations

from typing import Any

from deploy.release import volumes
from deploy.release.checks import pending_id
from tests.conftest import BASE_CONFIG, MakeProject
from tests.release.resources import connect, load, project_config, unique_project

VOLUMES = """\
  dataCenterIds: [EU-RO-1, US-KS-2]
  networkVolumes:
    - {name: models, size: 20, dataCenter: EU-RO-1}
    - VOLUME_ID
    - {name: cache, size: 10, dataCenter: US-KS-2, type: HIGH_PERFORMANCE}
"""


def config(project: str, volume_id: str, block: str = VOLUMES) -> str:
    endpoint = block.replace("VOLUME_ID", volume_id)
    return project_config(project, BASE_CONFIG.replace("  type: QUEUE\n", "  type: QUEUE\n" + endpoint))


def body(data_centers: list[str]) -> dict[str, Any]:
    return {"dataCenterIds": data_centers}


def test_ensure_creates_the_missing_and_returns_ids_in_config_order(
    make_project: MakeProject, emulator_environ: dict[str, str]
) -> None:
    project = unique_project()
    with connect(emulator_environ) as api:
        existing = api.create_network_volume({"name": "by-hand", "size": 10, "dataCenter": "US-KS-2"})
        loaded = load(make_project, config(project, existing["id"]))
        setup_writes = api.calls.writes

        planned = volumes.ensure(api, loaded, dry_run=True)
        assert planned == [pending_id(f"{project}/models"), existing["id"], pending_id(f"{project}/cache")]
        assert api.calls.writes == setup_writes
        checks = volumes.check(api, loaded, body(["EU-RO-1", "US-KS-2"]))
        assert [c.ok for c in checks] == [True, True, True]
        assert "apply creates it (20 GB in EU-RO-1)" in checks[0].detail

        ids = volumes.ensure(api, loaded, dry_run=False)
        assert api.calls.writes == setup_writes + 2
        listed = {v["id"]: v for v in api.list_network_volumes()}
        assert [listed[i]["name"] for i in ids] == [f"{project}/models", "by-hand", f"{project}/cache"]
        assert listed[ids[2]]["type"] == "HIGH_PERFORMANCE"
        assert (listed[ids[0]]["size"], listed[ids[0]]["dataCenter"]) == (20, "EU-RO-1")

        # Found again by name: the same ids, one read, no write.
        reads, writes = api.calls.reads, api.calls.writes
        assert volumes.ensure(api, loaded, dry_run=False) == ids
        assert (api.calls.reads, api.calls.writes) == (reads + 1, writes)
        assert all(c.ok for c in volumes.check(api, loaded, body(["EU-RO-1", "US-KS-2"])))

        # Another project with the same volume name gets its own volume.
        other = load(make_project, config(unique_project(), existing["id"]))
        assert volumes.ensure(api, other, dry_run=True)[0].startswith("(new: ")


def test_check_reports_volumes_that_would_strand_workers_or_cannot_be_applied(
    make_project: MakeProject, emulator_environ: dict[str, str]
) -> None:
    project = unique_project()
    with connect(emulator_environ) as api:
        elsewhere = api.create_network_volume({"name": "elsewhere", "size": 10, "dataCenter": "AP-JP-1"})
        api.create_network_volume({"name": f"{project}/models", "size": 50, "dataCenter": "EU-RO-1"})
        api.create_network_volume({"name": f"{project}/cache", "size": 10, "dataCenter": "EU-RO-1"})
        loaded = load(make_project, config(project, elsewhere["id"]))
        checks = volumes.check(api, loaded, body(["EU-RO-1", "US-KS-2"]))
        assert [(c.check, c.ok, c.where) for c in checks] == [
            ("volume", False, "endpoint.networkVolumes[0]"),
            ("volume", False, "endpoint.networkVolumes[1]"),
            ("volume", False, "endpoint.networkVolumes[2]"),
        ]
        assert "has 50 GB and the config asks for 20: RunPod never shrinks a volume" in checks[0].detail
        assert "elsewhere" in checks[1].detail
        assert "is in AP-JP-1, which is not in dataCenterIds (EU-RO-1, US-KS-2)" in checks[1].detail
        assert "exists in EU-RO-1, not US-KS-2: a volume's data center cannot change" in checks[2].detail

        # Without dataCenterIds RunPod may place workers anywhere: the volume only pins them.
        free = volumes.check(api, loaded, body([]))
        assert free[1].ok
        assert "in AP-JP-1: workers that mount it run there" in free[1].detail


def test_check_reports_an_unknown_id_a_growth_and_a_shared_name(
    make_project: MakeProject, emulator_environ: dict[str, str]
) -> None:
    project = unique_project()
    with connect(emulator_environ) as api:
        api.create_network_volume({"name": f"{project}/models", "size": 10, "dataCenter": "EU-RO-1"})
        for _ in range(2):
            api.create_network_volume({"name": f"{project}/cache", "size": 10, "dataCenter": "US-KS-2"})
        loaded = load(make_project, config(project, "novolume404"))
        checks = volumes.check(api, loaded, body(["EU-RO-1", "US-KS-2"]))
        assert "rpdeploy does not resize volumes; grow it in the RunPod console or set size: 10" in (
            checks[0].detail
        )
        assert checks[1].detail == "no network volume has the id novolume404"
        assert checks[2].detail.startswith(f"2 volumes are named {project}/cache (")
        assert not any(c.ok for c in checks)


def test_no_volumes_no_calls(make_project: MakeProject, emulator_environ: dict[str, str]) -> None:
    loaded = load(make_project, project_config(unique_project()))
    with connect(emulator_environ) as api:
        assert volumes.ensure(api, loaded, dry_run=False) == []
        assert volumes.check(api, loaded, body([])) == []
        assert api.calls.to_json() == {"reads": 0, "writes": 0}
