"""``--target local|runpod``: which RunPod the deploy commands talk to (engineer B's; engine9's stand-in).

``runpod`` uses the process environment (RUNPOD_API_KEY, RUNPOD_API_URL); ``local`` takes URL and
key from the running emulator, exactly what ``eval "$(rpdeploy emulator env)"`` exports.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from deploy.errors import EmulatorError


def target_environ(target: str, environ: Mapping[str, str]) -> dict[str, str]:
    if target != "local":
        return dict(environ)
    # Imported here: only --target local needs the emulator's status helpers.
    from deploy.cli import emulator_cmd  # noqa: PLC0415

    server = emulator_cmd.server  # type: ignore[attr-defined]  # stand-in until api9 merges

    current = server.status(Path(environ.get(emulator_cmd.STATE_ENV, str(server.DEFAULT_STATE))))
    if not current.running or current.host is None or current.port is None:
        raise EmulatorError(
            f"--target local: no emulator runs for {current.state_dir}", hint="rpdeploy emulator start"
        )
    # An emulator started with --api-key/$RUNPOD_API_KEY keeps no key file: the caller has the key.
    key = environ.get("RUNPOD_API_KEY", "")
    if current.api_key_file.exists():
        key = current.api_key_file.read_text(encoding="utf-8").strip()
    urls = server.urls(current.host, current.port)
    return {
        **os.environ,
        **environ,
        **urls,
        "RUNPOD_API_URL": urls["RUNPOD_API_BASE_URL"],
        "RUNPOD_API_KEY": key,
    }
