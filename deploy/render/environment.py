"""The Jinja environment: sandboxed, strict, project templates before built-ins."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from jinja2 import ChoiceLoader, FileSystemLoader, PrefixLoader, StrictUndefined
from jinja2.sandbox import SandboxedEnvironment

from deploy.render.filters import FILTERS


def builtin_templates_dir() -> Path:
    """Where rpdeploy's own templates are.

    In a wheel they are packaged as ``deploy/templates``; in a source checkout they
    are the repository's top-level ``templates/``.
    """
    package_dir = Path(__file__).resolve().parent.parent
    packaged = package_dir / "templates"
    return packaged if packaged.is_dir() else package_dir.parent / "templates"


def make_environment(project_root: Path) -> SandboxedEnvironment:
    """A sandboxed environment whose search path is ``<project>/templates`` then built-ins.

    A user overrides a template by putting a file of the same name in their
    ``templates/`` folder; ``builtin/<name>`` always reaches rpdeploy's own version, so
    an override can ``{% extends "builtin/Dockerfile.slim.j2" %}`` and change one block.
    Cached per project and per set of project templates: Jinja re-reads a changed
    file itself (auto_reload), and a template added or removed gives a new environment
    (a cached one would keep resolving that name to the built-in).
    """
    overrides = project_root / "templates"
    present = tuple(sorted(p.name for p in overrides.glob("*.j2"))) if overrides.is_dir() else ()
    return _environment(project_root, present)


@lru_cache(maxsize=8)
def _environment(project_root: Path, _present: tuple[str, ...]) -> SandboxedEnvironment:
    builtin = FileSystemLoader(str(builtin_templates_dir()))
    search = [FileSystemLoader(str(project_root / "templates")), builtin]
    env = SandboxedEnvironment(
        loader=ChoiceLoader([PrefixLoader({"builtin": builtin}), *search]),
        undefined=StrictUndefined,
        autoescape=False,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters.update(FILTERS)
    return env
