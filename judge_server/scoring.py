"""Score a batch of items with one rubric: one result per item, in order, each with a status.

This is where failures become statuses, never numbers: an item the rubric cannot take is
``invalid_input``, a judge that produced no verdict is ``judge_error``, a late one is ``timeout``;
in every such case the reward is None. One item's failure never touches the others.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from judge_server.engines.base import EngineError, JudgeEngine, PromptTooLongError
from judge_server.judges import InvalidItemError, Judge, JudgeFailure, JudgeItem
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


class Scorer:
    def __init__(self, engine: JudgeEngine, metrics: Metrics | None = None) -> None:
        self.engine = engine
        self.metrics = metrics

    async def score(
        self, judge: Judge, items: Sequence[JudgeItem], *, timeout_s: float
    ) -> list[ItemResult]:
        """Score every item with one judge (built once per request, so one rubric version)."""
        return list(await asyncio.gather(*(self._one(judge, item, timeout_s) for item in items)))

    async def _one(self, judge: Judge, item: JudgeItem, timeout_s: float) -> ItemResult:
        rubric = judge.rubric
        started = time.perf_counter()
        try:
            judge.validate(item)
            judgment = await asyncio.wait_for(judge.judge(item, self.engine), timeout_s)
            details = judgment.details
            reward = rubric.shaping.apply(judgment.reward)
            if rubric.shaping.kind != "none":
                details = {**details, "unshaped_reward": judgment.reward}
            result = ItemResult(item.id, "ok", reward, details)
        except (InvalidItemError, PromptTooLongError) as exc:
            result = ItemResult(item.id, "invalid_input", error=str(exc))
        except TimeoutError:
            result = ItemResult(item.id, "timeout", error=f"not judged within {timeout_s:g} s")
        except (JudgeFailure, EngineError) as exc:
            result = ItemResult(item.id, "judge_error", error=str(exc))
        except Exception as exc:  # a bug in a judge must fail its item, not the batch
            log.exception("judge crashed on item %s", item.id)
            result = ItemResult(item.id, "judge_error", error=f"{type(exc).__name__}: {exc}")
        if self.metrics is not None:
            self.metrics.items.labels(rubric.name, rubric.mode, result.status).inc()
            self.metrics.item_latency.labels(rubric.mode).observe(time.perf_counter() - started)
            if result.status != "ok":
                self.metrics.errors.labels(result.status).inc()
        return result
