"""Render scenarios shared by the golden-file, lint and schema tests."""

from __future__ import annotations

from dataclasses import dataclass, field

from tests.conftest import BASE_CONFIG

IMAGE = "127.0.0.1:5000/acme/demo-worker:sha-0123456"


@dataclass(frozen=True)
class Scenario:
    name: str
    config: str
    environment: str | None = None
    files: dict[str, str] = field(default_factory=dict)


OVERRIDE_TEMPLATE = """\
{#- A project override: extend the built-in slim template and add a healthcheck-free label. -#}
{% extends "builtin/Dockerfile.slim.j2" %}
{% block environment %}
{{ super() }}
ENV APP_FLAVOUR="override"
{% endblock %}
"""

SCENARIOS = [
    Scenario("slim", BASE_CONFIG),
    Scenario("baked", BASE_CONFIG.replace("strategy: slim", "strategy: baked")),
    # installer: uv in both strategies; the slim one with an index and an S3 archive (issue 10).
    Scenario(
        "baked-uv",
        BASE_CONFIG.replace("strategy: slim", "strategy: baked").replace(
            "requirements: worker/requirements.txt", "requirements: worker/requirements.txt\n  installer: uv"
        ),
    ),
    Scenario(
        "slim-uv-s3",
        BASE_CONFIG.replace(
            "requirements: worker/requirements.txt",
            "requirements: worker/requirements.txt\n  installer: uv\n  index_url: http://127.0.0.1:8099/simple/\n"
            "  s3: {bucket: rpdeploy-envs, prefix: envs/, endpoint_url: 'http://127.0.0.1:8333',"
            " region: us-east-1}\n"
            "  disk: {min_free_volume_mb: 4096, min_free_os_mb: 256}",
        ),
    ),
    Scenario(
        "system-packages",
        BASE_CONFIG.replace("base: 127.0.0.1:5000/python:3.11-slim-local", "base: python:3.11-slim").replace(
            "strategy: slim", "strategy: baked\n  system_packages: [ffmpeg, libgl1=1.6.0-1, ca-certificates]"
        ),
    ),
    Scenario(
        "overrides",
        # The start command is the project's (what shapes the image may not differ per
        # environment, `rules.image_override_problems`); production overrides its endpoint.
        BASE_CONFIG.replace(
            "  file: handler.py\n",
            "  file: handler.py\n  command: python3 -u /app/handler.py --rp_log_level ERROR\n",
        )
        + "  production:\n    endpoint:\n      workers: {min: 1, max: 4}\n      env: {LOG_LEVEL: WARNING}\n",
        environment="production",
        files={"templates/Dockerfile.slim.j2": OVERRIDE_TEMPLATE},
    ),
    Scenario(
        "cpu-inline-secret",
        BASE_CONFIG.replace("  gpu:\n    pools: [ADA_24]\n", "  cpu: [{id: cpu3c, vcpuCount: 4}]\n")
        .replace("{type: QUEUE_DELAY, queueDelay: 4}", "{type: REQUEST_COUNT, requestCount: 3}")
        .replace("{min: 0, max: 2, idleTimeout: 5}", "{min: 0, max: 2}")
        .replace("  - name: AWS_SECRET_ACCESS_KEY", "  - name: AWS_SECRET_ACCESS_KEY\n    mode: inline"),
    ),
]
