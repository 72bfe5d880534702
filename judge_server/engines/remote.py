"""Remote adapter: one or more OpenAI-compatible servers (stock ``vllm serve``, SGLang) over HTTP.

The scale-out path: a fleet of replicas, each a stock vLLM server, with judge-server in front.
Prompts are rendered and tokenized HERE, with the same tokenizer the replicas serve, and sent to
``POST /v1/completions`` as lists of token ids. Tokenization therefore matches the in-process
adapter exactly (message content stays plain text, ``engines.plain_text``), and a prompt too
long for the context is refused locally, before any request.

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
- ``generate``: ``max_tokens``, ``temperature``, ``stop``; a JSON schema goes as
  ``response_format={"type": "json_schema", "json_schema": {"name", "schema"}}``, which vLLM's
  completions endpoint turns into the same structured output the in-process adapter asks for
  (``CompletionRequest.response_format`` in vllm/entrypoints/openai/completion/protocol.py,
  mapped by ``structured_outputs_from_response_format`` in
  vllm/entrypoints/generate/base/protocol.py; ``schema`` is the field's alias there).
- ``continuation_logprobs``: ``prompt_logprobs=0`` over prompt+continuation; each position of
  the answer's ``prompt_logprobs`` holds the logprob of the actual prompt token, keyed by its id.
- a prompt with images (``engines.images``): the same token ids, with one image placeholder
  token per image, and the images as data URLs go to vLLM's token-in endpoint instead
  (``engines.generate_wire``; the replicas need ``--enable-scale-out``).
- prefix-cache hits: ``usage.prompt_tokens_details.cached_tokens`` (vLLM reports it when
  started with ``--enable-prompt-tokens-details``; 0 otherwise).

Routing: least outstanding requests over the healthy replicas (``routing.ReplicaPool``). A
background task probes every replica's ``GET /readiness``, or ``GET /health`` where that is 404
(``vllm serve``; ``ReplicaClient.check_health`` says why). A request that fails on one replica
with a connection error, a timeout or a 5xx is retried on another healthy one (at most
``max_attempts`` replicas per request); connection errors, timeouts, 502, 503 and 504 also mark
the replica down until a health check succeeds again. With no healthy replica left, requests
raise ``EngineError`` (a per-item ``judge_error``) and ``ready`` is False.

One URL pointing at a router (``vllm-router`` in front of a fleet, README "Router and vLLM
fleet") is the other deployment: the router routes (prefix-cache aware), retries and
health-checks its workers; here a request failure then only fails that request (nothing else to
try) and the router's own ``GET /readiness`` (503 once it has no healthy worker) drives
``ready``. Not its ``/health``: that is 503 as soon as any one worker is down.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Mapping, Sequence
from typing import Any

import httpx

from judge_server.engines import generate_wire
from judge_server.engines.base import (
    ChatMessage,
    EngineError,
    Generation,
    JudgeEngine,
    NextTokenLogprobs,
    PromptTooLongError,
)
from judge_server.engines.completions_wire import (
    CONTEXT_LIMIT,
    cached_tokens,
    first_choice,
    logprob,
    step_logprobs,
)
from judge_server.engines.images import (
    ImageData,
    encode_with_images,
    image_feature_tokens,
    image_token_id,
    prompt_parts,
)
from judge_server.engines.plain_text import PlainTextTokenizer
from judge_server.engines.replica_client import ReplicaClient, RequestRefused
from judge_server.engines.routing import Replica

log = logging.getLogger(__name__)

DEFAULT_MAX_MODEL_LEN = 2048
DEFAULT_REQUEST_TIMEOUT_S = 120.0
DEFAULT_HEALTH_INTERVAL_S = 5.0
DEFAULT_TOP_LOGPROBS = 20  # vLLM's default --max-logprobs


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
            health_interval_s: seconds between two health probe rounds.
            max_attempts: replicas tried per request before giving up.
            top_logprobs: top-N asked for where ``logprob_token_ids`` is not supported.
            transport: an httpx transport (tests pass ``httpx.MockTransport``).
            tokenizer_obj: an already loaded tokenizer (tests); skips loading ``tokenizer``.
        """
        super().__init__()
        self._fleet = ReplicaClient(
            base_urls,
            api_key=api_key,
            request_timeout_s=request_timeout_s,
            health_interval_s=health_interval_s,
            max_attempts=max_attempts,
            transport=transport,
        )
        self._served_model = model
        self.model_id = model or "remote (model not discovered yet)"
        self.max_model_len = max_model_len
        self._tokenizer_name = tokenizer
        self._tokenizer = PlainTextTokenizer(tokenizer_obj) if tokenizer_obj is not None else None
        self._top_logprobs = top_logprobs
        self._started = False

    # -- lifetime ---------------------------------------------------------------------------

    async def start(self) -> None:
        await self.check_health()
        await self._discover()
        if self._tokenizer is None:
            name = self._tokenizer_name or self._served_model
            assert name is not None  # _discover sets it or raises
            loaded = await asyncio.to_thread(self._load_tokenizer, name)
            self._tokenizer = PlainTextTokenizer(loaded)
            self.image_token_id = await asyncio.to_thread(image_token_id, name)
            if self.image_token_id is not None:
                self.image_features = await asyncio.to_thread(image_feature_tokens, name)
        self._fleet.start_health_checks()
        self._started = True
        log.info(
            "remote engine ready: %s on %d replica(s), %d healthy",
            self.model_id,
            len(self._fleet.pool.replicas),
            len(self._fleet.pool.healthy),
        )

    @staticmethod
    def _load_tokenizer(name: str) -> Any:
        from transformers import AutoTokenizer

        return AutoTokenizer.from_pretrained(name)

    async def shutdown(self) -> None:
        self._started = False
        await self._fleet.aclose()

    @property
    def ready(self) -> bool:
        return self._started and self._fleet.pool.any_healthy

    def dead_reason(self) -> str | None:
        # Never fatal: the replicas are other processes that come back, and the health loop
        # re-admits them. While none is healthy /ready is 503 (ready is False), so traffic
        # goes elsewhere; restarting this process would revive no replica.
        return None

    @property
    def replicas(self) -> list[Replica]:
        """The replicas and their state (url, healthy, outstanding, counters)."""
        return list(self._fleet.pool.replicas)

    async def check_health(self) -> None:
        """One round of health probes on every replica, concurrently."""
        await self._fleet.check_health()

    async def _discover(self) -> None:
        """The served model name and the smallest context length the replicas report."""
        cards: list[dict[str, Any]] = []
        for replica, data in await self._fleet.served_models():
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
                    f"({[(r.url, r.last_error) for r in self._fleet.pool.replicas]})"
                )
            self._served_model = str(cards[0]["id"])
        self.model_id = self._served_model
        # Replicas offer no content hash: the served name and the weights they loaded (vLLM's
        # card 'root') are the identity; serve new weights under a new name to change it.
        roots = sorted(
            {str(c["root"]) for c in cards if c.get("id") == self.model_id and c.get("root")}
        )
        self.model_revision = f"served:{self.model_id} root:{','.join(roots) or '?'}"
        limits = [int(c["max_model_len"]) for c in cards if c.get("max_model_len")]
        if limits and min(limits) < self.max_model_len:
            log.warning(
                "replicas accept at most %d tokens; lowering max_model_len from %d",
                min(limits),
                self.max_model_len,
            )
            self.max_model_len = min(limits)

    # -- tokenizer --------------------------------------------------------------------------

    def _tok(self) -> PlainTextTokenizer:
        if self._tokenizer is None:
            raise EngineError("engine is not started")
        return self._tokenizer

    def render_chat(
        self, messages: Sequence[ChatMessage], *, add_generation_prompt: bool = True
    ) -> str:
        return self._tok().render(messages, add_generation_prompt=add_generation_prompt)

    def as_content(self, text: str) -> str:
        return self._tok().escape(text)

    def count_tokens(self, text: str) -> int:
        return len(self._tok().encode_text(text))

    def single_token_id(self, text: str) -> int | None:
        return self._tok().single_token_id(text)

    # -- primitives -------------------------------------------------------------------------

    async def next_token_logprobs(
        self, prompt: str, candidates: Sequence[str]
    ) -> NextTokenLogprobs:
        ids = self.candidate_ids(candidates)
        tokens, images = await self._encode(prompt)
        tokens = self.check_length(tokens, reserve=1, images=len(images))
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
            images,
        )
        choice = first_choice(body)
        by_id, by_text = step_logprobs(choice)
        logprobs: dict[str, float] = {}
        for cand, tid in ids.items():
            if tid in by_id:
                logprobs[cand] = by_id[tid]
            elif cand in by_text:  # a server that ignores return_tokens_as_token_ids
                logprobs[cand] = by_text[cand]
            else:  # not among a top-N answer: see the module docstring
                logprobs[cand] = -math.inf
        cached = cached_tokens(body)
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
        json_schema: Mapping[str, Any] | None = None,
    ) -> Generation:
        tokens, images = await self._encode(prompt)
        tokens = self.check_length(tokens, reserve=1, images=len(images))
        room = self.max_model_len - len(tokens) - len(images) * (self.image_features - 1)
        payload: dict[str, Any] = {
            "prompt": tokens,
            "max_tokens": max(1, min(max_tokens, room)),
            "temperature": temperature,
        }
        if stop:
            payload["stop"] = list(stop)
        if json_schema is not None:
            payload["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": "output", "schema": dict(json_schema)},
            }
        body = await self._complete(payload, len(tokens), images)
        choice = first_choice(body)
        cached = cached_tokens(body)
        self._count("generate", len(tokens), cached)
        return Generation(
            text=str(choice.get("text") or ""),
            num_prompt_tokens=len(tokens),
            num_cached_tokens=cached,
            finish_reason=choice.get("finish_reason"),
        )

    async def continuation_logprobs(self, prompt: str, continuation: str) -> list[float]:
        tok = self._tok()
        (head, images), tail = await self._encode(prompt), await tok.encode_text_async(continuation)
        if not tail:
            return []
        tokens = self.check_length(head + tail, reserve=1, images=len(images))
        body = await self._complete(
            {"prompt": tokens, "max_tokens": 1, "temperature": 0.0, "prompt_logprobs": 0},
            len(tokens),
            images,
        )
        rows = first_choice(body).get("prompt_logprobs")
        if not isinstance(rows, list) or len(rows) != len(tokens):
            raise EngineError(
                "the server returned no prompt_logprobs for the prompt (a vLLM extension of the "
                "completions API that continuation_logprobs needs)"
            )
        cached = cached_tokens(body)
        self._count("continuation", len(tokens), cached)
        out: list[float] = []
        for pos, tid in zip(range(len(head), len(tokens)), tail, strict=True):
            row = rows[pos]
            entry = row.get(str(tid)) if isinstance(row, dict) else None
            if not isinstance(entry, dict) or "logprob" not in entry:
                raise EngineError(f"no logprob for prompt position {pos} (token {tid})")
            out.append(logprob(entry["logprob"]))
        return out

    # -- transport --------------------------------------------------------------------------

    async def _encode(self, prompt: str) -> tuple[list[int], list[ImageData]]:
        """Token ids (one image placeholder token per image) and the prompt's images."""
        tok = self._tok()
        if prompt_parts(prompt) is None:
            return await tok.encode_async(prompt), []
        if self.image_token_id is None:
            raise EngineError("the judge model does not take images")
        return await asyncio.to_thread(encode_with_images, prompt, tok.encode, self.image_token_id)

    async def _complete(
        self, payload: dict[str, Any], num_tokens: int, images: Sequence[ImageData] = ()
    ) -> dict[str, Any]:
        """POST /v1/completions on the least busy healthy replica, failing over to others;
        with images, vLLM's token-in endpoint (``engines.generate_wire``)."""
        if not self._started:
            raise EngineError("engine is not started")
        payload = {"model": self._served_model, **payload}
        try:
            if images:
                request = generate_wire.generate_request(payload, images)
                return generate_wire.as_completion(
                    await self._fleet.post(generate_wire.PATH, request)
                )
            return await self._fleet.post("/v1/completions", payload)
        except RequestRefused as exc:
            if "context length" not in exc.message.lower():
                raise
            match = CONTEXT_LIMIT.search(exc.message)
            limit = int(match.group(1)) if match else self.max_model_len
            raise PromptTooLongError(num_tokens, limit - 1) from None
