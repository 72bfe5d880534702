"""The app factory. The engine is injected: the CLI passes the vLLM adapter, unit tests a fake.

The lifespan owns the engine's lifetime. The engine loads in the background so that /health
answers at once and /ready reports progress; scoring answers 503 (with Retry-After) until then.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from fastapi import FastAPI

from judge_server import __version__
from judge_server.admission import Admission
from judge_server.api import routes_group, routes_health, routes_rubrics, routes_score
from judge_server.api.errors import install_error_handlers
from judge_server.api.middleware import RequestMetrics
from judge_server.api.state import AppState
from judge_server.cache import build_cache
from judge_server.engines.base import JudgeEngine
from judge_server.metrics import Metrics
from judge_server.reward_models import RewardModels
from judge_server.rubrics.registry import RubricRegistry
from judge_server.rubrics.watcher import watch_rubrics
from judge_server.scoring import Scorer
from judge_server.settings import Settings

log = logging.getLogger(__name__)


async def _start_engine(state: AppState) -> None:
    started = time.monotonic()
    try:
        if not state.engine.ready:
            await state.engine.start()
        await state.reward_models.start()
    except Exception as exc:
        state.engine_error = f"engine failed to start: {type(exc).__name__}: {exc}"
        log.exception("judge engine failed to start")
        if state.on_fatal is not None:
            state.on_fatal()
        return
    log.info("judge engine up in %.1f s", time.monotonic() - started)


def create_app(
    settings: Settings,
    engine: JudgeEngine,
    *,
    registry: RubricRegistry | None = None,
    on_fatal: Callable[[], None] | None = None,
    reward_models: RewardModels | None = None,
) -> FastAPI:
    metrics = Metrics()
    cache = build_cache(
        settings.cache_backend,
        path=settings.results_db,
        redis_url=settings.redis_url,
        memory_entries=settings.cache_memory_entries,
    )
    state = AppState(
        settings=settings,
        engine=engine,
        registry=registry or RubricRegistry(),
        metrics=metrics,
        scorer=Scorer(
            engine, metrics, cache=cache, engine_fingerprint=settings.engine_fingerprint()
        ),
        admission=Admission(settings.max_queue_items),
        cache=cache,
        reward_models=reward_models or RewardModels(),
        on_fatal=on_fatal,
    )

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if not state.registry.current:
            report = state.registry.load_dir(settings.rubrics_dir)
            log.info("rubrics loaded from %s: %s", settings.rubrics_dir, ", ".join(report.loaded))
        starter = (
            None
            if engine.ready and state.reward_models.ready
            else asyncio.create_task(_start_engine(state))
        )
        watcher = (
            asyncio.create_task(watch_rubrics(state.registry, settings.rubrics_dir, metrics))
            if settings.watch_rubrics
            else None
        )
        try:
            yield
        finally:
            if watcher is not None:
                watcher.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await watcher
            if starter is not None and not starter.done():
                starter.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await starter
            await engine.shutdown()
            await state.reward_models.shutdown()
            if cache is not None:
                await cache.close()

    app = FastAPI(title="judge-server", version=__version__, lifespan=lifespan)
    app.state.judge = state
    install_error_handlers(app)
    app.include_router(routes_health.router)
    app.include_router(routes_rubrics.router)
    app.include_router(routes_score.router)
    app.include_router(routes_group.router)

    app.add_middleware(RequestMetrics, metrics=metrics)

    return app
