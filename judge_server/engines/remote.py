"""Remote adapter: one or more OpenAI-compatible servers (stock ``vllm serve``, SGLang) over HTTP.

The scale-out path: a fleet of replicas, each a stock vLLM server, with judge-server in front.
Prompts are rendered and tokenized HERE, with the same tokenizer the replicas serve, and sent to
``POST /v1/completions`` as lists of token ids. Tokenization therefore matches the in-process
adapter exactly, and a prompt too long for the context is refused locally, before any request.

How each primitive maps onto the completions API (vLLM's own extensions where they are exact):

- ``next_token_logprobs``: ``max_tokens=1, temperature=0, logprob_token_ids=[ids],
  logprobs=N, return_tokens_as_token_ids=true``. vLLM gathers the log-probabilities of exactly
  the requested ids from the full-vocabulary distribution (the same ``logprob_token_ids`` the
  in-process adapter uses; no top-20 cap, up to 128 ids) and names them ``"token_id:<id>"``, so
  they are matched by id, never by decoded text. A server without ``logprob_token_ids``
  (SGLang, older vLLM) ignores it and answers the top-``N`` alternatives instead: candidates
  among them are exact; a candidate absent from them gets ``-inf``. That is a lower bound
  chosen on purpose: giving it the N-th logprob (an upper bound) would invent probability mass
  on valid answers, while ``-inf`` keeps ``valid_mass`` honest, so a verdict none of whose tokens
  reached the top-N becomes a ``judge_error`` through ``min_valid_mass`` instead of a reward.
- ``generate``: ``max_tokens``, ``temperature``, ``stop``.
- ``continuation_logprobs``: ``prompt_logprobs=0`` over prompt+continuation; each position of
  the answer's ``prompt_logprobs`` holds the logprob of the actual prompt token, keyed by its id.
- prefix-cache hits: ``usage.prompt_tokens_details.cached_tokens`` (vLLM reports it when
  started with ``--enable-prompt-tokens-details``; 0 otherwise).

Routing: least outstanding requests over the healthy replicas (``routing.ReplicaPool``). A
background task probes every replica's ``GET /health``. A request that fails on one replica
with a connection error, a timeout or a 5xx is retried on another healthy one (at most
``max_attempts`` replicas per request); connection errors, timeouts, 502, 503 and 504 also mark
the replica down until a health check succeeds again. With no healthy replica left, requests
raise ``EngineError`` (a per-item ``judge_error``) and ``ready`` is False.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import re
from collections.abc import Sequence
from typing import Any

import httpx

from judge_server.engines.base import (
    ChatMessage,
    EngineError,
    Generation,
    JudgeEngine,
    NextTokenLogprobs,
    PromptTooLongError,
)
from judge_server.engines.routing import Replica, ReplicaPool

log = logging.getLogger(__name__)

DEFAULT_MAX_MODEL_LEN = 2048
DEFAULT_REQUEST_TIMEOUT_S = 120.0
DEFAULT_HEALTH_INTERVAL_S = 5.0
DEFAULT_TOP_LOGPROBS = 20  # vLLM's default --max-logprobs
TOKEN_ID_PREFIX = "token_id:"  # vLLM's return_tokens_as_token_ids naming
OPENAI_LOGPROB_FLOOR = -9999.0  # vLLM serialises -inf as this (OpenAI's convention)
_CONTEXT_LIMIT = re.compile(r"maximum context length is (\d+)")
_MARK_DOWN_STATUSES = frozenset({502, 503, 504})
_RETRY_STATUSES = frozenset({429})  # besides every 5xx


class _ReplicaFailed(Exception):
    """This replica could not answer; another one may."""

    def __init__(self, reason: str, *, mark_down: bool) -> None:
        super().__init__(reason)
        self.mark_down = mark_down


def _logprob(value: Any) -> float:
    lp = float(value)
    return -math.inf if lp <= OPENAI_LOGPROB_FLOOR else lp


class RemoteEngine(JudgeEngine):
    def __init__(
        self,
        base_urls: Sequence[str],
        *,
        model: str | None = None,
        tokenizer: str | None = None,
        max_model_len: int = DEFAULT_MAX_MODEL_LEN,
        api_key: str | None = None,
        request_timeout_s: float = DEFAULT_REQUEST_TIMEOUT_S,
        health_interval_s: float = DEFAULT_HEALTH_INTERVAL_S,
        max_attempts: int = 3,
        top_logprobs: int = DEFAULT_TOP_LOGPROBS,
        transport: httpx.AsyncBaseTransport | None = None,
        tokenizer_obj: Any = None,
    ) -> None:
        """
        Args:
            base_urls: the replicas, e.g. ``http://10.0.0.5:8000`` (a trailing ``/v1`` is fine).
            model: the served model name; None discovers it from ``GET /v1/models``.
            tokenizer: HF folder or id of the model the replicas serve (chat template and token
                ids are computed here); None uses the served model name.
            max_model_len: context length; lowered to the replicas' own when they report less.
            api_key: sent as ``Authorization: Bearer`` (``vllm serve --api-key``).
            request_timeout_s: per HTTP request; a timeout counts as a replica failure.
            health_interval_s: seconds between two ``GET /health`` rounds.
            max_attempts: replicas tried per request before giving up.
            top_logprobs: top-N asked for where ``logprob_token_ids`` is not supported.
            transport: an httpx transport (tests pass ``httpx.MockTransport``).
            tokenizer_obj: an already loaded tokenizer (tests); skips loading ``tokenizer``.
        """
        super().__init__()
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        self._pool = ReplicaPool(base_urls)
        self._served_model = model
        self.model_id = model or "remote (model not discovered yet)"
        self.max_model_len = max_model_len
        self._tokenizer_name = tokenizer
        self._tokenizer: Any = tokenizer_obj
        self._request_timeout_s = request_timeout_s
        self._health_interval_s = health_interval_s
        self._health_timeout_s = max(0.5, min(5.0, health_interval_s))
        self._max_attempts = max_attempts
        self._top_logprobs = top_logprobs
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._client = httpx.AsyncClient(
            transport=transport,
            headers=headers,
            timeout=httpx.Timeout(request_timeout_s, connect=min(10.0, request_timeout_s)),
            # No pool cap: a queue inside httpx would turn load into spurious timeouts; the
            # replicas' own schedulers do the queueing.
            limits=httpx.Limits(max_connections=None, max_keepalive_connections=256),
        )
        self._health_task: asyncio.Task[None] | None = None
        self._started = False

    # -- lifetime ---------------------------------------------------------------------------

    async def start(self) -> None:
        await self.check_health()
        await self._discover()
        if self._tokenizer is None:
            name = self._tokenizer_name or self._served_model
            assert name is not None  # _discover sets it or raises
            self._tokenizer = await asyncio.to_thread(self._load_tokenizer, name)
        self._health_task = asyncio.create_task(self._health_loop(), name="remote-engine-health")
        self._started = True
        log.info(
            "remote engine ready: %s on %d replica(s), %d healthy",
            self.model_id,
            len(self._pool.replicas),
            len(self._pool.healthy),
        )

    @staticmethod
    def _load_tokenizer(name: str) -> Any:
        from transformers import AutoTokenizer

        return AutoTokenizer.from_pretrained(name)

    async def shutdown(self) -> None:
        self._started = False
        if self._health_task is not None:
            self._health_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._health_task
            self._health_task = None
        await self._client.aclose()

    @property
    def ready(self) -> bool:
        return self._started and self._pool.any_healthy

    @property
    def replicas(self) -> list[Replica]:
        """The replicas and their state (url, healthy, outstanding, counters)."""
        return list(self._pool.replicas)

    # -- health -----------------------------------------------------------------------------

    async def check_health(self) -> None:
        """One round of ``GET /health`` on every replica, concurrently."""
        await asyncio.gather(*(self._probe(r) for r in self._pool.replicas))

    async def _probe(self, replica: Replica) -> None:
        try:
            resp = await self._client.get(f"{replica.url}/health", timeout=self._health_timeout_s)
        except httpx.HTTPError as exc:
            self._pool.mark_down(replica, f"health check: {type(exc).__name__}: {exc}")
            return
        if resp.status_code == 200:
            self._pool.mark_up(replica)
        else:
            self._pool.mark_down(replica, f"health check: HTTP {resp.status_code}")

    async def _health_loop(self) -> None:
        while True:
            await asyncio.sleep(self._health_interval_s)
            try:
                await self.check_health()
            except Exception:  # keep probing whatever happens; a dead loop would never recover
                log.exception("health check round failed")

    async def _discover(self) -> None:
        """The served model name and the smallest context length the replicas report."""
        cards: list[dict[str, Any]] = []
        for replica in self._pool.healthy:
            try:
                resp = await self._client.get(f"{replica.url}/v1/models")
                resp.raise_for_status()
                data = resp.json().get("data") or []
            except (httpx.HTTPError, ValueError, AttributeError) as exc:
                log.warning("GET %s/v1/models failed: %s", replica.url, exc)
                continue
            if not data:
                continue
            card = next((c for c in data if c.get("id") == self._served_model), data[0])
            if self._served_model is not None and card.get("id") != self._served_model:
                log.warning(
                    "replica %s does not list model %r (it serves %s)",
                    replica.url,
                    self._served_model,
                    [c.get("id") for c in data],
                )
            cards.append(card)
        if self._served_model is None:
            if not cards:
                raise EngineError(
                    "cannot discover the served model: no replica answered GET /v1/models "
                    f"({[(r.url, r.last_error) for r in self._pool.replicas]})"
                )
            self._served_model = str(cards[0]["id"])
        self.model_id = self._served_model
        limits = [int(c["max_model_len"]) for c in cards if c.get("max_model_len")]
        if limits and min(limits) < self.max_model_len:
            log.warning(
                "replicas accept at most %d tokens; lowering max_model_len from %d",
                min(limits),
                self.max_model_len,
            )
            self.max_model_len = min(limits)

    # -- tokenizer --------------------------------------------------------------------------

    def _tok(self) -> Any:
        if self._tokenizer is None:
            raise EngineError("engine is not started")
        return self._tokenizer

    def render_chat(
        self, messages: Sequence[ChatMessage], *, add_generation_prompt: bool = True
    ) -> str:
        text = self._tok().apply_chat_template(
            list(messages), tokenize=False, add_generation_prompt=add_generation_prompt
        )
        return str(text)

    def count_tokens(self, text: str) -> int:
        return len(self._encode(text))

    def single_token_id(self, text: str) -> int | None:
        ids = self._tok().encode(text, add_special_tokens=False)
        return int(ids[0]) if len(ids) == 1 else None

    def _encode(self, text: str) -> list[int]:
        # The chat template already holds any BOS; adding special tokens again would double it.
        return [int(t) for t in self._tok().encode(text, add_special_tokens=False)]

    # -- primitives -------------------------------------------------------------------------

    async def next_token_logprobs(
        self, prompt: str, candidates: Sequence[str]
    ) -> NextTokenLogprobs:
        ids = self.candidate_ids(candidates)
        tokens = self.check_length(self._encode(prompt), reserve=1)
        body = await self._complete(
            {
                "prompt": tokens,
                "max_tokens": 1,
                "temperature": 0.0,
                "logprobs": self._top_logprobs,
                "logprob_token_ids": sorted(set(ids.values())),
                "return_tokens_as_token_ids": True,
            },
            len(tokens),
        )
        choice = _first_choice(body)
        by_id, by_text = _step_logprobs(choice)
        logprobs: dict[str, float] = {}
        for cand, tid in ids.items():
            if tid in by_id:
                logprobs[cand] = by_id[tid]
            elif cand in by_text:  # a server that ignores return_tokens_as_token_ids
                logprobs[cand] = by_text[cand]
            else:  # not among a top-N answer: see the module docstring
                logprobs[cand] = -math.inf
        cached = _cached_tokens(body)
        self._count("next_token", len(tokens), cached)
        return NextTokenLogprobs(
            logprobs=logprobs, num_prompt_tokens=len(tokens), num_cached_tokens=cached
        )

    async def generate(
        self,
        prompt: str,
        *,
        max_tokens: int,
        temperature: float = 0.0,
        stop: Sequence[str] = (),
    ) -> Generation:
        tokens = self.check_length(self._encode(prompt), reserve=1)
        room = self.max_model_len - len(tokens)
        payload: dict[str, Any] = {
            "prompt": tokens,
            "max_tokens": max(1, min(max_tokens, room)),
            "temperature": temperature,
        }
        if stop:
            payload["stop"] = list(stop)
        body = await self._complete(payload, len(tokens))
        choice = _first_choice(body)
        cached = _cached_tokens(body)
        self._count("generate", len(tokens), cached)
        return Generation(
            text=str(choice.get("text") or ""),
            num_prompt_tokens=len(tokens),
            num_cached_tokens=cached,
            finish_reason=choice.get("finish_reason"),
        )

    async def continuation_logprobs(self, prompt: str, continuation: str) -> list[float]:
        head, tail = self._encode(prompt), self._encode(continuation)
        if not tail:
            return []
        tokens = self.check_length(head + tail, reserve=1)
        body = await self._complete(
            {"prompt": tokens, "max_tokens": 1, "temperature": 0.0, "prompt_logprobs": 0},
            len(tokens),
        )
        rows = _first_choice(body).get("prompt_logprobs")
        if not isinstance(rows, list) or len(rows) != len(tokens):
            raise EngineError(
                "the server returned no prompt_logprobs for the prompt (a vLLM extension of the "
                "completions API that continuation_logprobs needs)"
            )
        cached = _cached_tokens(body)
        self._count("continuation", len(tokens), cached)
        out: list[float] = []
        for pos, tid in zip(range(len(head), len(tokens)), tail, strict=True):
            row = rows[pos]
            entry = row.get(str(tid)) if isinstance(row, dict) else None
            if not isinstance(entry, dict) or "logprob" not in entry:
                raise EngineError(f"no logprob for prompt position {pos} (token {tid})")
            out.append(_logprob(entry["logprob"]))
        return out

    # -- transport --------------------------------------------------------------------------

    async def _complete(self, payload: dict[str, Any], num_tokens: int) -> dict[str, Any]:
        """POST /v1/completions on the least busy healthy replica, failing over to others."""
        if not self._started:
            raise EngineError("engine is not started")
        payload = {"model": self._served_model, **payload}
        tried: list[Replica] = []
        failures: list[str] = []
        for _ in range(self._max_attempts):
            replica = self._pool.acquire(exclude=tried)
            if replica is None:
                break
            tried.append(replica)
            try:
                return await self._post(replica, "/v1/completions", payload, num_tokens)
            except _ReplicaFailed as exc:
                failures.append(f"{replica.url}: {exc}")
                self._pool.record_failure(replica, str(exc), mark_down=exc.mark_down)
                log.info("request failed on %s (%s); trying another replica", replica.url, exc)
        if not failures:
            raise EngineError("no healthy judge replica")
        raise EngineError("every replica tried failed: " + "; ".join(failures))

    async def _post(
        self, replica: Replica, path: str, payload: dict[str, Any], num_tokens: int
    ) -> dict[str, Any]:
        try:
            resp = await self._client.post(f"{replica.url}{path}", json=payload)
        except httpx.PoolTimeout as exc:  # our own connection pool, not the replica's fault
            raise EngineError(f"HTTP connection pool exhausted: {exc}") from exc
        except httpx.TimeoutException as exc:
            raise _ReplicaFailed(f"timeout ({type(exc).__name__})", mark_down=True) from exc
        except httpx.TransportError as exc:
            raise _ReplicaFailed(f"{type(exc).__name__}: {exc}", mark_down=True) from exc
        finally:
            self._pool.release(replica)
        status = resp.status_code
        if status >= 500 or status in _RETRY_STATUSES:
            raise _ReplicaFailed(
                f"HTTP {status}: {_error_message(resp)}", mark_down=status in _MARK_DOWN_STATUSES
            )
        if status >= 400:
            message = _error_message(resp)
            if "context length" in message.lower():
                match = _CONTEXT_LIMIT.search(message)
                limit = int(match.group(1)) if match else self.max_model_len
                raise PromptTooLongError(num_tokens, limit - 1)
            raise EngineError(f"{replica.url} refused the request: HTTP {status}: {message}")
        try:
            body = resp.json()
        except ValueError as exc:
            raise _ReplicaFailed("answer is not JSON", mark_down=False) from exc
        if not isinstance(body, dict):
            raise _ReplicaFailed("answer is not a JSON object", mark_down=False)
        return body


# -- response parsing (OpenAI completions, vLLM's extensions) --------------------------------


def _error_message(resp: httpx.Response) -> str:
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


def _first_choice(body: dict[str, Any]) -> dict[str, Any]:
    choices = body.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        raise EngineError("the server's answer has no choices")
    return choices[0]


def _step_logprobs(choice: dict[str, Any]) -> tuple[dict[int, float], dict[str, float]]:
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
            by_id[int(key[len(TOKEN_ID_PREFIX) :])] = _logprob(value)
        else:
            by_text[key] = _logprob(value)

    tops = lp.get("top_logprobs") or []
    if tops and isinstance(tops[0], dict):
        for key, value in tops[0].items():
            add(str(key), value)
    tokens, values = lp.get("tokens") or [], lp.get("token_logprobs") or []
    if tokens and values:  # the sampled token, in case the top list left it out
        add(str(tokens[0]), values[0])
    return by_id, by_text


def _cached_tokens(body: dict[str, Any]) -> int:
    usage = body.get("usage")
    details = usage.get("prompt_tokens_details") if isinstance(usage, dict) else None
    cached = details.get("cached_tokens") if isinstance(details, dict) else None
    return int(cached) if isinstance(cached, int) else 0
