"""The buildx builder: ``docker buildx build`` (BuildKit) through the CLI plugin."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
from collections import deque
from pathlib import Path

from deploy.errors import BuildError, UsageError
from deploy.image.builders import ANSI, TAIL_LINES, BuildListener, step_failure
from deploy.image.context import BuildContext
from deploy.image.plan import BuildPlan
from deploy.image.record import BuildStep

_BUILDX_STEP = re.compile(r"^#(?P<id>\d+) \[(?:[\w-]+ )?(?P<n>\d+)/(?P<total>\d+)\] (?P<instruction>.*)$")
_BUILDX_CACHED = re.compile(r"^#(?P<id>\d+) CACHED$")
#: A vertex's output line: "#5 0.053 text", or "#5 ERROR: …" / "#5 DONE 0.1s".
_BUILDX_LINE = re.compile(r"^#(?P<id>\d+) (?:\d+\.\d+ )?(?P<text>.*)$")


def buildx_env() -> dict[str, str]:
    """The environment for `docker buildx`: RPDEPLOY_DOCKER_CONFIG points at a plugin folder (§6)."""
    env = dict(os.environ)
    if env.get("RPDEPLOY_DOCKER_CONFIG"):
        env["DOCKER_CONFIG"] = env["RPDEPLOY_DOCKER_CONFIG"]
    return env


def buildx_available() -> bool:
    try:
        done = subprocess.run(
            ["docker", "buildx", "version"], capture_output=True, env=buildx_env(), timeout=30, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0


class BuildxBuilder:
    """Sends the same context tar as the docker SDK builder on stdin (``-``)."""

    name = "buildx"

    def build(
        self, plan: BuildPlan, ref: str, listener: BuildListener, *, no_cache: bool
    ) -> tuple[str, list[BuildStep]]:
        if not buildx_available():
            raise UsageError(
                "image.builder is buildx but `docker buildx` is not available",
                hint="install the buildx CLI plugin (Debian: apt-get install docker-buildx; "
                "`scripts/stack.sh up` provides one through RPDEPLOY_DOCKER_CONFIG) or use builder: docker",
            )
        with tempfile.TemporaryDirectory(prefix="rpdeploy-buildx-") as tmp:
            metadata = Path(tmp) / "metadata.json"
            args = ["docker", "buildx", "build", "--progress", "plain", "--network", "host"]
            args += ["--metadata-file", str(metadata), "-f", plan.context.dockerfile, "-t", ref]
            args += [f"--label={k}={v}" for k, v in plan.labels.items()]
            args += [f"--build-arg={k}={v}" for k, v in plan.buildargs.items()]
            args += ["--no-cache"] if no_cache else []
            proc = subprocess.Popen(
                [*args, "-"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                env=buildx_env(),
            )
            steps, error = _follow(proc, plan.context, listener)
            if error is not None:
                raise error
            try:
                meta = json.loads(metadata.read_text(encoding="utf-8"))
            except (OSError, ValueError) as exc:
                raise BuildError(f"buildx wrote no usable metadata file: {exc}") from None
        image_id = meta.get("containerimage.config.digest") or meta.get("containerimage.digest")
        if not image_id:
            raise BuildError("buildx metadata has no image digest")
        return str(image_id), steps


def _follow(
    proc: subprocess.Popen[bytes], context: BuildContext, listener: BuildListener
) -> tuple[list[BuildStep], BuildError | None]:
    """Feed the context and parse BuildKit's plain progress: steps, CACHED marks, a failing step."""
    assert proc.stdin is not None
    assert proc.stdout is not None
    try:
        shutil.copyfileobj(context.open(), proc.stdin)
    except BrokenPipeError:
        pass  # buildx stopped reading (it failed): its output below says why
    finally:
        proc.stdin.close()
    steps: dict[str, tuple[int, int, str]] = {}  # BuildKit vertex id -> (n, total, instruction)
    cached_ids: set[str] = set()
    outputs: dict[str, deque[str]] = {}
    error: BuildError | None = None
    tail: deque[str] = deque(maxlen=TAIL_LINES)
    for raw in proc.stdout:
        line = ANSI.sub("", raw.decode("utf-8", "replace")).rstrip()
        tail.append(line)
        step, cached, vertex = _BUILDX_STEP.match(line), _BUILDX_CACHED.match(line), _BUILDX_LINE.match(line)
        if step:
            steps[step["id"]] = (int(step["n"]), int(step["total"]), step["instruction"])
            listener.step(*steps[step["id"]])
        elif cached and cached["id"] in steps:
            cached_ids.add(cached["id"])
            listener.cached(steps[cached["id"]][0])
        elif vertex and vertex["id"] in steps:
            text = vertex["text"]
            if text.startswith("ERROR: "):
                error = step_failure(
                    steps[vertex["id"]], text.removeprefix("ERROR: "), outputs.get(vertex["id"], [])
                )
            elif not text.startswith("DONE "):
                outputs.setdefault(vertex["id"], deque(maxlen=TAIL_LINES)).append(text)
                listener.output(text)
    proc.wait()
    if proc.returncode != 0 and error is None:
        error = step_failure(None, "buildx build failed", tail)
    ordered = sorted(steps.items(), key=lambda item: item[1][0])
    return [BuildStep(n, instruction, vid in cached_ids) for vid, (n, _, instruction) in ordered], error
