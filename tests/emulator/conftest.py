"""Fixtures for the emulator tests: one SDK worker image per session (the session's one
emulator process, `emulator` and `api`, is in tests/conftest.py: the API client tests share it)."""

from __future__ import annotations

import pytest

from tests.emulator.helpers import build_sdk_image


@pytest.fixture(scope="session")
def sdk_image() -> str:
    return build_sdk_image()
