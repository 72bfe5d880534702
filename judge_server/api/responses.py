"""The answers each route documents in OpenAPI: every status it can give, each error with the
one envelope as its schema, so a generated client (or schemathesis) knows them all.

A route lists the groups that apply to it: what its body, its credentials, its rubric and its
work can fail with. ``tests/unit/test_openapi.py`` checks the document against the routes.
"""

from __future__ import annotations

from typing import Any

from judge_server.api.protocol import ErrorEnvelope

DESCRIPTIONS: dict[int, str] = {
    400: "invalid_json: the body is not JSON, not UTF-8, empty or unreadable.",
    401: "unauthorized: this server needs an API key (or the admin token), missing or wrong.",
    403: "admin_token_required (no admin token configured) or forbidden (a scoring key).",
    404: "rubric_not_found: no such rubric or version.",
    409: "rubrics_read_only: the rubrics directory cannot be written.",
    413: "body_too_large (JUDGE_MAX_BODY_BYTES, before parsing), too_many_items or "
    "too_many_engine_calls.",
    415: "invalid_json: the body is not declared as application/json.",
    422: "invalid_request or invalid_rubric (the message names the field and the limit); on a "
    "trainer route with on_failure=error, invalid_input; invalid_generation_request (a "
    "generation prompt the judge model cannot take).",
    429: "queue_full: the engine-call bound is reached; retry after Retry-After seconds.",
    499: "client_closed_request: the client went away and its work was cancelled.",
    502: "judge_error: the judge model wrote a rubric that does not validate (cut off, not "
    "JSON, or criteria the rubric loader refuses); nothing was saved.",
    503: "not_ready, draining or engine_failed (retry, with Retry-After where it helps); "
    "judge_failed on a trainer route with on_failure=error.",
    504: "timeout: the judge model wrote no rubric within the request's timeout_s.",
}

#: a JSON body: unreadable, too large, of another type, or not the request's schema
BODY = (400, 413, 415, 422)
#: scoring: the body, a key, the rubric, the bounds, the queue, the client and the engine
SCORING = (*BODY, 401, 404, 429, 499, 503)
#: a rubric change: the body, the admin token, a read-only directory
RUBRIC_WRITE = (*BODY, 401, 403, 409, 503)
#: rubric generation: the body, a key, the base rubric, the queue, the client, the judge's own
#: output, the engine and the deadline
GENERATION = (*BODY, 401, 404, 429, 499, 502, 503, 504)


def errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    return {
        code: {"model": ErrorEnvelope, "description": DESCRIPTIONS[code]} for code in sorted(codes)
    }
