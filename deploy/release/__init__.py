"""Releases: plan, apply, roll back, promote and destroy RunPod endpoints (REST v2, through `deploy.api`)."""
