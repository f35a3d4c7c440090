"""RunPod REST v2 client (engineer B's `deploy.api`; this is engine9's stand-in until api9 merges)."""

from deploy.api.client import CallCount, RunPodApi
from deploy.api.errors import Conflict, NotFound

__all__ = ["CallCount", "Conflict", "NotFound", "RunPodApi"]
