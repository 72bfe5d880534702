"""Liveness, readiness and Prometheus metrics."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST

from judge_server.api.deps import ServiceDep

router = APIRouter(tags=["health"])


@router.get("/health")
async def health() -> dict[str, str]:
    """The process is alive (the engine may still be loading)."""
    return {"status": "ok"}


@router.get("/ready")
async def ready(service: ServiceDep) -> JSONResponse:
    """200 once the engine is up and rubrics are loaded; 503 with the reason before that."""
    body = {
        "ready": service.ready,
        "engine": service.engine.ready,
        "model": service.engine.model_id,
        "rubrics": len(service.registry.current),
        "error": service.engine_error,
    }
    return JSONResponse(body, status_code=200 if service.ready else 503)


@router.get("/metrics")
async def metrics(service: ServiceDep) -> Response:
    m = service.metrics
    stats = service.engine.stats
    m.engine_requests.set(stats.requests)
    m.engine_prompt_tokens.set(stats.prompt_tokens)
    m.engine_cached_tokens.set(stats.cached_prompt_tokens)
    m.rubrics_loaded.set(len(service.registry.current))
    m.ready.set(1 if service.ready else 0)
    return Response(m.render(), media_type=CONTENT_TYPE_LATEST)
