"""Score a batch of items with one judge: one result per item, in order, each with a status.

This is where failures become statuses, never numbers: an item the rubric cannot take is
``invalid_input``, a judge that produced no verdict is ``judge_error``, a late one is ``timeout``;
in every such case the reward is None. One item's failure never touches the others.

It is also where work is saved: a result cache (only ``ok`` results are stored) and in-flight
dedup (identical judge calls running at once are computed once) sit in front of the engine. And
where it is counted: each result carries the ``usage`` of the engine calls its item made.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from judge_server.cache import CachedResult, InFlight, KeyMaker, ResultCache, item_fingerprint
from judge_server.cache.inflight import Computation
from judge_server.engines.base import EngineError, JudgeEngine, PromptTooLongError
from judge_server.engines.images import providing
from judge_server.engines.usage import Usage, measure
from judge_server.judges import InvalidItemError, Judge, JudgeFailure, JudgeItem, Judgment
from judge_server.judges.base import shape
from judge_server.judges.workers import check_lane
from judge_server.metrics import Metrics

log = logging.getLogger(__name__)

#: The longest a request's validation and key hashing holds the event loop before yielding.
_SLICE_S = 0.005

Status = Literal["ok", "invalid_input", "judge_error", "timeout"]


@dataclass
class ItemResult:
    id: str
    status: Status
    reward: float | None = None
    details: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    cached: bool = False
    usage: Usage = field(default_factory=Usage)
    """The engine calls judging this item made: a computation's are reported once, by the first
    item to take its result (none for a cache hit or a later taker of a shared result)."""


@dataclass(frozen=True)
class Rejected:
    """An item refused before judging (its input cannot be read): status ``invalid_input``,
    counted like every other result, and no harm to the rest of its request."""

    id: str
    reason: str


ScoreInput = JudgeItem | Rejected


class Scorer:
    def __init__(
        self,
        engine: JudgeEngine,
        metrics: Metrics | None = None,
        *,
        cache: ResultCache | None = None,
        engine_fingerprint: Mapping[str, object] | None = None,
        models: Callable[[], Mapping[str, object]] | None = None,
    ) -> None:
        self.engine = engine
        self.metrics = metrics
        self.cache = cache
        self.inflight = InFlight()
        self.dead: str | None = None
        """Set by ``fail_pending``: the engine died, every item now fails with this."""
        # Settings that change the engine's outputs belong in every cache key.
        self.engine_fingerprint = dict(engine_fingerprint or {})
        # The models' content identity, read at every key: known once the engines have started.
        self.models = models or (lambda: {"judge": engine.model_revision})

    async def score(
        self, judge: Judge, items: Sequence[ScoreInput], *, timeout_s: float, use_cache: bool = True
    ) -> list[ItemResult]:
        """Score every item with one judge (built once per request, so one rubric version).
        The request's CPU-bound checks share the check workers fairly with other requests'.

        Per request, not per item: the key parts every item shares are hashed once, the cache
        is read in one batch, each result goes to the memory tier as it is judged and to the
        backend in one batch at the end (a cancelled request's too, for what it judged), the
        metrics are counted once, and the request waits on its items' computations together
        (a task per distinct item judged, none per item waiting)."""
        with check_lane():
            return await self._score(judge, items, timeout_s, use_cache)

    async def _score(
        self, judge: Judge, items: Sequence[ScoreInput], timeout_s: float, use_cache: bool
    ) -> list[ItemResult]:
        started = time.perf_counter()
        results: list[ItemResult | None] = [None] * len(items)
        # Seconds from the request's start to each item's result.
        seconds = [0.0] * len(items)
        keys: dict[int, str] = {}
        judged: dict[int, JudgeItem] = {}
        caching = self.cache is not None and use_cache
        persist: list[tuple[str, CachedResult]] = []  # this request's backend batch
        try:
            await self._prepare(judge, items, timeout_s, results, keys, judged)
            if caching and keys:
                await self._replay(items, keys, results)
            seconds = [time.perf_counter() - started] * len(items)
            pending = [i for i in keys if results[i] is None]
            await self._judge_all(
                judge, judged, keys, pending, timeout_s, caching, results, seconds, started, persist
            )
        finally:
            # Also when cancelled (a disconnect, a shutdown): what was judged is stored and
            # counted. Shielded, so a cancelled request's backend write still lands.
            self._count(judge, results, seconds)
            if persist:
                await asyncio.shield(self._store(persist))
        done = [result for result in results if result is not None]
        assert len(done) == len(items), "every item has a result"
        return done

    async def _prepare(
        self,
        judge: Judge,
        items: Sequence[ScoreInput],
        timeout_s: float,
        results: list[ItemResult | None],
        keys: dict[int, str],
        judged: dict[int, JudgeItem],
    ) -> None:
        """Validate and key every item; the event loop is served every ``_SLICE_S`` meanwhile
        (a request may hold thousands of items of megabytes each)."""
        maker = self._key_maker(judge)
        sliced = time.perf_counter()
        for i, item in enumerate(items):
            if time.perf_counter() - sliced > _SLICE_S:
                await asyncio.sleep(0)
                sliced = time.perf_counter()
            if isinstance(item, Rejected):
                results[i] = ItemResult(item.id, "invalid_input", error=item.reason)
            elif self.dead is not None:
                results[i] = ItemResult(item.id, "judge_error", error=self.dead)
            else:
                try:
                    judge.check_criteria(item)
                    judge.validate(item)
                    keys[i] = maker.key(self._fingerprint(item))
                    judged[i] = item
                except Exception as exc:
                    results[i] = _failure(item.id, exc, timeout_s)

    def _key_maker(self, judge: Judge) -> KeyMaker:
        return KeyMaker(
            model_id=self.engine.model_id,
            models=self.models(),
            engine_fingerprint=self.engine_fingerprint,
            rubric_version=judge.identity(),
            mode=judge.rubric.mode,
        )

    def key(self, judge: Judge, item: JudgeItem) -> str:
        return self._key_maker(judge).key(self._fingerprint(item))

    @staticmethod
    def _fingerprint(item: JudgeItem) -> dict[str, object]:
        fingerprint = item_fingerprint(item.prompt, item.response, item.reference, item.metadata)
        if item.criteria is not None:  # absent otherwise, so keys of plain items are unchanged
            fingerprint["criteria"] = [c.model_dump(mode="json") for c in item.criteria]
        if item.images:  # absent for text-only items, so their keys are unchanged
            fingerprint["images"] = [image.sha256 for image in item.images]
        return fingerprint

    async def _replay(
        self, items: Sequence[ScoreInput], keys: dict[int, str], results: list[ItemResult | None]
    ) -> None:
        """Fill in the cached results of ``keys`` (item index -> key), one batched read.
        A cache that cannot be read is all misses: a cache never fails an item."""
        assert self.cache is not None
        try:
            hits = await self.cache.get_many(list(keys.values()))
        except Exception:  # a tiered cache never raises; a bare backend may
            self.cache.stats.errors += 1
            log.exception("result cache read failed; the items are judged uncached")
            return
        for i, hit in zip(keys, hits, strict=True):
            if hit is not None:
                results[i] = ItemResult(items[i].id, "ok", hit.reward, hit.details, cached=True)

    async def _store(self, entries: Sequence[tuple[str, CachedResult]]) -> None:
        """Write the judged results (the memory tier has them since each was judged) onward,
        in one batch; a cache never fails them."""
        assert self.cache is not None
        try:
            await self.cache.persist_many(entries)
        except Exception:
            log.exception("result cache write failed; the results are served uncached")

    def fail_pending(self, reason: str) -> None:
        """The engine died: every item being judged ends now as ``judge_error`` (an engine
        call that would hang on the dead engine is cancelled), and so does every later one."""
        self.dead = reason
        self.inflight.cancel_all(reason)

    async def _judge_all(
        self,
        judge: Judge,
        judged: Mapping[int, JudgeItem],
        keys: Mapping[int, str],
        pending: Sequence[int],
        timeout_s: float,
        caching: bool,
        results: list[ItemResult | None],
        seconds: list[float],
        started: float,
        persist: list[tuple[str, CachedResult]],
    ) -> None:
        """Judge the ``pending`` items: each in a computation of its own (one task, shared by
        the identical items of every request running at once), the request waiting on all of
        them in one ``asyncio.wait``, not a task per item. Fills in ``results`` and ``seconds``
        as far as it gets: a cancelled request keeps what was judged (its computations nobody
        else waits for are stopped). ``persist`` gets the results this request writes to the
        backend: each computation's once, by the first request to take it that caches or
        whose computation was started by one that does (which may have gone away)."""
        if self.dead is not None:  # the engine died while this request read the cache
            for i in pending:
                results[i] = ItemResult(judged[i].id, "judge_error", error=self.dead)
            return
        joined: dict[int, Computation] = {}
        timed_out = False
        try:
            for i in pending:
                compute = functools.partial(self._compute, judge, judged[i], keys[i], caching)
                computation, shared = self.inflight.join(keys[i], compute)
                if not shared:  # the starter's choice: its computation remembers the result
                    computation.caching = caching
                joined[i] = computation
            if joined:
                tasks = {computation.task for computation in joined.values()}
                _, late = await asyncio.wait(tasks, timeout=timeout_s)
                timed_out = bool(late)
        finally:
            unremembered: list[tuple[str, CachedResult]] = []
            for i, computation in joined.items():
                self.inflight.leave(computation)
                task = computation.task
                if not task.done() and not timed_out:
                    continue  # cancelled request: no result for an item still being judged
                result, finished = self._outcome(judged[i].id, computation, timeout_s)
                results[i] = result
                seconds[i] = max(seconds[i], finished - started)
                if result.reward is None:
                    continue
                entry = CachedResult(result.reward, result.details)
                if caching and not computation.caching:  # computed for a request that may not cache
                    unremembered.append((keys[i], entry))
                if (caching or computation.caching) and not computation.stored:
                    computation.stored = True
                    persist.append((keys[i], entry))
            if unremembered:
                assert self.cache is not None
                await asyncio.shield(self.cache.remember_many(unremembered))

    def _outcome(
        self, item_id: str, computation: Computation, timeout_s: float
    ) -> tuple[ItemResult, float]:
        """An item's result from its computation's task (done, or late), and when it ended."""
        task = computation.task
        if not task.done():
            return _failure(item_id, TimeoutError(), timeout_s), time.perf_counter()
        if task.cancelled():  # only fail_pending cancels a computation someone waits on
            reason = self.dead or "judging was cancelled"
            return ItemResult(item_id, "judge_error", error=reason), time.perf_counter()
        computed: _Computed = task.result()
        if computed.error is not None:
            return _failure(item_id, computed.error, timeout_s), computed.finished
        assert computed.judgment is not None
        final = computed.judgment
        # The first item to take the result reports its engine calls (the starter may have
        # gone away); later ones cost the engine nothing more. A copy: results are mutable.
        usage = Usage() if computation.claimed else computed.usage.copy()
        computation.claimed = True
        result = ItemResult(item_id, "ok", final.reward, final.details, usage=usage)
        return result, computed.finished

    async def _compute(self, judge: Judge, item: JudgeItem, key: str, caching: bool) -> _Computed:
        """One item's judgment, in the computation's own task: the engine calls it makes are
        its usage; an engine death cancels it (``fail_pending``)."""
        # The item's images ride beside its prompts (engines.images), as its usage does.
        with measure() as usage, providing(item.images):
            try:
                final = shape(judge.rubric, await judge.judge(item, self.engine))
            except Exception as exc:  # a status for every item waiting on it
                return _Computed(None, exc, usage, time.perf_counter())
            if caching:
                # In memory before the in-flight entry leaves, so the same item in a request
                # that comes later is a hit, not a second judgment; the backend write waits
                # for the request's one batch.
                assert self.cache is not None
                entry = CachedResult(final.reward, final.details)
                await self.cache.remember_many([(key, entry)])
            return _Computed(final, None, usage, time.perf_counter())

    def _count(
        self, judge: Judge, done: Sequence[ItemResult | None], elapsed: Sequence[float]
    ) -> None:
        """A request's items (those with a result: a cancelled request has some without) in
        the metrics: one update per status, not per item."""
        if self.metrics is None:
            return
        results = [result for result in done if result is not None]
        seconds = [s for result, s in zip(done, elapsed, strict=True) if result is not None]
        rubric = judge.rubric
        label = self.metrics.rubric_label(rubric.name, rubric.version)
        for status, n in Counter(result.status for result in results).items():
            self.metrics.items.labels(label, rubric.mode, status).inc(n)
            if status != "ok":
                self.metrics.errors.labels(status).inc(n)
        latency = self.metrics.item_latency.labels(rubric.mode)
        for second in seconds:
            latency.observe(second)
        if hits := sum(result.cached for result in results):
            self.metrics.cache_hits.inc(hits)


@dataclass(frozen=True)
class _Computed:
    """What a computation ends with: a judgment or the exception that stands for its status."""

    judgment: Judgment | None
    error: Exception | None
    usage: Usage
    finished: float
    """``time.perf_counter()`` when it ended."""


def _failure(item_id: str, exc: Exception, timeout_s: float) -> ItemResult:
    """The status an item's exception stands for: never a reward."""
    if isinstance(exc, InvalidItemError | PromptTooLongError):
        return ItemResult(item_id, "invalid_input", error=str(exc))
    if isinstance(exc, TimeoutError):
        return ItemResult(item_id, "timeout", error=f"not judged within {timeout_s:g} s")
    if isinstance(exc, JudgeFailure | EngineError):
        return ItemResult(item_id, "judge_error", error=str(exc))
    # A bug in a judge must fail its item, not the batch.
    log.error("judge crashed on item %s", item_id, exc_info=exc)
    return ItemResult(item_id, "judge_error", error=f"{type(exc).__name__}: {exc}")
