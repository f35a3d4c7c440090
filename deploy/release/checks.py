"""Preflight checks: one typed result per thing checked against the platform before any write.

Every part of a deploy that can be checked ahead (GPU pools, CUDA versions, data centers,
network volumes, the image in its registry, secrets) reports `Check` items; `plan` and
`apply` show them, and `apply` refuses to write while one has failed (unless ``--force``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Check:
    """One preflight result.

    ``check`` names the kind (``gpu.pools``, ``image``, ``secret``…), ``ok`` whether it passed,
    ``detail`` one line saying what was found (never a secret value), ``where`` the config
    path it comes from (``endpoint.gpu.pools[0]``) when there is one; ``pending`` is true when
    the check passes only because `apply` will create something first (a missing secret,
    named in ``resource``; apply never rotates one), so callers decide on the field, never
    on the wording of ``detail``.
    """

    check: str
    ok: bool
    detail: str
    where: str | None = None
    pending: bool = False
    #: Passed, but the user should act (a stale secret, an implausible workers.max): shown as WARN.
    warning: bool = False
    #: With ``pending``: the name of the resource `apply` creates (listed in the plan's resources).
    resource: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "check": self.check,
            "ok": self.ok,
            "detail": self.detail,
            "where": self.where,
            "pending": self.pending,
            "warning": self.warning,
        }

    def line(self) -> str:
        """``ok   gpu.pools: ADA_24 serves serverless`` / ``FAIL …`` (with `` (at where)``)."""
        at = f" (at {self.where})" if self.where else ""
        mark = "FAIL" if not self.ok else "WARN" if self.warning else "ok  "
        return f"{mark} {self.check}: {self.detail}{at}"


def failed(checks: list[Check]) -> list[Check]:
    """The checks that did not pass, in order."""
    return [check for check in checks if not check.ok]


def pending_id(name: str) -> str:
    """What a dry run (``plan``) shows for the id of a resource that ``apply`` will create."""
    return f"(new: {name})"
