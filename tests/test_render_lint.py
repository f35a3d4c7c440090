"""Every rendered Dockerfile passes hadolint, parses with dockerfile-parse and needs no BuildKit."""

from __future__ import annotations

import io
import re
import subprocess
import sys
from pathlib import Path

import pytest
from dockerfile_parse import DockerfileParser

from tests.conftest import GOLDEN, REPO

DOCKERFILES = sorted([*GOLDEN.glob("*/Dockerfile.*"), REPO / "Dockerfile.slim"])
IDS = [str(p.relative_to(REPO)) for p in DOCKERFILES]


def test_there_are_dockerfiles_to_check() -> None:
    assert len(DOCKERFILES) >= 6


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=IDS)
def test_hadolint_clean(dockerfile: Path) -> None:
    done = subprocess.run(
        [
            str(Path(sys.executable).parent / "hadolint"),
            "--no-color",
            "--config",
            str(REPO / ".hadolint.yaml"),
            str(dockerfile),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=IDS)
def test_parses_and_has_expected_shape(dockerfile: Path) -> None:
    parser = DockerfileParser(fileobj=io.BytesIO(dockerfile.read_bytes()))
    instructions = [i["instruction"] for i in parser.structure if i["instruction"] != "COMMENT"]
    assert instructions[:2] == ["ARG", "FROM"]
    assert instructions[-1] == "CMD"
    assert parser.baseimage  # the ARG default resolves into FROM
    copies = [i["value"] for i in parser.structure if i["instruction"] == "COPY"]
    assert copies[-1].startswith('["worker/"'), "handler code must be the last COPY (layer order)"


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=IDS)
def test_legacy_builder_compatible(dockerfile: Path) -> None:
    text = dockerfile.read_text()
    assert not re.search(r"^#\s*syntax\s*=", text, re.M | re.I)
    assert "--mount" not in text
    assert not re.search(r"<<-?\s*['\"]?[A-Z]+", text), "heredocs need BuildKit"


def test_slim_dockerfile_holds_no_dependency_install() -> None:
    for dockerfile in [p for p in DOCKERFILES if p.name == "Dockerfile.slim"]:
        parser = DockerfileParser(fileobj=io.BytesIO(dockerfile.read_bytes()))
        runs = [i["value"] for i in parser.structure if i["instruction"] == "RUN"]
        assert not any("pip" in r for r in runs), dockerfile
