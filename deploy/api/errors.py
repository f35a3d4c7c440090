"""API error types (stand-in until api9 merges)."""

from __future__ import annotations

from deploy.errors import ApiError


class NotFound(ApiError):
    """404."""


class Conflict(ApiError):
    """409."""
