"""CPU-bound checks (answer checking, rubric regexes) run in worker processes with real deadlines.

On the event loop such a check freezes every request and ``/health`` while it runs (math-verify
on a hostile formula runs for seconds; sympy can sit in C code that no signal interrupts), and a
thread cannot be stopped. A worker process can: a check past its deadline has its worker killed
(SIGTERM, then SIGKILL) and replaced, and the item fails. ``pebble`` does the pool, the per-task
deadline and the replacement; the deadline counts from when a worker takes the task, so time
queued behind other checks is bounded by the request's own ``timeout_s`` instead.

Workers fork from a ``forkserver`` that has imported the checks (and sympy) once: never from
the server process itself, whose threads (vLLM, the pool's own) make a plain fork unsafe, and a
replaced worker starts in milliseconds instead of re-importing sympy.

A deadline, a crashed worker or an exception in the check is ``JudgeFailure`` (``judge_error``
with the reason), never a verdict.

Fairness: the pool is shared by every request, and its queue is first come, first served. One
request of 4,096 answer checks that each run to the deadline would hold every worker for hours
of queue while another request's checks wait out their ``timeout_s``. So each caller (a
``check_lane``: the scorer opens one per request) has at most ``workers`` checks in the pool at
once, queued or running; its further checks wait in the caller's own line. A check of a new
request is then queued behind at most ``workers`` checks of each other request, and as a
worker frees, the queue alternates between the requests with checks waiting: round-robin in
effect, with no scheduler of our own, and one request alone still keeps every worker busy.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from pebble import ProcessExpired, ProcessPool

from judge_server.judges.items import JudgeFailure
from judge_server.settings import DEFAULT_CHECK_TIMEOUT_S, DEFAULT_CHECK_WORKERS

T = TypeVar("T")

#: imported once in the forkserver, so every worker forks with the checks loaded and warm
PRELOAD = ("__main__", "judge_server.judges.workers_preload")


def _warm_up() -> None:
    """Load and warm the checks in a worker that did not fork warm (a forkserver started by
    someone else first ignores our preload), before it takes a task with a deadline."""
    import judge_server.judges.workers_preload  # noqa: F401


class Workers(Protocol):
    """The process pool's seam (``pebble.ProcessPool``): tests put threads behind it."""

    @property
    def active(self) -> bool: ...
    def schedule(
        self, function: Callable[..., T], args: Iterable[Any] = (), *, timeout: float | None
    ) -> Future[T]: ...
    def stop(self) -> None: ...
    def join(self, timeout: float | None = None) -> None: ...


def process_workers(workers: int) -> Workers:
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(list(PRELOAD))
    pool: Workers = ProcessPool(max_workers=workers, initializer=_warm_up, context=context)
    return pool


_lane: ContextVar[object | None] = ContextVar("judge_server_check_lane", default=None)


@contextmanager
def check_lane() -> Iterator[None]:
    """The checks started inside the block (and in tasks it starts) are one caller's, sharing
    the pool fairly with other callers' (see the module docstring). Checks started outside
    any lane share one."""
    token = _lane.set(object())
    try:
        yield
    finally:
        _lane.reset(token)


@dataclass
class _Line:
    """One caller's checks: at most ``workers`` in the pool, the rest wait here."""

    slots: asyncio.Semaphore
    users: int = 0


class CheckPool:
    """A pool of worker processes for CPU-bound checks. Started on first use (or ``start``)."""

    def __init__(
        self,
        workers: int = DEFAULT_CHECK_WORKERS,
        timeout_s: float = DEFAULT_CHECK_TIMEOUT_S,
        *,
        make_workers: Callable[[int], Workers] = process_workers,
    ) -> None:
        self.workers = workers
        self.timeout_s = timeout_s
        self._make_workers = make_workers
        self._pool: Workers | None = None
        self._retired: list[Workers] = []
        """Replaced pools, stopped, whose join (in a thread) has not finished."""
        self._lock = threading.Lock()
        self._lines: dict[tuple[asyncio.AbstractEventLoop, object | None], _Line] = {}
        self._joins: set[asyncio.Task[None]] = set()

    def _live(self) -> tuple[Workers, Workers | None]:
        """The pool, and the one it replaced just now (stopped, to be joined) if any."""
        with self._lock:
            retired = None
            # A pool whose workers all died is broken for good in pebble: replace it.
            if self._pool is None or not self._pool.active:
                if self._pool is not None:
                    retired = self._pool
                    retired.stop()
                    self._retired.append(retired)
                self._pool = self._make_workers(self.workers)
            return self._pool, retired

    def _join(self, pool: Workers) -> None:
        pool.join()  # reaps its workers and its threads: blocking, so never on the event loop
        with self._lock:
            if pool in self._retired:
                self._retired.remove(pool)

    async def start(self) -> None:
        """Start the workers now rather than on the first check (off the event loop)."""
        await self.run(_warm_up, what="starting the check workers")

    async def run(self, fn: Callable[..., T], *args: Any, what: str) -> T:
        """``fn(*args)`` in a worker, within the deadline. ``fn`` and its arguments are pickled:
        ``fn`` is a module-level function. ``what`` names the check in the error. Waits in its
        caller's line (``check_lane``) while that caller has ``workers`` checks in the pool."""
        # per event loop too: a semaphore serves one loop, and tests run the pool in several
        key = (asyncio.get_running_loop(), _lane.get())
        line = self._lines.get(key)
        if line is None:
            line = self._lines[key] = _Line(asyncio.Semaphore(self.workers))
        line.users += 1
        try:
            async with line.slots:
                return await self._run_now(fn, args, what)
        finally:
            line.users -= 1
            if line.users == 0:
                del self._lines[key]

    async def _run_now(self, fn: Callable[..., T], args: tuple[Any, ...], what: str) -> T:
        try:
            pool, retired = self._live()
            if retired is not None:
                join = asyncio.create_task(asyncio.to_thread(self._join, retired))
                self._joins.add(join)
                join.add_done_callback(self._joins.discard)
            future = pool.schedule(fn, args=args, timeout=self.timeout_s)
            return await asyncio.wrap_future(future)
        except FutureTimeout as exc:
            raise JudgeFailure(
                f"{what} ran past its {self.timeout_s:g} s deadline (JUDGE_CHECK_TIMEOUT_S); "
                "its worker was stopped"
            ) from exc
        except ProcessExpired as exc:
            raise JudgeFailure(f"{what} crashed its worker (exit code {exc.exitcode})") from exc
        except Exception as exc:
            raise JudgeFailure(f"{what} failed: {type(exc).__name__}: {exc}") from exc

    def close(self) -> None:
        """Stop the workers and join them, and every replaced pool not joined yet (blocking:
        call it in a thread from async code)."""
        with self._lock:
            pools = [*self._retired, *([self._pool] if self._pool is not None else [])]
            self._pool = None
        for pool in pools:
            pool.stop()
            self._join(pool)


_shared: CheckPool | None = None
_shared_lock = threading.Lock()


def shared_pool() -> CheckPool:
    """The default pool, with default settings, for judges built outside a ``JudgeService``
    (which owns a pool sized by its settings)."""
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = CheckPool()
        return _shared
