"""One judge client per (server URL, API key) per process, shared by the adapters that are
configured rather than constructed (veRL, slime, verifiers).

A trainer calls a reward function many times from worker threads (veRL runs a sync
``compute_score`` in its event loop's default executor) or from one event loop; building a client
per call would open a connection pool per sample. ``JudgeClient`` is thread-safe, so one per
(URL, key) serves every thread. An ``AsyncJudgeClient`` belongs to the event loop it is used
on, so async clients are kept per running loop as well, and dropped with their loop.

A forked child (a dataloader worker, a ``multiprocessing`` pool) starts with an empty cache: the
parent's connections are not shared across a fork.

Tests replace ``CLIENTS.sync_factory`` / ``CLIENTS.async_factory`` (for example with clients on
an ``httpx.MockTransport``) and call ``CLIENTS.clear()``.
"""

from __future__ import annotations

import asyncio
import os
import threading
import weakref
from collections.abc import Callable

# Absolute imports: veRL loads an adapter by file path, outside its package.
from judge_client._client import AsyncJudgeClient, JudgeClient

__all__ = ["CLIENTS", "AsyncFactory", "ClientCache", "SyncFactory"]

SyncFactory = Callable[[str, str | None], JudgeClient]
AsyncFactory = Callable[[str, str | None], AsyncJudgeClient]

_Key = tuple[str, str | None]


def _sync_client(base_url: str, api_key: str | None) -> JudgeClient:
    return JudgeClient(base_url, api_key=api_key)


def _async_client(base_url: str, api_key: str | None) -> AsyncJudgeClient:
    return AsyncJudgeClient(base_url, api_key=api_key)


class ClientCache:
    """Clients by (base URL, API key); async ones also by the running event loop."""

    def __init__(
        self,
        sync_factory: SyncFactory = _sync_client,
        async_factory: AsyncFactory = _async_client,
    ) -> None:
        self.sync_factory = sync_factory
        self.async_factory = async_factory
        self._lock = threading.Lock()
        self._sync: dict[_Key, JudgeClient] = {}
        self._async: weakref.WeakKeyDictionary[
            asyncio.AbstractEventLoop, dict[_Key, AsyncJudgeClient]
        ] = weakref.WeakKeyDictionary()

    @staticmethod
    def _key(base_url: str, api_key: str | None) -> _Key:
        return base_url.rstrip("/"), api_key

    def sync_client(self, base_url: str, api_key: str | None) -> JudgeClient:
        key = self._key(base_url, api_key)
        with self._lock:
            client = self._sync.get(key)
            if client is None:
                client = self._sync[key] = self.sync_factory(*key)
            return client

    def async_client(self, base_url: str, api_key: str | None) -> AsyncJudgeClient:
        """The client for the running event loop (call from a coroutine)."""
        loop = asyncio.get_running_loop()
        key = self._key(base_url, api_key)
        with self._lock:
            per_loop = self._async.get(loop)
            if per_loop is None:
                per_loop = self._async[loop] = {}
            client = per_loop.get(key)
            if client is None:
                client = per_loop[key] = self.async_factory(*key)
            return client

    async def aclose(self) -> None:
        """Close and forget the running loop's async clients (before the loop ends)."""
        with self._lock:
            clients = list(self._async.pop(asyncio.get_running_loop(), {}).values())
        for client in clients:
            await client.aclose()

    def clear(self) -> None:
        """Forget every client; the sync ones are closed (async ones belong to their loop)."""
        with self._lock:
            sync = list(self._sync.values())
            self._sync.clear()
            self._async.clear()
        for client in sync:
            client.close()

    def _forget_after_fork(self) -> None:
        # The child must not close (or use) the parent's connections: drop them unclosed.
        self._lock = threading.Lock()
        self._sync = {}
        self._async = weakref.WeakKeyDictionary()


CLIENTS = ClientCache()

if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=CLIENTS._forget_after_fork)
