"""Images: tags and labels from git, the build context, builders, registries and pushes.

Start-up cost matters here (an unchanged `rpdeploy build` should cost little more than
Python's start-up): docker-py imports paramiko (about 0.2 s of CPU, bench/RESULTS.md)
at import time only to offer ``ssh://`` engines. Unless ``DOCKER_HOST`` is such an
engine, paramiko is marked unavailable before docker is imported, which docker-py
supports (``docker.transport`` treats it as an optional import).
"""

import os
import sys

if not os.environ.get("DOCKER_HOST", "").startswith("ssh://") and "docker" not in sys.modules:
    sys.modules.setdefault("paramiko", None)  # type: ignore[arg-type]
