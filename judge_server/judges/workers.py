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
"""

from __future__ import annotations

import asyncio
import multiprocessing
import threading
from collections.abc import Callable
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any, TypeVar

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


class CheckPool:
    """A pool of worker processes for CPU-bound checks. Started on first use (or ``start``)."""

    def __init__(
        self, workers: int = DEFAULT_CHECK_WORKERS, timeout_s: float = DEFAULT_CHECK_TIMEOUT_S
    ) -> None:
        self.workers = workers
        self.timeout_s = timeout_s
        self._pool: ProcessPool | None = None
        self._lock = threading.Lock()

    def _live(self) -> ProcessPool:
        with self._lock:
            # A pool whose workers all died is broken for good in pebble: replace it.
            if self._pool is None or not self._pool.active:
                if self._pool is not None:
                    self._pool.stop()  # type: ignore[no-untyped-call]
                context = multiprocessing.get_context("forkserver")
                context.set_forkserver_preload(list(PRELOAD))
                self._pool = ProcessPool(
                    max_workers=self.workers, initializer=_warm_up, context=context
                )
            return self._pool

    async def start(self) -> None:
        """Start the workers now rather than on the first check (off the event loop)."""
        await self.run(_warm_up, what="starting the check workers")

    async def run(self, fn: Callable[..., T], *args: Any, what: str) -> T:
        """``fn(*args)`` in a worker, within the deadline. ``fn`` and its arguments are pickled:
        ``fn`` is a module-level function. ``what`` names the check in the error."""
        try:
            future = self._live().schedule(fn, args=args, timeout=self.timeout_s)
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
        with self._lock:
            if self._pool is not None:
                self._pool.stop()  # type: ignore[no-untyped-call]
                self._pool.join()
                self._pool = None


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
