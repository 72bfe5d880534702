"""HTTP to a pool of OpenAI-compatible replicas: health probes, and requests with failover.

``routing.ReplicaPool`` decides which replica serves a request and which are up; this module does
the I/O around it and reports back. What a failure means for the replica (retry elsewhere, mark
down) is decided here; what an answer means is the caller's business.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from typing import Any

import httpx

from judge_server.engines.base import EngineError
from judge_server.engines.completions_wire import error_message
from judge_server.engines.routing import Replica, ReplicaPool

log = logging.getLogger(__name__)

_MARK_DOWN_STATUSES = frozenset({502, 503, 504})
_RETRY_STATUSES = frozenset({429})  # besides every 5xx


class _ReplicaFailed(Exception):
    """This replica could not answer; another one may."""

    def __init__(self, reason: str, *, mark_down: bool) -> None:
        super().__init__(reason)
        self.mark_down = mark_down


class RequestRefused(EngineError):
    """A replica refused the request itself (HTTP 4xx other than 429): any other one would too."""

    def __init__(self, url: str, status: int, message: str) -> None:
        super().__init__(f"{url} refused the request: HTTP {status}: {message}")
        self.status = status
        self.message = message


class ReplicaClient:
    def __init__(
        self,
        base_urls: Sequence[str],
        *,
        api_key: str | None,
        request_timeout_s: float,
        health_interval_s: float,
        max_attempts: int,
        transport: httpx.AsyncBaseTransport | None,
    ) -> None:
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        self.pool = ReplicaPool(base_urls)
        self._health_interval_s = health_interval_s
        self._health_timeout_s = max(0.5, min(5.0, health_interval_s))
        self._max_attempts = max_attempts
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._http = httpx.AsyncClient(
            transport=transport,
            headers=headers,
            timeout=httpx.Timeout(request_timeout_s, connect=min(10.0, request_timeout_s)),
            # No pool cap: a queue inside httpx would turn load into spurious timeouts; the
            # replicas' own schedulers do the queueing.
            limits=httpx.Limits(max_connections=None, max_keepalive_connections=256),
        )
        self._health_task: asyncio.Task[None] | None = None
        self._health_only: set[str] = set()
        """Replicas without ``/readiness`` (``vllm serve``): probed on ``/health``."""

    async def aclose(self) -> None:
        """Stop the health checks and close the connections."""
        if self._health_task is not None:
            self._health_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._health_task
            self._health_task = None
        await self._http.aclose()

    # -- health -----------------------------------------------------------------------------

    async def check_health(self) -> None:
        """One round of health probes on every replica, concurrently.

        The probe is ``GET /readiness``, falling back for good to ``GET /health`` on a replica
        that answers it 404. A router (``vllm-router``) answers ``/readiness`` with 200 while
        any worker is healthy, but its ``/health`` with 503 as soon as any one worker is not
        (``RouterTrait::health`` in its src/routers/http/router.rs), which would take the whole
        fleet out for one dead worker; ``vllm serve`` has no ``/readiness``, only ``/health``.
        """
        await asyncio.gather(*(self._probe(r) for r in self.pool.replicas))

    async def _probe(self, replica: Replica) -> None:
        try:
            resp = await self._get_health(replica)
        except httpx.HTTPError as exc:
            reason = f"health check: {type(exc).__name__}: {exc}"
            if self._busy_not_down(exc):
                log.info("lone upstream %s kept: %s", replica.url, reason)
                return
            self.pool.mark_down(replica, reason)
            return
        if resp.status_code == 200:
            self.pool.mark_up(replica)
        else:
            self.pool.mark_down(replica, f"health check: HTTP {resp.status_code}")

    def _busy_not_down(self, exc: httpx.HTTPError) -> bool:
        """A lone upstream (one server, or a router before a fleet) that connected but was slow
        to answer its probe is busy, not down: taking it out would fail every item while it
        works, with nowhere else to send them. A refused connection or a non-200 answer still
        takes it out; with several replicas a slow one is left out until it answers."""
        lone = len(self.pool.replicas) == 1
        return (
            lone
            and isinstance(exc, httpx.TimeoutException)
            and not isinstance(exc, httpx.ConnectTimeout)
        )

    async def _get_health(self, replica: Replica) -> httpx.Response:
        if replica.url not in self._health_only:
            resp = await self._http.get(f"{replica.url}/readiness", timeout=self._health_timeout_s)
            if resp.status_code != 404:
                return resp
            self._health_only.add(replica.url)
        return await self._http.get(f"{replica.url}/health", timeout=self._health_timeout_s)

    def start_health_checks(self) -> None:
        """A ``check_health`` round every ``health_interval_s``, in the background."""
        self._health_task = asyncio.create_task(self._health_loop(), name="remote-engine-health")

    async def _health_loop(self) -> None:
        while True:
            await asyncio.sleep(self._health_interval_s)
            try:
                await self.check_health()
            except Exception:  # keep probing whatever happens; a dead loop would never recover
                log.exception("health check round failed")

    async def served_models(self) -> list[tuple[Replica, list[Any]]]:
        """``GET /v1/models`` on each healthy replica: the model cards of those that list any."""
        served: list[tuple[Replica, list[Any]]] = []
        for replica in self.pool.healthy:
            try:
                resp = await self._http.get(f"{replica.url}/v1/models")
                resp.raise_for_status()
                data = resp.json().get("data") or []
            except (httpx.HTTPError, ValueError, AttributeError) as exc:
                log.warning("GET %s/v1/models failed: %s", replica.url, exc)
                continue
            if data:
                served.append((replica, data))
        return served

    # -- requests ---------------------------------------------------------------------------

    async def post(self, path: str, payload: dict[str, Any]) -> dict[str, Any]:
        """POST on the least busy healthy replica, failing over to others; the JSON answer.

        Raises ``RequestRefused`` when a replica refuses the request itself, ``EngineError`` when
        no replica could answer.
        """
        tried: list[Replica] = []
        failures: list[str] = []
        for _ in range(self._max_attempts):
            replica = self.pool.acquire(exclude=tried)
            if replica is None:
                break
            tried.append(replica)
            try:
                return await self._post(replica, path, payload)
            except _ReplicaFailed as exc:
                failures.append(f"{replica.url}: {exc}")
                self.pool.record_failure(replica, str(exc), mark_down=exc.mark_down)
                log.info("request failed on %s (%s); trying another replica", replica.url, exc)
        if not failures:
            raise EngineError("no healthy judge replica")
        raise EngineError("every replica tried failed: " + "; ".join(failures))

    async def _post(self, replica: Replica, path: str, payload: dict[str, Any]) -> dict[str, Any]:
        try:
            resp = await self._http.post(f"{replica.url}{path}", json=payload)
        except httpx.PoolTimeout as exc:  # our own connection pool, not the replica's fault
            raise EngineError(f"HTTP connection pool exhausted: {exc}") from exc
        except httpx.TimeoutException as exc:
            raise _ReplicaFailed(f"timeout ({type(exc).__name__})", mark_down=True) from exc
        except httpx.TransportError as exc:
            raise _ReplicaFailed(f"{type(exc).__name__}: {exc}", mark_down=True) from exc
        finally:
            self.pool.release(replica)
        status = resp.status_code
        if status >= 500 or status in _RETRY_STATUSES:
            raise _ReplicaFailed(
                f"HTTP {status}: {error_message(resp)}", mark_down=status in _MARK_DOWN_STATUSES
            )
        if status >= 400:
            raise RequestRefused(replica.url, status, error_message(resp))
        try:
            body = resp.json()
        except ValueError as exc:
            raise _ReplicaFailed("answer is not JSON", mark_down=False) from exc
        if not isinstance(body, dict):
            raise _ReplicaFailed("answer is not a JSON object", mark_down=False)
        return body
