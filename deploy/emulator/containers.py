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
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import docker
from docker.errors import APIError, DockerException, ImageNotFound, NotFound
from docker.utils import parse_repository_tag

from deploy.emulator.settings import WorkerKnobs
from deploy.emulator.worker_env import WorkerStartError

log = logging.getLogger("rpdeploy.emulator.containers")

LABEL = "dev.rpdeploy.emulator"
LABEL_ENDPOINT = "dev.rpdeploy.emulator.endpoint"
LABEL_WORKER = "dev.rpdeploy.emulator.worker"
LABEL_VOLUME = "dev.rpdeploy.volume"
STOP_GRACE_S = 3
#: Cold host: how long a start waits for this emulator's exited workers of the image to be removed.
LEFTOVER_WAIT_S = 10.0


def _unsaid(line: str) -> None:
    """The default `note`: lines nobody asked for."""


def container_command(args: str | None) -> list[str] | None:
    """The endpoint's `args` as the container command (None: the image's CMD).

    Raises WorkerStartError when the text cannot be split (an unbalanced quote).
    """
    try:
        return shlex.split(args or "") or None
    except ValueError as exc:
        raise WorkerStartError(f"args {args!r} cannot be split into a command: {exc}") from None


def _one_line(reason: object) -> str:
    """Docker's reason on one line (an engine error may span several)."""
    text = getattr(reason, "explanation", None) or str(reason)
    return " ".join(str(text).split())


def _split_reference(image: str) -> tuple[str, str]:
    """``repo[:tag][@digest]`` as the engine's pull wants it: (repository, tag or digest).

    docker-py's own parser, so a registry port is never taken for a tag; no tag is `latest`,
    as `docker pull` has it.
    """
    repository, tag = parse_repository_tag(image)
    return repository, tag or "latest"


class ContainerRuntime:
    """Owns the docker client and the containers of one state directory (its label value)."""

    def __init__(self, label: str, knobs: WorkerKnobs) -> None:
        self.label = label
        self.knobs = knobs
        self._client: docker.DockerClient | None = None
        self._events: Any = None
        self._quota_supported: bool | None = None
        self._image_turns: dict[str, threading.Lock] = {}
        #: Containers being stopped: the cold-host knob waits for their removal (set ops are atomic).
        self._halting: set[str] = set()

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

    def run(
        self,
        doc: dict[str, Any],
        worker_id: str,
        env: dict[str, str],
        volume_id: str | None = None,
        auth: dict[str, str] | None = None,
        *,
        note: Callable[[str], None] = _unsaid,
    ) -> str:
        """Pull the image when needed, create and start a worker container; its id.

        ``volume_id``: the network volume mounted at /runpod-volume; ``auth``: the endpoint's
        registry credential (username, password) for the pull; ``note``: receives lines for
        the worker's log (the cold-host step, the pull time and the container start time, in
        seconds). Raises WorkerStartError with the reason. A container whose start failed is
        removed before raising, so failed starts leave nothing.
        """
        image = doc["image"]
        with self._turn(image):
            if self.knobs.cold_host:
                began = time.monotonic()
                said = self._make_cold(image)  # timed apart: a fresh host has nothing to remove
                note(f"{said} ({time.monotonic() - began:.2f} s)")
                began = time.monotonic()
                self._pull(image, auth)
                pulled = True
            else:
                began = time.monotonic()
                pulled = self._ensure_image(image, auth)
            if pulled:
                note(f"image {image} pulled in {time.monotonic() - began:.2f} s")
            began = time.monotonic()
            container_id = self._create(doc, worker_id, env, volume_id)
        note(f"container {container_id[:12]} created and started in {time.monotonic() - began:.2f} s")
        return container_id

    def _turn(self, image: str) -> contextlib.AbstractContextManager[Any]:
        """Cold host: one start of an image at a time, so a removal never races a sibling's create."""
        if not self.knobs.cold_host:
            return contextlib.nullcontext()
        return self._image_turns.setdefault(image, threading.Lock())

    def _create(self, doc: dict[str, Any], worker_id: str, env: dict[str, str], volume_id: str | None) -> str:
        """Create and start the container of a present image; its id (WorkerStartError)."""
        image = doc["image"]
        kwargs: dict[str, Any] = {
            "image": image,
            "command": container_command(doc.get("args")),
            "environment": env,
            "network_mode": "host",
            "name": f"rpdeploy-emu-{self.label}-{worker_id}",
            "labels": self.labels(doc["id"], worker_id),
        }
        if volume_id is not None:
            kwargs["volumes"] = {self.volume(volume_id): {"bind": "/runpod-volume", "mode": "rw"}}
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

    def _ensure_image(self, image: str, auth: dict[str, str] | None) -> bool:
        """Pull ``image`` unless present; with a credential, always pull with it. True: pulled.

        A private image is pulled with the credential on every start, as on a fresh RunPod
        host: a copy some other pull left in the local engine must not hide a wrong password.
        """
        try:
            if auth is not None:
                self._pull(image, auth)
                return True
            self.client.images.get(image)
        except ImageNotFound:
            self._pull(image, None)
            return True
        except DockerException as exc:
            raise WorkerStartError(f"docker engine error: {_one_line(exc)}") from None
        return False

    def _make_cold(self, image: str) -> str:
        """Remove ``image`` from the engine, as on a host that never ran it; a line for the worker log.

        Never forced: an image some container uses (another endpoint's worker, another test
        run on a shared engine, a stopped container) is left in place, and the line says so.
        Layers the image shares with other images on the engine (its base, most often) stay,
        as on a host that has the base cached. Raises WorkerStartError on an engine error.
        """
        try:
            image_id = str(self.client.images.get(image).id)
            # ancestor: containers of this image and of images built on it (both hold its layers).
            users = self._image_users(image_id)
            if users:
                shown = ", ".join(user[:12] for user in users[:3])
                return f"cold host: {image} left in place: used by {len(users)} container(s) ({shown})"
            self.client.api.remove_image(image)
        except ImageNotFound:
            return f"cold host: {image} is not on this engine"
        except APIError as exc:
            if exc.status_code != 409:
                raise WorkerStartError(f"docker engine error: {_one_line(exc)}") from None
            return f"cold host: {image} left in place: {_one_line(exc)}"  # a container came meanwhile
        except DockerException as exc:
            raise WorkerStartError(f"docker engine error: {_one_line(exc)}") from None
        if self._present(image_id):
            return f"cold host: removed the name {image}; its image stays (another name or image holds it)"
        return f"cold host: removed {image} from the engine"

    def _image_users(self, image_id: str) -> list[str]:
        """Ids of the containers that hold ``image_id``, once this emulator's own stopped or
        stopping workers are gone: a worker that just scaled down is removed a moment later, and
        on RunPod it would have left its host (waits up to LEFTOVER_WAIT_S for them)."""
        deadline = time.monotonic() + LEFTOVER_WAIT_S
        while True:
            # Sparse and low-level: a full listing inspects each one and fails if one goes meanwhile.
            # ancestor: containers of this image and of images built on it (both hold its layers).
            found = self.client.api.containers(all=True, filters={"ancestor": image_id})
            leftovers = [c for c in found if self._leaving(c)]
            if len(leftovers) < len(found) or not found or time.monotonic() >= deadline:
                return [str(c["Id"]) for c in found]
            time.sleep(0.2)

    def _leaving(self, listed: dict[str, Any]) -> bool:
        """One of this emulator's workers that exited or is being stopped (its removal follows)."""
        ours = (listed.get("Labels") or {}).get(LABEL) == self.label
        return ours and (listed.get("State") != "running" or listed.get("Id") in self._halting)

    def _present(self, image_id: str) -> bool:
        try:
            self.client.images.get(image_id)
        except ImageNotFound:
            return False
        except DockerException as exc:
            raise WorkerStartError(f"docker engine error: {_one_line(exc)}") from None
        return True

    def _pull(self, image: str, auth: dict[str, str] | None) -> None:
        """Pull through the low-level stream: the engine reports some failures (a refused
        credential among them) inside a 200 stream, which `images.pull` would not raise."""
        repository, tag = _split_reference(image)
        how = " with the endpoint's registry credential" if auth is not None else ""
        try:
            for event in self.client.api.pull(
                repository, tag=tag, auth_config=auth, stream=True, decode=True
            ):
                if isinstance(event, dict) and event.get("error"):
                    raise WorkerStartError(f"image pull failed for {image}{how}: {_one_line(event['error'])}")
        except DockerException as exc:
            raise WorkerStartError(f"image pull failed for {image}{how}: {_one_line(exc)}") from None

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

    def volume_name(self, volume_id: str) -> str:
        """The Docker volume of network volume ``volume_id`` (the API's id, labelled with it)."""
        return f"rpdeploy-emu-{self.label}-vol-{volume_id}"

    def volume(self, volume_id: str) -> str:
        """The Docker volume of network volume ``volume_id``, created if missing; its name."""
        name = self.volume_name(volume_id)
        try:
            self.client.volumes.get(name)
        except NotFound:
            self.client.volumes.create(name=name, labels={LABEL: self.label, LABEL_VOLUME: volume_id})
        return name

    def remove_volume(self, volume_id: str) -> bool:
        """Remove a deleted network volume's Docker volume (its data goes with it, as on RunPod).

        False while a container still uses it (the engine's 409); True once it is gone.
        """
        try:
            self.client.volumes.get(self.volume_name(volume_id)).remove()
        except NotFound:
            return True
        except APIError as exc:
            if exc.status_code == 409:
                return False
            raise
        return True

    def halt(self, container_id: str) -> None:
        """SIGTERM, then SIGKILL after STOP_GRACE_S (the SDK's grace for in-flight work)."""
        self._halting.add(container_id)
        with contextlib.suppress(DockerException):
            self.client.containers.get(container_id).stop(timeout=STOP_GRACE_S)

    def remove(self, container_id: str) -> None:
        with contextlib.suppress(DockerException):
            self.client.containers.get(container_id).remove(force=True)
        self._halting.discard(container_id)

    def remove_labelled(self, endpoint_id: str | None = None) -> int:
        """Remove this state dir's containers (only one endpoint's, if given); how many there were."""
        labels = [f"{LABEL}={self.label}"]
        if endpoint_id is not None:
            labels.append(f"{LABEL_ENDPOINT}={endpoint_id}")
        try:
            # sparse: a full listing inspects each container in turn, and one that goes away
            # between the list and its inspect (a worker exiting) fails the whole call.
            containers = self.client.containers.list(all=True, sparse=True, filters={"label": labels})
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
