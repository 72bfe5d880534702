"""A wall-clock limit on a block of code, by SIGALRM (main thread only)."""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType


class DeadlineExceeded(BaseException):
    """Raised by our alarm; a BaseException so math-verify's ``except Exception`` lets it out."""


@contextmanager
def deadline(seconds: float) -> Iterator[None]:
    """One time limit for a whole check. math-verify's own timer restarts for every parse and
    every pair it compares (a power tower took 24 s at 3 s each), so it is disabled and this one
    (SIGALRM, main thread only) bounds the total. Off the main thread there is no timer: inputs
    are capped at MAX_MATH_CHARS instead."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def expire(signum: int, frame: FrameType | None) -> None:
        raise DeadlineExceeded

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous if previous is not None else signal.SIG_DFL)
