"""The replica pool behind the remote engine: who is up, who is least busy.

Pure bookkeeping, no I/O: the remote engine probes the replicas' health, sends the requests and
reports back here. Everything runs on one event loop, so no locks are needed.

Routing is least-outstanding-requests over the healthy replicas: a replica that is slow (long
prompts, a busy GPU) keeps more requests in flight and so receives fewer new ones. Ties, the
usual case when the pool is idle, are broken round robin so that a lightly loaded pool still
spreads its prefix caches' warm-up over every replica.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

log = logging.getLogger(__name__)


def normalise_base_url(url: str) -> str:
    """``http://host:8000``, ``http://host:8000/`` and ``http://host:8000/v1`` are one server."""
    url = url.strip().rstrip("/")
    url = url.removesuffix("/v1")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"not an http(s) base URL: {url!r}")
    return url


@dataclass
class Replica:
    url: str
    healthy: bool = False
    outstanding: int = 0
    """Requests sent to this replica and not yet answered."""
    requests: int = 0
    failures: int = 0
    last_error: str | None = None


class ReplicaPool:
    def __init__(self, base_urls: Sequence[str]) -> None:
        urls = [normalise_base_url(u) for u in base_urls]
        if not urls:
            raise ValueError("the remote engine needs at least one base URL")
        if len(set(urls)) != len(urls):
            raise ValueError(f"duplicate base URLs: {urls}")
        self.replicas = [Replica(u) for u in urls]
        self._next = 0  # round-robin start for tie breaking

    @property
    def healthy(self) -> list[Replica]:
        return [r for r in self.replicas if r.healthy]

    @property
    def any_healthy(self) -> bool:
        return any(r.healthy for r in self.replicas)

    def acquire(self, exclude: Collection[Replica] = ()) -> Replica | None:
        """The healthy replica with the fewest outstanding requests (ties: round robin).

        Counts the request as outstanding on it; the caller must ``release`` it. None when no
        healthy replica is left outside ``exclude``.
        """
        n = len(self.replicas)
        order = [self.replicas[(self._next + i) % n] for i in range(n)]
        candidates = [r for r in order if r.healthy and all(r is not e for e in exclude)]
        if not candidates:
            return None
        best = min(candidates, key=lambda r: r.outstanding)  # min() keeps the first of ties
        self._next = (self.replicas.index(best) + 1) % n
        best.outstanding += 1
        best.requests += 1
        return best

    def release(self, replica: Replica) -> None:
        replica.outstanding -= 1

    def record_failure(self, replica: Replica, reason: str, *, mark_down: bool) -> None:
        """A request failed on ``replica``; ``mark_down`` takes it out until it is healthy again.

        A lone upstream (one URL: one server, or a router such as ``vllm-router`` in front of a
        fleet) is never taken out by a request failure, only by its health probe: there is no
        other replica to send the next request to, and a router's timeout or 503 on one request
        says little about the fleet behind it (the router health-checks its workers and answers
        ``GET /readiness`` with 503 itself when none is left).
        """
        replica.failures += 1
        replica.last_error = reason
        if mark_down and len(self.replicas) > 1:
            self.mark_down(replica, reason)

    def mark_down(self, replica: Replica, reason: str) -> None:
        replica.last_error = reason
        if replica.healthy:
            log.warning("replica %s marked down: %s", replica.url, reason)
        replica.healthy = False

    def mark_up(self, replica: Replica) -> None:
        if not replica.healthy:
            log.info("replica %s is up", replica.url)
        replica.healthy = True
        replica.last_error = None
