"""Micro-batching: requests that arrive within a few milliseconds of each other share one forward pass."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
from collections.abc import Callable, Iterator, Sequence
from typing import Any

__all__ = ["MicroBatcher"]


class MicroBatcher:
    """Collects submitted items for up to ``max_wait`` seconds or ``max_batch`` items, runs ``fn`` on all of them in
    one worker thread (one pass at a time: the model is not shared between threads), and hands each request its results.

    Args:
        fn: ``fn(items) -> results``, one result per item, in order.
        max_batch: most items per call of ``fn``.
        max_wait: at most how long a batch waits for requests that the server has accepted but not yet submitted
            (see :meth:`arriving`: being read or decoded); it never waits for requests that do not exist yet, so a
            lone client gets its answer without the wait (0: no waiting, but items already queued still join).
        executor: the one-thread executor that runs ``fn`` (default: a new one).
    """

    def __init__(
        self,
        fn: Callable[[list[Any]], list[Any]],
        max_batch: int = 32,
        max_wait: float = 0.005,
        executor: concurrent.futures.ThreadPoolExecutor | None = None,
    ) -> None:
        self.fn, self.max_batch, self.max_wait = fn, max(1, max_batch), max(0.0, max_wait)
        self._queue: asyncio.Queue[tuple[Sequence[Any], asyncio.Future[list[Any]]]] | None = None
        self._task: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.batches = 0  # calls of fn, for monitoring and tests
        self._arriving = 0  # requests inside arriving(): accepted, not submitted yet
        # one long-lived thread runs every pass (PyTorch's OpenMP pool belongs to the thread that calls it: a model
        # used from two threads runs ~1.5x slower on a 2-core machine, so the caller should load it in this thread too)
        self._executor = executor or concurrent.futures.ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="graft-model"
        )

    @contextlib.contextmanager
    def arriving(self) -> Iterator[None]:
        """Marks a request being read or decoded (on the event loop, before :meth:`submit`): a batch being formed
        waits for it, up to ``max_wait``."""
        self._arriving += 1
        try:
            yield
        finally:
            self._arriving -= 1

    async def submit(self, items: Sequence[Any]) -> list[Any]:
        loop = asyncio.get_running_loop()
        if self._queue is None or self._loop is not loop:  # first use, or a new event loop (tests, restarts)
            self._loop, self._queue = loop, asyncio.Queue()
            self._task = asyncio.create_task(self._run())
        future: asyncio.Future[list[Any]] = asyncio.get_running_loop().create_future()
        await self._queue.put((items, future))
        return await future

    async def _run(self) -> None:
        assert self._queue is not None
        loop = asyncio.get_running_loop()
        carry: tuple[Sequence[Any], asyncio.Future[list[Any]]] | None = None
        while True:
            pending = [carry if carry is not None else await self._queue.get()]
            carry = None
            size = len(pending[0][0])
            # the queued requests join at once; the batch waits only for requests already on their way (being read
            # or decoded), never for ones that may come: the model does not idle for clients that are not there
            deadline = loop.time() + self.max_wait
            while size < self.max_batch:
                timeout = deadline - loop.time()
                try:
                    if self._queue.empty() and self._arriving > 0 and timeout > 0:
                        nxt = await asyncio.wait_for(self._queue.get(), timeout)
                    else:
                        nxt = self._queue.get_nowait()
                except (asyncio.QueueEmpty, asyncio.TimeoutError):
                    break
                if size + len(nxt[0]) > self.max_batch:
                    carry = nxt  # starts the next batch
                    break
                pending.append(nxt)
                size += len(nxt[0])
            await self._run_batch(pending)

    async def _run_batch(self, pending: list[tuple[Sequence[Any], asyncio.Future[list[Any]]]]) -> None:
        items = [item for request, _ in pending for item in request]
        self.batches += 1
        try:
            results = await asyncio.get_running_loop().run_in_executor(self._executor, self.fn, items)
        except Exception as e:  # noqa: BLE001 - handed to the waiting requests, which answer with an error
            for _, future in pending:
                if not future.done():
                    future.set_exception(e)
            return
        start = 0
        for request, future in pending:
            if not future.done():
                future.set_result(results[start : start + len(request)])
            start += len(request)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
        self._executor.shutdown(wait=False)
