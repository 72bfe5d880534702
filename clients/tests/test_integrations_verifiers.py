"""The verifiers adapter against an in-process fake judge-server (``_judge_fake``).

verifiers 0.4.0 itself runs the scoring here: a real ``vf.Task`` with the judge plugged in by
``vf.TaskConfig(rewards=...)`` or as a ``vf.reward`` class attribute, scored by
``Task.score(trace)`` on a real ``vf.Trace``. The classic ``vf.Rubric`` call (not in 0.4.0) is
built as ``verifiers/legacy/rubrics/rubric.py`` ``_call_individual_reward_func`` of verifiers
0.3.1 makes it.
"""

from __future__ import annotations

import asyncio
import inspect
import pickle
from collections.abc import Iterator
from typing import Any

import pytest
import verifiers.v1 as vf
from _judge_fake import MODEL, RETRIES, FakeJudge, install, reward_of, version
from verifiers.v1.graph import MessageNode
from verifiers.v1.types import AssistantMessage, UserMessage

from judge_client import APIConnectionError
from judge_client.integrations import verifiers as adapter
from judge_client.integrations.verifiers import JudgeReward, JudgeScoreError, make_reward_func

URL = "http://judge.test"


class QAData(vf.TaskData):
    answer: str = ""
    gold: str = ""


class QATask(vf.Task[QAData]):
    pass


def make_trace(data: QAData, reply: str) -> vf.Trace:
    return vf.Trace(
        agent=vf.AgentInfo(config=vf.AgentConfig()),
        task=vf.TraceTask(type="QATask", data=data),
        nodes=[
            MessageNode(parent=None, message=UserMessage(content="question"), sampled=False),
            MessageNode(parent=0, message=AssistantMessage(content=reply), sampled=True),
        ],
    )


def plugged(name: str, fn: str, weight: float = 1.0) -> vf.TaskConfig:
    return vf.TaskConfig(rewards={name: vf.RewardFunctionConfig(fn=fn, weight=weight)})


async def score(task: vf.Task[Any], reply: str) -> vf.Trace:
    trace = make_trace(task.data, reply)
    await task.score(trace)
    return trace


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeJudge]:
    yield from install(monkeypatch)


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JUDGE_SERVER_URL", URL)
    monkeypatch.setenv("JUDGE_RUBRIC", "correctness")


# -- verifiers 0.4.0: Task.score ------------------------------------------------------------


def test_the_configured_judge_plugs_into_a_task(fake: FakeJudge, env: None) -> None:
    config = plugged("judge", "judge_client.integrations.verifiers:judge", weight=0.5)
    task = QATask(QAData(idx=0, prompt="Capital of France?", answer="Paris"), config)
    trace = asyncio.run(score(task, "It is Paris."))
    assert trace.rewards["judge"] == vf.Reward(score=reward_of("It is Paris."), weight=0.5)
    assert trace.reward == pytest.approx(0.5 * reward_of("It is Paris."))
    assert trace.metrics["judge_ok"] == 1.0
    assert trace.info["judge_server"]["judge"] == {
        "ok": True,
        "status": "ok",
        "error": None,
        "reward": reward_of("It is Paris."),
        "rubric": "correctness",
        "rubric_version": version("correctness"),
        "model": MODEL,
        "cached": False,
    }
    (body,) = fake.bodies
    assert body == {
        "rubric": "correctness",
        "items": [
            {
                "id": "0",
                "prompt": "Capital of France?",
                "response": "It is Paris.",
                "reference": "Paris",
            }
        ],
    }


def test_a_factory_made_judge_as_a_task_attribute(fake: FakeJudge, env: None) -> None:
    class Judged(vf.Task[QAData]):
        helpfulness = vf.reward(
            make_reward_func("helpfulness", base_url="http://other:9", name="helpfulness"),
            weight=2.0,
        )

    task = Judged(QAData(idx=0, prompt="q", answer="a"))
    trace = asyncio.run(score(task, "reply"))
    assert trace.rewards["helpfulness"] == vf.Reward(score=reward_of("reply"), weight=2.0)
    assert str(fake.requests[0].url) == "http://other:9/v1/score"
    assert fake.bodies[0]["rubric"] == "helpfulness"


def test_system_prompt_and_chat_prompts_are_sent_as_messages(fake: FakeJudge, env: None) -> None:
    config = plugged("judge", "judge_client.integrations.verifiers:judge")
    asyncio.run(score(QATask(QAData(prompt="Hi?", system_prompt="Be brief."), config), "Hello."))
    chat = [UserMessage(content="Hi?")]
    asyncio.run(score(QATask(QAData(prompt=chat, system_prompt="Be brief."), config), "Hello."))
    asyncio.run(score(QATask(QAData(prompt=chat), config), "Hello."))
    with_system = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi?"}]
    assert [i["prompt"] for i in fake.items] == [
        with_system,
        with_system,
        [{"role": "user", "content": "Hi?"}],
    ]


def test_the_reference_field_is_configurable(fake: FakeJudge, env: None) -> None:
    data = QAData(prompt="q", answer="from answer", gold="from gold")
    for judge in (make_reward_func(), make_reward_func(reference_field="gold"),
                  make_reward_func(reference_field=None)):  # fmt: skip
        asyncio.run(judge(task=data, trace=make_trace(data, "r")))
    assert [i.get("reference") for i in fake.items] == ["from answer", "from gold", None]


def test_arguments_override_the_environment_read_at_call_time(
    fake: FakeJudge, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = QAData(prompt="q")
    from_env = make_reward_func()
    monkeypatch.setenv("JUDGE_SERVER_URL", "http://env:1")
    monkeypatch.setenv("JUDGE_RUBRIC", "helpfulness")
    monkeypatch.setenv("JUDGE_API_KEY", "env-key")
    asyncio.run(from_env(task=data, trace=make_trace(data, "r")))
    explicit = make_reward_func("correctness@abc", base_url="http://arg:2", api_key="arg-key")
    asyncio.run(explicit(task=data, trace=make_trace(data, "r")))
    env_req, arg_req = fake.requests
    assert (str(env_req.url), env_req.headers["authorization"]) == (
        "http://env:1/v1/score",
        "Bearer env-key",
    )
    assert (str(arg_req.url), arg_req.headers["authorization"]) == (
        "http://arg:2/v1/score",
        "Bearer arg-key",
    )
    assert [b["rubric"] for b in fake.bodies] == ["helpfulness", "correctness@abc"]
    assert (from_env.__name__, explicit.__name__) == ("judge", "judge_correctness")


def test_missing_settings_are_clear_errors(
    fake: FakeJudge, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = QAData(prompt="q")
    monkeypatch.setenv("JUDGE_SERVER_URL", URL)
    with pytest.raises(ValueError, match=r"no rubric.*JUDGE_RUBRIC"):
        asyncio.run(make_reward_func()(task=data, trace=make_trace(data, "r")))
    with pytest.raises(ValueError, match="on_failure"):
        make_reward_func(on_failure="ignore")  # type: ignore[arg-type]


def test_a_failed_rollout_raises_and_verifiers_records_a_task_error(
    fake: FakeJudge, env: None
) -> None:
    config = plugged("judge", "judge_client.integrations.verifiers:judge")
    task = QATask(QAData(prompt="q", answer="a"), config)
    trace = make_trace(task.data, "FAIL")
    with pytest.raises(vf.TaskError, match=r"JudgeScoreError.*judge_error: boom") as caught:
        asyncio.run(task.score(trace))
    assert isinstance(caught.value.__cause__, JudgeScoreError)
    assert trace.rewards["judge"] is None  # seeded: "scoring didn't run"
    assert trace.metrics["judge_ok"] == 0.0
    flagged = trace.info["judge_server"]["judge"]
    assert (flagged["ok"], flagged["status"]) == (False, "judge_error")
    assert (flagged["error"], flagged["reward"]) == ("boom", None)
    # what Rollout.close does with it: the trace is failed, not trained on as a 0
    trace.record_error(caught.value)
    assert (trace.ok, trace.stop_condition) == (False, "task_error")


def test_on_failure_fill_records_the_fill_value_flagged(
    fake: FakeJudge, env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("JUDGE_FILL_VALUE", "-1")

    class Filled(vf.Task[QAData]):
        judge = vf.reward(make_reward_func(name="judge", on_failure="fill"))

    trace = asyncio.run(score(Filled(QAData(prompt="q")), "FAIL"))
    assert trace.rewards["judge"] == vf.Reward(score=-1.0)
    assert trace.metrics["judge_ok"] == 0.0
    assert trace.info["judge_server"]["judge"]["status"] == "judge_error"


def test_a_server_that_is_down_raises_after_the_retries(fake: FakeJudge, env: None) -> None:
    fake.down = True
    config = plugged("judge", "judge_client.integrations.verifiers:judge")
    task = QATask(QAData(prompt="q"), config)
    with pytest.raises(vf.TaskError) as caught:
        asyncio.run(task.score(make_trace(task.data, "r")))
    assert isinstance(caught.value.__cause__, APIConnectionError)
    assert len(fake.requests) == RETRIES + 1
    # fill mode never turns an unreachable server into a reward
    data = QAData(prompt="q")
    fill_judge = make_reward_func(on_failure="fill")
    with pytest.raises(APIConnectionError):
        asyncio.run(fill_judge(task=data, trace=make_trace(data, "r")))


# -- classic vf.Rubric (verifiers <= 0.3.x, verifiers.legacy) -----------------------------


async def classic_call(func: Any, **merged: Any) -> float:
    """``Rubric._call_individual_reward_func`` (verifiers 0.3.1): all score objects when the
    function takes ``**kwargs``, awaited if it returns an awaitable, then ``float()``."""
    sig = inspect.signature(func)
    assert any(p.kind == p.VAR_KEYWORD for p in sig.parameters.values())
    result = func(**merged)
    if inspect.isawaitable(result):
        result = await result
    return float(result)


def classic_objects(prompt: Any, completion: Any, answer: str, state: dict[str, Any]) -> Any:
    return {"prompt": prompt, "completion": completion, "answer": answer, "state": state,
            "info": {}, "task": None, "parser": object()}  # fmt: skip


def test_a_classic_rubric_call_is_judged(fake: FakeJudge, env: None) -> None:
    judge = make_reward_func("helpfulness")
    # Rubric._is_group_func: no plural parameter names, not annotated as returning a list
    params = set(inspect.signature(judge).parameters)
    assert not params & {"states", "prompts", "completions", "answers", "tasks", "infos"}
    prompt = [{"role": "user", "content": "Capital of France?"}]
    completion = [{"role": "assistant", "content": "Paris."}]
    state: dict[str, Any] = {}
    reward = asyncio.run(classic_call(judge, **classic_objects(prompt, completion, "Paris", state)))
    assert reward == reward_of("Paris.")
    assert fake.items == [{"id": "0", "prompt": prompt, "response": "Paris.", "reference": "Paris"}]
    assert state["judge_server"]["judge_helpfulness"]["ok"] is True


def test_a_classic_failure_is_the_fill_value_flagged_in_state(fake: FakeJudge, env: None) -> None:
    state: dict[str, Any] = {}
    reward = asyncio.run(
        classic_call(make_reward_func(), **classic_objects("q", "FAIL", "", state))
    )
    assert reward == 0.0
    assert state["judge_server"]["judge"]["status"] == "judge_error"
    assert "reference" not in fake.items[0]  # an empty answer is no reference
    with pytest.raises(JudgeScoreError, match="judge_error: boom"):
        asyncio.run(
            classic_call(
                make_reward_func(on_failure="raise"), **classic_objects("q", "FAIL", "", {})
            )
        )


def test_a_call_with_neither_form_is_a_type_error(fake: FakeJudge, env: None) -> None:
    with pytest.raises(TypeError, match="needs verifiers"):
        asyncio.run(make_reward_func()(prompt="q"))


def test_the_reward_function_pickles_with_its_settings(fake: FakeJudge, env: None) -> None:
    judge = make_reward_func("helpfulness", base_url=URL, name="h", fill_value=0.5)
    copy = pickle.loads(pickle.dumps(judge))
    assert isinstance(copy, JudgeReward)
    assert (copy.__name__, copy.rubric, copy.base_url, copy.fill_value) == (
        "h",
        "helpfulness",
        URL,
        0.5,
    )
    assert pickle.loads(pickle.dumps(adapter.judge)).__name__ == "judge"
