"""Liveness, readiness and Prometheus metrics.

``/health`` (liveness) is 503 only when the engine failed or died: the process is about to exit
and must be restarted. With a shared rubric store it says whether the last sync reached it; an
unreachable store is not a 503 (scoring goes on with the versions held here). ``/ready``
(readiness) is 503 while starting, draining or dead. Every 503 carries the error envelope with
the reason; ``/ready`` adds what it is waiting for.
"""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST

from judge_server.api.auth import MetricsAccess
from judge_server.api.deps import ServiceDep
from judge_server.api.protocol import HealthOut, ReadyOut, RubricStoreHealth
from judge_server.api.responses import errors
from judge_server.service import JudgeService

router = APIRouter(tags=["health"])

STORE_BEHIND = (
    "not in sync with the shared rubric store: serving the last known versions "
    "(the server log says why)"
)


def _not_ready(service: JudgeService) -> tuple[str, str]:
    """(type, message) of why the service is not ready."""
    if service.engine_error is not None:
        return "engine_failed", service.engine_error
    if service.draining:
        return "draining", "the server is shutting down"
    return "not_ready", service.not_ready_reason


@router.get("/health", responses={200: {"model": HealthOut}, **errors(503)})
async def health(service: ServiceDep) -> JSONResponse:
    """The process is alive and its engine has not failed (it may still be loading)."""
    if service.engine_error is not None:
        error = {"type": "engine_failed", "message": service.engine_error, "param": None}
        return JSONResponse({"error": error}, status_code=503)
    body: dict[str, object] = {"status": "draining" if service.draining else "ok"}
    if (shared := service.shared_rubrics) is not None:
        # /health is open: the reason (it may name the Redis host) goes to the log, not here
        behind = None if shared.ok else STORE_BEHIND
        store = RubricStoreHealth(ok=shared.ok, error=behind, generation=shared.generation)
        body["rubric_store"] = store.model_dump()
    return JSONResponse(body)


@router.get(
    "/ready",
    responses={
        200: {"model": ReadyOut},
        503: {"model": ReadyOut, "description": "Not ready; ``error`` says why."},
    },
)
async def ready(service: ServiceDep) -> JSONResponse:
    """200 once the engine is up and rubrics are loaded; 503 with the reason otherwise."""
    body: dict[str, object] = {
        "ready": service.ready,
        "engine": service.engine.ready,
        "model": service.engine.model_id,
        "rubrics": len(service.registry.current),
        "error": None,
    }
    if service.ready:
        return JSONResponse(body)
    kind, message = _not_ready(service)
    body["error"] = {"type": kind, "message": message, "param": None}
    return JSONResponse(body, status_code=503)


@router.get(
    "/metrics",
    dependencies=[MetricsAccess],
    response_class=PlainTextResponse,
    responses={200: {"description": "Prometheus text format."}, **errors(401)},
)
async def metrics(service: ServiceDep) -> Response:
    m = service.metrics
    stats = service.engine.stats
    m.engine_requests.set(stats.requests)
    m.engine_prompt_tokens.set(stats.prompt_tokens)
    m.engine_cached_tokens.set(stats.cached_prompt_tokens)
    m.rubrics_loaded.set(len(service.registry.current))
    m.ready.set(1 if service.ready else 0)
    return Response(m.render(), media_type=CONTENT_TYPE_LATEST)
