"""Thin Python client for judge-server, an LLM-as-judge reward HTTP server."""

from ._client import AsyncJudgeClient, JudgeClient
from ._config import RetryPolicy, Timeout
from ._exceptions import (
    APIConnectionError,
    APIResponseValidationError,
    APIStatusError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    ConflictError,
    InternalServerError,
    JudgeClientError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    UnprocessableEntityError,
)
from ._models import ItemResult, Message, RubricRef, ScoreItem, ScoreResponse, Usage
from ._version import __version__

__all__ = [
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
