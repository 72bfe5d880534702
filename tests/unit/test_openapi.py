"""The OpenAPI document states every status a route can answer, and a bounded schemathesis run
against the app in-process (the instant engine at the seam: fast and deterministic) finds no
server error (a 5xx other than a documented 503) and no answer outside the document: status,
content type, headers and body schema."""

from __future__ import annotations

import atexit
import shutil
import tempfile
from pathlib import Path
from typing import Any

import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, settings
from schemathesis.checks import (
    CheckContext,
    ServerError,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.generation.case import Case

from judge_server.api import create_app
from judge_server.cli.bench.instant_engine import InstantEngine
from judge_server.settings import Settings, project_rubrics_dir

ADMIN = "schemathesis-admin-token"


def build_app(rubrics: Path) -> FastAPI:
    settings = Settings(
        rubrics_dir=rubrics,
        watch_rubrics=False,
        cache_backend="memory",
        admin_token=ADMIN,
        trainer_rubric="helpfulness",
        max_body_bytes=64 * 1024,
        default_timeout_s=5,
    )
    return create_app(settings, InstantEngine())


def documented(app: FastAPI) -> dict[tuple[str, str], set[str]]:
    return {
        (method.upper(), path): set(op["responses"])
        for path, ops in app.openapi()["paths"].items()
        for method, op in ops.items()
    }


def test_every_route_documents_the_statuses_it_can_answer(tmp_path: Path) -> None:
    doc = documented(build_app(tmp_path))
    body = {"400", "413", "415", "422"}
    scoring = body | {"200", "401", "404", "429", "499", "503"}
    for route in ("/v1/score", "/v1/score/group", "/get_reward", "/slime/reward"):
        assert doc[("POST", route)] == scoring, route
    assert doc[("PUT", "/v1/rubrics/{name}")] == body | {"200", "201", "401", "403", "409", "503"}
    assert doc[("DELETE", "/v1/rubrics/{name}")] == {"204", "401", "403", "404", "409", "422",
                                                      "503"}  # fmt: skip
    assert doc[("GET", "/v1/rubrics/{ref}")] == {"200", "401", "404", "422"}
    assert doc[("GET", "/v1/rubrics")] == {"200", "401"}
    assert doc[("POST", "/v1/rubrics/generate")] == body | {"200", "401", "404", "429", "499",
                                                           "502", "503", "504"}  # fmt: skip
    assert doc[("GET", "/health")] == doc[("GET", "/ready")] == {"200", "503"}
    assert doc[("GET", "/metrics")] == {"200", "401"}
    schemas = build_app(tmp_path).openapi()["components"]["schemas"]
    assert "HTTPValidationError" not in schemas  # every 422 is the one envelope


def schema_of_app() -> Any:
    """The app's own document, its calls sent to the app in-process (its lifespan starts at the
    first call). Rubric changes land in a copy of the rubrics, removed at exit. Built at import:
    schemathesis's lazy fixture loader does not run on this pytest."""
    rubrics = Path(tempfile.mkdtemp(prefix="judge-schemathesis-"))
    atexit.register(shutil.rmtree, rubrics, ignore_errors=True)
    shutil.copytree(project_rubrics_dir(), rubrics, dirs_exist_ok=True)
    app = build_app(rubrics)
    loaded = schemathesis.openapi.from_dict(app.openapi())
    loaded.app = app
    return loaded


def no_undocumented_server_error(ctx: CheckContext, response: Any, case: Case) -> bool | None:
    """5xx is a bug, except a 503 the route documents (not ready, draining, judge_failed)."""
    if response.status_code >= 500 and response.status_code != 503:
        raise ServerError(operation=case.operation.label, status_code=response.status_code)
    return None


CHECKS = [
    no_undocumented_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]

schema = schema_of_app()


@schema.parametrize()
@settings(
    max_examples=25,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)
def test_the_api_answers_as_documented(case: Case) -> None:
    headers = {"Authorization": f"Bearer {ADMIN}"}
    case.call_and_validate(headers=headers, checks=CHECKS)
    # A random rubric name is a 404 before any item is read: again with a rubric that exists,
    # so the generated items reach the judges.
    if isinstance(case.body, dict) and isinstance(case.body.get("rubric"), str):
        case.body["rubric"] = "pairwise" if case.path == "/v1/score/group" else "helpfulness"
        case.call_and_validate(headers=headers, checks=CHECKS)
