"""The docker SDK builder: the engine's legacy builder through ``POST /build``."""

from __future__ import annotations

import re
from collections import deque
from typing import TYPE_CHECKING

import docker.errors
import requests

from deploy.errors import BuildError, EngineError
from deploy.image.builders import ANSI, TAIL_LINES, BuildListener, step_failure
from deploy.image.engine import first_line
from deploy.image.plan import BuildPlan
from deploy.image.record import BuildStep

if TYPE_CHECKING:
    from docker import DockerClient

_STEP = re.compile(r"^Step (?P<n>\d+)/(?P<total>\d+) : (?P<instruction>.*)$")
#: Builder bookkeeping lines, not a step's output.
_BOOKKEEPING = ("---> ", "Removing intermediate container", "Successfully built", "Successfully tagged")


class StepTracker:
    """Follows the legacy builder's stream: steps, cache hits and the tail of the output."""

    def __init__(self, listener: BuildListener) -> None:
        self.listener = listener
        self.steps: list[BuildStep] = []
        self.current: tuple[int, int, str] | None = None
        self.cached = False
        self.tail: deque[str] = deque(maxlen=TAIL_LINES)

    def feed(self, text: str) -> None:
        for line in ANSI.sub("", text).splitlines():
            match = _STEP.match(line.strip())
            if match:
                self._close()
                self.current = (int(match["n"]), int(match["total"]), match["instruction"])
                self.tail.clear()
                self.listener.step(*self.current)
            elif line.strip() == "---> Using cache":
                self.cached = True
                if self.current:
                    self.listener.cached(self.current[0])
            elif line.strip() and not line.strip().startswith(_BOOKKEEPING):
                self.tail.append(line.rstrip())
                self.listener.output(line.rstrip())

    def _close(self) -> None:
        if self.current:
            self.steps.append(BuildStep(self.current[0], self.current[2], self.cached))
        self.cached = False

    def finish(self) -> list[BuildStep]:
        self._close()
        self.current = None
        return self.steps

    def failure(self, message: str) -> BuildError:
        return step_failure(self.current, message, self.tail)


class DockerSdkBuilder:
    """Builds through the engine API; the context tar is streamed from its temporary file."""

    name = "docker"

    def __init__(self, client: DockerClient) -> None:
        self.client = client

    def build(
        self, plan: BuildPlan, ref: str, listener: BuildListener, *, no_cache: bool
    ) -> tuple[str, list[BuildStep]]:
        tracker = StepTracker(listener)
        image_id: str | None = None
        try:
            stream = self.client.api.build(
                fileobj=plan.context.open(),
                custom_context=True,
                dockerfile=plan.context.dockerfile,
                tag=ref,
                labels=plan.labels,
                buildargs=plan.buildargs,
                network_mode="host",
                pull=False,
                nocache=no_cache,
                rm=True,
                forcerm=True,
                decode=True,
            )
            for chunk in stream:
                if "error" in chunk:
                    raise tracker.failure(str(chunk.get("error")))
                if "stream" in chunk:
                    tracker.feed(str(chunk["stream"]))
                aux = chunk.get("aux")
                if isinstance(aux, dict) and "ID" in aux:
                    image_id = str(aux["ID"])
        except docker.errors.APIError as exc:
            # A Dockerfile the engine rejects before any step (parse error, unknown option).
            raise tracker.failure(str(exc.explanation or exc)) from None
        except requests.RequestException as exc:
            raise EngineError(
                f"the Docker engine stopped answering during the build: {first_line(exc)}"
            ) from None
        if image_id is None:
            raise tracker.failure("the engine reported no image id")
        return image_id, tracker.finish()
