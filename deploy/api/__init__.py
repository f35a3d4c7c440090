"""RunPod's REST v2 management API as typed calls (`RunPodApi`), for `deploy.release`.

Modules: transport (one `requests` session, Bearer auth, timeouts, urllib3 retries, request
bodies checked against the vendored spec, call counting), errors (every failure as one line),
client (the typed calls). Tests run it against the emulator over HTTP, through a
fault-injecting proxy for the failure paths (tests/faultproxy.py).
"""

from deploy.api.client import CallCount, RunPodApi
from deploy.api.errors import Conflict, NotFound
from deploy.errors import ApiError, RequestInvalid

__all__ = ["ApiError", "CallCount", "Conflict", "NotFound", "RequestInvalid", "RunPodApi"]
