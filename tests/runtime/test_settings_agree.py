"""The config and the bootstrap hold the same bounds for the bootstrap's numeric settings (and installers).

deploy/runtime may not import deploy.config (it is copied into images), so the bounds are written
twice: deploy/config/runtime_bounds.py (config errors at load time) and deploy/runtime/settings.py
(the worker's check at cold start). These tests make any drift fail: the same variables, the
same accepted and refused values, and the schema's ``runtime.disk`` fields inside them.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import get_args

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from deploy.config.runtime_bounds import INSTALLERS, NUMBERS, installer_problem, number_problem
from deploy.config.schema import DiskThresholds, RuntimeConfig
from deploy.runtime import settings as runtime_settings
from deploy.runtime.failure import Failure

SETTINGS_SOURCE = Path(runtime_settings.__file__).read_text(encoding="utf-8")


def bootstrap_accepts(name: str, value: str) -> bool:
    try:
        runtime_settings.load({name: value})
    except Failure:
        return False
    return True


def test_the_config_knows_every_number_the_bootstrap_reads() -> None:
    read = set(re.findall(r"_(?:number|whole)\(env, \"([A-Z_]+)\"", SETTINGS_SOURCE))
    assert read == set(NUMBERS)


@pytest.mark.parametrize("name", sorted(NUMBERS))
def test_both_take_the_bounds_and_refuse_just_outside(name: str) -> None:
    bound = NUMBERS[name]
    inside = [str(bound.least), str(bound.most), f"{bound.most:.0f}.0", f" {bound.least} ", ""]
    outside = [str(bound.least - 1), f"{bound.most}.5", str(bound.most * 10), "nan", "-inf", "1e400", "x"]
    for value in inside:
        assert number_problem(name, value) is None, value
        assert bootstrap_accepts(name, value), value
    for value in outside:
        assert number_problem(name, value) is not None, value
        assert not bootstrap_accepts(name, value), value


#: Text near the bounds and in every spelling float() reads (exponents, underscores, signs, spaces).
_NUMBERS = st.one_of(
    st.integers(min_value=-(10**10), max_value=10**10).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.sampled_from(["1_000", "1e3", "+5", "0x10", "1,5", "5 ", " 7", "0.5", "100.0", "1e9", "inf"]),
    st.text(alphabet="0123456789.e+-_ x", max_size=8),
)


@settings(max_examples=300, deadline=None)
@given(name=st.sampled_from(sorted(NUMBERS)), value=_NUMBERS)
def test_the_config_refuses_exactly_what_the_bootstrap_refuses(name: str, value: str) -> None:
    assert (number_problem(name, value) is None) == bootstrap_accepts(name, value)


@pytest.mark.parametrize(
    ("field", "name"),
    [("min_free_os_mb", "RPDEPLOY_MIN_FREE_OS_MB"), ("min_free_volume_mb", "RPDEPLOY_MIN_FREE_VOLUME_MB")],
)
def test_runtime_disk_fields_hold_the_bootstrap_bounds(field: str, name: str) -> None:
    bound = NUMBERS[name]
    for value in (bound.least, bound.most):
        DiskThresholds.model_validate({field: value})
        assert bootstrap_accepts(name, str(value))
    for value in (bound.least - 1, bound.most + 1):
        with pytest.raises(ValidationError):
            DiskThresholds.model_validate({field: value})
        assert not bootstrap_accepts(name, str(value))


@settings(max_examples=100, deadline=None)
@given(
    value=st.one_of(
        st.sampled_from(["pip", "uv", " uv ", "", " ", "PIP", "conda", "pip3"]), st.text(max_size=6)
    )
)
def test_the_installer_is_refused_exactly_when_the_bootstrap_refuses_it(value: str) -> None:
    assert (installer_problem(value) is None) == bootstrap_accepts("RPDEPLOY_INSTALLER", value)


def test_runtime_installer_offers_the_installers_the_bootstrap_takes() -> None:
    assert get_args(RuntimeConfig.model_fields["installer"].annotation) == INSTALLERS
    assert all(bootstrap_accepts("RPDEPLOY_INSTALLER", name) for name in INSTALLERS)
