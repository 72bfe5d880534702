"""The one retry policy, as pure functions (no I/O, no clock unless none is given)."""

from __future__ import annotations

import email.utils
import random
import time
from typing import Protocol

from ._config import RetryPolicy

__all__ = ["SupportsRandom", "parse_retry_after", "retry_delay", "should_retry"]


class SupportsRandom(Protocol):
    def random(self) -> float: ...


def should_retry(status_code: int | None) -> bool:
    """Whether a failure is worth retrying.

    ``None`` stands for a failure without a response (timeout, connection error).
    408, 429 and 5xx are transient; every other status would fail the same way again.
    """
    if status_code is None:
        return True
    return status_code in (408, 429) or 500 <= status_code <= 599


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or HTTP date).

    Returns ``None`` when the header is absent or unparseable; a date in the past gives 0.
    ``now`` is a POSIX timestamp, the current time if not given.
    """
    if value is None:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:  # RFC 9110 dates are GMT; "-0000" parses as naive
            return None
        seconds = when.timestamp() - (time.time() if now is None else now)
    if seconds != seconds or seconds in (float("inf"), float("-inf")):  # nan / inf
        return None
    return max(seconds, 0.0)


def retry_delay(
    attempt: int,
    retry_after: str | None,
    policy: RetryPolicy,
    rng: SupportsRandom | None = None,
    *,
    now: float | None = None,
) -> float:
    """Seconds to sleep before retry number ``attempt`` (0 for the first retry).

    A valid ``Retry-After`` wins, capped at ``policy.max_retry_after``. Otherwise
    exponential backoff ``initial_backoff * 2**attempt`` capped at ``max_backoff``, then
    shortened by a random fraction up to ``policy.jitter`` so that many clients that
    failed together do not all come back together.
    """
    if attempt < 0:
        raise ValueError(f"attempt must be >= 0, got {attempt!r}")
    server_delay = parse_retry_after(retry_after, now=now)
    if server_delay is not None:
        return min(server_delay, policy.max_retry_after)
    # Cap the exponent first: 2**attempt overflows float for absurd attempt counts.
    base = min(policy.initial_backoff * 2.0 ** min(attempt, 64), policy.max_backoff)
    draw = (rng or random).random()
    return base * (1.0 - policy.jitter * draw)
