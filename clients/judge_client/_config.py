"""Client configuration value objects and their defaults."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "DEFAULT_CHUNK_SIZE",
    "DEFAULT_CONNECT_TIMEOUT_S",
    "DEFAULT_INITIAL_BACKOFF_S",
    "DEFAULT_JITTER",
    "DEFAULT_MAX_BACKOFF_S",
    "DEFAULT_MAX_CONCURRENCY",
    "DEFAULT_MAX_RETRIES",
    "DEFAULT_MAX_RETRY_AFTER_S",
    "DEFAULT_POOL_TIMEOUT_S",
    "DEFAULT_READ_TIMEOUT_S",
    "DEFAULT_RETRY_POLICY",
    "DEFAULT_TIMEOUT",
    "DEFAULT_WRITE_TIMEOUT_S",
    "READ_TIMEOUT_MARGIN_S",
    "RetryPolicy",
    "Timeout",
]

DEFAULT_CONNECT_TIMEOUT_S = 5.0
# Judging a full chunk can take a while: stay above the server's default per-item deadline
# (120 s), or the client would retry, and pay for, work the server is about to return.
DEFAULT_READ_TIMEOUT_S = 180.0
DEFAULT_WRITE_TIMEOUT_S = 30.0
DEFAULT_POOL_TIMEOUT_S = 10.0
# Added on top of a per-call server-side ``timeout_s`` so the HTTP read does not give up
# (and retry, paying for the judge twice) while the server is still within its budget.
READ_TIMEOUT_MARGIN_S = 5.0

DEFAULT_MAX_RETRIES = 3
DEFAULT_INITIAL_BACKOFF_S = 0.5
DEFAULT_MAX_BACKOFF_S = 8.0
DEFAULT_JITTER = 0.25
DEFAULT_MAX_RETRY_AFTER_S = 60.0

DEFAULT_CHUNK_SIZE = 256
DEFAULT_MAX_CONCURRENCY = 4


def _check_non_negative(name: str, value: float | None) -> None:
    if value is not None and value < 0:
        raise ValueError(f"{name} must be >= 0 or None, got {value!r}")


@dataclass(frozen=True, slots=True)
class Timeout:
    """HTTP timeouts in seconds for each phase of a request; ``None`` disables one.

    ===================================  ====================================================
    Expression                           Meaning
    ===================================  ====================================================
    ``Timeout()``                        connect 5 s, read 180 s, write 30 s, pool 10 s
    ``Timeout(read=300)``                defaults, but wait up to 300 s for the response
    ``Timeout.uniform(10)``              10 s for each of connect, read, write and pool
    ``Timeout(connect=1)``               fail fast when the server is unreachable
    ``Timeout(pool=None)``               wait as long as needed for a pooled connection
    ``Timeout.uniform(None)``            never time out (not recommended)
    ===================================  ====================================================

    The judge's per-item deadline is separate: pass ``timeout_s=`` to ``score``. When it
    is given, the read timeout is raised to at least ``timeout_s`` plus a small margin.
    """

    connect: float | None = DEFAULT_CONNECT_TIMEOUT_S
    read: float | None = DEFAULT_READ_TIMEOUT_S
    write: float | None = DEFAULT_WRITE_TIMEOUT_S
    pool: float | None = DEFAULT_POOL_TIMEOUT_S

    def __post_init__(self) -> None:
        for name in ("connect", "read", "write", "pool"):
            _check_non_negative(name, getattr(self, name))

    @classmethod
    def uniform(cls, seconds: float | None) -> Timeout:
        """The same timeout for all four phases."""
        return cls(connect=seconds, read=seconds, write=seconds, pool=seconds)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How often and how long to wait before retrying a failed request.

    ``max_retries`` counts retries, not attempts: 3 means up to 4 requests in total.
    The backoff before retry ``n`` (0-based) is ``initial_backoff * 2**n`` capped at
    ``max_backoff``, then reduced by up to ``jitter`` (a fraction) at random. A server
    ``Retry-After`` header overrides the backoff, capped at ``max_retry_after``.
    """

    max_retries: int = DEFAULT_MAX_RETRIES
    initial_backoff: float = DEFAULT_INITIAL_BACKOFF_S
    max_backoff: float = DEFAULT_MAX_BACKOFF_S
    jitter: float = DEFAULT_JITTER
    max_retry_after: float = DEFAULT_MAX_RETRY_AFTER_S

    def __post_init__(self) -> None:
        if self.max_retries < 0:
            raise ValueError(f"max_retries must be >= 0, got {self.max_retries!r}")
        for name in ("initial_backoff", "max_backoff", "max_retry_after"):
            _check_non_negative(name, getattr(self, name))
        if not 0.0 <= self.jitter <= 1.0:
            raise ValueError(f"jitter must be within [0, 1], got {self.jitter!r}")


DEFAULT_TIMEOUT = Timeout()
DEFAULT_RETRY_POLICY = RetryPolicy()
