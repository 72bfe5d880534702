"""The app factory and the lifespan that owns everything the app serves with.

The factory only declares the app (routes, error handlers, middleware); the engine is injected
(the CLI passes the vLLM adapter, unit tests a fake). The lifespan builds the service (rubric
registry, result cache, scorer, admission), starts the engine in the background so that /health
answers at once and /ready reports progress, then watches it (an engine that dies ends the
process through ``on_fatal``), runs the rubric watcher beside it in one task group, and yields
typed state that routes read through ``deps``. On the way out it stops the
background tasks and closes the engine, the reward models and the cache.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from fastapi import FastAPI

from judge_server import __version__
from judge_server.api import (
    routes_generate,
    routes_group,
    routes_health,
    routes_openrlhf,
    routes_rubrics,
    routes_score,
    routes_slime,
)
from judge_server.api.auth import warm_key_ids
from judge_server.api.body_guard import BodyGuard
from judge_server.api.errors import install_error_handlers
from judge_server.api.middleware import RequestMetrics
from judge_server.api.state import AppState
from judge_server.engines.base import JudgeEngine
from judge_server.engines.reward_models import RewardModels
from judge_server.metrics import Metrics
from judge_server.rubrics.registry import RubricRegistry
from judge_server.rubrics.watcher import keep_watching
from judge_server.service import JudgeService, build_service
from judge_server.settings import Settings

log = logging.getLogger(__name__)

FatalHook = Callable[[str], None]
"""Called once with the reason when the engine cannot start or dies at run time; the CLI stops
the server with it and exits non-zero rather than answer 503s forever."""

#: seconds between two checks of a started engine's health
WATCH_INTERVAL_S = 1.0


class Drain:
    """The process's handle on the app for a graceful stop: ``serve`` calls ``begin`` on
    SIGTERM and stops the server once ``idle`` (or its grace period is over)."""

    def __init__(self) -> None:
        self.service: JudgeService | None = None  # set by the lifespan
        self.requested = False

    def begin(self) -> None:
        self.requested = True
        if self.service is not None:
            self.service.begin_drain()

    @property
    def idle(self) -> bool:
        return self.service is None or self.service.idle


def _dead_reason(service: JudgeService) -> str | None:
    try:
        return service.dead_reason()
    except Exception as exc:  # a health check that breaks cannot vouch for the engine
        log.exception("engine health check failed")
        return f"engine health check failed: {type(exc).__name__}: {exc}"


async def _run_engines(
    service: JudgeService, on_fatal: FatalHook | None, interval_s: float
) -> None:
    """Start the engines, then watch them: one that dies fails the work in flight and ends
    the process (through ``on_fatal``) so an orchestrator restarts it."""
    try:
        await service.start()
    except Exception:
        log.exception("judge engine failed to start")
        if on_fatal is not None:
            on_fatal(service.engine_error or "engine failed to start")
        return
    while (reason := _dead_reason(service)) is None:
        await asyncio.sleep(interval_s)
    service.engine_died(reason)
    if on_fatal is not None:
        on_fatal(service.engine_error or reason)


def create_app(
    settings: Settings,
    engine: JudgeEngine,
    *,
    registry: RubricRegistry | None = None,
    reward_models: RewardModels | None = None,
    on_fatal: FatalHook | None = None,
    drain: Drain | None = None,
    watch_interval_s: float = WATCH_INTERVAL_S,
) -> FastAPI:
    """``registry``/``reward_models`` default to what the settings describe; ``drain`` is the
    caller's handle for a graceful stop."""
    metrics = Metrics()  # here, not in the lifespan: the middleware is declared with the app

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[AppState]:
        service = build_service(
            settings,
            engine=engine,
            reward_models=reward_models,
            registry=registry,
            metrics=metrics,
        )
        await asyncio.to_thread(warm_key_ids, settings)  # scrypt: never on the event loop
        stop = asyncio.Event()
        if drain is not None:
            drain.service = service
            if drain.requested:  # SIGTERM while the app was starting
                service.begin_drain()
        try:
            # Neither task raises (each reports its own failures): an exception here would
            # cancel the lifespan and leave uvicorn serving with the service closed.
            async with asyncio.TaskGroup() as background:
                starter = background.create_task(
                    _run_engines(service, on_fatal, watch_interval_s), name="engine"
                )
                if service.shared_rubrics is not None:  # the store, not the directory, changes
                    background.create_task(
                        service.shared_rubrics.keep_syncing(stop), name="rubric-store"
                    )
                elif settings.watch_rubrics:
                    background.create_task(
                        keep_watching(service.registry, settings.rubrics_dir, metrics, stop),
                        name="rubric-watcher",
                    )
                try:
                    yield {"service": service}
                finally:
                    stop.set()
                    starter.cancel()
        finally:
            await service.close()

    app = FastAPI(title="judge-server", version=__version__, lifespan=lifespan)
    install_error_handlers(app)
    app.include_router(routes_health.router)
    app.include_router(routes_rubrics.router)
    app.include_router(routes_generate.router)
    app.include_router(routes_score.router)
    app.include_router(routes_group.router)
    app.include_router(routes_openrlhf.router)
    app.include_router(routes_slime.router)
    # Added last is outermost: the metrics count what the body guard refuses too.
    app.add_middleware(BodyGuard, max_bytes=settings.max_body_bytes)
    app.add_middleware(RequestMetrics, metrics=metrics)
    return app
