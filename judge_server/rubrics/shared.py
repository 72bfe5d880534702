"""Keep a replica's ``RubricRegistry`` in step with a shared ``RubricStore``.

The store is the truth: writes go there first and the registry then adopts the store's state,
so every replica serves the same versions, history and pins. Each replica polls the store's
generation counter every ``POLL_S``: a change made on another replica serves here within about
that long. Polling rather than pub/sub because a pub/sub message sent while a replica is
disconnected is lost, so a replica would need this check on every reconnect anyway; one GET a
half second per replica is the check and the whole mechanism.

When the store is unreachable the registry keeps serving the versions it last adopted (or the
rubrics directory, if it never reached the store); ``error`` says why, for /health and the
``judge_rubric_store_up`` metric, and writes are refused with the reason (nothing changes).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from judge_server.metrics import Metrics
from judge_server.rubrics.registry import RubricChange, RubricNotFoundError, RubricRegistry
from judge_server.rubrics.spec import RubricError, RubricParser, RubricSpec
from judge_server.rubrics.store import RubricStore, RubricStoreError, StoreState

log = logging.getLogger(__name__)

POLL_S = 0.5

Parsed = dict[tuple[str, str], RubricSpec]


class SharedRubrics:
    def __init__(
        self,
        registry: RubricRegistry,
        store: RubricStore,
        parse: RubricParser,
        metrics: Metrics | None = None,
    ) -> None:
        self.registry = registry
        self.store = store
        self.parse = parse
        self.metrics = metrics
        self._seed = list(registry.current.values())
        """What the rubrics directory held at start: offered to the store, which keeps
        versions it has seen before (see ``RubricStore.seed``)."""
        self._seeded = False
        self._parsed: Parsed = {}
        self._lock = asyncio.Lock()
        self.error: str | None = "not synced with the rubric store yet"
        if metrics is not None:
            metrics.rubric_store_up().set(0)
        self.generation: int | None = None
        """The store generation this replica serves (None before the first sync)."""

    @property
    def ok(self) -> bool:
        return self.error is None

    async def sync(self) -> None:
        """Seed (first time, or when the store lost its data), then adopt the store's state
        if it changed since the last sync. Raises ``RubricStoreError``."""
        async with self._lock:
            try:
                generation = await self.store.generation()
                if generation is None or not self._seeded:
                    now = time.time()
                    for rubric in self._seed:
                        await self.store.seed(rubric, now)
                    self._seeded = True
                    generation = await self.store.generation()
                if generation != self.generation:
                    await self._adopt(await self.store.state())
            except RubricStoreError as exc:
                self._failed(exc)
                raise
            self._reached()

    async def put(self, rubric: RubricSpec, by: str | None) -> bool:
        """Store ``rubric`` as the live version and serve it here; True when the name is new."""
        try:
            created = await self.store.put(
                rubric, RubricChange(time.time(), rubric.version, "put", by)
            )
        except RubricStoreError as exc:
            self._failed(exc)
            raise
        if not await self._refreshed():  # stored: serve it here now, the poll adopts the rest
            self.registry.save(rubric, None, by)
        return bool(created)

    async def delete(self, name: str, by: str | None) -> RubricSpec:
        rubric = self.registry.current.get(name)
        if rubric is None:
            raise RubricNotFoundError(name, self.registry.current)
        change = RubricChange(time.time(), rubric.version, "delete", by)
        try:
            deleted = await self.store.delete(name, change)
        except RubricStoreError as exc:
            self._failed(exc)
            raise
        if not await self._refreshed() and name in self.registry.current:
            self.registry.delete(name, None, by)
        if not deleted:  # another replica deleted it first
            raise RubricNotFoundError(name, self.registry.current)
        return rubric

    async def keep_syncing(self, stop: asyncio.Event, poll_s: float = POLL_S) -> None:
        """Poll until ``stop`` is set; never raises (an unreachable store is retried)."""
        while not stop.is_set():
            try:
                await self.sync()
            except RubricStoreError:
                pass  # recorded by sync; the last known versions keep serving
            except Exception:
                log.exception("rubric store sync failed")
                if self.metrics is not None:
                    self.metrics.errors.labels("rubric_store").inc()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), poll_s)

    async def _refreshed(self) -> bool:
        try:
            await self.sync()
        except RubricStoreError:
            return False
        return True

    async def _adopt(self, state: StoreState) -> None:
        parsed = await asyncio.to_thread(self._parse_new, state)  # validation is CPU work
        current = {}
        for name, version in state.live.items():
            rubric = parsed.get((name, version)) or self.registry.current.get(name)
            if rubric is not None:  # an unreadable live version: the last good one serves
                current[name] = rubric
        history = {
            name: [parsed[(name, v.version)] for v in kept if (name, v.version) in parsed]
            for name, kept in state.versions.items()
        }
        self.registry.adopt(current, history, state.changes)
        self._parsed = parsed
        self.generation = state.generation

    def _parse_new(self, state: StoreState) -> Parsed:
        """Every kept version, parsed once per process (``_parsed`` holds the previous ones)."""
        parsed: Parsed = {}
        for name, kept in state.versions.items():
            for stored in kept:
                key = (name, stored.version)
                rubric = self._parsed.get(key)
                if rubric is None:
                    try:
                        rubric = self.parse(dict(stored.body), source=f"rubric store {name}")
                    except RubricError as exc:
                        log.error("rubric store: %s@%s refused: %s", name, stored.version, exc)
                        continue
                    if rubric.version != stored.version:  # another judge-server version wrote it
                        log.error(
                            "rubric store: %s@%s parses as version %s here; skipped",
                            name, stored.version, rubric.version,
                        )  # fmt: skip
                        continue
                parsed[key] = rubric
        return parsed

    def _failed(self, exc: RubricStoreError) -> None:
        if self.error != str(exc):  # once per outage (and per new reason), not every poll
            log.error("rubric store unreachable, serving the last known versions: %s", exc)
        self.error = str(exc)
        if self.metrics is not None:
            self.metrics.rubric_store_up().set(0)

    def _reached(self) -> None:
        if self.error is not None:
            log.info("rubric store in sync (generation %s)", self.generation)
        self.error = None
        if self.metrics is not None:
            self.metrics.rubric_store_up().set(1)
