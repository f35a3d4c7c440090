"""Rendering: Jinja templates + a validated config → Dockerfile, .dockerignore, endpoint specs."""

from deploy.render.project import RenderResult, check_drift, render_project, write_files

__all__ = ["RenderResult", "check_drift", "render_project", "write_files"]
