"""Render a project's files: the Dockerfile, .dockerignore and the endpoint specs.

`render_project` is pure (config in, file contents out; templates are read through
a loader confined to the project); `write_files` and `check_drift` are the only
places that touch the project's files, through `deploy.files` (confined to the
project, written atomically).
"""

from __future__ import annotations

import difflib
import shlex
import traceback
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import jinja2

from deploy import files, layout
from deploy.config import LoadedConfig
from deploy.config.schema import Config
from deploy.config.yaml_source import PathKey
from deploy.errors import RenderError, RpdeployError
from deploy.render import endpoint_spec
from deploy.render.environment import MAX_OUTPUT, builtin_templates_dir, make_environment, reset_budget


@dataclass(frozen=True)
class RenderResult:
    """Every rendered file's content, before anything is written."""

    #: Name of the rendered Dockerfile in `files` (``Dockerfile.slim`` or ``Dockerfile.baked``).
    dockerfile: str
    #: Relative path -> content. Project files first, then the specs under `deploy.layout.BUILD_DIR`.
    files: dict[str, str]
    #: Files committed to the repository (checked by ``render --check``).
    committed: tuple[str, ...]
    #: The image reference the endpoint specs deploy.
    image: str
    #: Files the build context carries beside the project's (the slim image's bootstrap).
    context_files: dict[str, bytes] = field(default_factory=dict)


def render_project(loaded: LoadedConfig, image: str) -> RenderResult:
    """Render every output for ``loaded``, deploying ``image`` (an immutable reference).

    Raises `RenderError` for a broken template or a value that cannot be rendered
    safely; nothing is written.
    """
    config = loaded.config
    env = make_environment(loaded.root)
    dockerfile = f"Dockerfile.{config.image.strategy}"
    create = endpoint_spec.create_request(config, loaded.environment, image, source=loaded)
    outputs: dict[str, tuple[str, dict[str, Any]]] = {
        dockerfile: (f"{dockerfile}.j2", _dockerfile_context(loaded)),
        ".dockerignore": ("dockerignore.j2", _dockerignore_context(config, loaded.root)),
        str(layout.create_spec(loaded.environment)): ("endpoint.create.json.j2", {"spec": create}),
        str(layout.update_spec(loaded.environment)): (
            "endpoint.update.json.j2",
            {"spec": endpoint_spec.update_request(create)},
        ),
    }
    rendered = {
        name: _without_secrets(
            name, _render(env, template, {"template_name": template, **context}, loaded.root), loaded
        )
        for name, (template, context) in outputs.items()
    }
    return RenderResult(
        dockerfile=dockerfile,
        files=rendered,
        committed=(dockerfile, ".dockerignore"),
        image=image,
        context_files=bootstrap_files() if config.image.strategy == "slim" else {},
    )


def _without_secrets(name: str, text: str, loaded: LoadedConfig) -> str:
    """A rendered file is deployed as it is: a secret value interpolated into it (a
    Dockerfile ENV, a label, an endpoint name) is refused, naming the ``${VAR}``, because
    masking it would leave a literal ``***`` that a build or deploy would use."""
    if loaded.masker.text(text) == text:
        return text
    # A secret's value is in the text. Only a secret interpolated somewhere other than
    # endpoint.env can have brought it here (endpoint.env's exact copies became references,
    # its other copies `_secret_copy` refused): without one, the text holds a literal that
    # happens to equal a secret, and refusing it would tell that the secret equals it.
    copied = {
        variable
        for path, reads in loaded.reads.items()
        if not _in_endpoint_env(path)
        for variable in reads.variables
    }
    if copied:
        carried = {variable for value, variable in loaded.masker.secrets.items() if value and value in text}
        # Two secrets may share a value (the masker names one): name a copied one if it can.
        variables = sorted(carried & copied) or sorted(carried)
        raise RenderError(
            f"{name}: would carry the value of ${{{variables[0]}}}, a secret: only endpoint.env may"
            " reference a runpod-secret (a value that is exactly that variable)"
        )
    return text


def _in_endpoint_env(path: PathKey) -> bool:
    """Whether ``path`` (as written) is an ``endpoint.env`` entry, of the base or an environment."""
    return path[:2] == ("endpoint", "env") or (
        path[:1] == ("environments",) and path[2:4] == ("endpoint", "env")
    )


def _render(env: jinja2.Environment, template_name: str, context: dict[str, Any], root: Path) -> str:
    """Render one template; any failure of a (user) template is one `RenderError` line.

    User templates are code: besides Jinja's own errors they can divide by zero, recurse
    or hit the sandbox's bounds. Each becomes ``<template>:<line>: <what>``.
    """
    reset_budget()
    try:
        chunks: list[str] = []
        size = 0
        for chunk in env.get_template(template_name).generate(context):
            size += len(chunk)
            if size > MAX_OUTPUT:
                raise jinja2.exceptions.SecurityError(f"output is over {MAX_OUTPUT:,} characters")
            chunks.append(chunk)
        text = "".join(chunks)
    except jinja2.TemplateSyntaxError as exc:
        raise RenderError(
            f"{exc.filename or exc.name}:{exc.lineno}: template syntax error: {exc.message}"
        ) from None
    except jinja2.TemplateNotFound as exc:
        raise RenderError(f"template {exc.name!r} not found in templates/ or rpdeploy's built-ins") from None
    except RpdeployError:
        raise
    except Exception as exc:
        # One place for every kind: the template's name is what `_where` falls back to when no
        # template frame raised (the output bound above).
        raise RenderError(f"{_where(exc, template_name, root)}: {_failure(exc)}") from None
    return _normalize(text)


def _failure(exc: Exception) -> str:
    """What went wrong while a template ran, in words (`_where` says where)."""
    if isinstance(exc, jinja2.UndefinedError):
        return f"{exc.message}"
    if isinstance(exc, jinja2.exceptions.SecurityError):
        return f"unsafe template operation: {exc}"
    if isinstance(exc, RecursionError):
        return "template recursion is too deep"
    if isinstance(exc, MemoryError):
        return "template ran out of memory"
    what = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    return f"template error: {what}"


def _where(exc: BaseException, template_name: str, root: Path) -> str:
    """``<template file>:<line>`` of the innermost template frame (Jinja rewrites tracebacks so
    their frames carry the template's file and line); the template name when none is found."""
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename.endswith(".j2")]
    if not frames:
        return template_name
    frame = frames[-1]
    path = Path(frame.filename)
    builtin = builtin_templates_dir()
    if path.is_relative_to(builtin):
        shown = f"builtin/{path.relative_to(builtin)}"
    elif path.is_relative_to(root):
        shown = str(path.relative_to(root))
    else:
        shown = path.name
    return f"{shown}:{frame.lineno}"


def _normalize(text: str) -> str:
    """Collapse runs of blank lines and end with one newline, so output is stable."""
    lines: list[str] = []
    for raw in text.rstrip().splitlines():
        line = raw.rstrip()
        if line or (lines and lines[-1]):
            lines.append(line)
    return "\n".join(lines) + "\n"


def _dockerfile_context(loaded: LoadedConfig) -> dict[str, Any]:
    """What a Dockerfile template sees: only what shapes the image (`IMAGE_SHAPING_KEYS`), which
    no environment may override, so that a project's own template cannot make one environment's
    image differ from another's under the tag they share (one build per commit)."""
    config = loaded.config
    handler = config.handler
    workdir = config.image.workdir
    context = {
        "config_file": loaded.path.name,
        "base_image": config.image.base,
        "system_packages": list(config.image.system_packages),
        "workdir": workdir,
        "handler_src": handler.path.rstrip("/") + "/",
        "requirements_src": config.runtime.requirements,
        "command": start_command(config),
        # The slim image's bootstrap (deploy/runtime; docs/runtime.md) and what it reads.
        "bootstrap_src": BOOTSTRAP_CONTEXT_DIR + "/",
        "bootstrap_dest": BOOTSTRAP_IMAGE_DIR,
        "runtime_requirements": RUNTIME_REQUIREMENTS,
    }
    if config.image.strategy == "baked":
        # The baked image installs with it at build time. A slim image's installer is a run-time
        # setting an environment may change (the endpoint env, Config.runtime_env), so a slim
        # template never sees it.
        context["installer"] = config.runtime.installer
    return context


#: Where the bootstrap sits in the build context (added by `rpdeploy build`, see
#: `RenderResult.context_files`) and in the slim image. The image folder's name is the
#: package name the bootstrap's relative imports run under.
BOOTSTRAP_CONTEXT_DIR = ".rpdeploy/runtime"
BOOTSTRAP_IMAGE_DIR = "/opt/rpdeploy/rpdeploy_runtime"
RUNTIME_REQUIREMENTS = "/opt/rpdeploy/requirements.txt"


def bootstrap_files() -> dict[str, bytes]:
    """The bootstrap's modules, read as data (deploy.runtime is copied into images, never imported)."""
    source = Path(__file__).resolve().parent.parent / "runtime"
    return {f"{BOOTSTRAP_CONTEXT_DIR}/{path.name}": path.read_bytes() for path in sorted(source.glob("*.py"))}


def start_command(config: Config) -> list[str]:
    """The container's CMD, as an argument list (exec form)."""
    handler = config.handler
    if handler.command:
        try:
            return shlex.split(handler.command)
        except ValueError as exc:
            raise RenderError(f"handler.command: cannot split {handler.command!r}: {exc}") from None
    if handler.module:
        return ["python3", "-u", "-m", handler.module]
    return ["python3", "-u", str(PurePosixPath(config.image.workdir) / handler.file)]


#: Folders beside a root-layout handler that are never part of the worker, even with an
#: ``__init__.py`` (tests, build output, environments, the rpdeploy build folder).
NOT_WORKER_PACKAGES = frozenset(
    {"tests", "test", "testing", "build", "dist", "docs", "venv", "env", "site-packages", "node_modules"}
)


def _dockerignore_context(config: Config, root: Path) -> dict[str, Any]:
    """The allowlist: what the Dockerfile copies, and nothing else.

    The root layout (``handler.path: "."``, RunPod's quickstart and worker-basic) cannot
    be let back in as a folder (``!.`` re-admits nothing), so it lists what the image
    needs: the handler file, the Python modules and local packages beside it, the
    package named by ``handler.module`` and the requirements file.
    """
    handler = config.handler
    handler_dir = handler.path.rstrip("/")
    if handler_dir == ".":  # the config refuses an empty or absolute handler.path
        parent = str(PurePosixPath(handler.file).parent)
        include = [handler.file, "*.py" if parent == "." else f"{parent}/*.py"]
        include += _local_packages(root, parent)
        if handler.module:
            include.append(handler.module.split(".")[0])
        prefix = "**"
    else:
        include = [handler_dir]
        prefix = f"{handler_dir}/**"
    requirements = config.runtime.requirements
    if not requirements.startswith(handler_dir + "/"):
        include.append(requirements)
    exclude = [f"{prefix}/__pycache__", f"{prefix}/*.pyc", f"{prefix}/.env*"]
    return {"include": list(dict.fromkeys(include)), "exclude": exclude}


def _local_packages(root: Path, parent: str) -> list[str]:
    """The importable packages (``<name>/__init__.py``) beside the handler, sorted: what
    ``import pkg`` in the handler finds. Hidden folders, non-identifiers (``.venv``,
    ``my-pkg``) and `NOT_WORKER_PACKAGES` are left out; a folder linked out of the
    project is left for the build context to refuse by name."""
    level = root / parent
    if not level.is_dir():
        return []
    found = [
        folder.name
        for folder in level.iterdir()
        if folder.name.isascii()
        and folder.name.isidentifier()
        and folder.name not in NOT_WORKER_PACKAGES
        and (folder / "__init__.py").is_file()
    ]
    return [name if parent == "." else f"{parent}/{name}" for name in sorted(found)]


def _target(name: str, result: RenderResult, root: Path, out: Path | None) -> tuple[Path, Path]:
    """(confinement root, path) for one output: the project, or ``--out`` (specs flattened)."""
    if out is None:
        return root, root / name
    # Committed files are plain names (Dockerfile.*, .dockerignore): flattening them changes
    # nothing, so the condition's mutants are equivalent.
    return out, out / (name if name in result.committed else Path(name).name)  # pragma: no mutate


def write_files(result: RenderResult, root: Path, out: Path | None = None) -> list[Path]:
    """Write committed files to ``root`` (or ``out``) and specs under it; return the paths.

    Every path is confined to its root (a link leading out is refused) and all files
    are written as one atomic step (`deploy.files.write_many`): on a full disk or a
    read-only folder nothing changes. Unchanged files are not rewritten.
    """
    base = out if out is not None else root
    changed: dict[Path, bytes] = {}
    written: list[Path] = []
    for name, content in result.files.items():
        confine_root, target = _target(name, result, root, out)
        if files.read_text(confine_root, target) != content:
            changed[target] = content.encode("utf-8")  # pragma: no mutate (codec names ignore case)
        written.append(target)
    files.write_many(base, changed)
    return written


def check_drift(result: RenderResult, root: Path) -> dict[str, str]:
    """Unified diffs of committed files that differ from what the templates render.

    A committed file that is a link leading out of the project is refused
    (`OutsideProject`), never read into a diff that CI would print.
    """
    diffs: dict[str, str] = {}
    for name in result.committed:
        current = files.read_text(root, root / name) or ""
        expected = result.files[name]
        if current != expected:
            diff = difflib.unified_diff(
                current.splitlines(keepends=True),
                expected.splitlines(keepends=True),
                fromfile=f"a/{name} (committed)",
                tofile=f"b/{name} (rendered)",
            )
            diffs[name] = "".join(diff) or f"{name} is missing\n"
    return diffs
