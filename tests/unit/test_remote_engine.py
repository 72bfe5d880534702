"""The remote engine against scripted OpenAI-compatible replicas (httpx.MockTransport).

The real protocol is exercised in tests/integration/test_remote_engine.py against `vllm serve`;
here the transport is scripted to make routing, failover and parsing edge cases deterministic.
"""

from __future__ import annotations

import asyncio
import json
import math
from collections.abc import AsyncIterator, Sequence
from typing import Any

import httpx
import pytest

from judge_server.engines.base import ChatMessage, EngineError, PromptTooLongError
from judge_server.engines.remote import RemoteEngine
from judge_server.engines.routing import ReplicaPool, normalise_base_url

URLS = ["http://r0.test:8000", "http://r1.test:8000", "http://r2.test:8000"]
MODEL = "tiny-judge"


class WordTokenizer:
    """One token per whitespace-separated word; ids are handed out on first sight."""

    def __init__(self) -> None:
        self.vocab: dict[str, int] = {"Yes": 1, "No": 2, "A": 3, "B": 4}

    def encode(self, text: str, add_special_tokens: bool = True) -> list[int]:
        return [self.vocab.setdefault(w, len(self.vocab) + 1) for w in text.split()]

    def apply_chat_template(
        self,
        messages: Sequence[ChatMessage],
        tokenize: bool = False,
        add_generation_prompt: bool = True,
    ) -> str:
        text = " ".join(f"<{m['role']}> {m['content']}" for m in messages)
        return text + (" <assistant>" if add_generation_prompt else "")


def completion(
    *, top: dict[str, float], sampled: str = "token_id:2", cached: int | None = None
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "choices": [
            {
                "index": 0,
                "text": "No",
                "finish_reason": "length",
                "logprobs": {
                    "tokens": [sampled],
                    "token_logprobs": [top.get(sampled, -0.5)],
                    "top_logprobs": [top],
                },
            }
        ],
        "usage": {"prompt_tokens": 3, "completion_tokens": 1},
    }
    if cached is not None:
        body["usage"]["prompt_tokens_details"] = {"cached_tokens": cached}
    return body


DEFAULT_ANSWER = completion(top={"token_id:2": -0.3, "token_id:1": -1.5})


class Fleet:
    """Scripted replicas keyed by host: dead ones refuse connections."""

    def __init__(self, max_model_len: int = 64) -> None:
        self.dead: set[str] = set()
        self.status: dict[str, int] = {}  # host -> forced HTTP status for completions
        self.gates: dict[str, asyncio.Event] = {}  # host -> completions wait for it
        self.answer: dict[str, Any] = DEFAULT_ANSWER
        self.error_body: dict[str, Any] = {}
        self.completions: list[tuple[str, dict[str, Any]]] = []
        self.max_model_len = max_model_len
        self.tokenizer = WordTokenizer()  # the one the engine under test uses
        self.readiness: dict[str, int] = {}  # host -> its GET /readiness status (a router's)
        self.probes: list[str] = []  # health probe paths, in order
        self.slow_probes: set[str] = set()  # hosts whose probes time out (busy, not down)

    def served_by(self) -> list[str]:
        return [host for host, _ in self.completions]

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        host = request.url.host
        if host in self.dead:
            raise httpx.ConnectError("connection refused", request=request)
        if host in self.slow_probes and request.url.path in ("/health", "/readiness"):
            raise httpx.ReadTimeout("no answer in time", request=request)
        if request.url.path in ("/health", "/readiness"):
            self.probes.append(request.url.path)
        if request.url.path == "/readiness":  # only routers have it; `vllm serve` answers 404
            return httpx.Response(self.readiness.get(host, 404))
        if request.url.path == "/health":
            return httpx.Response(503 if host in self.readiness else 200)
        if request.url.path == "/v1/models":
            return httpx.Response(
                200,
                json={
                    "data": [
                        {
                            "id": MODEL,
                            "root": f"/models/{MODEL}",
                            "max_model_len": self.max_model_len,
                        }
                    ]
                },
            )
        assert request.url.path == "/v1/completions"
        payload = json.loads(request.content)
        self.completions.append((host, payload))
        if host in self.gates:
            await self.gates[host].wait()
        if host in self.dead:  # died while the request was in flight
            raise httpx.ReadError("connection reset", request=request)
        if host in self.status:
            return httpx.Response(self.status[host], json=self.error_body)
        return httpx.Response(200, json=self.answer)


def scripted_engine(fleet: Fleet, urls: Sequence[str], **kwargs: Any) -> RemoteEngine:
    """A remote engine on ``fleet``'s scripted transport, serving ``MODEL``."""
    return RemoteEngine(
        urls,
        model=MODEL,
        transport=httpx.MockTransport(fleet),
        tokenizer_obj=WordTokenizer(),
        **kwargs,
    )


@pytest.fixture
async def fleet_engine() -> AsyncIterator[tuple[Fleet, RemoteEngine]]:
    fleet = Fleet()
    engine = RemoteEngine(
        URLS,
        max_model_len=4096,
        health_interval_s=3600,  # tests drive health checks explicitly
        transport=httpx.MockTransport(fleet),
        tokenizer_obj=fleet.tokenizer,
    )
    await engine.start()
    try:
        yield fleet, engine
    finally:
        await engine.shutdown()


async def wait_for(predicate: Any, timeout: float = 2.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        assert asyncio.get_running_loop().time() < deadline, "condition not reached"
        await asyncio.sleep(0.001)


# -- pool --------------------------------------------------------------------------------------


def test_pool_least_outstanding_with_round_robin_ties() -> None:
    pool = ReplicaPool(URLS)
    for r in pool.replicas:
        pool.mark_up(r)
    first = [pool.acquire() for _ in range(3)]
    assert [r.url for r in first if r] == URLS  # idle pool: round robin
    busy = pool.acquire()  # all at 1: round robin goes on with r0
    assert busy is not None and busy.url == URLS[0]
    assert first[1] is not None
    pool.release(first[1])  # r1 now has the fewest in flight
    chosen = pool.acquire()
    assert chosen is not None and chosen.url == URLS[1]
    pool.mark_down(pool.replicas[1], "test")
    assert all(pool.acquire() is not pool.replicas[1] for _ in range(5))
    assert pool.acquire(exclude=[pool.replicas[0], pool.replicas[2]]) is None


def test_base_urls_are_normalised_and_validated() -> None:
    assert normalise_base_url("http://h:8000/v1/") == "http://h:8000"
    assert normalise_base_url(" https://h ") == "https://h"
    with pytest.raises(ValueError):
        normalise_base_url("h:8000")
    with pytest.raises(ValueError):
        ReplicaPool([])
    with pytest.raises(ValueError):
        ReplicaPool(["http://h:1", "http://h:1/v1"])


# -- engine: start, routing --------------------------------------------------------------------


async def test_start_discovers_model_and_context_length(
    fleet_engine: tuple[Fleet, RemoteEngine],
) -> None:
    _, engine = fleet_engine
    assert engine.ready
    assert engine.model_id == MODEL
    # Replicas offer no content hash: the served name and the weights they loaded stand in.
    assert engine.model_revision == f"served:{MODEL} root:/models/{MODEL}"
    assert engine.max_model_len == 64  # the replicas' limit is below the configured 4096
    assert all(r.healthy for r in engine.replicas)


async def test_routes_to_replica_with_fewest_outstanding(
    fleet_engine: tuple[Fleet, RemoteEngine],
) -> None:
    fleet, engine = fleet_engine
    for url in URLS:
        fleet.gates[httpx.URL(url).host] = asyncio.Event()
    tasks = [
        asyncio.create_task(engine.next_token_logprobs("is it ok ?", ["Yes", "No"]))
        for _ in range(6)
    ]
    await wait_for(lambda: len(fleet.completions) == 6)
    assert sorted(fleet.served_by()) == ["r0.test"] * 2 + ["r1.test"] * 2 + ["r2.test"] * 2
    fleet.gates["r1.test"].set()  # r1 drains: it now has 0 in flight, the others 2
    await wait_for(lambda: engine.replicas[1].outstanding == 0)
    more = [
        asyncio.create_task(engine.next_token_logprobs("is it ok ?", ["Yes", "No"]))
        for _ in range(2)
    ]
    await wait_for(lambda: len(fleet.completions) == 8)
    assert fleet.served_by()[6:] == ["r1.test", "r1.test"]
    for gate in fleet.gates.values():
        gate.set()
    await asyncio.gather(*tasks, *more)
    assert [r.outstanding for r in engine.replicas] == [0, 0, 0]


# -- engine: failover --------------------------------------------------------------------------


async def test_failover_when_a_replica_refuses_connections(
    fleet_engine: tuple[Fleet, RemoteEngine],
) -> None:
    fleet, engine = fleet_engine
    fleet.dead.add("r0.test")  # died after the last health check: the pool still routes to it
    outs = [await engine.next_token_logprobs("is it ok ?", ["Yes", "No"]) for _ in range(4)]
    assert all(o.logprobs == {"Yes": -1.5, "No": -0.3} for o in outs)
    r0 = engine.replicas[0]
    assert not r0.healthy and r0.failures == 1 and "ConnectError" in (r0.last_error or "")
    assert "r0.test" not in fleet.served_by()
    fleet.dead.clear()  # back up: the next health check returns it to the pool
    await engine.check_health()
    assert r0.healthy


async def test_failover_when_a_replica_dies_mid_request(
    fleet_engine: tuple[Fleet, RemoteEngine],
) -> None:
    fleet, engine = fleet_engine
    fleet.gates["r0.test"] = asyncio.Event()
    task = asyncio.create_task(engine.next_token_logprobs("is it ok ?", ["Yes"]))
    await wait_for(lambda: len(fleet.completions) == 1)
    fleet.dead.add("r0.test")
    fleet.gates["r0.test"].set()
    out = await task
    assert out.logprobs == {"Yes": -1.5}
    assert fleet.served_by() == ["r0.test", "r1.test"]
    assert not engine.replicas[0].healthy and "ReadError" in (engine.replicas[0].last_error or "")


async def test_server_errors_retry_elsewhere(fleet_engine: tuple[Fleet, RemoteEngine]) -> None:
    fleet, engine = fleet_engine
    fleet.status = {"r0.test": 503, "r1.test": 500}
    fleet.error_body = {"error": {"message": "boom", "type": "InternalServerError", "code": 500}}
    out = await engine.generate("say something", max_tokens=4)
    assert out.text == "No"
    assert fleet.served_by() == ["r0.test", "r1.test", "r2.test"]
    assert not engine.replicas[0].healthy  # 503: unavailable, out until a health check
    assert engine.replicas[1].healthy  # 500: maybe this request's fault, retried but kept
    assert engine.replicas[1].failures == 1 and "boom" in (engine.replicas[1].last_error or "")


async def test_all_replicas_down_is_an_engine_error(
    fleet_engine: tuple[Fleet, RemoteEngine],
) -> None:
    fleet, engine = fleet_engine
    fleet.dead.update({"r0.test", "r1.test", "r2.test"})
    with pytest.raises(EngineError, match="every replica tried failed"):
        await engine.next_token_logprobs("is it ok ?", ["Yes"])
    assert not engine.replicas[0].healthy and not engine.replicas[1].healthy
    await engine.check_health()
    assert not engine.ready
    with pytest.raises(EngineError, match="no healthy judge replica"):
        await engine.next_token_logprobs("is it ok ?", ["Yes"])
    fleet.dead.discard("r2.test")
    await engine.check_health()
    assert engine.ready
    assert (await engine.next_token_logprobs("is it ok ?", ["Yes"])).logprobs == {"Yes": -1.5}


async def test_a_lone_upstream_is_taken_out_by_its_health_probe_only() -> None:
    """One URL (a router in front of a fleet): a request failure is the request's, not the
    fleet's; a 503 from the router's own ``GET /health`` takes it out."""
    fleet = Fleet()
    engine = scripted_engine(fleet, URLS[:1], health_interval_s=3600)
    await engine.start()
    try:
        fleet.status = {"r0.test": 503}
        with pytest.raises(EngineError, match="HTTP 503"):
            await engine.generate("hello", max_tokens=2)
        fleet.dead.add("r0.test")
        with pytest.raises(EngineError, match="ConnectError"):
            await engine.generate("hello", max_tokens=2)
        router = engine.replicas[0]
        assert router.healthy and engine.ready and router.failures == 2
        fleet.dead.clear()
        fleet.status = {}
        assert (await engine.generate("hello", max_tokens=2)).text == "No"
        fleet.dead.add("r0.test")  # the probe, not a request, takes it out
        await engine.check_health()
        assert not engine.ready
        with pytest.raises(EngineError, match="no healthy judge replica"):
            await engine.generate("hello", max_tokens=2)
    finally:
        await engine.shutdown()


async def test_a_slow_probe_takes_out_one_of_several_replicas_but_not_a_lone_upstream() -> None:
    """A probe that times out on a lone upstream means it is busy (a loaded router or CPU
    replica): every item would fail while it is out, so it stays in. One of several replicas
    is left out until it answers, as before."""
    fleet = Fleet()
    engine = scripted_engine(fleet, URLS[:1], health_interval_s=3600)
    await engine.start()
    try:
        fleet.slow_probes.add("r0.test")
        await engine.check_health()
        assert engine.ready and engine.replicas[0].healthy
        assert (await engine.generate("hello", max_tokens=2)).text == "No"
        fleet.slow_probes.clear()
        fleet.dead.add("r0.test")  # refused: down
        await engine.check_health()
        assert not engine.ready
    finally:
        await engine.shutdown()

    fleet = Fleet()
    engine = scripted_engine(fleet, URLS[:2], health_interval_s=3600)
    await engine.start()
    try:
        fleet.slow_probes.add("r1.test")
        await engine.check_health()
        assert engine.replicas[0].healthy and not engine.replicas[1].healthy
        assert "ReadTimeout" in (engine.replicas[1].last_error or "")
    finally:
        await engine.shutdown()


async def test_a_router_is_probed_on_readiness_and_a_vllm_serve_on_health() -> None:
    """vllm-router answers ``/health`` 503 once ANY worker is down but ``/readiness`` 200 while
    one is up: judge-server follows ``/readiness``, so one dead worker does not take it out. A
    replica without ``/readiness`` (404: ``vllm serve``) is probed on ``/health`` from then on."""
    fleet = Fleet()
    fleet.readiness = {"r0.test": 200}  # a router with one worker down: /health is 503
    engine = scripted_engine(fleet, URLS[:1], health_interval_s=3600)
    await engine.start()
    try:
        assert engine.ready and set(fleet.probes) == {"/readiness"}
        fleet.readiness["r0.test"] = 503  # no healthy worker left
        await engine.check_health()
        assert not engine.ready
        assert engine.replicas[0].last_error == "health check: HTTP 503"
        fleet.readiness["r0.test"] = 200
        await engine.check_health()
        assert engine.ready
    finally:
        await engine.shutdown()

    fleet = Fleet()  # plain `vllm serve` replicas: /readiness is 404
    engine = scripted_engine(fleet, URLS[:2], health_interval_s=3600)
    await engine.start()
    try:
        assert all(r.healthy for r in engine.replicas)
        fleet.probes.clear()
        await engine.check_health()
        assert fleet.probes == ["/health", "/health"]  # the 404 is asked once per replica
        fleet.dead.add("r1.test")
        await engine.check_health()
        assert engine.replicas[0].healthy and not engine.replicas[1].healthy
    finally:
        await engine.shutdown()


async def test_attempts_are_bounded() -> None:
    fleet = Fleet()
    engine = scripted_engine(fleet, URLS, max_attempts=2, health_interval_s=3600)
    await engine.start()
    try:
        fleet.status = dict.fromkeys(["r0.test", "r1.test", "r2.test"], 500)
        with pytest.raises(EngineError):
            await engine.generate("hello", max_tokens=2)
        assert len(fleet.completions) == 2
    finally:
        await engine.shutdown()


async def test_unreachable_fleet_at_start() -> None:
    fleet = Fleet()
    fleet.dead.update({"r0.test", "r1.test"})
    engine = RemoteEngine(
        URLS[:2], transport=httpx.MockTransport(fleet), tokenizer_obj=WordTokenizer()
    )
    try:
        with pytest.raises(EngineError, match="cannot discover the served model"):
            await engine.start()
    finally:
        await engine.shutdown()
    # With the model named, start succeeds and the engine waits for a replica to come up.
    engine = scripted_engine(fleet, URLS[:2], health_interval_s=0.01)
    await engine.start()
    try:
        assert not engine.ready
        fleet.dead.clear()
        await wait_for(lambda: engine.ready)  # the background health task brings it in
    finally:
        await engine.shutdown()


# -- engine: protocol --------------------------------------------------------------------------


async def test_next_token_request_and_exact_logprobs(
    fleet_engine: tuple[Fleet, RemoteEngine],
) -> None:
    fleet, engine = fleet_engine
    fleet.answer = completion(top={"token_id:2": -0.2, "token_id:1": -9999.0}, cached=2)
    prompt = engine.render_chat([{"role": "user", "content": "ok ?"}])
    out = await engine.next_token_logprobs(prompt, ["No", "Yes"])
    assert out.logprobs == {"No": -0.2, "Yes": -math.inf}  # -9999 is vLLM's JSON for -inf
    assert out.num_prompt_tokens == 4 and out.num_cached_tokens == 2
    _, payload = fleet.completions[0]
    assert payload["model"] == MODEL
    assert payload["prompt"] == fleet.tokenizer.encode(prompt)  # token ids, not text
    assert payload["max_tokens"] == 1 and payload["temperature"] == 0.0
    assert payload["logprob_token_ids"] == [1, 2]
    assert payload["return_tokens_as_token_ids"] is True
    assert engine.count_tokens(prompt) == 4
    assert engine.stats.by_kind == {"next_token": 1} and engine.stats.cached_prompt_tokens == 2
    with pytest.raises(EngineError, match="single token"):
        await engine.next_token_logprobs(prompt, ["Yes please"])


async def test_top_n_answer_from_a_server_without_logprob_token_ids(
    fleet_engine: tuple[Fleet, RemoteEngine],
) -> None:
    fleet, engine = fleet_engine
    # A server that ignored logprob_token_ids answers its top-N (here N=2) alternatives;
    # "No" was sampled, "A" is among the top-N, "Yes" and "B" are not.
    fleet.answer = completion(top={"token_id:2": -0.1, "token_id:3": -2.5})
    out = await engine.next_token_logprobs("which ?", ["Yes", "No", "A", "B"])
    assert out.logprobs == {"Yes": -math.inf, "No": -0.1, "A": -2.5, "B": -math.inf}
    # ... and one that also ignored return_tokens_as_token_ids names tokens by their text.
    fleet.answer = completion(top={"No": -0.1, "Yes": -2.0}, sampled="No")
    out = await engine.next_token_logprobs("which ?", ["Yes", "No", "A"])
    assert out.logprobs == {"Yes": -2.0, "No": -0.1, "A": -math.inf}


async def test_too_long_prompts(fleet_engine: tuple[Fleet, RemoteEngine]) -> None:
    fleet, engine = fleet_engine
    with pytest.raises(PromptTooLongError) as local:  # refused before any request is sent
        await engine.next_token_logprobs("word " * 64, ["Yes"])
    assert local.value.limit == 63 and fleet.completions == []
    fleet.status = dict.fromkeys(["r0.test", "r1.test", "r2.test"], 400)
    fleet.error_body = {
        "error": {
            "message": "This model's maximum context length is 32 tokens. However, your prompt "
            "contains 40 input tokens, which exceeds this limit even without any output tokens.",
            "type": "BadRequestError",
            "param": "input_tokens",
            "code": 400,
        }
    }
    with pytest.raises(PromptTooLongError) as remote:
        await engine.next_token_logprobs("word " * 40, ["Yes"])
    assert remote.value.num_tokens == 40 and remote.value.limit == 31
    assert len(fleet.completions) == 1  # a 4xx is the request's fault: no retry
    assert all(r.healthy for r in engine.replicas)
    fleet.error_body = {"error": {"message": "The model `x` does not exist.", "code": 404}}
    fleet.status = dict.fromkeys(["r0.test", "r1.test", "r2.test"], 404)
    with pytest.raises(EngineError, match="does not exist") as other:
        await engine.generate("hello", max_tokens=4)
    assert not isinstance(other.value, PromptTooLongError)


async def test_generate_request(fleet_engine: tuple[Fleet, RemoteEngine]) -> None:
    fleet, engine = fleet_engine
    out = await engine.generate("a b c", max_tokens=500, temperature=0.7, stop=["\n"])
    assert out.text == "No" and out.finish_reason == "length" and out.num_prompt_tokens == 3
    _, payload = fleet.completions[0]
    assert payload["max_tokens"] == 61  # clamped to the room left in the 64-token context
    assert payload["temperature"] == 0.7 and payload["stop"] == ["\n"]
    await engine.generate("a b c", max_tokens=5)
    assert "stop" not in fleet.completions[1][1]
    assert "response_format" not in fleet.completions[1][1]


async def test_a_json_schema_goes_as_response_format(
    fleet_engine: tuple[Fleet, RemoteEngine],
) -> None:
    """vLLM's completions endpoint maps ``response_format`` json_schema (``schema`` is the
    field's alias) onto the same structured output the in-process adapter asks for."""
    fleet, engine = fleet_engine
    schema = {"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"]}
    await engine.generate("a b c", max_tokens=5, json_schema=schema)
    _, payload = fleet.completions[0]
    assert payload["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "output", "schema": schema},
    }


async def test_continuation_logprobs_from_prompt_logprobs(
    fleet_engine: tuple[Fleet, RemoteEngine],
) -> None:
    fleet, engine = fleet_engine
    head, tail = fleet.tokenizer.encode("is it"), fleet.tokenizer.encode("Yes indeed")
    rows: list[Any] = [None, {str(head[1]): {"logprob": -3.0, "rank": 9}}]
    rows += [{str(tail[0]): {"logprob": -0.5, "rank": 1}, "99": {"logprob": -0.1, "rank": 1}}]
    rows += [{str(tail[1]): {"logprob": -9999.0, "rank": 50000}}]
    fleet.answer = {"choices": [{"text": "", "prompt_logprobs": rows}], "usage": {}}
    assert await engine.continuation_logprobs("is it", "Yes indeed") == [-0.5, -math.inf]
    _, payload = fleet.completions[0]
    assert payload["prompt"] == head + tail and payload["prompt_logprobs"] == 0
    assert await engine.continuation_logprobs("is it", "") == []
    fleet.answer = {"choices": [{"text": ""}], "usage": {}}  # a server without prompt_logprobs
    with pytest.raises(EngineError, match="prompt_logprobs"):
        await engine.continuation_logprobs("is it", "Yes indeed")


async def test_not_started() -> None:
    engine = RemoteEngine(URLS[:1], model=MODEL, transport=httpx.MockTransport(Fleet()))
    try:
        assert not engine.ready
        with pytest.raises(EngineError, match="not started"):
            await engine.generate("x", max_tokens=1)
    finally:
        await engine.shutdown()
