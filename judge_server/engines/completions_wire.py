"""Reading vLLM's ``/v1/completions`` answers: choices, logprobs, usage and error messages.

The OpenAI completions format with vLLM's extensions (``return_tokens_as_token_ids``,
``prompt_logprobs``, ``usage.prompt_tokens_details``); ``remote``'s docstring maps them onto
the engine's primitives. A malformed answer raises ``EngineError``.
"""

from __future__ import annotations

import math
import re
from typing import Any

import httpx

from judge_server.engines.base import EngineError

TOKEN_ID_PREFIX = "token_id:"  # vLLM's return_tokens_as_token_ids naming
OPENAI_LOGPROB_FLOOR = -9999.0  # vLLM serialises -inf as this (OpenAI's convention)
CONTEXT_LIMIT = re.compile(r"maximum context length is (\d+)")
"""The limit in vLLM's refusal of a prompt too long for the context."""


def logprob(value: Any) -> float:
    lp = float(value)
    return -math.inf if lp <= OPENAI_LOGPROB_FLOOR else lp


def error_message(resp: httpx.Response) -> str:
    """The message of an error answer (OpenAI's ``{"error": {"message"}}`` or a bare one)."""
    try:
        body = resp.json()
    except ValueError:
        return resp.text[:500]
    if isinstance(body, dict):
        err = body.get("error", body)
        if isinstance(err, dict) and "message" in err:
            return str(err["message"])
        if isinstance(body.get("message"), str):
            return str(body["message"])
    return resp.text[:500]


def first_choice(body: dict[str, Any]) -> dict[str, Any]:
    choices = body.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        raise EngineError("the server's answer has no choices")
    return choices[0]


def step_logprobs(choice: dict[str, Any]) -> tuple[dict[int, float], dict[str, float]]:
    """The first generated position's logprobs: by token id (``token_id:N``) and by text."""
    lp = choice.get("logprobs")
    if not isinstance(lp, dict):
        raise EngineError("the server's answer has no logprobs")
    by_id: dict[int, float] = {}
    by_text: dict[str, float] = {}

    def add(key: str, value: Any) -> None:
        if value is None:
            return
        if key.startswith(TOKEN_ID_PREFIX) and key[len(TOKEN_ID_PREFIX) :].isdigit():
            by_id[int(key[len(TOKEN_ID_PREFIX) :])] = logprob(value)
        else:
            by_text[key] = logprob(value)

    tops = lp.get("top_logprobs") or []
    if tops and isinstance(tops[0], dict):
        for key, value in tops[0].items():
            add(str(key), value)
    tokens, values = lp.get("tokens") or [], lp.get("token_logprobs") or []
    if tokens and values:  # the sampled token, in case the top list left it out
        add(str(tokens[0]), values[0])
    return by_id, by_text


def cached_tokens(body: dict[str, Any]) -> int:
    """Prefix-cache hits (0 when the server does not report them)."""
    usage = body.get("usage")
    details = usage.get("prompt_tokens_details") if isinstance(usage, dict) else None
    cached = details.get("cached_tokens") if isinstance(details, dict) else None
    return int(cached) if isinstance(cached, int) else 0
