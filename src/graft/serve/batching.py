"""Micro-batching: requests that arrive within a few milliseconds of each other share one forward pass."""

from __future__ import annotations

import asyncio
import concurrent.futures
from collections.abc import Callable, Sequence
from typing import Any

__all__ = ["MicroBatcher"]


class MicroBatcher:
    """Collects submitted items for up to ``max_wait`` seconds or ``max_batch`` items, runs ``fn`` on all of them in
    one worker thread (one pass at a time: the model is not shared between threads), and hands each request its results.

    Args:
        fn: ``fn(items) -> results``, one result per item, in order.
        max_batch: most items per call of ``fn``.
        max_wait: seconds the first item of a batch waits for others, when the last batch served several requests
            (0: no waiting, but items already queued still join).
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
        self._last_requests = 0  # requests served by the last call of fn
        # one long-lived thread runs every pass (PyTorch's OpenMP pool belongs to the thread that calls it: a model
        # used from two threads runs ~1.5x slower on a 2-core machine, so the caller should load it in this thread too)
        self._executor = executor or concurrent.futures.ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="graft-model"
        )

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
            # wait for others only under concurrency (the last pass served several requests): a lone client
            # gets its answer without the wait
            deadline = loop.time() + (self.max_wait if self._last_requests > 1 else 0.0)
            while size < self.max_batch:
                timeout = deadline - loop.time()
                try:
                    nxt = (
                        self._queue.get_nowait() if timeout <= 0 else await asyncio.wait_for(self._queue.get(), timeout)
                    )
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
        self._last_requests = len(pending)
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
