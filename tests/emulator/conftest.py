"""Fixtures for the emulator tests: one emulator process and one SDK worker image per session."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.emulator.helpers import Api, EmulatorProcess, build_sdk_image


@pytest.fixture(scope="session")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmulatorProcess]:
    proc = EmulatorProcess(tmp_path_factory.mktemp("emulator-state")).start()
    yield proc
    proc.stop()
    proc.remove_volumes()


@pytest.fixture(scope="session")
def api(emulator: EmulatorProcess) -> Api:
    return emulator.api


@pytest.fixture(scope="session")
def sdk_image() -> str:
    return build_sdk_image()
