"""Assemble a ``JudgeService`` from the settings: the one place that wires the parts together.

Anything not passed in is built from the settings (the engine, the reward models, the rubric
registry loaded from the rubrics directory, the result cache), so the server, the command-line
tools and the tests get the same service, and a test can swap one part at its seam.
"""

from __future__ import annotations

import logging

from judge_server.cache import ResultCache, build_cache
from judge_server.engines.base import JudgeEngine
from judge_server.engines.factory import build_engine, build_reward_models
from judge_server.engines.reward_models import RewardModels
from judge_server.judges.modes import parse_rubric
from judge_server.metrics import Metrics
from judge_server.rubrics.registry import LoadReport, RubricRegistry
from judge_server.rubrics.shared import SharedRubrics
from judge_server.rubrics.store import open_store
from judge_server.service.collectors import CacheCollector, ModelCollector
from judge_server.service.judge_service import JudgeService
from judge_server.settings import Settings

log = logging.getLogger(__name__)


def load_registry(settings: Settings) -> tuple[RubricRegistry, LoadReport]:
    registry = RubricRegistry(parse_rubric)
    report = registry.load_dir(settings.rubrics_dir)  # it logs each refused file
    log.info("rubrics loaded from %s: %s", settings.rubrics_dir, ", ".join(report.loaded))
    return registry, report


def build_service(
    settings: Settings,
    *,
    engine: JudgeEngine | None = None,
    reward_models: RewardModels | None = None,
    registry: RubricRegistry | None = None,
    metrics: Metrics | None = None,
    with_cache: bool = True,
) -> JudgeService:
    """``with_cache=False`` for offline tools that must compute fresh results."""
    if registry is None:
        registry, _ = load_registry(settings)
    engine = engine if engine is not None else build_engine(settings)
    reward_models = reward_models if reward_models is not None else build_reward_models(settings)
    cache = build_settings_cache(settings) if with_cache else None
    metrics = metrics if metrics is not None else Metrics()
    shared = None
    if settings.rubric_store:  # the directory just loaded is its seed
        store = open_store(settings.rubric_store, registry.history_size)
        shared = SharedRubrics(registry, store, parse_rubric, metrics, settings.max_rubrics)
    service = JudgeService(
        settings,
        engine,
        registry,
        reward_models=reward_models,
        cache=cache,
        metrics=metrics,
        shared_rubrics=shared,
    )
    service.metrics.observe("cache", CacheCollector(cache, service.scorer.inflight))
    service.metrics.observe("models", ModelCollector(engine, reward_models))
    return service


def build_settings_cache(settings: Settings) -> ResultCache | None:
    """The result cache the settings describe (its keys carry the models' content identity:
    ``JudgeService.model_revisions``)."""
    return build_cache(
        settings.cache_backend,
        path=settings.results_db,
        redis_url=settings.redis_url,
        memory_entries=settings.cache_memory_entries,
        max_entries=settings.cache_max_entries,
        ttl_s=settings.cache_ttl_s or None,
    )
