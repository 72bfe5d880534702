"""Typed application state, filled by the lifespan and read by routes through ``deps``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from judge_server.admission import Admission
from judge_server.cache import ResultCache
from judge_server.engines.base import JudgeEngine
from judge_server.metrics import Metrics
from judge_server.reward_models import RewardModels
from judge_server.rubrics.registry import RubricRegistry
from judge_server.scoring import Scorer
from judge_server.settings import Settings


@dataclass
class AppState:
    settings: Settings
    engine: JudgeEngine
    registry: RubricRegistry
    metrics: Metrics
    scorer: Scorer
    admission: Admission
    cache: ResultCache | None = None
    #: scalar reward models (reward_model rubrics), started with the engine
    reward_models: RewardModels = field(default_factory=RewardModels)
    engine_error: str | None = None
    #: called when the engine cannot start or dies; the CLI uses it to stop the server rather
    #: than answer 503s forever
    on_fatal: Callable[[], None] | None = field(default=None, repr=False)

    @property
    def ready(self) -> bool:
        return (
            self.engine.ready
            and self.reward_models.ready
            and bool(self.registry.current)
            and self.engine_error is None
        )
