"""``python3 -m deploy.runtime`` (tests) or ``python3 /opt/rpdeploy/rpdeploy_runtime`` (the image).

Run as a folder, this file is a script with no package: it puts the folder's parent on
sys.path and imports the folder as a package, so the modules' relative imports work.

Before anything else is imported, the bootstrap reads the stdlib's bytecode from an environment
already on the work disk, if there is one: the image has no stdlib bytecode, and compiling the
modules the bootstrap imports was most of its start-up (docs/runtime.md, "Bytecode"). Any
environment will do: those pycs are checked-hash, so one made by another interpreter or from
other sources fails its check and the module is compiled from source as before. Nothing is
written (``sys.dont_write_bytecode``): the environments' bytecode is theirs.
"""

import importlib
import os
import sys


def _stdlib_bytecode() -> str | None:
    """``<work>/rpdeploy/envs/<key>/bytecode`` of the newest environment holding the stdlib's pycs."""
    stdlib = os.path.dirname(os.__file__).lstrip(os.sep)
    found: list[tuple[float, str]] = []
    volume = os.environ.get("RPDEPLOY_VOLUME_PATH") or "/runpod-volume"
    for work in (volume, os.environ.get("RPDEPLOY_WORK_DIR")):
        envs = os.path.join(work, "rpdeploy", "envs") if work else ""
        try:
            names = os.listdir(envs) if envs else []
        except OSError:
            continue
        for name in names:
            prefix = os.path.join(envs, name, "bytecode")
            try:
                found.append((os.stat(os.path.join(prefix, stdlib)).st_mtime, prefix))
            except OSError:
                continue
    return max(found)[1] if found else None


if not os.environ.get("PYTHONPYCACHEPREFIX"):
    sys.dont_write_bytecode = True
    sys.pycache_prefix = _stdlib_bytecode()

if __package__:
    from .bootstrap import main
else:
    _here = os.path.dirname(os.path.abspath(__file__))
    sys.path[0] = os.path.dirname(_here)
    main = importlib.import_module(os.path.basename(_here) + ".bootstrap").main

sys.exit(main(sys.argv[1:]))
