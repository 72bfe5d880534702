"""Client behaviour against an in-process fake server, through httpx.MockTransport."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from judge_client import (
    APIConnectionError,
    APIResponseValidationError,
    APIStatusError,
    APITimeoutError,
    AsyncJudgeClient,
    BadRequestError,
    InternalServerError,
    JudgeClient,
    NotFoundError,
    RateLimitError,
    RetryPolicy,
    ScoreItem,
    Timeout,
    UnprocessableEntityError,
    Usage,
)

BASE_URL = "http://judge.test"
NO_JITTER = RetryPolicy(jitter=0.0)
Step = httpx.Response | Callable[[httpx.Request], httpx.Response]


def error_response(
    status: int,
    type_: str,
    message: str,
    param: str | None = None,
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    body = {"error": {"type": type_, "message": message, "param": param}}
    return httpx.Response(status, json=body, headers=headers)


def raising(exc_type: type[httpx.TransportError]) -> Callable[[httpx.Request], httpx.Response]:
    def step(request: httpx.Request) -> httpx.Response:
        raise exc_type("simulated", request=request)

    return step


class FakeJudge:
    """A tiny judge-server.

    The reward of an item is ``len(response) / 100``; ids in ``fail`` get ``judge_error``.
    ``script`` steps answer the next requests before the normal behaviour resumes.
    """

    def __init__(
        self,
        *,
        fail: tuple[str, ...] = (),
        versions: tuple[str, ...] = ("v1",),
        reverse: bool = False,
        usage: bool = False,
    ) -> None:
        self.usage = usage
        self.fail = fail
        self.versions = list(versions)
        self.reverse = reverse
        self.script: list[Step] = []
        self.requests: list[httpx.Request] = []

    def bodies(self) -> list[Any]:
        return [json.loads(r.content) if r.content else None for r in self.requests]

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if self.script:
            step = self.script.pop(0)
            return step if isinstance(step, httpx.Response) else step(request)
        path = request.url.path
        if path == "/v1/score":
            return self._score(json.loads(request.content))
        if path == "/v1/score/group":
            body = json.loads(request.content)
            return httpx.Response(200, json={"rewards": [len(r) / 100 for r in body["responses"]]})
        if path == "/v1/rubrics":
            return httpx.Response(
                200,
                json={
                    "rubrics": [
                        {
                            "name": "helpfulness",
                            "version": "v1",
                            "mode": "pointwise",
                            "description": "d",
                        }
                    ]
                },
            )
        if path.startswith("/v1/rubrics/"):
            name = path.removeprefix("/v1/rubrics/")
            if request.method == "DELETE":
                return httpx.Response(204)
            if request.method == "PUT":
                return httpx.Response(200, json={"name": name, "version": "v2"})
            if name != "helpfulness":
                return error_response(404, "not_found", f"no rubric {name!r}", "name")
            return httpx.Response(
                200, json={"name": name, "version": "v1", "definition": {}, "history": []}
            )
        if path in ("/health", "/ready"):
            return httpx.Response(200, json={"status": "ok"})
        return error_response(404, "not_found", path)

    def _score(self, body: dict[str, Any]) -> httpx.Response:
        version = self.versions.pop(0) if len(self.versions) > 1 else self.versions[0]
        results: list[dict[str, Any]] = []
        for item in body["items"]:
            if item["id"] in self.fail:
                results.append(
                    {
                        "id": item["id"],
                        "status": "judge_error",
                        "reward": None,
                        "error": "judge returned garbage",
                    }
                )
            else:
                results.append(
                    {
                        "id": item["id"],
                        "status": "ok",
                        "reward": len(item["response"]) / 100,
                        "details": {"raw": "x"},
                        "cached": False,
                    }
                )
        if self.usage:  # as servers since issue 10: 10 prompt tokens a character of response
            for result, item in zip(results, body["items"], strict=True):
                n = len(item["response"])
                result["usage"] = {
                    "prompt_tokens": 10 * n,
                    "cached_prompt_tokens": n,
                    "engine_calls": 1,
                }
        if self.reverse:
            results.reverse()
        return httpx.Response(
            200,
            json={
                "rubric": {"name": "helpfulness", "version": version},
                "model": "judge-model-1",
                "results": results,
            },
            headers={"x-request-id": "req-ok"},
        )


def make_items(n: int, *, with_ids: bool = True) -> list[dict[str, Any]]:
    items = [{"prompt": f"q{i}", "response": "r" * (i + 1)} for i in range(n)]
    if with_ids:
        for i, item in enumerate(items):
            item["id"] = f"a{i}"
    return items


@pytest.fixture
def fake() -> FakeJudge:
    return FakeJudge()


@pytest.fixture
def sleeps() -> list[float]:
    return []


@pytest.fixture
def client(fake: FakeJudge, sleeps: list[float]) -> Iterator[JudgeClient]:
    with JudgeClient(
        BASE_URL,
        transport=httpx.MockTransport(fake),
        retry=NO_JITTER,
        sleep=sleeps.append,
        chunk_size=2,
        api_key="sk-test",
    ) as c:
        yield c


# -- score: bodies, chunking, merging ---------------------------------------------------


def test_chunking_splits_and_keeps_order(client: JudgeClient, fake: FakeJudge) -> None:
    result = client.score("helpfulness", make_items(5))

    assert [r.url.path for r in fake.requests] == ["/v1/score"] * 3
    assert [[i["id"] for i in b["items"]] for b in fake.bodies()] == [
        ["a0", "a1"],
        ["a2", "a3"],
        ["a4"],
    ]
    assert [r.id for r in result.results] == ["a0", "a1", "a2", "a3", "a4"]
    assert [r.reward for r in result.results] == [0.01, 0.02, 0.03, 0.04, 0.05]
    assert result.rubric.name == "helpfulness"
    assert result.rubric.version == "v1"
    assert result.model == "judge-model-1"
    assert result.retries == 0


def test_missing_ids_are_positions_across_chunks(client: JudgeClient, fake: FakeJudge) -> None:
    items: list[ScoreItem | dict[str, Any]] = [*make_items(4, with_ids=False)]
    items[1] = ScoreItem(id="mine", prompt="q", response="r")
    result = client.score("helpfulness", items)
    assert [r.id for r in result.results] == ["0", "mine", "2", "3"]
    assert [i["id"] for b in fake.bodies() for i in b["items"]] == ["0", "mine", "2", "3"]


def test_request_body_shape(client: JudgeClient, fake: FakeJudge) -> None:
    item = ScoreItem(
        id="x",
        prompt=[{"role": "user", "content": "hi"}],
        response="hello",
        reference="hey",
        metadata={"k": None},
    )
    client.score({"name": "inline", "criteria": "be nice"}, [item], timeout_s=30, cache=False)
    assert fake.bodies() == [
        {
            "rubric": {"name": "inline", "criteria": "be nice"},
            "items": [
                {
                    "id": "x",
                    "prompt": [{"role": "user", "content": "hi"}],
                    "response": "hello",
                    "reference": "hey",
                    "metadata": {"k": None},
                }
            ],
            "options": {"timeout_s": 30, "cache": False},
        }
    ]


def test_options_omitted_when_unset(client: JudgeClient, fake: FakeJudge) -> None:
    client.score("helpfulness@abc123", make_items(1))
    assert fake.bodies() == [
        {"rubric": "helpfulness@abc123", "items": [{"id": "a0", "prompt": "q0", "response": "r"}]}
    ]


def test_read_timeout_covers_judge_timeout(fake: FakeJudge) -> None:
    c = JudgeClient(
        BASE_URL,
        transport=httpx.MockTransport(fake),
        timeout=Timeout(connect=1, read=10, write=2, pool=3),
    )
    c.score("helpfulness", make_items(1), timeout_s=50)
    c.score("helpfulness", make_items(1))
    assert fake.requests[0].extensions["timeout"] == {
        "connect": 1,
        "read": 55.0,
        "write": 2,
        "pool": 3,
    }
    assert fake.requests[1].extensions["timeout"]["read"] == 10


def test_results_are_matched_by_id(fake: FakeJudge, sleeps: list[float]) -> None:
    fake.reverse = True
    c = JudgeClient(BASE_URL, transport=httpx.MockTransport(fake), chunk_size=3)
    assert [r.id for r in c.score("h", make_items(5)).results] == ["a0", "a1", "a2", "a3", "a4"]


def test_integer_ids_become_text(client: JudgeClient, fake: FakeJudge) -> None:
    items = [{"id": 7, "prompt": "p", "response": "r"}, {"id": 8, "prompt": "p", "response": "r"}]
    assert [r.id for r in client.score("helpfulness", items).results] == ["7", "8"]
    assert [i["id"] for i in fake.bodies()[0]["items"]] == ["7", "8"]


def test_duplicate_ids_rejected_before_sending(client: JudgeClient, fake: FakeJudge) -> None:
    items = [{"id": "1", "prompt": "p", "response": "r"}, {"prompt": "p", "response": "r"}]
    with pytest.raises(ValueError, match="duplicate item id '1'"):
        client.score("helpfulness", items)
    assert fake.requests == []


def test_invalid_item_rejected_before_sending(client: JudgeClient, fake: FakeJudge) -> None:
    with pytest.raises(ValueError, match="refrence"):
        client.score("helpfulness", [{"prompt": "p", "response": "r", "refrence": "typo"}])
    assert fake.requests == []


def test_rubric_version_change_mid_call_is_logged(
    fake: FakeJudge, client: JudgeClient, caplog: pytest.LogCaptureFixture
) -> None:
    fake.versions = ["v1", "v2", "v2"]
    with caplog.at_level(logging.WARNING, logger="judge_client"):
        result = client.score("helpfulness", make_items(5))
    assert result.rubric.version == "v1"
    assert "changed during a chunked score call" in caplog.text


@pytest.mark.parametrize(
    "body",
    [
        {"rubric": {"name": "h", "version": "v"}, "model": "m", "results": []},
        {
            "rubric": {"name": "h", "version": "v"},
            "model": "m",
            "results": [{"id": "other", "status": "ok", "reward": 1.0}],
        },
        {"rubric": "h", "model": "m", "results": []},
        ["not", "an", "object"],
    ],
)
def test_malformed_score_response(client: JudgeClient, fake: FakeJudge, body: Any) -> None:
    fake.script = [httpx.Response(200, json=body)]
    with pytest.raises(APIResponseValidationError):
        client.score("helpfulness", make_items(1))


def test_non_json_success_body(client: JudgeClient, fake: FakeJudge) -> None:
    fake.script = [httpx.Response(200, text="<html>proxy</html>")]
    with pytest.raises(APIResponseValidationError, match="not JSON"):
        client.score("helpfulness", make_items(1))


def test_extra_response_fields_are_kept(client: JudgeClient, fake: FakeJudge) -> None:
    fake.script = [
        httpx.Response(
            200,
            json={
                "rubric": {"name": "h", "version": "v", "mode": "pointwise"},
                "model": "m",
                "usage": {"tokens": 3},
                "results": [{"id": "a0", "status": "ok", "reward": 0.5, "latency_ms": 12}],
            },
        )
    ]
    result = client.score("h", make_items(1))
    assert result.model_extra == {"usage": {"tokens": 3}}
    assert result.results[0].model_extra == {"latency_ms": 12}
    assert "retries" not in result.model_dump()


# -- rewards never invent a value ---------------------------------------------------------


def test_usage_is_typed_and_summed_over_chunks(sleeps: list[float]) -> None:
    fake = FakeJudge(usage=True)
    with JudgeClient(
        BASE_URL, transport=httpx.MockTransport(fake), sleep=sleeps.append, chunk_size=2
    ) as client:
        resp = client.score("helpfulness", make_items(3))
    assert [r.usage for r in resp.results] == [
        Usage(prompt_tokens=10 * n, cached_prompt_tokens=n, engine_calls=1) for n in (1, 2, 3)
    ]
    assert len(fake.requests) == 2
    assert resp.total_usage == Usage(prompt_tokens=60, cached_prompt_tokens=6, engine_calls=3)


def test_a_server_without_usage_reports_none(client: JudgeClient) -> None:
    resp = client.score("helpfulness", make_items(3))
    assert [r.usage for r in resp.results] == [None, None, None]
    assert resp.total_usage is None  # not a total of 0 engine calls


def test_rewards_keep_failures_as_none(fake: FakeJudge, client: JudgeClient) -> None:
    fake.fail = ("a1", "a3")
    assert client.rewards("helpfulness", make_items(4)) == [0.01, None, 0.03, None]


def test_failed_status_with_zero_reward_is_still_none(client: JudgeClient, fake: FakeJudge) -> None:
    fake.script = [
        httpx.Response(
            200,
            json={
                "rubric": {"name": "h", "version": "v"},
                "model": "m",
                "results": [
                    {"id": "a0", "status": "timeout", "reward": 0.0},
                    {"id": "a1", "status": "ok", "reward": 0.0},
                ],
            },
        )
    ]
    assert client.rewards("h", make_items(2)) == [None, 0.0]


def test_score_one(client: JudgeClient, fake: FakeJudge) -> None:
    result = client.score_one("helpfulness", "q", "abc", reference="ref", metadata={"m": 1})
    assert result.ok
    assert result.reward == 0.03
    assert fake.bodies()[0]["items"] == [
        {"id": "0", "prompt": "q", "response": "abc", "reference": "ref", "metadata": {"m": 1}}
    ]


# -- retries ------------------------------------------------------------------------------


def test_retry_on_503_then_success(
    client: JudgeClient, fake: FakeJudge, sleeps: list[float]
) -> None:
    fake.script = [error_response(503, "overloaded", "busy")]
    result = client.score("helpfulness", make_items(2))
    assert result.retries == 1
    assert sleeps == [0.5]
    assert len(fake.requests) == 2
    assert [r.reward for r in result.results] == [0.01, 0.02]


def test_retries_are_summed_over_chunks(
    client: JudgeClient, fake: FakeJudge, sleeps: list[float]
) -> None:
    fake.script = [
        error_response(502, "bad_gateway", "x"),  # chunk 1, attempt 1
        error_response(500, "internal", "x"),  # chunk 1, attempt 2
        httpx.Response(
            200,
            json={
                "rubric": {"name": "h", "version": "v1"},
                "model": "m",
                "results": [
                    {"id": "a0", "status": "ok", "reward": 1.0},
                    {"id": "a1", "status": "ok", "reward": 1.0},
                ],
            },
        ),
        raising(httpx.ConnectError),  # chunk 2, attempt 1
    ]
    result = client.score("helpfulness", make_items(3))
    assert result.retries == 3
    assert sleeps == [0.5, 1.0, 0.5]


def test_429_retry_after_is_honoured(
    client: JudgeClient, fake: FakeJudge, sleeps: list[float]
) -> None:
    fake.script = [
        error_response(429, "rate_limited", "slow down", headers={"retry-after": "7"}),
        error_response(429, "rate_limited", "slow down", headers={"retry-after": "3600"}),
    ]
    result = client.score("helpfulness", make_items(1))
    assert sleeps == [7.0, 60.0]
    assert result.retries == 2


def test_422_raises_immediately_with_envelope(
    client: JudgeClient, fake: FakeJudge, sleeps: list[float]
) -> None:
    fake.script = [
        error_response(
            422,
            "invalid_rubric",
            "unknown criterion 'x'",
            "rubric.criteria",
            headers={"x-request-id": "req-42"},
        )
    ]
    with pytest.raises(UnprocessableEntityError) as info:
        client.score("helpfulness", make_items(1))
    err = info.value
    assert (err.status_code, err.error_type, err.message, err.param, err.request_id) == (
        422,
        "invalid_rubric",
        "unknown criterion 'x'",
        "rubric.criteria",
        "req-42",
    )
    assert err.body == {
        "error": {
            "type": "invalid_rubric",
            "message": "unknown criterion 'x'",
            "param": "rubric.criteria",
        }
    }
    assert "invalid_rubric" in str(err)
    assert len(fake.requests) == 1
    assert sleeps == []


@pytest.mark.parametrize(
    ("status", "exc_type"),
    [(400, BadRequestError), (404, NotFoundError), (409, APIStatusError)],
)
def test_other_4xx_not_retried(
    client: JudgeClient,
    fake: FakeJudge,
    sleeps: list[float],
    status: int,
    exc_type: type[APIStatusError],
) -> None:
    fake.script = [error_response(status, "nope", "no")]
    with pytest.raises(exc_type):
        client.score("helpfulness", make_items(1))
    assert len(fake.requests) == 1
    assert sleeps == []


def test_5xx_gives_up_after_max_retries(
    client: JudgeClient, fake: FakeJudge, sleeps: list[float]
) -> None:
    fake.script = [httpx.Response(502, text="Bad Gateway from proxy")] * 4
    with pytest.raises(InternalServerError) as info:
        client.score("helpfulness", make_items(1))
    assert info.value.status_code == 502
    assert info.value.error_type is None
    assert info.value.message == "Bad Gateway from proxy"
    assert len(fake.requests) == 4
    assert sleeps == [0.5, 1.0, 2.0]


def test_rate_limit_error_after_retries(client: JudgeClient, fake: FakeJudge) -> None:
    fake.script = [error_response(429, "rate_limited", "slow", headers={"retry-after": "0"})] * 4
    with pytest.raises(RateLimitError):
        client.score("helpfulness", make_items(1))
    assert len(fake.requests) == 4


def test_timeouts_raise_after_retries(
    client: JudgeClient, fake: FakeJudge, sleeps: list[float]
) -> None:
    fake.script = [raising(httpx.ReadTimeout)] * 4
    with pytest.raises(APITimeoutError) as info:
        client.score("helpfulness", make_items(1))
    assert isinstance(info.value.__cause__, httpx.ReadTimeout)
    assert len(fake.requests) == 4
    assert sleeps == [0.5, 1.0, 2.0]


def test_connection_errors_raise_after_retries(client: JudgeClient, fake: FakeJudge) -> None:
    fake.script = [raising(httpx.ConnectError)] * 4
    with pytest.raises(APIConnectionError) as info:
        client.score("helpfulness", make_items(1))
    assert not isinstance(info.value, APITimeoutError)
    assert len(fake.requests) == 4


def test_max_retries_zero(fake: FakeJudge, sleeps: list[float]) -> None:
    c = JudgeClient(
        BASE_URL,
        transport=httpx.MockTransport(fake),
        retry=RetryPolicy(max_retries=0),
        sleep=sleeps.append,
    )
    fake.script = [error_response(503, "overloaded", "busy")]
    with pytest.raises(InternalServerError):
        c.score("helpfulness", make_items(1))
    assert sleeps == []


def test_retries_apply_to_rubric_calls(
    client: JudgeClient, fake: FakeJudge, sleeps: list[float]
) -> None:
    fake.script = [error_response(503, "overloaded", "busy")]
    assert client.list_rubrics()[0]["name"] == "helpfulness"
    assert sleeps == [0.5]


# -- other endpoints ----------------------------------------------------------------------


def test_auth_headers(fake: FakeJudge) -> None:
    c = JudgeClient(
        BASE_URL,
        transport=httpx.MockTransport(fake),
        api_key="sk-user",
        admin_token="sk-admin",
        headers={"x-team": "rl"},
    )
    c.get_rubric("helpfulness")
    c.put_rubric("helpfulness", {"criteria": "x"})
    c.delete_rubric("helpfulness")
    auth = [r.headers.get("authorization") for r in fake.requests]
    assert auth == ["Bearer sk-user", "Bearer sk-admin", "Bearer sk-admin"]
    assert all(r.headers["x-team"] == "rl" for r in fake.requests)
    assert fake.requests[0].headers["user-agent"].startswith("judge-client/")


def test_custom_headers_override_case_insensitively(fake: FakeJudge) -> None:
    c = JudgeClient(
        BASE_URL,
        transport=httpx.MockTransport(fake),
        api_key="sk-user",
        headers={"Authorization": "Token other", "User-Agent": "trainer/1"},
    )
    c.list_rubrics()
    assert fake.requests[0].headers.get_list("authorization") == ["Token other"]
    assert fake.requests[0].headers["user-agent"] == "trainer/1"


def test_no_auth_header_without_key(fake: FakeJudge) -> None:
    JudgeClient(BASE_URL, transport=httpx.MockTransport(fake)).list_rubrics()
    assert "authorization" not in fake.requests[0].headers


def test_rubric_crud(client: JudgeClient, fake: FakeJudge) -> None:
    assert client.list_rubrics() == [
        {"name": "helpfulness", "version": "v1", "mode": "pointwise", "description": "d"}
    ]
    assert client.get_rubric("helpfulness")["version"] == "v1"
    assert client.put_rubric("new rubric", {"criteria": "c"}) == {
        "name": "new rubric",
        "version": "v2",
    }
    client.delete_rubric("new rubric")
    assert [(r.method, r.url.raw_path) for r in fake.requests] == [
        ("GET", b"/v1/rubrics"),
        ("GET", b"/v1/rubrics/helpfulness"),
        ("PUT", b"/v1/rubrics/new%20rubric"),
        ("DELETE", b"/v1/rubrics/new%20rubric"),
    ]
    assert fake.bodies()[2] == {"criteria": "c"}
    with pytest.raises(NotFoundError) as info:
        client.get_rubric("missing")
    assert info.value.param == "name"
    with pytest.raises(ValueError, match="empty"):
        client.get_rubric("")


def test_score_group(client: JudgeClient, fake: FakeJudge) -> None:
    out = client.score_group(
        "helpfulness", [{"role": "user", "content": "q"}], ["a", "bb"], reference="r", timeout_s=5
    )
    assert out == {"rewards": [0.01, 0.02]}
    assert fake.requests[0].url.path == "/v1/score/group"
    assert fake.bodies()[0] == {
        "rubric": "helpfulness",
        "prompt": [{"role": "user", "content": "q"}],
        "responses": ["a", "bb"],
        "reference": "r",
        "options": {"timeout_s": 5},
    }


@pytest.mark.parametrize(
    ("step", "expected"),
    [
        (httpx.Response(200, json={"status": "ok"}), True),
        (httpx.Response(503, json={"status": "starting"}), False),
        (httpx.Response(500), False),
        (raising(httpx.ConnectError), False),
        (raising(httpx.ConnectTimeout), False),
    ],
)
@pytest.mark.parametrize("probe", ["health", "ready"])
def test_probes(
    client: JudgeClient,
    fake: FakeJudge,
    sleeps: list[float],
    probe: str,
    step: Step,
    expected: bool,
) -> None:
    fake.script = [step]
    assert getattr(client, probe)() is expected
    assert [r.url.path for r in fake.requests] == [f"/{probe}"]  # probes never retry
    assert sleeps == []


def test_probe_raises_on_misconfiguration(client: JudgeClient, fake: FakeJudge) -> None:
    fake.script = [error_response(404, "not_found", "no such route")]
    with pytest.raises(NotFoundError):
        client.ready()


# -- construction and lifetime ------------------------------------------------------------


def test_context_manager_closes_owned_client(fake: FakeJudge) -> None:
    with JudgeClient(BASE_URL, transport=httpx.MockTransport(fake)) as c:
        assert c.health()
    assert c._http.is_closed


def test_borrowed_http_client_is_not_closed(fake: FakeJudge) -> None:
    seen: list[httpx.URL] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.url)
        return httpx.Response(200, json={"status": "ok"})

    http = httpx.Client(transport=httpx.MockTransport(handler))
    with JudgeClient(BASE_URL + "/prefix/", http_client=http) as c:
        assert c.health()
    assert not http.is_closed
    assert seen == [httpx.URL("http://judge.test/prefix/health")]
    http.close()


def test_invalid_construction() -> None:
    with pytest.raises(ValueError, match="chunk_size"):
        JudgeClient(BASE_URL, chunk_size=0)
    with pytest.raises(ValueError, match="either"):
        JudgeClient(
            BASE_URL, transport=httpx.MockTransport(FakeJudge()), http_client=httpx.Client()
        )
    with pytest.raises(ValueError, match="max_concurrency"):
        AsyncJudgeClient(BASE_URL, max_concurrency=0)


def test_timeout_argument_forms() -> None:
    assert JudgeClient(BASE_URL, timeout=3).timeout == Timeout.uniform(3)
    assert JudgeClient(BASE_URL, timeout=None).timeout == Timeout.uniform(None)
    assert JudgeClient(BASE_URL).timeout == Timeout()
    with pytest.raises(ValueError, match="read"):
        Timeout(read=-1)


# -- async --------------------------------------------------------------------------------


class AsyncFake:
    """Wraps FakeJudge in an async handler that yields and tracks concurrency."""

    def __init__(self, fake: FakeJudge) -> None:
        self.fake = fake
        self.in_flight = 0
        self.max_in_flight = 0

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            await asyncio.sleep(0.01)
            return self.fake(request)
        finally:
            self.in_flight -= 1


def make_async_client(fake: FakeJudge, sleeps: list[float], **kwargs: Any) -> AsyncJudgeClient:
    async def sleep(delay: float) -> None:
        sleeps.append(delay)

    kwargs.setdefault("transport", httpx.MockTransport(AsyncFake(fake)))
    kwargs.setdefault("chunk_size", 2)
    return AsyncJudgeClient(BASE_URL, retry=NO_JITTER, sleep=sleep, **kwargs)


@pytest.mark.asyncio
async def test_async_chunking_is_concurrent_and_bounded(
    fake: FakeJudge, sleeps: list[float]
) -> None:
    handler = AsyncFake(fake)
    async with make_async_client(
        fake, sleeps, transport=httpx.MockTransport(handler), max_concurrency=3
    ) as c:
        result = await c.score("helpfulness", make_items(11))
    assert len(fake.requests) == 6
    assert [r.id for r in result.results] == [f"a{i}" for i in range(11)]
    assert [r.reward for r in result.results] == [(i + 1) / 100 for i in range(11)]
    assert handler.max_in_flight == 3


@pytest.mark.asyncio
async def test_async_retry_on_503_then_success(fake: FakeJudge, sleeps: list[float]) -> None:
    fake.script = [error_response(503, "overloaded", "busy")]
    async with make_async_client(fake, sleeps) as c:
        result = await c.score("helpfulness", make_items(1))
    assert result.retries == 1
    assert sleeps == [0.5]


@pytest.mark.asyncio
async def test_async_429_retry_after(fake: FakeJudge, sleeps: list[float]) -> None:
    fake.script = [error_response(429, "rate_limited", "slow", headers={"retry-after": "2.5"})]
    async with make_async_client(fake, sleeps) as c:
        result = await c.score("helpfulness", make_items(1))
    assert sleeps == [2.5]
    assert result.retries == 1


@pytest.mark.asyncio
async def test_async_422_not_retried(fake: FakeJudge, sleeps: list[float]) -> None:
    fake.script = [error_response(422, "invalid_input", "bad item", "items[0].prompt")]
    async with make_async_client(fake, sleeps) as c:
        with pytest.raises(UnprocessableEntityError) as info:
            await c.score("helpfulness", make_items(1))
    assert (info.value.error_type, info.value.message, info.value.param) == (
        "invalid_input",
        "bad item",
        "items[0].prompt",
    )
    assert len(fake.requests) == 1
    assert sleeps == []


@pytest.mark.asyncio
async def test_async_timeouts_raise_after_retries(fake: FakeJudge, sleeps: list[float]) -> None:
    fake.script = [raising(httpx.ReadTimeout)] * 4
    async with make_async_client(fake, sleeps) as c:
        with pytest.raises(APITimeoutError):
            await c.score("helpfulness", make_items(1))
    assert len(fake.requests) == 4
    assert sleeps == [0.5, 1.0, 2.0]


@pytest.mark.asyncio
async def test_async_rewards_keep_failures_as_none(fake: FakeJudge, sleeps: list[float]) -> None:
    fake.fail = ("a0", "a4")
    async with make_async_client(fake, sleeps) as c:
        assert await c.rewards("helpfulness", make_items(5)) == [None, 0.02, 0.03, 0.04, None]


@pytest.mark.asyncio
async def test_async_failed_chunk_cancels_the_rest(fake: FakeJudge, sleeps: list[float]) -> None:
    fake.script = [error_response(400, "invalid_input", "bad")]
    async with make_async_client(fake, sleeps, max_concurrency=1) as c:
        with pytest.raises(BadRequestError):
            await c.score("helpfulness", make_items(10))
    assert len(fake.requests) == 1  # the queued chunks were never sent


@pytest.mark.asyncio
async def test_async_other_endpoints(fake: FakeJudge, sleeps: list[float]) -> None:
    async with make_async_client(fake, sleeps, api_key="k", admin_token="adm") as c:
        assert (await c.score_one("helpfulness", "q", "ab")).reward == 0.02
        assert await c.score_group("helpfulness", "q", ["a"]) == {"rewards": [0.01]}
        assert (await c.list_rubrics())[0]["name"] == "helpfulness"
        assert (await c.get_rubric("helpfulness"))["version"] == "v1"
        assert (await c.put_rubric("r", {"c": 1}))["version"] == "v2"
        await c.delete_rubric("r")
        assert await c.health()
        fake.script = [httpx.Response(503)]
        assert not await c.ready()
    assert fake.requests[4].headers["authorization"] == "Bearer adm"
    assert fake.requests[0].headers["authorization"] == "Bearer k"


@pytest.mark.asyncio
async def test_async_borrowed_client_not_closed(fake: FakeJudge, sleeps: list[float]) -> None:
    http = httpx.AsyncClient(transport=httpx.MockTransport(fake))
    async with make_async_client(fake, sleeps, transport=None, http_client=http) as c:
        assert await c.health()
    assert not http.is_closed
    await http.aclose()
