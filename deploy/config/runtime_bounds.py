"""The slim bootstrap's numeric settings and their bounds (and its installers), as the config checks them.

The bootstrap (deploy/runtime/settings.py) reads these variables in the worker, from the slim
Dockerfile's ``ENV`` (``runtime.disk.*`` rendered) or the endpoint env (docs/runtime.md,
"Settings"), and refuses a value outside its bounds with exit 1 at cold start. Checking the same
bounds at load time turns that cold-start failure into a config error naming the key and line.
The bootstrap is copied into images and may not import this package (import-linter's
``runtime-boundary``), so the bounds are written in both places;
tests/runtime/test_settings_agree.py proves the two accept and refuse the same values.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Final

from deploy.config.patterns import quoted

#: A petabyte in MB: no real free-space floor comes near it.
MOST_MB: Final = 10**9
#: A week in seconds: the longest lock wait or heartbeat age that can be meant.
MOST_S: Final = 7 * 24 * 3600


@dataclass(frozen=True)
class Bound:
    """``least <= value <= most``; ``whole``: a count, no fraction."""

    least: int
    most: int
    whole: bool = False


#: Every number the bootstrap reads, by variable (a blank value means its default).
NUMBERS: Final[dict[str, Bound]] = {
    "RPDEPLOY_MIN_FREE_VOLUME_MB": Bound(0, MOST_MB),
    "RPDEPLOY_MIN_FREE_OS_MB": Bound(0, MOST_MB),
    "RUNPOD_MIN_DISK_PERCENT": Bound(0, 100),
    "RPDEPLOY_INSTALL_ATTEMPTS": Bound(1, 100, whole=True),
    "RPDEPLOY_LOCK_STALE_S": Bound(1, MOST_S),
    "RPDEPLOY_LOCK_WAIT_S": Bound(0, MOST_S),
}


#: RPDEPLOY_INSTALLER's values (blank: pip), as `runtime.installer` spells them.
INSTALLERS: Final = ("pip", "uv")


def installer_problem(raw: str) -> str | None:
    """Why the bootstrap would refuse ``raw`` for RPDEPLOY_INSTALLER, or None."""
    text = raw.strip()
    return None if not text or text in INSTALLERS else f"{quoted(text)}: use pip or uv"


def number_problem(name: str, raw: str) -> str | None:
    """Why the bootstrap would refuse ``raw`` for the variable ``name``, or None.

    Parsed as the bootstrap parses it: surrounding spaces dropped, then Python's ``float``
    (so ``1e3`` and ``1_000`` are numbers, ``0x10`` is not); ``inf``, ``nan`` and ``1e400``
    are refused. ``name`` must be a key of `NUMBERS`."""
    bound = NUMBERS[name]
    text = raw.strip()
    if not text:
        return None
    try:
        value = float(text)
    except ValueError:
        return f"{quoted(text)} is not a number"
    if not math.isfinite(value):
        return f"{quoted(text)} is not a finite number"
    if not bound.least <= value <= bound.most:
        return f"{quoted(text)} is out of range: use {bound.least:.0f} to {bound.most:.0f}"
    if bound.whole and not value.is_integer():
        return f"{quoted(text)} is not a whole number"
    return None
