"""bench/coldstart.py's scenario selector and its partial-run ratios (no Docker: pure functions)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from bench.coldstart import finish, scenarios


def test_only_takes_a_comma_separated_subset() -> None:
    assert scenarios("1, 3,cold") == {"1", "3", "cold"}


@pytest.mark.parametrize("text", ["5", "1,warm", ",", ""])
def test_only_refuses_an_unknown_or_empty_list_in_one_line(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError, match="choose from 1,2,3,4,cold,heavy"):
        scenarios(text)


def _figure(median: float) -> dict[str, float]:
    return {"median_s": median}


def test_a_partial_run_gets_only_the_ratios_it_measured(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "partial.json"
    results = {
        "warm_host": {"1_baked": _figure(5.0), "3_slim_s3_archive": _figure(15.0)},
        "cold_host": {},
        "partial": True,
    }
    finish(results, out)
    written = json.loads(out.read_text())
    assert written["ratios"] == {"s3_over_baked": 3.0}
    assert written["targets"] == {"s3_over_baked": {"limit": 2.0, "met": False}}
    assert "partial" not in written
    capsys.readouterr()


def test_cold_host_ratios_compare_the_times_without_the_removal(tmp_path: Path) -> None:
    cold = {
        "reference_baked": {"minus_removal": _figure(10.0)},
        "reference_slim_warm_volume": {"minus_removal": _figure(5.0)},
    }
    out = tmp_path / "cold.json"
    finish({"warm_host": {}, "cold_host": cold}, out)
    written = json.loads(out.read_text())
    assert written["ratios"] == {"cold_host_reference_slim_over_baked": 0.5}
    assert written["targets"]["cold_host_reference_slim_over_baked"] == {"limit": 0.6, "met": True}
