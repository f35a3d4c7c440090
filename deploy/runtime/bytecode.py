"""Bytecode kept in the environment: a ``PYTHONPYCACHEPREFIX`` tree for its site and the stdlib.

Why: a slim worker runs with ``PYTHONDONTWRITEBYTECODE=1`` (no caches on the OS disk, and each
container starts from a clean layer anyway), and a base image usually ships no ``.pyc`` for the
standard library (the official ``python`` images delete them; so does the local one). So every
cold start compiled each stdlib module it imported, twice (bootstrap and handler): about 1.2 s
of the reference worker's 2.5 s handler start (bench/RESULTS.md, "Where the seconds go").

The environment therefore carries ``bytecode/``, a tree laid out as ``PYTHONPYCACHEPREFIX``
expects (Python >= 3.8 reads ``<prefix>/<absolute source folder>/<name>.<tag>.pyc`` instead of
``__pycache__``; docs.python.org/3/using/cmdline.html#envvar-PYTHONPYCACHEPREFIX):

- the site's modules, timestamp-checked (the site is keyed by its requirements; tar keeps the
  sources' mtimes), under the mirror of the folder the site was compiled in (the manifest's
  ``bytecode_site``: a staging folder, or another machine's work disk for an archive);
- the standard library's, *checked-hash* pycs (PEP 552): a base image rebuilt with other
  sources for the same Python version fails the hash check and compiles from source, so stale
  bytecode never runs.

The handler does not get that tree as its prefix but a per-container `view`: a fresh folder
holding only two links, its stdlib mirror and its site mirror (named by the site's path *now*,
wherever the environment was compiled or is mounted). Python finds nothing else there, so the
handler's own modules and the bootstrap's (whose mtimes `rpdeploy build` normalises for
reproducible images, so an equal mtime and size could hide changed code) are never read from,
nor written into, the shared tree: a pyc something writes for them lands in the view, which dies
with the container.
"""

from __future__ import annotations

import os
import re
import sys
import sysconfig
import tempfile

from .failure import say
from .workdisk import disk_failure

ROOT = "bytecode"
#: Left out of the stdlib's compile (folders below it): third-party ones (Debian's dist-packages)
#: are not the interpreter's, and its own tests (where an interpreter ships them) are never
#: imported by a worker (33 MB of pycs, and data files that do not compile, in a pyenv build).
_NOT_STDLIB = ("site-packages", "dist-packages", "test", "tests", "idle_test")


def _skip_pattern(folders: list[str]) -> str:
    """compileall's ``-x`` (searched in each full path): `_NOT_STDLIB` folders below ``folders``."""
    below = "|".join(re.escape(folder) for folder in folders)
    names = "|".join(_NOT_STDLIB)
    return rf"^(?:{below})/(?:.*/)?(?:{names})(?:/|$)"


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
        folders = stdlib_dirs()
        stdlib_args = ["--invalidation-mode", "checked-hash", "-x", _skip_pattern(folders), *folders]
        _compile(child, stdlib_args, "the stdlib")


def _compile(env: dict[str, str], args: list[str], what: str) -> None:
    import subprocess  # noqa: PLC0415 (only an install compiles; the warm path reads this module)

    command = [sys.executable, "-m", "compileall", "-q", "-j", "0", *args]
    done = subprocess.run(command, env=env, capture_output=True, text=True, errors="replace", check=False)
    if done.returncode == 0:
        return
    output = (done.stdout + done.stderr).splitlines()
    failure = disk_failure(output, env["PYTHONPYCACHEPREFIX"], f"compiling {what}'s bytecode")
    if failure is not None:  # a disk problem, not the sources': nothing is published
        raise failure
    failed = sum(1 for line in output if line.startswith("*** Error compiling"))
    say(f"warning: {failed or 'some'} file(s) of {what} did not compile; they are imported from source")


def mirror(root: str, folder: str) -> str:
    """Where the pycs of the sources in the absolute ``folder`` live under ``root``."""
    return os.path.join(root, folder.lstrip(os.sep))


def view(tree: str, compiled_for: str, site: str, parent: str) -> str:
    """A fresh per-container PYTHONPYCACHEPREFIX in ``parent``: links to ``tree``'s stdlib mirror and
    to its mirror of ``compiled_for`` (named after ``site``, the site's path in this container).

    A link whose name would sit inside another's is left out (a site below the stdlib folder):
    making its parents would write into the shared tree through the other link."""
    made = tempfile.mkdtemp(prefix="rpdeploy-bytecode-", dir=parent)
    links = [(mirror(tree, folder), folder) for folder in stdlib_dirs()]
    links.append((mirror(tree, compiled_for), site))
    placed: list[str] = []
    for target, folder in links:
        if not os.path.isdir(target) or any(_nested(folder, other) for other in placed):
            continue
        link = mirror(made, folder)
        os.makedirs(os.path.dirname(link), exist_ok=True)
        os.symlink(target, link)
        placed.append(folder)
    return made


def _nested(one: str, other: str) -> bool:
    common = os.path.commonpath([one, other])
    return common in (one, other)


def is_clean_absolute(path: object) -> bool:
    """Whether ``path`` is an absolute, normalised path without ``..`` (safe to mirror)."""
    return (
        isinstance(path, str)
        and os.path.isabs(path)
        and os.path.normpath(path) == path
        and ".." not in path.split(os.sep)
        and "\0" not in path
    )
