"""Docker side of the worker plane: start, stop and remove worker containers; watch them die.

Every call blocks, so the worker plane runs them in threads; nothing here touches the
store or the job queue. Every container carries the emulator's labels (state dir,
endpoint, worker), so whatever a crash leaves behind is found and removed by label.
Workers run with network_mode=host so 127.0.0.1 reaches the emulator.
"""

from __future__ import annotations

import contextlib
import logging
import shlex
from collections.abc import Callable, Iterator
from typing import Any

import docker
from docker.errors import APIError, DockerException, ImageNotFound, NotFound

from deploy.emulator.settings import WorkerKnobs
from deploy.emulator.worker_env import WorkerStartError

log = logging.getLogger("rpdeploy.emulator.containers")

LABEL = "dev.rpdeploy.emulator"
LABEL_ENDPOINT = "dev.rpdeploy.emulator.endpoint"
LABEL_WORKER = "dev.rpdeploy.emulator.worker"
STOP_GRACE_S = 3


def container_command(args: str | None) -> list[str] | None:
    """The endpoint's `args` as the container command (None: the image's CMD).

    Raises WorkerStartError when the text cannot be split (an unbalanced quote).
    """
    try:
        return shlex.split(args or "") or None
    except ValueError as exc:
        raise WorkerStartError(f"args {args!r} cannot be split into a command: {exc}") from None


class ContainerRuntime:
    """Owns the docker client and the containers of one state directory (its label value)."""

    def __init__(self, label: str, knobs: WorkerKnobs) -> None:
        self.label = label
        self.knobs = knobs
        self._client: docker.DockerClient | None = None
        self._events: Any = None
        self._quota_supported: bool | None = None

    def connect(self) -> None:
        """Raises DockerException when no engine answers."""
        client = docker.from_env()
        client.ping()
        self._client = client

    @property
    def client(self) -> docker.DockerClient:
        """The engine connection; `connect` runs first (the worker plane's start)."""
        if self._client is None:  # a programming error, not a platform state
            raise RuntimeError("ContainerRuntime.connect() has not run")
        return self._client

    def labels(self, endpoint_id: str, worker_id: str) -> dict[str, str]:
        return {LABEL: self.label, LABEL_ENDPOINT: endpoint_id, LABEL_WORKER: worker_id}

    def run(self, doc: dict[str, Any], worker_id: str, env: dict[str, str]) -> str:
        """Create and start a worker container; its id. Raises WorkerStartError with the reason.

        A container whose start failed is removed before raising, so failed starts leave nothing.
        """
        image = doc["image"]
        self._ensure_image(image)
        kwargs: dict[str, Any] = {
            "image": image,
            "command": container_command(doc.get("args")),
            "environment": env,
            "network_mode": "host",
            "name": f"rpdeploy-emu-{self.label}-{worker_id}",
            "labels": self.labels(doc["id"], worker_id),
        }
        volumes = doc.get("networkVolumes") or []
        if volumes:
            kwargs["volumes"] = {self._volume(volumes[0]): {"bind": "/runpod-volume", "mode": "rw"}}
        if self.knobs.read_only_rootfs:
            kwargs["read_only"] = True
            kwargs["tmpfs"] = {"/tmp": f"size={self.knobs.tmp_size_mb}m"}  # noqa: S108
        disk = self.knobs.container_disk_gb or doc.get("disk")
        if disk and self._quota_supported is not False:
            kwargs["storage_opt"] = {"size": f"{disk}G"}
        try:
            container_id = self._create_and_start(kwargs)
        except APIError as exc:
            if "storage_opt" not in kwargs or "storage-opt" not in str(exc).lower():
                raise WorkerStartError(f"container start failed: {exc.explanation or exc}") from None
            # overlay2 enforces a disk quota only on xfs with pquota; run without and say so once.
            self._quota_supported = False
            log.warning("container disk limit not enforced by this engine: %s", exc.explanation)
            kwargs.pop("storage_opt")
            try:
                container_id = self._create_and_start(kwargs)
            except DockerException as retry_exc:
                raise WorkerStartError(f"container start failed: {retry_exc}") from None
        except DockerException as exc:
            raise WorkerStartError(f"container start failed: {exc}") from None
        if "storage_opt" in kwargs:
            self._quota_supported = True
        return container_id

    def _ensure_image(self, image: str) -> None:
        try:
            self.client.images.get(image)
        except ImageNotFound:
            try:
                self.client.images.pull(image)
            except DockerException as exc:
                raise WorkerStartError(f"image pull failed for {image}: {exc}") from None
        except DockerException as exc:
            raise WorkerStartError(f"docker engine error: {exc}") from None

    def _create_and_start(self, kwargs: dict[str, Any]) -> str:
        # create + start rather than run: a failed start leaves a container we know and remove.
        container = self.client.containers.create(**kwargs)
        try:
            container.start()
        except BaseException:
            with contextlib.suppress(DockerException):
                container.remove(force=True)
            raise
        return str(container.id)

    def _volume(self, volume_id: str) -> str:
        name = f"rpdeploy-emu-{self.label}-vol-{volume_id}"
        try:
            self.client.volumes.get(name)
        except NotFound:
            self.client.volumes.create(
                name=name, labels={LABEL: self.label, "dev.rpdeploy.volume": volume_id}
            )
        return name

    def halt(self, container_id: str) -> None:
        """SIGTERM, then SIGKILL after STOP_GRACE_S (the SDK's grace for in-flight work)."""
        with contextlib.suppress(DockerException):
            self.client.containers.get(container_id).stop(timeout=STOP_GRACE_S)

    def remove(self, container_id: str) -> None:
        with contextlib.suppress(DockerException):
            self.client.containers.get(container_id).remove(force=True)

    def remove_labelled(self, endpoint_id: str | None = None) -> int:
        """Remove this state dir's containers (only one endpoint's, if given); how many there were."""
        labels = [f"{LABEL}={self.label}"]
        if endpoint_id is not None:
            labels.append(f"{LABEL_ENDPOINT}={endpoint_id}")
        try:
            containers = self.client.containers.list(all=True, filters={"label": labels})
        except DockerException:
            return 0
        for container in containers:
            with contextlib.suppress(DockerException):
                container.remove(force=True)
        return len(containers)

    def logs(self, container_id: str) -> Iterator[bytes]:
        """The container's output as it comes (ends when the container does)."""
        try:
            container = self.client.containers.get(container_id)
            yield from container.logs(stream=True, follow=True)
        except DockerException:
            return

    def watch_deaths(self, on_die: Callable[[str, int], None], closing: Callable[[], bool]) -> None:
        """Call ``on_die(container_id, exit_code)`` for each of our containers that dies (blocks)."""
        filters = {"type": "container", "event": "die", "label": f"{LABEL}={self.label}"}
        try:
            self._events = docker.from_env().events(decode=True, filters=filters)
            for event in self._events:
                attributes = event.get("Actor", {}).get("Attributes", {})
                on_die(event.get("id", ""), int(attributes.get("exitCode", -1)))
        except Exception:  # the stream ends with an error when closed at shutdown
            if not closing():
                log.exception("docker event stream ended")

    def close_events(self) -> None:
        if self._events is not None:
            with contextlib.suppress(Exception):
                self._events.close()
