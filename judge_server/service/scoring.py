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
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from judge_server.cache import CachedResult, InFlight, ResultCache, cache_key, item_fingerprint
from judge_server.engines.base import EngineError, JudgeEngine, PromptTooLongError
from judge_server.engines.usage import Usage, measure
from judge_server.judges import InvalidItemError, Judge, JudgeFailure, JudgeItem
from judge_server.judges.base import shape
from judge_server.judges.workers import check_lane
from judge_server.metrics import Metrics

log = logging.getLogger(__name__)

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
    """The engine calls judging this item made (none for a cache hit or a shared result)."""


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
        self._running: set[asyncio.Task[Any]] = set()
        # Settings that change the engine's outputs belong in every cache key.
        self.engine_fingerprint = dict(engine_fingerprint or {})
        # The models' content identity, read at every key: known once the engines have started.
        self.models = models or (lambda: {"judge": engine.model_revision})

    async def score(
        self, judge: Judge, items: Sequence[ScoreInput], *, timeout_s: float, use_cache: bool = True
    ) -> list[ItemResult]:
        """Score every item with one judge (built once per request, so one rubric version).
        The request's CPU-bound checks share the check workers fairly with other requests'."""
        with check_lane():
            return list(
                await asyncio.gather(
                    *(self._one(judge, item, timeout_s, use_cache) for item in items)
                )
            )

    def key(self, judge: Judge, item: JudgeItem) -> str:
        return cache_key(
            model_id=self.engine.model_id,
            models=self.models(),
            engine_fingerprint=self.engine_fingerprint,
            rubric_version=judge.identity(),
            mode=judge.rubric.mode,
            item=self._fingerprint(item),
        )

    @staticmethod
    def _fingerprint(item: JudgeItem) -> dict[str, object]:
        fingerprint = item_fingerprint(item.prompt, item.response, item.reference, item.metadata)
        if item.criteria is not None:  # absent otherwise, so keys of plain items are unchanged
            fingerprint["criteria"] = [c.model_dump(mode="json") for c in item.criteria]
        return fingerprint

    async def _one(
        self, judge: Judge, item: ScoreInput, timeout_s: float, use_cache: bool
    ) -> ItemResult:
        started = time.perf_counter()
        if isinstance(item, Rejected):
            result = ItemResult(item.id, "invalid_input", error=item.reason)
        else:
            result = await self._judge(judge, item, timeout_s, use_cache)
        self._count(judge, result, time.perf_counter() - started)
        return result

    def fail_pending(self, reason: str) -> None:
        """The engine died: every item being judged ends now as ``judge_error`` (an engine
        call that would hang on the dead engine is cancelled), and so does every later one."""
        self.dead = reason
        for task in list(self._running):
            task.cancel(reason)

    async def _judge(
        self, judge: Judge, item: JudgeItem, timeout_s: float, use_cache: bool
    ) -> ItemResult:
        if self.dead is not None:
            return ItemResult(item.id, "judge_error", error=self.dead)
        task = asyncio.current_task()
        if task is None:  # pragma: no cover (always run inside a task)
            return await self._judge_now(judge, item, timeout_s, use_cache)
        self._running.add(task)
        try:
            return await self._judge_now(judge, item, timeout_s, use_cache)
        except asyncio.CancelledError:
            if self.dead is None:  # a client disconnect or a shutdown: not ours to swallow
                raise
            task.uncancel()
            return ItemResult(item.id, "judge_error", error=self.dead)
        finally:
            self._running.discard(task)

    async def _judge_now(
        self, judge: Judge, item: JudgeItem, timeout_s: float, use_cache: bool
    ) -> ItemResult:
        with measure() as usage:
            result = await self._judge_measured(judge, item, timeout_s, use_cache)
        # A copy: a computation this item started may outlive it (shared with an identical item).
        result.usage = replace(usage)
        return result

    async def _judge_measured(
        self, judge: Judge, item: JudgeItem, timeout_s: float, use_cache: bool
    ) -> ItemResult:
        rubric = judge.rubric
        try:
            judge.check_criteria(item)
            judge.validate(item)
            key = self.key(judge, item)
            hit = await self.cache.get(key) if (self.cache and use_cache) else None
            if hit is not None:
                result = ItemResult(item.id, "ok", hit.reward, hit.details, cached=True)
            else:
                judgment, _shared = await asyncio.wait_for(
                    self.inflight.run(key, lambda: judge.judge(item, self.engine)), timeout_s
                )
                final = shape(rubric, judgment)
                result = ItemResult(item.id, "ok", final.reward, final.details)
                if self.cache is not None and use_cache:
                    await self.cache.put(key, CachedResult(final.reward, final.details))
        except (InvalidItemError, PromptTooLongError) as exc:
            result = ItemResult(item.id, "invalid_input", error=str(exc))
        except TimeoutError:
            result = ItemResult(item.id, "timeout", error=f"not judged within {timeout_s:g} s")
        except (JudgeFailure, EngineError) as exc:
            result = ItemResult(item.id, "judge_error", error=str(exc))
        except Exception as exc:  # a bug in a judge must fail its item, not the batch
            log.exception("judge crashed on item %s", item.id)
            result = ItemResult(item.id, "judge_error", error=f"{type(exc).__name__}: {exc}")
        return result

    def _count(self, judge: Judge, result: ItemResult, seconds: float) -> None:
        if self.metrics is None:
            return
        rubric = judge.rubric
        label = self.metrics.rubric_label(rubric.name, rubric.version)
        self.metrics.items.labels(label, rubric.mode, result.status).inc()
        self.metrics.item_latency.labels(rubric.mode).observe(seconds)
        if result.cached:
            self.metrics.cache_hits.inc()
        if result.status != "ok":
            self.metrics.errors.labels(result.status).inc()
