"""A wall-clock limit on a block of code, by SIGALRM (main thread only)."""

from __future__ import annotations

import signal
import threading
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

#: after the deadline, how soon the alarm fires again if its exception could not be raised
RETRY_S = 0.01


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

    closing = False

    def expire(signum: int, frame: FrameType | None) -> None:
        if closing:
            return
        # Re-arm first: an exception raised inside a finalizer (a weakref callback or __del__
        # run by the garbage collector) is swallowed and printed, and the check would run on
        # unbounded. In one, wait for the next tick; anywhere else, raise.
        signal.setitimer(signal.ITIMER_REAL, RETRY_S)
        if _in_finalizer(frame):
            return
        raise DeadlineExceeded

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        # The alarm may land during this teardown too: repeat it until it has run whole, so
        # the timer never outlives the block (the block's own outcome is kept).
        while True:
            try:
                closing = True
                signal.setitimer(signal.ITIMER_REAL, 0)
                signal.signal(signal.SIGALRM, previous if previous is not None else signal.SIG_DFL)
                break
            except DeadlineExceeded:
                continue


def _in_finalizer(frame: FrameType | None) -> bool:
    """Whether the interrupted code runs inside a finalizer (anywhere up its stack)."""
    while frame is not None:
        code = frame.f_code
        if code.co_name == "__del__" or code.co_filename == weakref.__file__:
            return True
        frame = frame.f_back
    return False
