"""Bytecode kept in the environment: a ``PYTHONPYCACHEPREFIX`` tree for its site and the stdlib.

Why: a slim worker runs with ``PYTHONDONTWRITEBYTECODE=1`` (no caches on the OS disk, and each
container starts from a clean layer anyway), and a base image usually ships no ``.pyc`` for the
standard library (the official ``python`` images delete them; so does the local one). So every
cold start compiled each stdlib module it imported, twice (bootstrap and handler): about 1.2 s
of the reference worker's 2.5 s handler start (bench/RESULTS.md, "Where the seconds go").

The environment therefore carries ``bytecode/``, the folder ``PYTHONPYCACHEPREFIX`` names for
the handler (Python >= 3.8 reads ``<prefix>/<absolute source folder>/<name>.<tag>.pyc`` instead
of ``__pycache__``; docs.python.org/3/using/cmdline.html#envvar-PYTHONPYCACHEPREFIX):

- the site's modules, timestamp-checked (the site is keyed by its requirements; tar keeps the
  sources' mtimes), compiled where the site was built and moved with one rename to where it is
  published (`relocate`): the mirror holds absolute paths;
- the standard library's, *checked-hash* pycs (PEP 552): a base image rebuilt with other
  sources for the same Python version fails the hash check and compiles from source, so stale
  bytecode never runs.

Workers only read it: the handler keeps ``PYTHONDONTWRITEBYTECODE=1``, so nothing else (the
handler's own modules, whose mtimes `rpdeploy build` normalises for reproducible images) is ever
cached across images, where an equal mtime and size could hide changed code.
"""

from __future__ import annotations

import os
import sys
import sysconfig

from .failure import EXIT_DISK, Failure, say

ROOT = "bytecode"
#: Third-party folders below the stdlib (Debian's dist-packages) are not the interpreter's.
_NOT_STDLIB = r"[/\\](site|dist)-packages([/\\]|$)"


def stdlib_dirs() -> list[str]:
    """The interpreter's pure-Python standard library folders (one on most systems)."""
    paths = sysconfig.get_paths()
    found = [paths["stdlib"]]
    if paths["platstdlib"] not in found:
        found.append(paths["platstdlib"])
    return [path for path in found if os.path.isdir(path)]


def compile_tree(root: str, site: str, env: dict[str, str], *, stdlib: bool = True) -> None:
    """Compile ``site`` (timestamp pycs) and, with ``stdlib``, the stdlib (checked-hash pycs) into ``root``.

    ``python -m compileall`` in a child process with ``PYTHONPYCACHEPREFIX`` set: it compiles
    on every core (``-j 0``), and its worker processes start from its own ``__main__``, not from
    the bootstrap's. A source that does not compile (Python 2 leftovers in some packages'
    tests) is skipped with a warning, as pip does: importing it fails with or without bytecode.
    Raises Failure (EXIT_DISK) when the disk fills up."""
    # compileall writes the pycs it is asked for whatever PYTHONDONTWRITEBYTECODE says; the flag
    # keeps its own imports (concurrent.futures, ...) from landing in the tree as timestamp pycs.
    child = {**env, "PYTHONPYCACHEPREFIX": root, "PYTHONDONTWRITEBYTECODE": "1"}
    _compile(child, ["--invalidation-mode", "timestamp", site], "the environment")
    if stdlib:
        stdlib_args = ["--invalidation-mode", "checked-hash", "-x", _NOT_STDLIB, *stdlib_dirs()]
        _compile(child, stdlib_args, "the stdlib")


def _compile(env: dict[str, str], args: list[str], what: str) -> None:
    import subprocess  # noqa: PLC0415 (only an install compiles; the warm path reads this module)

    command = [sys.executable, "-m", "compileall", "-q", "-j", "0", *args]
    done = subprocess.run(command, env=env, capture_output=True, text=True, errors="replace", check=False)
    if done.returncode == 0:
        return
    output = (done.stdout + done.stderr).splitlines()
    if any("No space left on device" in line or "[Errno 28]" in line for line in output):
        raise Failure(f"no space left on the work disk while compiling {what}'s bytecode", EXIT_DISK)
    failed = sum(1 for line in output if line.startswith("*** Error compiling"))
    say(f"warning: {failed or 'some'} file(s) of {what} did not compile; they are imported from source")


def mirror(root: str, folder: str) -> str:
    """Where the pycs of the sources in the absolute ``folder`` live under ``root``."""
    return os.path.join(root, folder.lstrip(os.sep))


def relocate(root: str, old_site: str, new_site: str) -> None:
    """Move the site's pycs from the mirror of ``old_site`` to that of ``new_site`` (one rename),
    removing the folders the old mirror leaves empty."""
    source, dest = mirror(root, old_site), mirror(root, new_site)
    if not os.path.isdir(source):
        return
    os.makedirs(os.path.dirname(dest), exist_ok=True)
    os.rename(source, dest)
    parent = os.path.dirname(source)
    while parent != root and parent.startswith(root + os.sep):
        try:
            os.rmdir(parent)
        except OSError:  # not empty: another mirror (the stdlib's) shares it
            return
        parent = os.path.dirname(parent)


def is_clean_absolute(path: object) -> bool:
    """Whether ``path`` is an absolute, normalised path without ``..`` (safe to mirror)."""
    return (
        isinstance(path, str)
        and os.path.isabs(path)
        and os.path.normpath(path) == path
        and ".." not in path.split(os.sep)
        and "\0" not in path
    )
