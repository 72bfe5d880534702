"""Liveness, readiness and Prometheus metrics."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST

from judge_server.api.deps import StateDep

router = APIRouter(tags=["health"])


@router.get("/health")
async def health() -> dict[str, str]:
    """The process is alive (the engine may still be loading)."""
    return {"status": "ok"}


@router.get("/ready")
async def ready(state: StateDep) -> JSONResponse:
    """200 once the engine is up and rubrics are loaded; 503 with the reason before that."""
    body = {
        "ready": state.ready,
        "engine": state.engine.ready,
        "model": getattr(state.engine, "model_id", None),
        "rubrics": len(state.registry.current),
        "error": state.engine_error,
    }
    return JSONResponse(body, status_code=200 if state.ready else 503)


@router.get("/metrics")
async def metrics(state: StateDep) -> Response:
    m = state.metrics
    stats = state.engine.stats
    m.engine_requests.set(stats.requests)
    m.engine_prompt_tokens.set(stats.prompt_tokens)
    m.engine_cached_tokens.set(stats.cached_prompt_tokens)
    m.rubrics_loaded.set(len(state.registry.current))
    m.ready.set(1 if state.ready else 0)
    return Response(m.render(), media_type=CONTENT_TYPE_LATEST)
