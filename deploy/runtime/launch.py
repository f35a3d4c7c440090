"""Runs a Python handler in place of ``python3 <file>`` / ``python3 -m <module>``, explaining import errors.

The bootstrap execs ``python3 [options] launch.py file|module <target> [args]``: this
process *is* the handler (signals reach it), and an ImportError that escapes the handler's
start becomes one line naming the module and the exception, then exit 1. Self-contained
(run as a script, not as part of the package).
"""

from __future__ import annotations

import os
import runpy
import sys

PREFIX = "rpdeploy-bootstrap"


def main(argv: list[str]) -> int:
    if len(argv) < 2 or argv[0] not in {"file", "module"}:
        print(f"{PREFIX}: usage: launch.py file|module <target> [args...]", file=sys.stderr)
        return 2
    kind, target, args = argv[0], argv[1], argv[2:]
    try:
        if kind == "file":
            sys.argv = [target, *args]
            # What `python3 <file>` puts first on sys.path; here it would be this folder.
            sys.path[0] = os.path.dirname(os.path.abspath(target))
            runpy.run_path(target, run_name="__main__")
        else:
            sys.argv = [target, *args]
            sys.path[0] = os.getcwd()
            runpy.run_module(target, run_name="__main__", alter_sys=True)
    except ImportError as exc:
        missing = exc.name or "?"
        print(
            f"{PREFIX}: the handler {target} failed to import {missing}: {type(exc).__name__}: {exc}"
            " (is it in the requirements?)",
            file=sys.stderr,
            flush=True,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
