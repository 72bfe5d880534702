"""The TRL adapter against an in-process fake judge-server (httpx.MockTransport).

The fake judges pointwise items by length (reward = len(response) / 100, a response containing
"FAIL" gets judge_error) and groups by length too (win rate: longer beats shorter, equal ties),
answering group results in reverse order so that the adapter must map them by ``index``.
"""

from __future__ import annotations

import asyncio
import json
import pickle
import threading
import warnings
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from judge_client import (
    APIConnectionError,
    AsyncJudgeClient,
    InternalServerError,
    JudgeClient,
    NotFoundError,
    RetryPolicy,
    UnprocessableEntityError,
)
from judge_client.integrations.trl import (
    AsyncJudgeRewardFunc,
    JudgeRewardFunc,
    make_async_reward_func,
    make_reward_func,
)

BASE_URL = "http://judge.test"
NO_RETRY = RetryPolicy(max_retries=0)


def error(status: int, type_: str, message: str, param: str | None = None) -> httpx.Response:
    return httpx.Response(
        status, json={"error": {"type": type_, "message": message, "param": param}}
    )


def win_rates(responses: list[str]) -> list[float]:
    n = len(responses)
    out = []
    for i, a in enumerate(responses):
        points = sum(
            1.0 if len(a) > len(b) else 0.5 if len(a) == len(b) else 0.0
            for j, b in enumerate(responses)
            if j != i
        )
        out.append(points / (n - 1))
    return out


class FakeJudge:
    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []
        self.script: list[httpx.Response | Callable[[httpx.Request], httpx.Response]] = []
        self.lock = threading.Lock()

    def bodies(self, path: str) -> list[dict[str, Any]]:
        return [json.loads(r.content) for r in self.requests if r.url.path == path]

    def __call__(self, request: httpx.Request) -> httpx.Response:
        with self.lock:
            self.requests.append(request)
            step = self.script.pop(0) if self.script else None
        if step is not None:
            return step if isinstance(step, httpx.Response) else step(request)
        body = json.loads(request.content)
        if request.url.path == "/v1/score":
            return self.score(body)
        if request.url.path == "/v1/score/group":
            return self.group(body)
        return error(404, "not_found", request.url.path)

    @staticmethod
    def score(body: dict[str, Any]) -> httpx.Response:
        results = []
        for item in body["items"]:
            if "FAIL" in item["response"]:
                results.append(
                    {"id": item["id"], "status": "judge_error", "reward": None, "error": "bad"}
                )
            else:
                reward = len(item["response"]) / 100
                results.append({"id": item["id"], "status": "ok", "reward": reward})
        return httpx.Response(
            200,
            json={
                "rubric": {"name": "helpfulness", "version": "v1"},
                "model": "judge-model",
                "results": results,
            },
        )

    @staticmethod
    def group(body: dict[str, Any]) -> httpx.Response:
        prompt = body["prompt"]
        text = prompt if isinstance(prompt, str) else json.dumps(prompt)
        if "BADPROMPT" in text:
            return error(422, "invalid_request", "prompt message 0: role 'x'", "prompt")
        rates = win_rates(body["responses"])
        results = [
            {"index": i, "status": "ok", "reward": r, "details": {}} for i, r in enumerate(rates)
        ]
        results.reverse()  # the adapter must use "index", not the position
        return httpx.Response(
            200,
            json={
                "rubric": {"name": "pairwise", "version": "v1"},
                "model": "judge-model",
                "results": results,
                "comparisons": [],
                "pairing": {"strategy": "all_pairs", "comparisons": 0, "judge_calls": 0},
            },
        )


@pytest.fixture
def fake() -> FakeJudge:
    return FakeJudge()


@pytest.fixture
def client(fake: FakeJudge) -> Iterator[JudgeClient]:
    with JudgeClient(
        BASE_URL, transport=httpx.MockTransport(fake), retry=NO_RETRY, sleep=lambda _: None
    ) as c:
        yield c


@pytest.fixture
def aclient(fake: FakeJudge) -> AsyncJudgeClient:
    async def handler(request: httpx.Request) -> httpx.Response:
        return fake(request)

    async def no_sleep(_: float) -> None:
        return None

    return AsyncJudgeClient(
        BASE_URL, transport=httpx.MockTransport(handler), retry=NO_RETRY, sleep=no_sleep
    )


class TrlLogs:
    """Stands in for the ``log_metric`` / ``log_extra`` callbacks TRL passes."""

    def __init__(self) -> None:
        self.metrics: dict[str, list[float]] = {}
        self.extra: dict[str, list[Any]] = {}

    def log_metric(self, name: str, value: float) -> None:
        self.metrics.setdefault(name, []).append(value)

    def log_extra(self, column: str, values: list[Any]) -> None:
        self.extra.setdefault(column, []).extend(values)

    def kwargs(self) -> dict[str, Any]:
        # What GRPOTrainer._calculate_rewards adds beside the dataset columns.
        return {
            "trainer_state": object(),
            "log_extra": self.log_extra,
            "log_metric": self.log_metric,
        }


def trl_helpers() -> tuple[Callable[[Any], str], Callable[[Any], bool]]:
    """TRL's own ``get_callable_name`` and ``is_async_callable`` (the trainer uses them)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # TRL warns about the installed vLLM version on import
        utils = pytest.importorskip("trl.trainer.utils")
    return utils.get_callable_name, utils.is_async_callable


# -- pointwise -------------------------------------------------------------------------


def test_plain_text(client: JudgeClient, fake: FakeJudge) -> None:
    judge = make_reward_func("helpfulness", client=client)
    rewards = judge(prompts=["q1", "q2"], completions=["abc", "abcdefghij"], completion_ids=None)

    assert rewards == [0.03, 0.10]
    (body,) = fake.bodies("/v1/score")
    assert body["rubric"] == "helpfulness"
    assert body["items"] == [
        {"id": "0", "prompt": "q1", "response": "abc"},
        {"id": "1", "prompt": "q2", "response": "abcdefghij"},
    ]


def test_conversational(client: JudgeClient, fake: FakeJudge) -> None:
    prompt = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Capital of France?"},
    ]
    completions = [
        [{"role": "assistant", "content": "Paris."}],
        [{"role": "assistant", "content": [{"type": "text", "text": "It is Paris."}]}],
    ]
    judge = make_reward_func("helpfulness", client=client)
    rewards = judge(prompts=[prompt, prompt], completions=completions, completion_ids=[[1], [2]])

    assert rewards == [0.06, 0.12]
    items = fake.bodies("/v1/score")[0]["items"]
    assert [i["prompt"] for i in items] == [prompt, prompt]
    assert [i["response"] for i in items] == ["Paris.", "It is Paris."]


def test_tool_message_is_sent_as_is(client: JudgeClient, fake: FakeJudge) -> None:
    prompt = [
        {"role": "user", "content": "Weather in Paris?"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [{"type": "function", "function": {"name": "w", "arguments": "{}"}}],
        },
        {"role": "tool", "content": "18C"},
    ]
    judge = make_reward_func("helpfulness", client=client)
    assert judge(prompts=[prompt], completions=[[{"role": "assistant", "content": "18C"}]]) == [
        0.03
    ]
    sent = fake.bodies("/v1/score")[0]["items"][0]["prompt"]
    assert [m["role"] for m in sent] == ["user", "assistant", "tool"]
    assert sent[1]["tool_calls"][0]["function"]["name"] == "w"


def test_reference_column(client: JudgeClient, fake: FakeJudge) -> None:
    judge = make_reward_func("correctness", client=client, reference_column="answer")
    judge(
        prompts=["2+2?", "3+3?", "x?", "y?", "z?"],
        completions=["4", "6", "?", "?", "?"],
        answer=["4", 6, None, "", ["a", "b"]],
        other=["a", "b", "c", "d", "e"],
    )
    items = fake.bodies("/v1/score")[0]["items"]
    assert [i.get("reference") for i in items] == ["4", "6", None, None, '["a", "b"]']
    assert all("other" not in i and "metadata" not in i for i in items)


def test_rubrics_column_sends_each_samples_own_criteria(
    client: JudgeClient, fake: FakeJudge
) -> None:
    criteria = [{"criterion": "Says 4", "points": 5, "tags": ["axis:accuracy"]}]
    judge = make_reward_func("healthbench", client=client, rubrics_column="rubrics")
    # TRL passes every dataset column as a keyword (GRPOTrainer._calculate_rewards)
    judge(prompts=["2+2?", "3+3?"], completions=["4", "6"], rubrics=[criteria, None])
    items = fake.bodies("/v1/score")[0]["items"]
    assert items[0]["rubrics"] == criteria
    assert "rubrics" not in items[1]
    with pytest.raises(ValueError, match="rubrics_column 'rubrics'"):
        judge(prompts=["q"], completions=["a"])
    with pytest.raises(ValueError, match="group mode"):
        make_reward_func("pairwise", client=client, group=True, rubrics_column="rubrics")


def test_persona_column_sends_each_samples_persona(client: JudgeClient, fake: FakeJudge) -> None:
    judge = make_reward_func("simulated_user", client=client, persona_column="persona")
    judge(prompts=["Hi.", "Hi."], completions=["Hello.", "Hey."], persona=["venting", None])
    items = fake.bodies("/v1/score")[0]["items"]
    assert items[0]["metadata"] == {"persona": "venting"}
    assert "metadata" not in items[1]
    with pytest.raises(ValueError, match="persona_column 'persona'"):
        judge(prompts=["q"], completions=["a"])
    with pytest.raises(ValueError, match="group mode"):
        make_reward_func("pairwise", client=client, group=True, persona_column="persona")


def test_missing_reference_column_names_the_columns(client: JudgeClient) -> None:
    judge = make_reward_func("correctness", client=client, reference_column="answer")
    with pytest.raises(ValueError, match=r"'answer'.*\['solution'\]"):
        judge(prompts=["q"], completions=["a"], solution=["s"], **TrlLogs().kwargs())


def test_failed_item_is_none_and_logged(
    client: JudgeClient, caplog: pytest.LogCaptureFixture
) -> None:
    judge = make_reward_func("helpfulness", client=client)
    logs = TrlLogs()
    with caplog.at_level("INFO", logger="judge_client"):
        rewards = judge(
            prompts=["a", "b", "c"], completions=["ok", "FAIL", "fine"], **logs.kwargs()
        )

    assert rewards == [0.02, None, 0.04]
    assert logs.metrics == {"rewards/judge_helpfulness/failed_frac": [pytest.approx(1 / 3)]}
    assert logs.extra == {"judge_helpfulness/status": ["ok", "judge_error", "ok"]}
    assert "1 of 3 completions got no reward (judge_error 1); first error: bad" in caplog.text


def test_unsendable_item_fails_alone(client: JudgeClient, fake: FakeJudge) -> None:
    image = [{"role": "assistant", "content": [{"type": "image_url", "image_url": "x"}]}]
    text = [{"role": "assistant", "content": "hello"}]
    no_role = [{"content": "who am I"}]
    judge = make_reward_func("helpfulness", client=client)
    logs = TrlLogs()
    rewards = judge(prompts=["q", "q", no_role], completions=[image, text, text], **logs.kwargs())

    assert rewards == [None, 0.05, None]
    assert logs.extra["judge_helpfulness/status"] == ["invalid_input", "ok", "invalid_input"]
    assert [i["id"] for i in fake.bodies("/v1/score")[0]["items"]] == ["1"]


def test_nothing_sendable_sends_nothing(client: JudgeClient, fake: FakeJudge) -> None:
    image = [{"role": "assistant", "content": [{"type": "image_url", "image_url": "x"}]}]
    judge = make_reward_func("helpfulness", client=client)
    assert judge(prompts=["q"], completions=[image]) == [None]
    assert fake.requests == []


def test_mismatched_lengths_raise(client: JudgeClient) -> None:
    with pytest.raises(ValueError, match="2 prompts for 1 completions"):
        make_reward_func("helpfulness", client=client)(prompts=["a", "b"], completions=["x"])


# -- names -----------------------------------------------------------------------------


def test_names(client: JudgeClient) -> None:
    get_callable_name, _ = trl_helpers()
    cases = [
        (make_reward_func("helpfulness", client=client), "judge_helpfulness"),
        (make_reward_func("helpfulness@3f2a", client=client), "judge_helpfulness"),
        (make_reward_func("helpfulness", client=client, name="helpful"), "helpful"),
        (make_reward_func({"name": "mine", "mode": "pointwise"}, client=client), "judge_mine"),
        (make_reward_func("pairwise", client=client, group=True), "judge_pairwise"),
    ]
    for func, expected in cases:
        assert func.__name__ == expected
        assert get_callable_name(func) == expected  # what TRL logs rewards/<name> under


def test_rubric_and_url_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JUDGE_RUBRIC", "safety")
    monkeypatch.setenv("JUDGE_SERVER_URL", "http://env.test:9")
    judge = make_reward_func()
    assert judge.__name__ == "judge_safety"
    assert judge.rubric == "safety"
    assert judge.client.base_url == "http://env.test:9"


def test_missing_url_fails_at_construction(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("JUDGE_SERVER_URL", raising=False)
    with pytest.raises(ValueError, match="JUDGE_SERVER_URL"):
        make_reward_func("helpfulness")


# -- group -----------------------------------------------------------------------------


def test_group_by_prompt_with_interleaved_order(client: JudgeClient, fake: FakeJudge) -> None:
    conv_c = [{"role": "user", "content": "C?"}]
    prompts = ["A?", "B?", "A?", conv_c, "B?", "A?", conv_c]
    completions = ["aaaa", "b", "a", "cc", "bbb", "aa", "c"]
    judge = make_reward_func("pairwise", client=client, group=True)
    rewards = judge(prompts=prompts, completions=completions)

    bodies = sorted(fake.bodies("/v1/score/group"), key=lambda b: json.dumps(b["prompt"]))
    assert [(b["prompt"], b["responses"]) for b in bodies] == [
        ("A?", ["aaaa", "a", "aa"]),
        ("B?", ["b", "bbb"]),
        (conv_c, ["cc", "c"]),
    ]
    assert all(b["rubric"] == "pairwise" for b in bodies)
    # Win rates within each prompt's group, back in TRL's order.
    assert rewards == [1.0, 0.0, 0.0, 1.0, 1.0, 0.5, 0.0]


def test_group_splits_by_reference(client: JudgeClient, fake: FakeJudge) -> None:
    judge = make_reward_func("pairwise", client=client, group=True, reference_column="ref")
    judge(prompts=["q"] * 4, completions=["a", "bb", "ccc", "d"], ref=["x", "y", "x", "y"])
    bodies = sorted(fake.bodies("/v1/score/group"), key=lambda b: b["reference"])
    assert [(b["reference"], b["responses"]) for b in bodies] == [
        ("x", ["a", "ccc"]),
        ("y", ["bb", "d"]),
    ]


def test_group_single_completion_is_unpaired(
    client: JudgeClient, fake: FakeJudge, caplog: pytest.LogCaptureFixture
) -> None:
    judge = make_reward_func("pairwise", client=client, group=True)
    logs = TrlLogs()
    rewards = judge(prompts=["A", "B", "A"], completions=["x", "y", "xx"], **logs.kwargs())

    assert rewards == [0.0, None, 1.0]
    assert [b["prompt"] for b in fake.bodies("/v1/score/group")] == ["A"]
    assert logs.extra["judge_pairwise/status"] == ["ok", "unpaired", "ok"]
    assert logs.metrics["rewards/judge_pairwise/failed_frac"] == [pytest.approx(1 / 3)]
    assert "multiple of num_generations" in caplog.text


def test_group_with_unjudgeable_prompt_fails_alone(client: JudgeClient) -> None:
    judge = make_reward_func("pairwise", client=client, group=True)
    logs = TrlLogs()
    rewards = judge(
        prompts=["BADPROMPT", "ok", "BADPROMPT", "ok"],
        completions=["a", "bb", "ccc", "d"],
        **logs.kwargs(),
    )
    assert rewards == [None, 1.0, None, 0.0]
    assert logs.extra["judge_pairwise/status"] == ["invalid_input", "ok", "invalid_input", "ok"]


def test_group_other_422_raises(client: JudgeClient, fake: FakeJudge) -> None:
    fake.script.append(error(422, "invalid_rubric", "rubric is pointwise mode", "rubric"))
    judge = make_reward_func("helpfulness", client=client, group=True)
    with pytest.raises(UnprocessableEntityError, match="pointwise"):
        judge(prompts=["q", "q"], completions=["a", "b"])


# -- failures the trainer must see -----------------------------------------------------


def test_server_down_raises_never_zeros() -> None:
    attempts: list[httpx.Request] = []
    sleeps: list[float] = []

    def refuse(request: httpx.Request) -> httpx.Response:
        attempts.append(request)
        raise httpx.ConnectError("connection refused", request=request)

    down = JudgeClient(
        BASE_URL,
        transport=httpx.MockTransport(refuse),
        retry=RetryPolicy(max_retries=2, jitter=0.0),
        sleep=sleeps.append,
    )
    for group in (False, True):
        attempts.clear()
        judge = make_reward_func("pairwise", client=down, group=group)
        with pytest.raises(APIConnectionError, match="connection refused"):
            judge(prompts=["q", "q"], completions=["a", "b"])
        assert len(attempts) == 3  # the client's retry policy ran out, then it raised
    assert sleeps == [0.5, 1.0, 0.5, 1.0]


def test_server_error_after_retries_raises(client: JudgeClient, fake: FakeJudge) -> None:
    fake.script.append(error(503, "unavailable", "engine not ready"))
    with pytest.raises(InternalServerError):
        make_reward_func("helpfulness", client=client)(prompts=["q"], completions=["a"])


def test_unknown_rubric_raises(client: JudgeClient, fake: FakeJudge) -> None:
    fake.script.append(error(404, "rubric_not_found", "no rubric 'nope'", "rubric"))
    with pytest.raises(NotFoundError):
        make_reward_func("nope", client=client)(prompts=["q"], completions=["a"])


# -- async -----------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_async_form(aclient: AsyncJudgeClient, fake: FakeJudge) -> None:
    _, is_async_callable = trl_helpers()
    judge = make_async_reward_func("helpfulness", client=aclient, reference_column="answer")
    assert isinstance(judge, AsyncJudgeRewardFunc)
    assert is_async_callable(judge)  # TRL awaits it on its event-loop thread
    logs = TrlLogs()
    rewards = await judge(
        prompts=["q", "q"], completions=["abc", "FAIL"], answer=["r", "r"], **logs.kwargs()
    )
    assert rewards == [0.03, None]
    assert logs.extra["judge_helpfulness/status"] == ["ok", "judge_error"]
    assert [i["reference"] for i in fake.bodies("/v1/score")[0]["items"]] == ["r", "r"]
    await aclient.aclose()


@pytest.mark.asyncio
async def test_async_group(aclient: AsyncJudgeClient, fake: FakeJudge) -> None:
    judge = make_async_reward_func("pairwise", client=aclient, group=True, max_concurrency=1)
    rewards = await judge(
        prompts=["A", "B", "A", "B", "C"], completions=["a", "bb", "aa", "b", "c"]
    )
    assert rewards == [0.0, 1.0, 1.0, 0.0, None]
    assert len(fake.bodies("/v1/score/group")) == 2
    await aclient.aclose()


@pytest.mark.asyncio
async def test_async_server_down_raises() -> None:
    async def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    down = AsyncJudgeClient(BASE_URL, transport=httpx.MockTransport(refuse), retry=NO_RETRY)
    judge = make_async_reward_func("helpfulness", client=down)
    with pytest.raises(APIConnectionError):
        await judge(prompts=["q"], completions=["a"])


def test_sync_form_is_not_async() -> None:
    _, is_async_callable = trl_helpers()
    assert not is_async_callable(make_reward_func("helpfulness", base_url=BASE_URL))


# -- threads, laziness, pickling -------------------------------------------------------


def test_called_from_other_threads(client: JudgeClient, fake: FakeJudge) -> None:
    judge = make_reward_func("pairwise", client=client, group=True)
    with ThreadPoolExecutor(4) as pool:
        results = list(
            pool.map(lambda _: judge(prompts=["A", "A"], completions=["a", "aa"]), range(8))
        )
    assert results == [[0.0, 1.0]] * 8
    assert len(fake.bodies("/v1/score/group")) == 8


def test_client_built_once_on_first_use() -> None:
    judge = make_reward_func("helpfulness", base_url=BASE_URL, api_key="sk-1")
    assert judge._client is None  # nothing connects until TRL calls it
    first = judge.client
    assert judge.client is first
    assert first.api_key == "sk-1"
    judge.close()
    assert judge._client is None


def test_pickles_without_its_connection() -> None:
    judge = make_reward_func(
        "correctness", base_url=BASE_URL, reference_column="answer", group=False, timeout_s=30
    )
    _ = judge.client
    copy = pickle.loads(pickle.dumps(judge))
    assert isinstance(copy, JudgeRewardFunc)
    assert copy.__name__ == "judge_correctness"
    assert (copy.rubric, copy.base_url, copy.reference_column, copy.timeout_s) == (
        "correctness",
        BASE_URL,
        "answer",
        30,
    )
    assert copy._client is None
    assert copy.client is not judge.client

    async_copy = pickle.loads(pickle.dumps(make_async_reward_func("x", base_url=BASE_URL)))
    assert isinstance(async_copy, AsyncJudgeRewardFunc)

    async def call() -> None:
        # the copy builds its own client in the loop it runs on
        assert async_copy._client_for_loop() is async_copy._client_for_loop()

    asyncio.run(call())


def test_with_given_client_refuses_to_pickle(client: JudgeClient) -> None:
    with pytest.raises(TypeError, match="client="):
        pickle.dumps(make_reward_func("helpfulness", client=client))


def test_async_client_per_event_loop() -> None:
    judge = make_async_reward_func("helpfulness", base_url=BASE_URL)

    async def current() -> AsyncJudgeClient:
        return judge._client_for_loop()

    first, second = asyncio.run(current()), asyncio.run(current())
    assert first is not second  # an httpx.AsyncClient cannot move to another loop
