"""The server's one forward pass: a bounded queue of generation requests, batched by a worker thread.

Concurrent requests with the same model and truncation are joined into one call of the library's
synthesize() (which pads every forward pass to the same shape, so an image's bytes do not depend on
the requests it was batched with: the CLI with the same seed gives the same image). The queue is
bounded in images, not requests: a request that would overflow it is refused at once (Overloaded ->
503 with Retry-After) rather than left to wait, so the server never hangs under load.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from jewelgan.inference import FORWARD_BATCH, synthesize
from jewelgan.inference import DEFAULT_MODEL, Model, load_model, resolve_model, shipped_models


class Overloaded(Exception):
    """The queue is full; retry_after is a guess in seconds from the current throughput."""

    def __init__(self, retry_after: int):
        super().__init__(f"server busy: queue full, retry in {retry_after} s")
        self.retry_after = retry_after


@dataclass
class _Request:
    model: str
    z: torch.Tensor | None
    labels: torch.Tensor | None
    truncation: float
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future
    size: int = 0  # images it will make
    call: object = None  # a request that is not plain z + labels (interpolation): run alone
    queued_at: float = field(default_factory=time.monotonic)


class Engine:
    """Loaded models and the batching worker. submit() is awaited by request handlers."""

    def __init__(self, models: dict[str, Model], max_queue_images: int = 256, max_batch: int = 64,
                 batch: int = FORWARD_BATCH, on_images=None, max_delay: float = 0.010):
        if not models:
            raise ValueError("Engine needs at least one model")
        self.models = models
        self.default = next(iter(models))
        self.paths: dict[str, Path] = {}  # name -> folder, for bulk jobs (generate_bulk loads its own copy)
        self.max_queue_images, self.max_batch, self.batch = max_queue_images, max_batch, batch
        # how long the oldest request may wait for others to fill a forward pass: every pass is padded to
        # `batch` rows, so going at once with one image would spend the compute of 16 on it
        self.max_delay = max_delay
        self.on_images = on_images  # callback(model, n) after each forward pass (metrics)
        self._queue: deque[_Request] = deque()
        self._queued_images = 0
        self._cond = threading.Condition()
        self._stopping = False
        self._rate = 100.0  # images/s, an exponential average of what the worker achieves
        self._thread: threading.Thread | None = None
        self.start()

    def start(self) -> None:
        """Start the worker (again, after stop(): an ASGI host may run the app's lifespan more than once)."""
        with self._cond:
            if self._thread is not None and self._thread.is_alive():
                return
            self._stopping = False
            self._thread = threading.Thread(target=self._work, name="jewelgan-engine", daemon=True)
            self._thread.start()

    @classmethod
    def from_names(cls, names: list[str | Path] | None = None, device: str = "cpu", compile: bool = False,
                   **kwargs) -> "Engine":
        """Load each shipped model name or model folder (default: the shipped default model); the key a
        request names a model by is the shipped name, or the folder's name.

        compile: run each generator through torch.compile, compiled here (the forward pass has one shape,
        so once) rather than on the first request. Compiled kernels round differently in the last bit,
        so images match `jewelgan generate --compile`, not the plain CLI."""
        models, paths = {}, {}
        for name in names or [None]:
            key = DEFAULT_MODEL if name is None else (str(name) if str(name) in shipped_models() else Path(name).name)
            if key in models:
                raise ValueError(f"two models would both be called {key!r}: rename one folder")
            paths[key] = resolve_model(name)
            models[key] = load_model(paths[key], device, compile=compile)
            if compile:
                z, labels, _ = models[key].sample_inputs(1)
                synthesize(models[key].G, z, labels, 1.0, kwargs.get("batch", FORWARD_BATCH))
        engine = cls(models, **kwargs)
        engine.paths = paths
        return engine

    # ------------------------------------------------------------------ state
    @property
    def queued_images(self) -> int:
        return self._queued_images

    @property
    def alive(self) -> bool:
        return self._thread.is_alive() and not self._stopping

    def busy(self) -> bool:
        """True while interactive requests wait: bulk jobs give way between their batches."""
        return self._queued_images > 0

    def retry_after(self) -> int:
        return max(1, int(round(self._queued_images / max(self._rate, 1.0))))

    # ------------------------------------------------------------------ requests
    async def submit(self, model: str, z: torch.Tensor, labels: torch.Tensor, truncation: float,
                     timeout: float = 30.0) -> np.ndarray:
        """Queue one request; returns synthesize()'s uint8 (n, R, R, C) for it."""
        return await self._enqueue(model, z, labels, truncation, len(z), None, timeout)

    async def run(self, model: str, call, size: int, timeout: float = 30.0):
        """Run call() (a library function drawing `size` images) on the worker thread, alone, in queue order."""
        return await self._enqueue(model, None, None, 1.0, size, call, timeout)

    async def _enqueue(self, model, z, labels, truncation, size, call, timeout):
        loop = asyncio.get_running_loop()
        req = _Request(model, z, labels, float(truncation), loop, loop.create_future(), size, call)
        with self._cond:
            if self._stopping:
                raise Overloaded(5)
            if self._queued_images + size > self.max_queue_images:
                raise Overloaded(self.retry_after())
            self._queue.append(req)
            self._queued_images += size
            self._cond.notify()
        try:
            return await asyncio.wait_for(asyncio.shield(req.future), timeout)
        except asyncio.TimeoutError:
            raise Overloaded(self.retry_after()) from None

    def _take_batch(self) -> list[_Request]:
        """The oldest request and every queued one that can share its forward pass, up to max_batch images."""
        first = self._queue.popleft()
        if first.call is not None:
            return [first]
        batch, size, keep = [first], first.size, deque()
        while self._queue:
            req = self._queue.popleft()
            if (req.call is None and (req.model, req.truncation) == (first.model, first.truncation)
                    and size + req.size <= self.max_batch):
                batch.append(req)
                size += req.size
            else:
                keep.append(req)
        self._queue.extendleft(reversed(keep))
        return batch

    def _work(self) -> None:
        while True:
            with self._cond:
                while not self._queue and not self._stopping:
                    self._cond.wait()
                if self._stopping and not self._queue:
                    return
                deadline = self._queue[0].queued_at + self.max_delay
                while (self._queued_images < self.batch and not self._stopping
                       and (wait := deadline - time.monotonic()) > 0):
                    self._cond.wait(wait)
                batch = self._take_batch()
            n = sum(r.size for r in batch)
            start = time.perf_counter()
            try:
                if batch[0].call is not None:
                    images = batch[0].call()
                else:
                    images = synthesize(self.models[batch[0].model].G, torch.cat([r.z for r in batch]),
                                        torch.cat([r.labels for r in batch]), batch[0].truncation, self.batch)
                error = None
            except Exception as e:  # noqa: BLE001 - handed to every waiting request, never lost in the thread
                images, error = None, e
            elapsed = max(time.perf_counter() - start, 1e-6)
            self._rate = 0.8 * self._rate + 0.2 * (n / elapsed)
            with self._cond:
                self._queued_images -= n
            offset = 0
            for r in batch:
                if r.call is not None:
                    part = images
                else:
                    part = None if images is None else images[offset: offset + r.size]
                offset += r.size
                r.loop.call_soon_threadsafe(_resolve, r.future, part, error)
            if error is None and self.on_images is not None:
                self.on_images(batch[0].model, n)

    def stop(self, timeout: float = 30.0) -> None:
        """Finish what is queued, then end the worker (graceful shutdown)."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        self._thread.join(timeout)


def _resolve(future: asyncio.Future, images, error) -> None:
    if future.cancelled():
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(images)
