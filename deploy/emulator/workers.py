"""Worker plane: the workers of each endpoint, their lifecycle, and the autoscaling loop.

Each worker is one container of the endpoint's image (containers.py) with the
environment RunPod gives a serverless worker (worker_env.py) and a log file
(worker_logs.py); how many each endpoint wants is the pure policy in autoscaler.py.

Docker calls block, so they run in threads; every decision and all state stay on the
event loop. Container deaths arrive through the engine's event stream.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

from docker.errors import DockerException

from deploy.emulator import autoscaler
from deploy.emulator.catalog import placement_gpu
from deploy.emulator.containers import LABEL, ContainerRuntime
from deploy.emulator.control import new_id, now_iso
from deploy.emulator.jobs import JobService
from deploy.emulator.settings import EmulatorSettings
from deploy.emulator.store import Store
from deploy.emulator.volumes import Placement, placement
from deploy.emulator.worker_env import WorkerStartError, worker_environment
from deploy.emulator.worker_logs import WorkerLogs

__all__ = ["LABEL", "Worker", "WorkerPlane"]

log = logging.getLogger("rpdeploy.emulator.workers")

RECONCILE_INTERVAL_S = 0.5
MAX_BACKOFF_S = 30.0
#: How often a deleted network volume's Docker volume is tried while a container still holds it
#: (RECONCILE_INTERVAL_S apart: a minute, far beyond a worker's stop grace).
VOLUME_REMOVE_TRIES = 120


@dataclass
class Worker:
    id: str
    endpoint_id: str
    version: int
    image: str
    started_at: float
    started_iso: str
    placement: Placement
    container_id: str | None = None
    ready: bool = False
    draining: bool = False
    stopping: bool = False
    failed: bool = False
    unhealthy_reason: str | None = None
    expected_exit: bool = False
    idle_since: float = field(default_factory=time.time)
    log_thread: threading.Thread | None = None


class WorkerPlane:
    """Owns the live workers of every endpoint: starting, health, draining, stopping, restart backoff.

    Asks JobService which jobs a worker holds and tells it when a worker is gone;
    the store keeps each worker's history (start, end, exit code, reason).
    """

    def __init__(
        self,
        settings: EmulatorSettings,
        store: Store,
        jobs: JobService,
        worker_key: str,
        volume_data_center: Callable[[str], str | None],
    ) -> None:
        self.settings = settings
        self.knobs = settings.workers
        self.store = store
        self.jobs = jobs
        self.worker_key = worker_key
        self.workers: dict[str, Worker] = {}
        self.runtime = ContainerRuntime(settings.label, settings.workers)
        self.logs = WorkerLogs(settings.logs_dir)
        self._kick = asyncio.Event()
        self._backoff: dict[str, tuple[float, float]] = {}
        self._docker = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self.docker_error: str | None = None
        self._closing = False
        self._volume_data_center = volume_data_center
        #: Endpoints no worker can be placed for, and why (said once in the log, shown in /workers).
        self.unplaceable: dict[str, str] = {}

    # -- lifecycle ----------------------------------------------------------------------------

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        try:
            await asyncio.to_thread(self.runtime.connect)
            self._docker = True
        except DockerException as exc:
            self.docker_error = f"docker engine unavailable: {exc}"
            log.warning("%s; endpoints will get no workers", self.docker_error)
        if self._docker:
            await asyncio.to_thread(self.runtime.remove_labelled)
            threading.Thread(target=self._watch_events, name="docker-events", daemon=True).start()
        self.store.end_open_workers(now_iso(), "emulator restarted")
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
        self.runtime.close_events()
        if self._docker:
            await asyncio.to_thread(self.runtime.remove_labelled)

    def _spawn(self, coroutine: Coroutine[Any, Any, Any]) -> None:
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
        """Stop the endpoint's workers, forget its jobs, and remove every container it left."""
        self.jobs.forget_endpoint(endpoint_id)
        for worker in self._endpoint_workers(endpoint_id):
            worker.draining = True
            if worker.failed:
                self._forget(worker)
            else:
                self._stop(worker, "endpoint deleted")
        self._backoff.pop(endpoint_id, None)
        self.unplaceable.pop(endpoint_id, None)
        if self._docker:
            # Stopping removes each known container; this also catches one whose start is in flight.
            self._spawn(self._sweep_endpoint_containers(endpoint_id))

    async def _sweep_endpoint_containers(self, endpoint_id: str) -> None:
        # Let in-flight stops (grace STOP_GRACE_S) and starts finish first, then remove what is left.
        while any(w.endpoint_id == endpoint_id for w in self.workers.values()):
            await asyncio.sleep(RECONCILE_INTERVAL_S)
        await asyncio.to_thread(self.runtime.remove_labelled, endpoint_id)

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
            self.log(worker, f"worker {worker.id} is polling for jobs")

    def refresh(self, worker: Worker) -> None:
        """stopPod: the worker asked to be recycled once it holds no job."""
        worker.draining = True
        worker.expected_exit = True
        self.jobs.wake_takers(worker.endpoint_id)
        self.kick()

    def unhealthy(self, worker: Worker, check: str, reason: str) -> None:
        worker.unhealthy_reason = f"fitness check {check} failed: {reason}"
        self.log(worker, f"worker {worker.id} reported unhealthy: {worker.unhealthy_reason}")

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

    def health(self, endpoint_id: str) -> dict[str, Any]:
        """The worker part of the job API's `/health`, with `placementError` when no worker can run."""
        out: dict[str, Any] = {"workers": self.counts(endpoint_id)}
        if endpoint_id in self.unplaceable:
            out["placementError"] = self.unplaceable[endpoint_id]
        return out

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
                "dataCenterId": worker.placement.data_center,
                "startedAt": None if worker.failed else worker.started_iso,
            }
            if worker.failed or worker.unhealthy_reason:
                # Not in RunPod's schema (which allows extra fields): why the worker is unhealthy.
                entry["statusReason"] = worker.unhealthy_reason
            listed.append(entry)
        doc: dict[str, Any] = {"endpointVersion": version, "summary": summary, "workers": listed}
        if endpoint_id in self.unplaceable:
            # Not in RunPod's schema (which allows extra fields): why the endpoint has no workers.
            doc["placementError"] = self.unplaceable[endpoint_id]
        return doc

    # -- autoscaling loop -------------------------------------------------------------------------

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
        endpoints = self.store.endpoints()
        endpoint_ids = {doc["id"] for doc, _ in endpoints}
        for worker in list(self.workers.values()):
            if worker.endpoint_id not in endpoint_ids and not worker.stopping:
                self._stop(worker, "endpoint deleted")
        for doc, version in endpoints:
            self._reconcile_endpoint(doc, version)

    def _reconcile_endpoint(self, doc: dict[str, Any], version: int) -> None:
        endpoint_id = doc["id"]
        now = time.time()
        for worker in [w for w in self._endpoint_workers(endpoint_id) if not w.stopping]:
            if worker.failed and (worker.version != version or now >= self._backoff_until(endpoint_id)):
                self._forget(worker)
            elif worker.version != version and not worker.draining:
                worker.draining = True  # rolling release: no new jobs for the old version
                self.jobs.wake_takers(endpoint_id)
            if worker.draining and not worker.failed and not self.jobs.held_by(worker.id):
                self._stop(worker, "replaced" if worker.version != version else "recycled")
        where = self._placement(doc)
        if doc["type"] != "QUEUE" or not self._docker:
            return
        live = [w for w in self._endpoint_workers(endpoint_id) if not w.stopping and not w.failed]
        queued, held, oldest = self.jobs.queue_stats(endpoint_id, now)
        decision = autoscaler.plan(
            autoscaler.QueueState(queued, held, oldest),
            [
                autoscaler.WorkerState(
                    id=w.id,
                    ready=w.ready,
                    busy=bool(self.jobs.held_by(w.id)),
                    idle_for_s=now - w.idle_since,
                    draining=w.draining,
                )
                for w in live
            ],
            autoscaler.ScalingSettings.of_endpoint(doc),
        )
        if decision.start and where.data_center is not None and now >= self._backoff_until(endpoint_id):
            for _ in range(decision.start):
                self._launch(doc, version, where)
        for worker_id in decision.stop:
            worker = self.workers[worker_id]
            worker.draining = True
            self._stop(worker, "scaled down")

    def _placement(self, doc: dict[str, Any]) -> Placement:
        """Where the endpoint's next worker runs; an unplaceable endpoint is noted (logged once)."""
        where = placement(doc, self._volume_data_center)
        endpoint_id = doc["id"]
        if where.error is None:
            self.unplaceable.pop(endpoint_id, None)
        elif self.unplaceable.get(endpoint_id) != where.error:
            self.unplaceable[endpoint_id] = where.error
            log.warning("endpoint %s: %s", endpoint_id, where.error)
        return where

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

    def environment(self, doc: dict[str, Any], worker_id: str, where: Placement) -> dict[str, str]:
        return worker_environment(
            doc,
            worker_id,
            where,
            base_url=self.container_base_url(),
            worker_key=self.worker_key,
            secrets=self.store.secret_values(),
            ping_interval_ms=self.knobs.ping_interval_ms,
        )

    def _launch(self, doc: dict[str, Any], version: int, where: Placement) -> None:
        """Register a worker now (so the next reconcile counts it) and start its container."""
        worker_id = new_id(12)
        worker = Worker(
            id=worker_id,
            endpoint_id=doc["id"],
            version=version,
            image=doc["image"],
            started_at=time.time(),
            started_iso=now_iso(),
            placement=where,
        )
        # Recorded first: if the store cannot write, no worker is left registered without a start.
        self.store.add_worker(worker_id, doc["id"], version, doc["image"], worker.started_iso)
        self.workers[worker_id] = worker
        self.log(
            worker, f"starting worker {worker_id} (endpoint {doc['id']} version {version}, {doc['image']})"
        )
        self._spawn(self._start_container(worker, doc))

    async def _start_container(self, worker: Worker, doc: dict[str, Any]) -> None:
        try:
            env = self.environment(doc, worker.id, worker.placement)
            auth = self._registry_auth(doc)
            container_id = await asyncio.to_thread(
                self.runtime.run,
                doc,
                worker.id,
                env,
                worker.placement.volume_id,
                auth,
                note=lambda line: self.log(worker, line),  # the log file is written under a lock
            )
        except WorkerStartError as exc:
            self._start_failed(worker, str(exc))
            return
        except Exception as exc:  # any failure to start must show on the worker, never leave it INITIALIZING
            log.exception("starting worker %s failed", worker.id)
            self._start_failed(worker, f"{type(exc).__name__}: {exc}")
            return
        worker.container_id = container_id
        self.store.set_worker_container(worker.id, container_id)
        if worker.stopping or self._closing:
            self._spawn(asyncio.to_thread(self.runtime.remove, container_id))
            return
        worker.log_thread = threading.Thread(
            target=self.logs.follow,
            args=(worker.endpoint_id, worker.id, self.runtime.logs(container_id)),
            name=f"logs-{worker.id}",
            daemon=True,
        )
        worker.log_thread.start()

    def _registry_auth(self, doc: dict[str, Any]) -> dict[str, str] | None:
        """The endpoint's registry credential as docker's auth_config (None: pull anonymously)."""
        registry = doc.get("registry")
        return None if registry is None else self.store.registry_auth(registry)

    # -- network volumes (the Docker side of volumes.py) -------------------------------------------

    def create_volume(self, volume_id: str) -> None:
        """Blocking (a thread): the Docker volume of a new network volume."""
        if self._docker:
            self.runtime.volume(volume_id)

    def volume_deleted(self, volume_id: str) -> None:
        """Remove a deleted network volume's Docker volume once no container uses it: workers of
        an endpoint deleted just before may still be in their stop grace."""
        if self._docker:
            self._spawn(self._remove_volume_when_free(volume_id))

    async def _remove_volume_when_free(self, volume_id: str) -> None:
        for _ in range(VOLUME_REMOVE_TRIES):
            if await asyncio.to_thread(self.runtime.remove_volume, volume_id):
                return
            await asyncio.sleep(RECONCILE_INTERVAL_S)
        log.warning(
            "the Docker volume of deleted network volume %s is still in use; left in place", volume_id
        )

    def _start_failed(self, worker: Worker, reason: str) -> None:
        worker.failed = True
        worker.unhealthy_reason = f"worker start failed: {reason}"
        self.log(worker, worker.unhealthy_reason)
        log.warning("endpoint %s: %s", worker.endpoint_id, worker.unhealthy_reason)
        with contextlib.suppress(Exception):  # the record is history; the worker's state is what counts
            self.store.end_worker(worker.id, now_iso(), worker.unhealthy_reason)
        self._note_failure(worker.endpoint_id)

    # -- stopping and deaths -----------------------------------------------------------------------------

    def _stop(self, worker: Worker, reason: str) -> None:
        if worker.stopping:
            return
        worker.stopping = True
        worker.expected_exit = True
        self.jobs.wake_takers(worker.endpoint_id)
        self.jobs.worker_gone(worker.id, f"worker {worker.id} was stopped ({reason}) while running this job")
        self.log(worker, f"stopping worker {worker.id}: {reason}")
        if worker.container_id is None:
            self._end(worker, reason)
            return
        self._spawn(self._stop_container(worker, reason))

    async def _stop_container(self, worker: Worker, reason: str) -> None:
        container_id = worker.container_id
        assert container_id is not None
        await asyncio.to_thread(self.runtime.halt, container_id)
        self._end(worker, reason)
        await asyncio.to_thread(self._finish_container, worker, container_id)

    def _finish_container(self, worker: Worker, container_id: str) -> None:
        if worker.log_thread is not None:
            worker.log_thread.join(timeout=5)
        self.runtime.remove(container_id)

    def _on_die(self, container_id: str, exit_code: int) -> None:
        worker = next((w for w in self.workers.values() if w.container_id == container_id), None)
        if worker is None or worker.stopping:
            return
        worker.stopping = True
        detail = f"worker {worker.id} exited with code {exit_code}"
        if worker.unhealthy_reason:
            detail += f" after reporting unhealthy ({worker.unhealthy_reason})"
        self.jobs.worker_gone(worker.id, f"{detail} while running this job")
        self.log(worker, detail)
        self._spawn(asyncio.to_thread(self._finish_container, worker, container_id))
        if not worker.expected_exit:
            log.warning("endpoint %s: %s", worker.endpoint_id, detail)
        if not worker.expected_exit and (not worker.ready or worker.unhealthy_reason):
            # Died unhealthy or before taking a job: list it UNHEALTHY until the backoff ends.
            self._note_failure(worker.endpoint_id)
            self.store.end_worker(worker.id, now_iso(), detail, exit_code)
            worker.failed, worker.stopping, worker.container_id = True, False, None
            worker.unhealthy_reason = detail
        else:
            self._end(worker, detail, exit_code=exit_code)
        self.kick()

    def _end(self, worker: Worker, reason: str, exit_code: int | None = None) -> None:
        self.workers.pop(worker.id, None)
        self.store.end_worker(worker.id, now_iso(), reason, exit_code)

    def _forget(self, worker: Worker) -> None:
        """Drop a failed-start placeholder before the next attempt."""
        self.workers.pop(worker.id, None)

    def _watch_events(self) -> None:
        self.runtime.watch_deaths(self._die_soon, lambda: self._closing)

    def _die_soon(self, container_id: str, exit_code: int) -> None:
        """From the events thread: handle the death on the event loop."""
        if self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._on_die, container_id, exit_code)

    # -- logs ---------------------------------------------------------------------------------------------

    def log(self, worker: Worker, message: str) -> None:
        """One emulator line in the worker's log (`rpdeploy emulator logs`)."""
        self.logs.line(worker.endpoint_id, worker.id, message)
