"""Pins the public surface: changing it must be a deliberate edit of this list."""

from __future__ import annotations

import judge_client

EXPECTED = [
    "APIConnectionError",
    "APIResponseValidationError",
    "APIStatusError",
    "APITimeoutError",
    "AsyncJudgeClient",
    "AuthenticationError",
    "BadRequestError",
    "ConflictError",
    "InternalServerError",
    "ItemResult",
    "JudgeClient",
    "JudgeClientError",
    "Message",
    "NotFoundError",
    "PermissionDeniedError",
    "RateLimitError",
    "RetryPolicy",
    "RubricRef",
    "ScoreItem",
    "ScoreResponse",
    "Timeout",
    "UnprocessableEntityError",
    "Usage",
    "__version__",
]


def test_all_is_pinned() -> None:
    assert sorted(judge_client.__all__) == EXPECTED


def test_every_exported_name_exists() -> None:
    for name in judge_client.__all__:
        assert hasattr(judge_client, name), name


def test_exception_tree() -> None:
    jc = judge_client
    assert issubclass(jc.APITimeoutError, jc.APIConnectionError)
    assert issubclass(jc.APIConnectionError, jc.JudgeClientError)
    assert issubclass(jc.APIResponseValidationError, jc.JudgeClientError)
    for cls in (
        jc.BadRequestError,
        jc.AuthenticationError,
        jc.PermissionDeniedError,
        jc.NotFoundError,
        jc.ConflictError,
        jc.UnprocessableEntityError,
        jc.RateLimitError,
        jc.InternalServerError,
    ):
        assert issubclass(cls, jc.APIStatusError)
    assert issubclass(jc.APIStatusError, jc.JudgeClientError)
