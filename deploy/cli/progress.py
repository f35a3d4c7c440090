"""Build and push progress on stderr: rich bars in a terminal, plain lines otherwise (CI logs).

Both classes implement the listener protocols of `deploy.image.build` and
`deploy.image.push`, so the library never prints.
"""

from __future__ import annotations

from types import TracebackType

from rich.progress import BarColumn, DownloadColumn, Progress, SpinnerColumn, TaskID, TextColumn

from deploy.cli.output import Context
from deploy.image.size import format_bytes


class BuildProgress:
    """One line per step; a spinner with the current step in a terminal."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.rich = ctx.err.is_terminal
        self.pending: tuple[int, int, str] | None = None
        self.pending_cached = False
        self.progress: Progress | None = None
        self.task: TaskID | None = None

    def __enter__(self) -> BuildProgress:
        if self.rich:
            self.progress = Progress(
                SpinnerColumn(),
                TextColumn("{task.description}", markup=False),
                BarColumn(),
                console=self.ctx.err,
                transient=True,
            )
            self.progress.start()
            self.task = self.progress.add_task("build", total=None)
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._flush()
        if self.progress is not None:
            self.progress.stop()

    def step(self, number: int, total: int, instruction: str) -> None:
        self._flush()
        self.pending, self.pending_cached = (number, total, instruction), False
        if self.progress is not None and self.task is not None:
            self.progress.update(
                self.task,
                description=f"step {number}/{total} {instruction[:60]}",
                total=total,
                completed=number - 1,
            )

    def cached(self, number: int) -> None:
        self.pending_cached = True

    def output(self, line: str) -> None:
        if self.ctx.debug:
            self.ctx.log(f"    {line}")

    def _flush(self) -> None:
        if self.pending is None:
            return
        number, total, instruction = self.pending
        mark = "cached" if self.pending_cached else "built "
        self.ctx.log(f"build: step {number}/{total} {mark} {' '.join(instruction.split())}")
        self.pending = None


class PushProgress:
    """Bytes per layer: a bar per layer in a terminal, one line per finished layer otherwise."""

    DONE = ("Pushed", "Layer already exists", "Mounted from")

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.progress: Progress | None = None
        self.tasks: dict[str, TaskID] = {}
        self.totals: dict[str, int] = {}
        #: Layers already reported: later tags of the same image only repeat "already exists".
        self.reported: set[str] = set()

    def __enter__(self) -> PushProgress:
        if self.ctx.err.is_terminal:
            self.progress = Progress(
                TextColumn("{task.description}", markup=False),
                BarColumn(),
                DownloadColumn(),
                console=self.ctx.err,
                transient=True,
            )
            self.progress.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self.progress is not None:
            self.progress.stop()

    def layer(self, tag: str, layer_id: str, status: str, current: int | None, total: int | None) -> None:
        if total:
            self.totals[layer_id] = total
        if self.progress is not None:
            if layer_id not in self.tasks:
                self.tasks[layer_id] = self.progress.add_task(f"{tag} {layer_id}", total=total)
            self.progress.update(self.tasks[layer_id], completed=current or 0, total=total or None)
        if status.startswith(self.DONE) and layer_id not in self.reported:
            self.reported.add(layer_id)
            size = self.totals.get(layer_id)
            # The engine's per-layer figures are the layer's uncompressed bytes (push
            # compresses as it sends); the push result's total is compressed: say which.
            shown = f" ({format_bytes(size)} uncompressed)" if size else ""
            self.ctx.log(f"push: {tag} layer {layer_id} {status.lower()}{shown}")
