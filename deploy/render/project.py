"""Render a project's files: the Dockerfile, .dockerignore and the endpoint specs.

`render_project` is pure (config in, file contents out); `write_files` and
`check_drift` are the only places that touch the disk.
"""

from __future__ import annotations

import difflib
import shlex
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import jinja2

from deploy.config import LoadedConfig
from deploy.config.schema import Config
from deploy.errors import RenderError
from deploy.render import endpoint_spec
from deploy.render.environment import make_environment

#: Where endpoint specs go (they differ per environment and are not committed).
SPEC_DIR = Path("build") / "rpdeploy"


@dataclass(frozen=True)
class RenderResult:
    #: Name of the rendered Dockerfile in `files` (``Dockerfile.slim`` or ``Dockerfile.baked``).
    dockerfile: str
    #: Relative path -> content. Project files first, then the specs under `SPEC_DIR`.
    files: dict[str, str]
    #: Files committed to the repository (checked by ``render --check``).
    committed: tuple[str, ...]
    #: The image reference the endpoint specs deploy.
    image: str
    #: Template used for each output.
    sources: dict[str, str] = field(default_factory=dict)


def render_project(loaded: LoadedConfig, image: str) -> RenderResult:
    """Render every output for ``loaded``, deploying ``image`` (an immutable reference).

    Raises `RenderError` for a broken template or a value that cannot be rendered
    safely; nothing is written.
    """
    config = loaded.config
    env = make_environment(loaded.root)
    dockerfile = f"Dockerfile.{config.image.strategy}"
    spec_dir = SPEC_DIR / (loaded.environment or "default")
    outputs: dict[str, tuple[str, dict[str, Any]]] = {
        dockerfile: (f"{dockerfile}.j2", _dockerfile_context(loaded)),
        ".dockerignore": ("dockerignore.j2", _dockerignore_context(config)),
        str(spec_dir / "endpoint.create.json"): (
            "endpoint.create.json.j2",
            {"spec": endpoint_spec.create_request(config, loaded.environment, image)},
        ),
        str(spec_dir / "endpoint.update.json"): (
            "endpoint.update.json.j2",
            {"spec": endpoint_spec.update_request(config, loaded.environment, image)},
        ),
    }
    # Secret values interpolated into the config never reach a rendered file (masked as ***).
    files = {
        name: loaded.masker.text(_render(env, template, {"template_name": template, **context}))
        for name, (template, context) in outputs.items()
    }
    return RenderResult(
        dockerfile=dockerfile,
        files=files,
        committed=(dockerfile, ".dockerignore"),
        image=image,
        sources={name: template for name, (template, _) in outputs.items()},
    )


def _render(env: jinja2.Environment, template_name: str, context: dict[str, Any]) -> str:
    try:
        text = env.get_template(template_name).render(context)
    except jinja2.TemplateSyntaxError as exc:
        raise RenderError(
            f"{exc.filename or exc.name}:{exc.lineno}: template syntax error: {exc.message}"
        ) from None
    except jinja2.TemplateNotFound as exc:
        raise RenderError(f"template {exc.name!r} not found in templates/ or rpdeploy's built-ins") from None
    except jinja2.UndefinedError as exc:
        raise RenderError(f"{template_name}: {exc.message}") from None
    except jinja2.exceptions.SecurityError as exc:
        raise RenderError(f"{template_name}: unsafe template operation: {exc}") from None
    return _normalize(text)


def _normalize(text: str) -> str:
    """Collapse runs of blank lines and end with one newline, so output is stable."""
    lines: list[str] = []
    for raw in text.rstrip().splitlines():
        line = raw.rstrip()
        if line or (lines and lines[-1]):
            lines.append(line)
    return "\n".join(lines) + "\n"


def _dockerfile_context(loaded: LoadedConfig) -> dict[str, Any]:
    config = loaded.config
    handler = config.handler
    workdir = config.image.workdir
    return {
        "config_file": loaded.path.name,
        "base_image": config.image.base,
        "system_packages": list(config.image.system_packages),
        "workdir": workdir,
        "handler_src": handler.path.rstrip("/") + "/",
        "requirements_src": config.runtime.requirements,
        "volume_path": config.runtime.volume_path,
        "command": start_command(config),
    }


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


def _dockerignore_context(config: Config) -> dict[str, Any]:
    handler_dir = config.handler.path.rstrip("/")
    include = [handler_dir]
    requirements = config.runtime.requirements
    if not requirements.startswith(handler_dir + "/"):
        include.append(requirements)
    exclude = [f"{handler_dir}/**/__pycache__", f"{handler_dir}/**/*.pyc", f"{handler_dir}/**/.env*"]
    return {"include": include, "exclude": exclude}


def write_files(result: RenderResult, root: Path, out: Path | None = None) -> list[Path]:
    """Write committed files to ``root`` (or ``out``) and specs under it; return the paths."""
    written: list[Path] = []
    for name, content in result.files.items():
        if out is not None:
            target = out / Path(name).name if name not in result.committed else out / name
        else:
            target = root / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if not target.exists() or target.read_text(encoding="utf-8") != content:
            target.write_text(content, encoding="utf-8")
        written.append(target)
    return written


def check_drift(result: RenderResult, root: Path) -> dict[str, str]:
    """Unified diffs of committed files that differ from what the templates render."""
    diffs: dict[str, str] = {}
    for name in result.committed:
        path = root / name
        current = path.read_text(encoding="utf-8") if path.exists() else ""
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
