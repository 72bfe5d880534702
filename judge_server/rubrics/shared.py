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
import json
import logging
import time
from typing import Any

from judge_server.metrics import Metrics
from judge_server.rubrics.registry import RubricChange, RubricNotFoundError, RubricRegistry
from judge_server.rubrics.spec import RubricError, RubricParser, RubricSpec
from judge_server.rubrics.store import (
    RubricStore,
    RubricStoreError,
    StoreState,
    change_from_json,
)

log = logging.getLogger(__name__)

POLL_S = 0.5

Parsed = dict[tuple[str, str], RubricSpec]
Changes = dict[str, list[RubricChange]]


class SharedRubrics:
    def __init__(
        self,
        registry: RubricRegistry,
        store: RubricStore,
        parse: RubricParser,
        metrics: Metrics | None = None,
        max_names: int = 0,
    ) -> None:
        self.registry = registry
        self.max_names = max_names
        """The most rubric names the store may know (0: no cap); see ``TooManyRubrics``."""
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
        self._epoch: str | None = None

    @property
    def synced(self) -> bool:
        """The store's state was adopted at least once: until then this replica holds only
        the rubrics directory, and must not report ready (``JudgeService.ready``)."""
        return self.generation is not None

    @property
    def ok(self) -> bool:
        return self.error is None

    async def sync(self) -> None:
        """Seed (first time, or when the store lost its data), then adopt the store's state
        if its (epoch, generation) moved since the last sync. Raises ``RubricStoreError``."""
        async with self._lock:
            try:
                seen = await self.store.generation()
                # a new epoch: the store lost its data (and another replica seeded it first)
                reset = seen is not None and self._epoch is not None and seen[0] != self._epoch
                if seen is None or not self._seeded or reset:
                    now = time.time()
                    for rubric in self._seed:
                        await self.store.seed(rubric, now)
                    self._seeded = True
                    seen = await self.store.generation()
                if seen is None or seen != (self._epoch, self.generation):
                    await self._adopt(await self.store.state())
            except RubricStoreError as exc:
                self._failed(exc)
                raise
            self._reached()

    async def put(self, rubric: RubricSpec, by: str | None) -> bool:
        """Store ``rubric`` as the live version and serve it here; True when the name is new."""
        try:
            created = await self.store.put(
                rubric, RubricChange(time.time(), rubric.version, "put", by), self.max_names
            )
        except RubricStoreError as exc:
            self._failed(exc)
            raise
        if not await self._refreshed():  # stored: serve it here now, the poll adopts the rest
            self.registry.save(rubric, None, by)
        return bool(created)

    async def delete(self, name: str, by: str | None) -> RubricSpec:
        """Take ``name`` out of the live set; the version the store held live is logged and
        returned (not this replica's view of it, which may be a poll behind)."""
        await self.sync()  # a name PUT on another replica since the last poll is found
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
        if deleted is None:  # another replica deleted it first
            raise RubricNotFoundError(name, self.registry.current)
        return self.registry.history_version(name, deleted) or rubric

    async def refresh_for(self, ref: str) -> None:
        """A ``name@version`` pin this replica lacks may have been made on another replica
        since the last poll: sync once before it is answered 404 (one generation read when
        nothing changed; the sync lock makes concurrent misses share the store's answer)."""
        if "@" not in ref:
            return
        try:
            self.registry.resolve(ref)
        except RubricNotFoundError:
            with contextlib.suppress(RubricStoreError):  # recorded by sync; the 404 stands
                await self.sync()

    async def keep_syncing(self, stop: asyncio.Event, poll_s: float = POLL_S) -> None:
        """Poll until ``stop`` is set; never raises (an unreachable store is retried). A sync
        in progress when ``stop`` is set is cancelled: shutdown never waits on the store."""
        stopped = asyncio.ensure_future(stop.wait())
        running: list[asyncio.Future[Any]] = [stopped]
        try:
            while not stop.is_set():
                step = asyncio.ensure_future(self._sync_and_wait(poll_s))
                running = [stopped, step]
                await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
        finally:  # stopped, or this task cancelled: nothing is left running
            for task in running:
                task.cancel()
            await asyncio.gather(*running, return_exceptions=True)

    async def _sync_and_wait(self, poll_s: float) -> None:
        await self._refreshed(logged=True)
        await asyncio.sleep(poll_s)

    async def _refreshed(self, logged: bool = False) -> bool:
        try:
            await self.sync()
        except RubricStoreError:
            return False  # recorded by sync; the last known versions keep serving
        except Exception:
            if not logged:
                raise
            log.exception("rubric store sync failed")
            if self.metrics is not None:
                self.metrics.errors.labels("rubric_store").inc()
            return False
        return True

    async def _adopt(self, state: StoreState) -> None:
        # decoding and validation are CPU work: a thread, never the event loop
        parsed, changes = await asyncio.to_thread(self._parse_new, state)
        current = {}
        for name, version in state.live.items():
            rubric = parsed.get((name, version)) or self.registry.current.get(name)
            if rubric is not None:  # an unreadable live version: the last good one serves
                current[name] = rubric
        history = {
            name: [parsed[(name, v.version)] for v in kept if (name, v.version) in parsed]
            for name, kept in state.versions.items()
        }
        self.registry.adopt(current, history, changes)
        self._parsed = parsed
        self._epoch = state.epoch
        self.generation = state.generation

    def _parse_new(self, state: StoreState) -> tuple[Parsed, Changes]:
        """Every kept version, decoded and parsed once per process (``_parsed`` holds the
        previous ones), and the change logs. What does not decode or validate (a corrupt or
        foreign entry) is logged and skipped; it never fails the sync."""
        parsed: Parsed = {}
        for name, kept in state.versions.items():
            for stored in kept:
                key = (name, stored.version)
                rubric = self._parsed.get(key)
                if rubric is None:
                    try:
                        body = json.loads(stored.body)
                        if not isinstance(body, dict):
                            raise RubricError(f"not an object: {type(body).__name__}")
                        rubric = self.parse(body, source=f"rubric store {name}")
                    except (RubricError, ValueError) as exc:
                        log.error("rubric store: %s@%s refused: %s", name, stored.version, exc)
                        continue
                    if rubric.version != stored.version:  # another judge-server version wrote it
                        log.error(
                            "rubric store: %s@%s parses as version %s here; skipped",
                            name, stored.version, rubric.version,
                        )  # fmt: skip
                        continue
                parsed[key] = rubric
        changes: Changes = {}
        for name, entries in state.changes.items():
            changes[name] = []
            for entry in entries:
                try:
                    changes[name].append(change_from_json(entry))
                except ValueError as exc:
                    log.error("rubric store: a change entry of %s skipped: %s", name, exc)
        return parsed, changes

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
