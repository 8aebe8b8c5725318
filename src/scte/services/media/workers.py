"""Image decoding out of the service's process, in a bounded pool of worker processes.

A large or hostile image (a decompression bomb under the pixel budget, a slow codec path) used to be
decoded in a thread of the service itself: it took the GIL and the memory, and `/health` stalled for
10 s at 552 MB. Here each image is decoded by a separate process, one image at a time per process,
with an address-space limit (an image that needs more fails with a clear reason instead of swapping
the host), a lower CPU priority, Pillow's decompression-bomb guard set to the upload's pixel budget,
and a parent-death signal so no worker outlives the service. The service's event loop only waits.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import resource
import signal
import warnings
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

from .domain import MAX_PIXELS, UploadRejected
from .processing import TOO_MUCH_MEMORY, Made, make_renditions

__all__ = ["ImageWorkers"]

MIB = 1024 * 1024


def _start_worker(memory_limit: int) -> None:
    from PIL import Image

    from scte.supervision.launch import die_with_parent

    die_with_parent(signal.SIGKILL)
    if memory_limit:
        resource.setrlimit(resource.RLIMIT_AS, (memory_limit, memory_limit))
    os.nice(5)  # the service's requests first
    Image.MAX_IMAGE_PIXELS = MAX_PIXELS
    warnings.simplefilter("error", Image.DecompressionBombWarning)


def _renditions(data: bytes, content_type: str) -> tuple[tuple[int, int] | None, list[Made]]:
    try:
        return make_renditions(data, content_type)
    except MemoryError:
        raise UploadRejected(TOO_MUCH_MEMORY) from None


class ImageWorkers:
    """`await workers.renditions(data, content_type)`: `processing.make_renditions` in a worker process.

    At most `processes` images are decoded at once (the others wait their turn); the processes start
    with the first image and are replaced after `tasks_per_process` images (memory a decoder kept is
    given back). A worker that dies (killed, or out of memory below Python) fails that image only."""

    def __init__(self, processes: int = 1, *, memory_limit: int = 1024 * MIB, tasks_per_process: int = 50) -> None:
        self.processes = processes
        self.memory_limit = memory_limit
        self.tasks_per_process = tasks_per_process
        self._pool: ProcessPoolExecutor | None = None
        self._turns: asyncio.Semaphore | None = None

    def _executor(self) -> ProcessPoolExecutor:
        if self._pool is None:
            self._pool = ProcessPoolExecutor(
                max_workers=self.processes,
                mp_context=multiprocessing.get_context("spawn"),  # no fork of a process with threads
                initializer=_start_worker,
                initargs=(self.memory_limit,),
                max_tasks_per_child=self.tasks_per_process,
            )
        return self._pool

    async def renditions(self, data: bytes, content_type: str) -> tuple[tuple[int, int] | None, list[Made]]:
        if self._turns is None:
            self._turns = asyncio.Semaphore(self.processes)
        async with self._turns:  # one image per process: a worker's death fails only its own image
            loop = asyncio.get_running_loop()
            try:
                return await loop.run_in_executor(self._executor(), _renditions, data, content_type)
            except BrokenProcessPool:
                self.close()
                raise UploadRejected("the image could not be processed within the limits of a worker") from None

    def close(self) -> None:
        """Stop the workers without waiting (after a broken pool, in tests)."""
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)

    async def aclose(self) -> None:
        """Stop the workers once the image in hand is done (the service's stop)."""
        pool, self._pool = self._pool, None
        if pool is not None:
            await asyncio.to_thread(pool.shutdown, True, cancel_futures=True)
