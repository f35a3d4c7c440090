"""Helpers for the deploy-engine tests: images in the local registry, the CLI, the emulator's view."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import requests
from click.testing import Result

REGISTRY = "127.0.0.1:5000"
BASE_REPO, BASE_TAG = "python", "3.11-slim-local"
MANIFEST_TYPES = (
    "application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.manifest.v1+json"
)


def mount_image(repository: str, cmd: list[str] | None = None) -> str:
    """``<registry>/<repository>@sha256:…``: the stack's base image, mounted into ``repository``.

    Cross-repository blob mounts and one manifest PUT (the registry API, no engine): a real
    image in a real registry, made in milliseconds. Idempotent. ``cmd`` replaces the image's
    command (a new config blob; the layers are the base image's).
    """
    base = f"http://{REGISTRY}/v2"
    got = requests.get(
        f"{base}/{BASE_REPO}/manifests/{BASE_TAG}", headers={"Accept": MANIFEST_TYPES}, timeout=30
    )
    got.raise_for_status()
    manifest = got.json()
    for digest in (manifest["config"]["digest"], *(layer["digest"] for layer in manifest["layers"])):
        mounted = requests.post(
            f"{base}/{repository}/blobs/uploads/", params={"mount": digest, "from": BASE_REPO}, timeout=30
        )
        assert mounted.status_code == 201, f"mount of {digest} into {repository}: {mounted.status_code}"
    content = got.content
    if cmd is not None:
        manifest["config"] = _config_with_cmd(base, repository, manifest["config"], cmd)
        content = json.dumps(manifest).encode()
    put = requests.put(
        f"{base}/{repository}/manifests/{BASE_TAG}",
        data=content,
        headers={"Content-Type": got.headers["Content-Type"]},
        timeout=30,
    )
    assert put.status_code == 201, put.text
    return f"{REGISTRY}/{repository}@{put.headers['Docker-Content-Digest']}"


def _config_with_cmd(
    base: str, repository: str, descriptor: dict[str, Any], cmd: list[str]
) -> dict[str, Any]:
    """Upload the base image's config with ``Cmd`` replaced; the new config's descriptor."""
    got = requests.get(f"{base}/{BASE_REPO}/blobs/{descriptor['digest']}", timeout=30)
    got.raise_for_status()
    config = got.json()
    config["config"]["Cmd"] = cmd
    blob = json.dumps(config).encode()
    digest = "sha256:" + hashlib.sha256(blob).hexdigest()
    started = requests.post(f"{base}/{repository}/blobs/uploads/", timeout=30)
    assert started.status_code == 202, started.text
    location = urljoin(f"http://{REGISTRY}/", started.headers["Location"])
    put = requests.put(location, params={"digest": digest}, data=blob, timeout=30)
    assert put.status_code == 201, put.text
    return {**descriptor, "digest": digest, "size": len(blob)}


RunCli = Callable[..., Result]


def run_json(run_cli: RunCli, root: Path, env: dict[str, str], *args: str) -> tuple[Result, dict[str, Any]]:
    """Run ``rpdeploy <args> -o json`` in ``root``; the result and its parsed envelope."""
    result = run_cli(*args, "-o", "json", cwd=root, env=env)
    return result, json.loads(result.stdout)


def endpoint_named(api: Any, name: str) -> dict[str, Any] | None:
    """The emulator's endpoint called ``name`` (through the contract-checked test client)."""
    endpoints = api.rest("GET", "/v2/serverless").json()["endpoints"]
    found = [e for e in endpoints if e["name"] == name]
    assert len(found) <= 1, found
    return found[0] if found else None


#: A config fragment with one runpod-secret (its value from $AWS_ACCESS_KEY_ID).
SECRETS = "secrets:\n  - name: AWS_ACCESS_KEY_ID\n"


def project_name(root: Path) -> str:
    """The ``project:`` of the config in ``root``."""
    text = (root / "rpdeploy.yaml").read_text()
    return str(next(li for li in text.splitlines() if li.startswith("project:")).split(":")[1].strip())


def with_secret(root: Path, api_env: dict[str, str]) -> tuple[str, dict[str, str]]:
    """For a project made with `SECRETS`: its RunPod secret's name, and ``api_env`` with a fresh value."""
    value = f"key-{os.urandom(6).hex()}"
    return f"{project_name(root)}_aws_access_key_id", {**api_env, "AWS_ACCESS_KEY_ID": value}
