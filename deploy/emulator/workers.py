"""Worker plane: docker containers of each endpoint's image, and the autoscaler that sizes them.

Each worker is one container of the endpoint's image, started with the environment
RunPod gives a serverless worker (runpod-platform.md §5.2, §5.3): the webhook URL
templates pointing at this emulator, RUNPOD_POD_ID, RUNPOD_AI_API_KEY, the endpoint
env with `{{ RUNPOD_SECRET_name }}` resolved, and a docker volume per network volume
at /runpod-volume. Workers run with network_mode=host so 127.0.0.1 reaches the emulator.

Docker calls block, so they run in threads; every decision and all state stay on the
event loop. Container deaths arrive through the engine's event stream.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import re
import shlex
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote_plus

import docker
from docker.errors import APIError, DockerException, ImageNotFound, NotFound

from deploy.emulator.catalog import placement_gpu
from deploy.emulator.control import new_id, now_iso
from deploy.emulator.jobs import JobService
from deploy.emulator.settings import EmulatorSettings
from deploy.emulator.store import Store
from deploy.runpod.secrets import SECRET_REF  # one rule for config, render and the emulator

log = logging.getLogger("rpdeploy.emulator.workers")

LABEL = "dev.rpdeploy.emulator"
LABEL_ENDPOINT = "dev.rpdeploy.emulator.endpoint"
LABEL_WORKER = "dev.rpdeploy.emulator.worker"
RECONCILE_INTERVAL_S = 0.5
MAX_BACKOFF_S = 30.0
STOP_GRACE_S = 3


class WorkerStartError(Exception):
    """A worker could not be started; the message is shown in its log and the workers list."""


@dataclass
class Worker:
    id: str
    endpoint_id: str
    version: int
    image: str
    started_at: float
    started_iso: str
    container_id: str | None = None
    ready: bool = False
    draining: bool = False
    stopping: bool = False
    failed: bool = False
    unhealthy_reason: str | None = None
    expected_exit: bool = False
    idle_since: float = field(default_factory=time.time)
    log_thread: threading.Thread | None = None


def resolve_secrets(env: dict[str, str], secrets: dict[str, str]) -> dict[str, str]:
    """The env with secret references substituted; a missing secret is a start failure."""
    resolved: dict[str, str] = {}
    for key, value in env.items():

        def substitute(match: re.Match[str], key: str = key) -> str:
            name = match.group(1)
            if name not in secrets:
                raise WorkerStartError(
                    f"env {key} references secret '{name}', which does not exist "
                    "(create it with the GraphQL mutation secretCreate)"
                )
            return secrets[name]

        resolved[key] = SECRET_REF.sub(substitute, value)
    return resolved


class WorkerPlane:
    def __init__(self, settings: EmulatorSettings, store: Store, jobs: JobService, worker_key: str) -> None:
        self.settings = settings
        self.knobs = settings.workers
        self.store = store
        self.jobs = jobs
        self.worker_key = worker_key
        self.workers: dict[str, Worker] = {}
        self._kick = asyncio.Event()
        self._backoff: dict[str, tuple[float, float]] = {}
        self._client: Any = None
        self._events_stream: Any = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._quota_supported: bool | None = None
        self._log_lock = threading.Lock()
        self.docker_error: str | None = None
        self._closing = False

    # -- lifecycle ----------------------------------------------------------------------------

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        try:
            self._client = await asyncio.to_thread(docker.from_env)
            await asyncio.to_thread(self._client.ping)
        except DockerException as exc:
            self._client = None
            self.docker_error = f"docker engine unavailable: {exc}"
            log.warning("%s; endpoints will get no workers", self.docker_error)
        if self._client is not None:
            await asyncio.to_thread(self._remove_labelled_containers)
            threading.Thread(target=self._watch_events, name="docker-events", daemon=True).start()
        for row in self.store.open_workers():
            self.store.update_worker(row["id"], ended_at=now_iso(), reason="emulator restarted")
        self._spawn(self._reconcile_forever())

    async def close(self) -> None:
        """Stop every worker; jobs they held fail with a reason that says so."""
        self._closing = True
        for task in list(self._tasks):
            task.cancel()
        for worker in list(self.workers.values()):
            worker.stopping = True
            self.jobs.worker_gone(
                worker.id, f"the emulator stopped while worker {worker.id} was running this job"
            )
            self._end(worker, "emulator stopped")
        if self._events_stream is not None:
            with contextlib.suppress(Exception):
                self._events_stream.close()
        if self._client is not None:
            await asyncio.to_thread(self._remove_labelled_containers)

    def _spawn(self, coroutine: Any) -> None:
        task = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- events from the job queue and the control plane -----------------------------------------

    def kick(self) -> None:
        self._kick.set()

    def queue_changed(self, endpoint_id: str) -> None:
        self.kick()

    def worker_released(self, worker_id: str) -> None:
        worker = self.workers.get(worker_id)
        if worker is not None and not self.jobs.held_by(worker_id):
            worker.idle_since = time.time()
        self.kick()

    def endpoint_changed(self, endpoint_id: str) -> None:
        self.kick()

    def endpoint_deleted(self, endpoint_id: str) -> None:
        self.jobs.forget_endpoint(endpoint_id)
        for worker in self._endpoint_workers(endpoint_id):
            worker.draining = True
            self._stop(worker, "endpoint deleted")
        self._backoff.pop(endpoint_id, None)

    # -- queries used by the API faces ------------------------------------------------------------

    def worker(self, endpoint_id: str, worker_id: str) -> Worker | None:
        worker = self.workers.get(worker_id)
        return worker if worker is not None and worker.endpoint_id == endpoint_id else None

    def accepting(self, worker: Worker) -> bool:
        return not (worker.draining or worker.stopping) and self.workers.get(worker.id) is worker

    def mark_ready(self, worker: Worker) -> None:
        if not worker.ready:
            worker.ready = True
            worker.idle_since = time.time()
            self._log(worker, f"worker {worker.id} is polling for jobs")

    def refresh(self, worker: Worker) -> None:
        """stopPod: the worker asked to be recycled once it holds no job."""
        worker.draining = True
        worker.expected_exit = True
        self.jobs.wake_takers(worker.endpoint_id)
        self.kick()

    def unhealthy(self, worker: Worker, check: str, reason: str) -> None:
        worker.unhealthy_reason = f"fitness check {check} failed: {reason}"
        self._log(worker, f"worker {worker.id} reported unhealthy: {worker.unhealthy_reason}")

    def status(self, worker: Worker) -> str:
        if worker.failed or worker.unhealthy_reason:
            return "UNHEALTHY"
        if not worker.ready:
            return "INITIALIZING"
        return "RUNNING" if self.jobs.held_by(worker.id) else "IDLE"

    def _endpoint_workers(self, endpoint_id: str) -> list[Worker]:
        return [w for w in self.workers.values() if w.endpoint_id == endpoint_id]

    def worker_versions(self, endpoint_id: str) -> list[int]:
        return [w.version for w in self._endpoint_workers(endpoint_id) if not w.failed and not w.stopping]

    def counts(self, endpoint_id: str) -> dict[str, int]:
        counts = dict.fromkeys(("idle", "initializing", "ready", "running", "throttled", "unhealthy"), 0)
        for worker in self._endpoint_workers(endpoint_id):
            if worker.stopping:
                continue
            status = self.status(worker).lower()
            counts[status] += 1
            if status == "idle":
                counts["ready"] += 1
        return counts

    def workers_doc(self, endpoint_id: str, version: int) -> dict[str, Any]:
        found = self.store.endpoint(endpoint_id)
        gpu = found[0].get("gpu") if found else None
        gpu_type = placement_gpu(gpu["pools"], gpu.get("excludedTypes", [])) if gpu else None
        listed = []
        summary = dict.fromkeys(("running", "idle", "initializing", "throttled", "unhealthy", "total"), 0)
        now = time.time()
        for worker in sorted(self._endpoint_workers(endpoint_id), key=lambda w: w.started_at):
            if worker.stopping:
                continue
            status = self.status(worker)
            summary[status.lower()] += 1
            summary["total"] += 1
            entry: dict[str, Any] = {
                "id": worker.id,
                "status": status,
                "isStale": worker.version != version,
                "version": worker.version,
                "gpuCount": gpu["count"] if gpu else 0,
                "image": worker.image,
                "uptimeSeconds": None if worker.failed else int(now - worker.started_at),
                "gpuTypeId": gpu_type,
                "dataCenterId": "EMULATOR",
                "startedAt": None if worker.failed else worker.started_iso,
            }
            if worker.failed or worker.unhealthy_reason:
                # Not in RunPod's schema (which allows extra fields): why the worker is unhealthy.
                entry["statusReason"] = worker.unhealthy_reason
            listed.append(entry)
        return {"endpointVersion": version, "summary": summary, "workers": listed}

    # -- autoscaler ---------------------------------------------------------------------------------

    async def _reconcile_forever(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._kick.wait(), RECONCILE_INTERVAL_S)
            self._kick.clear()
            try:
                self.reconcile()
            except Exception:  # the autoscaler must outlive any one bad endpoint
                log.exception("reconcile failed")

    def reconcile(self) -> None:
        if self._closing:
            return
        endpoint_ids = {doc["id"] for doc, _ in self.store.endpoints()}
        for worker in list(self.workers.values()):
            if worker.endpoint_id not in endpoint_ids and not worker.stopping:
                self._stop(worker, "endpoint deleted")
        for doc, version in self.store.endpoints():
            self._reconcile_endpoint(doc, version)

    def _reconcile_endpoint(self, doc: dict[str, Any], version: int) -> None:
        endpoint_id = doc["id"]
        now = time.time()
        workers = [w for w in self._endpoint_workers(endpoint_id) if not w.stopping]
        for worker in workers:
            if worker.failed and (worker.version != version or now >= self._backoff_until(endpoint_id)):
                self._forget(worker)
            elif worker.version != version and not worker.draining:
                worker.draining = True  # rolling release: no new jobs for the old version
                self.jobs.wake_takers(endpoint_id)
            if worker.draining and not worker.failed and not self.jobs.held_by(worker.id):
                self._stop(worker, "replaced" if worker.version != version else "recycled")
        if doc["type"] != "QUEUE" or self._client is None:
            return
        live = [w for w in self._endpoint_workers(endpoint_id) if not w.stopping and not w.failed]
        active = [w for w in live if not w.draining]
        wanted = self._wanted(doc, active, now)
        limit = doc["workers"]["max"]
        if wanted > len(active) and now >= self._backoff_until(endpoint_id):
            for _ in range(min(wanted - len(active), limit - len(live))):
                self._launch(doc, version)
        elif wanted < len(active):
            self._scale_down(doc, active, len(active) - wanted, now)

    def _wanted(self, doc: dict[str, Any], active: list[Worker], now: float) -> int:
        queued, held, oldest = self.jobs.queue_stats(doc["id"], now)
        workers, scaling = doc["workers"], doc["scaling"]
        if scaling["type"] == "REQUEST_COUNT":
            wanted = math.ceil((queued + held) / scaling["requestCount"])
        else:
            wanted = len(active)
            free = sum(1 for w in active if not w.ready or not self.jobs.held_by(w.id))
            if queued and not active:
                wanted = 1  # scale from zero on the first job
            elif queued > free and oldest >= scaling["queueDelay"]:
                wanted = len(active) + 1  # jobs waited longer than queueDelay: add a worker
            elif not queued:
                wanted = sum(1 for w in active if self.jobs.held_by(w.id) or not w.ready)
                wanted = max(wanted, len(active) - self._idle_expired(doc, active, now))
        return int(max(workers["min"], min(wanted, workers["max"])))

    def _idle_expired(self, doc: dict[str, Any], active: list[Worker], now: float) -> int:
        idle_timeout = doc["workers"].get("idleTimeout", 5)
        return sum(
            1
            for w in active
            if w.ready and not self.jobs.held_by(w.id) and now - w.idle_since >= idle_timeout
        )

    def _scale_down(self, doc: dict[str, Any], active: list[Worker], count: int, now: float) -> None:
        idle_timeout = doc["workers"].get("idleTimeout", 5)
        candidates = sorted(
            (w for w in active if w.ready and not self.jobs.held_by(w.id)), key=lambda w: w.idle_since
        )
        over_max = len(active) > doc["workers"]["max"]
        for worker in candidates[:count]:
            if over_max or now - worker.idle_since >= idle_timeout:
                worker.draining = True
                self._stop(worker, "scaled down")

    def _backoff_until(self, endpoint_id: str) -> float:
        return self._backoff.get(endpoint_id, (0.0, 0.0))[0]

    def _note_failure(self, endpoint_id: str) -> None:
        _, delay = self._backoff.get(endpoint_id, (0.0, 0.0))
        delay = min(MAX_BACKOFF_S, delay * 2 if delay else self.knobs.restart_backoff_s)
        self._backoff[endpoint_id] = (time.time() + delay, delay)

    # -- starting ----------------------------------------------------------------------------------------

    def container_base_url(self) -> str:
        host = self.settings.host
        if host in {"0.0.0.0", "::", "localhost"} or host.startswith("127."):  # noqa: S104
            host = "127.0.0.1"
        return f"http://{host}:{self.settings.port}"

    def environment(self, doc: dict[str, Any], worker_id: str) -> dict[str, str]:
        env = resolve_secrets(doc.get("env", {}), self.store.secret_values())
        gpu = doc.get("gpu")
        card = placement_gpu(gpu["pools"], gpu.get("excludedTypes", [])) if gpu else None
        query = f"?gpu={quote_plus(card or 'CPU')}"
        root = f"{self.container_base_url()}/v2/{doc['id']}"
        platform = {
            "RUNPOD_WEBHOOK_GET_JOB": f"{root}/job-take/$ID{query}",
            "RUNPOD_WEBHOOK_POST_OUTPUT": f"{root}/job-done/$RUNPOD_POD_ID/$ID{query}",
            "RUNPOD_WEBHOOK_POST_STREAM": f"{root}/job-stream/$RUNPOD_POD_ID/$ID{query}",
            "RUNPOD_WEBHOOK_PING": f"{root}/ping/$RUNPOD_POD_ID{query}",
            "RUNPOD_POD_ID": worker_id,
            "RUNPOD_AI_API_KEY": self.worker_key,
            "RUNPOD_ENDPOINT_ID": doc["id"],
            "RUNPOD_PING_INTERVAL": str(self.knobs.ping_interval_ms),
            "RUNPOD_SKIP_AUTO_SYSTEM_CHECKS": "true",
            "RUNPOD_SKIP_GPU_CHECK": "true",
            "RUNPOD_POD_HOSTNAME": f"{worker_id}-emulator",
            "RUNPOD_DC_ID": (doc.get("dataCenterIds") or ["EMULATOR"])[0],
            "RUNPOD_GPU_COUNT": str(gpu["count"] if gpu else 0),
            "RUNPOD_CPU_COUNT": str(doc["cpu"][0]["vcpuCount"] if doc.get("cpu") else 1),
        }
        if doc.get("networkVolumes"):
            platform["RUNPOD_VOLUME_ID"] = doc["networkVolumes"][0]
        # Platform variables win: a user env must not redirect the worker protocol.
        return {**env, **platform}

    def _launch(self, doc: dict[str, Any], version: int) -> None:
        """Register a worker now (so the next reconcile counts it) and start its container."""
        worker_id = new_id(12)
        worker = Worker(
            id=worker_id,
            endpoint_id=doc["id"],
            version=version,
            image=doc["image"],
            started_at=time.time(),
            started_iso=now_iso(),
        )
        self.workers[worker_id] = worker
        self.store.add_worker(worker_id, doc["id"], version, doc["image"], worker.started_iso)
        self._log(
            worker, f"starting worker {worker_id} (endpoint {doc['id']} version {version}, {doc['image']})"
        )
        self._spawn(self._start_container(worker, doc))

    async def _start_container(self, worker: Worker, doc: dict[str, Any]) -> None:
        worker_id = worker.id
        try:
            env = self.environment(doc, worker_id)
            container_id = await asyncio.to_thread(self._run_container, doc, worker_id, env)
        except WorkerStartError as exc:
            self._start_failed(worker, str(exc))
            return
        worker.container_id = container_id
        self.store.update_worker(worker_id, container_id=container_id)
        if worker.stopping or self._closing:
            self._spawn(asyncio.to_thread(self._remove_container, container_id))
            return
        worker.log_thread = threading.Thread(
            target=self._follow_logs, args=(worker, container_id), name=f"logs-{worker_id}", daemon=True
        )
        worker.log_thread.start()

    def _start_failed(self, worker: Worker, reason: str) -> None:
        worker.failed = True
        worker.unhealthy_reason = f"worker start failed: {reason}"
        self._log(worker, worker.unhealthy_reason)
        log.warning("endpoint %s: %s", worker.endpoint_id, worker.unhealthy_reason)
        self.store.update_worker(worker.id, ended_at=now_iso(), reason=worker.unhealthy_reason)
        self._note_failure(worker.endpoint_id)

    def _run_container(self, doc: dict[str, Any], worker_id: str, env: dict[str, str]) -> str:
        client = self._client
        image = doc["image"]
        try:
            client.images.get(image)
        except ImageNotFound:
            try:
                client.images.pull(image)
            except DockerException as exc:
                raise WorkerStartError(f"image pull failed for {image}: {exc}") from None
        except DockerException as exc:
            raise WorkerStartError(f"docker engine error: {exc}") from None
        kwargs: dict[str, Any] = {
            "image": image,
            "command": shlex.split(doc.get("args") or "") or None,
            "detach": True,
            "environment": env,
            "network_mode": "host",
            "name": f"rpdeploy-emu-{self.settings.label}-{worker_id}",
            "labels": {LABEL: self.settings.label, LABEL_ENDPOINT: doc["id"], LABEL_WORKER: worker_id},
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
            container = client.containers.run(**kwargs)
        except APIError as exc:
            if "storage_opt" in kwargs and "storage-opt" in str(exc).lower():
                # overlay2 enforces a disk quota only on xfs with pquota; run without and say so once.
                self._quota_supported = False
                log.warning("container disk limit not enforced by this engine: %s", exc.explanation)
                kwargs.pop("storage_opt")
                container = client.containers.run(**kwargs)
            else:
                raise WorkerStartError(f"container start failed: {exc.explanation or exc}") from None
        except DockerException as exc:
            raise WorkerStartError(f"container start failed: {exc}") from None
        if "storage_opt" in kwargs:
            self._quota_supported = True
        return str(container.id)

    def _volume(self, volume_id: str) -> str:
        name = f"rpdeploy-emu-{self.settings.label}-vol-{volume_id}"
        try:
            self._client.volumes.get(name)
        except NotFound:
            self._client.volumes.create(
                name=name, labels={LABEL: self.settings.label, "dev.rpdeploy.volume": volume_id}
            )
        return name

    # -- stopping and deaths -----------------------------------------------------------------------------

    def _stop(self, worker: Worker, reason: str) -> None:
        if worker.stopping:
            return
        worker.stopping = True
        worker.expected_exit = True
        self.jobs.wake_takers(worker.endpoint_id)
        self.jobs.worker_gone(worker.id, f"worker {worker.id} was stopped ({reason}) while running this job")
        self._log(worker, f"stopping worker {worker.id}: {reason}")
        if worker.container_id is None:
            self._end(worker, reason)
            return
        self._spawn(self._stop_container(worker, reason))

    async def _stop_container(self, worker: Worker, reason: str) -> None:
        container_id = worker.container_id
        assert container_id is not None
        await asyncio.to_thread(self._halt_container, container_id)
        self._end(worker, reason)
        await asyncio.to_thread(self._finish_container, worker, container_id)

    def _halt_container(self, container_id: str) -> None:
        with contextlib.suppress(DockerException):
            self._client.containers.get(container_id).stop(timeout=STOP_GRACE_S)

    def _finish_container(self, worker: Worker, container_id: str) -> None:
        if worker.log_thread is not None:
            worker.log_thread.join(timeout=5)
        self._remove_container(container_id)

    def _remove_container(self, container_id: str) -> None:
        with contextlib.suppress(DockerException):
            self._client.containers.get(container_id).remove(force=True)

    def _on_die(self, container_id: str, exit_code: int) -> None:
        worker = next((w for w in self.workers.values() if w.container_id == container_id), None)
        if worker is None or worker.stopping:
            return
        worker.stopping = True
        detail = f"worker {worker.id} exited with code {exit_code}"
        if worker.unhealthy_reason:
            detail += f" after reporting unhealthy ({worker.unhealthy_reason})"
        self.jobs.worker_gone(worker.id, f"{detail} while running this job")
        self._log(worker, detail)
        self._spawn(asyncio.to_thread(self._finish_container, worker, container_id))
        if not worker.expected_exit:
            log.warning("endpoint %s: %s", worker.endpoint_id, detail)
        if not worker.expected_exit and (not worker.ready or worker.unhealthy_reason):
            # Died unhealthy or before taking a job: list it UNHEALTHY until the backoff ends.
            self._note_failure(worker.endpoint_id)
            self.store.update_worker(worker.id, ended_at=now_iso(), reason=detail, exit_code=exit_code)
            worker.failed, worker.stopping, worker.container_id = True, False, None
            worker.unhealthy_reason = detail
        else:
            self._end(worker, detail, exit_code=exit_code)
        self.kick()

    def _end(self, worker: Worker, reason: str, exit_code: int | None = None) -> None:
        self.workers.pop(worker.id, None)
        self.store.update_worker(worker.id, ended_at=now_iso(), reason=reason, exit_code=exit_code)

    def _forget(self, worker: Worker) -> None:
        """Drop a failed-start placeholder before the next attempt."""
        self.workers.pop(worker.id, None)

    # -- docker threads ---------------------------------------------------------------------------------

    def _watch_events(self) -> None:
        filters = {"type": "container", "event": "die", "label": f"{LABEL}={self.settings.label}"}
        try:
            self._events_stream = docker.from_env().events(decode=True, filters=filters)
            for event in self._events_stream:
                attributes = event.get("Actor", {}).get("Attributes", {})
                code = int(attributes.get("exitCode", -1))
                if self._loop is not None and not self._loop.is_closed():
                    self._loop.call_soon_threadsafe(self._on_die, event.get("id", ""), code)
        except Exception:  # the stream ends with an error when closed at shutdown
            if not self._closing:
                log.exception("docker event stream ended")

    def _follow_logs(self, worker: Worker, container_id: str) -> None:
        path = self.log_path(worker.endpoint_id, worker.id)
        try:
            container = self._client.containers.get(container_id)
            with path.open("ab") as handle:
                for chunk in container.logs(stream=True, follow=True):
                    with self._log_lock:
                        handle.write(chunk)
                        handle.flush()
        except DockerException:
            return

    def _remove_labelled_containers(self) -> None:
        for container in self._client.containers.list(
            all=True, filters={"label": f"{LABEL}={self.settings.label}"}
        ):
            with contextlib.suppress(DockerException):
                container.remove(force=True)

    # -- logs ---------------------------------------------------------------------------------------------

    def log_path(self, endpoint_id: str, worker_id: str) -> Path:
        path = self.settings.logs_dir / endpoint_id / f"{worker_id}.log"
        path.parent.mkdir(parents=True, exist_ok=True)
        return path

    def _log(self, worker: Worker, message: str) -> None:
        line = f"[emulator {now_iso()}] {message}\n".encode()
        with self._log_lock, self.log_path(worker.endpoint_id, worker.id).open("ab") as handle:
            handle.write(line)
