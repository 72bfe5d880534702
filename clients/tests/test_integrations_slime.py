"""The slime adapter against an in-process fake judge-server (``_judge_fake``).

slime's calls are built as ``slime/rollout/rm_hub/__init__.py`` makes them at commit
624b824a898ab0ec1fcb4d373004c7f3852bf515: ``async_rm`` awaits
``load_function(args.custom_rm_path)(args, sample)``, ``batched_async_rm`` the same path with
the list of samples; ``load_function`` (``slime/utils/misc.py``) imports the dotted path up to
its last dot. ``Sample`` below has the fields of ``slime/utils/types.py`` that matter here.
"""

from __future__ import annotations

import asyncio
import importlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import pytest
from _judge_fake import MODEL, RETRIES, FakeJudge, install, reward_of, version

from judge_client import APIConnectionError, InternalServerError
from judge_client.integrations import slime

URL = "http://judge.test"


@dataclass
class Sample:
    """``slime.utils.types.Sample``, the fields the reward path touches."""

    prompt: str | list[dict[str, str]] = ""
    response: str = ""
    label: str | None = None
    reward: float | dict[str, Any] | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    remove_sample: bool = False

    def get_reward_value(self, args: Any) -> Any:  # slime/utils/types.py
        return self.reward if not args.reward_key else self.reward[args.reward_key]  # type: ignore[index]


def load_function(path: str) -> Any:
    """``slime/utils/misc.py`` ``load_function``."""
    module_path, _, attr = path.rpartition(".")
    module = importlib.import_module(module_path)
    return getattr(module, attr)


async def async_rm(args: Any, sample: Sample, **kwargs: Any) -> Any:
    """``async_rm`` with ``--custom-rm-path`` (no per-sample ``custom_rm_path``)."""
    rm_function = load_function(args.custom_rm_path)
    return await rm_function(args, sample, **kwargs)


async def batched_async_rm(args: Any, samples: list[Sample], **kwargs: Any) -> list[Any]:
    rm_function = load_function(args.custom_rm_path)
    return await rm_function(args, samples, **kwargs)  # type: ignore[no-any-return]


def make_args(path: str = "judge_client.integrations.slime.reward", **extra: Any) -> Any:
    return SimpleNamespace(custom_rm_path=path, reward_key="reward", **extra)


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeJudge]:
    yield from install(monkeypatch)


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JUDGE_SERVER_URL", URL)
    monkeypatch.setenv("JUDGE_RUBRIC", "helpfulness")


def test_one_sample_gets_a_flat_reward_dict(fake: FakeJudge, env: None) -> None:
    args = make_args()
    sample = Sample(prompt="Capital of France?", response="Paris.", label="Paris")
    sample.reward = asyncio.run(async_rm(args, sample))
    assert sample.reward == {
        "reward": reward_of("Paris."),
        "ok": True,
        "status": "ok",
        "error": None,
        "rubric": "helpfulness",
        "rubric_version": version("helpfulness"),
        "model": MODEL,
        "cached": False,
    }
    assert sample.get_reward_value(args) == reward_of("Paris.")  # --reward-key reward
    assert fake.items == [
        {"id": "0", "prompt": "Capital of France?", "response": "Paris.", "reference": "Paris"}
    ]
    assert sample.remove_sample is False


def test_chat_prompts_labels_and_metadata_prompt_are_mapped(fake: FakeJudge, env: None) -> None:
    chat = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi?"}]
    samples = [
        Sample(prompt=chat, response="Hello.", label=None),
        Sample(prompt="<|im_start|>user\nHi?<|im_end|>", response="Hey.", label=""),
        Sample(prompt="templated", response="r", label=7, metadata={"judge_prompt": "raw q"}),  # type: ignore[arg-type]
    ]
    asyncio.run(batched_async_rm(make_args(), samples))
    first, second, third = fake.items
    assert (first["prompt"], first.get("reference")) == (chat, None)
    assert (second["prompt"], second.get("reference")) == ("<|im_start|>user\nHi?<|im_end|>", None)
    assert (third["prompt"], third["reference"]) == ("raw q", "7")


def test_settings_env_then_args_then_sample_metadata(
    fake: FakeJudge, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("JUDGE_SERVER_URL", "http://env-judge:1")
    monkeypatch.setenv("JUDGE_RUBRIC", "correctness")
    monkeypatch.setenv("JUDGE_API_KEY", "env-key")
    asyncio.run(async_rm(make_args(), Sample(prompt="q", response="r", label="a")))
    # --custom-config-path YAML keys become args attributes
    args = make_args(
        judge_server_url="http://args-judge:2", judge_rubric="helpfulness", judge_api_key="k2"
    )
    asyncio.run(async_rm(args, Sample(prompt="q", response="r")))
    asyncio.run(
        async_rm(args, Sample(prompt="q", response="r", metadata={"judge_rubric": "correctness"}))
    )
    env_req, args_req, _ = fake.requests
    assert str(env_req.url) == "http://env-judge:1/v1/score"
    assert env_req.headers["authorization"] == "Bearer env-key"
    assert str(args_req.url) == "http://args-judge:2/v1/score"
    assert args_req.headers["authorization"] == "Bearer k2"
    assert [b["rubric"] for b in fake.bodies] == ["correctness", "helpfulness", "correctness"]


def test_missing_settings_are_clear_errors(
    fake: FakeJudge, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("JUDGE_SERVER_URL", URL)
    with pytest.raises(ValueError, match=r"no judge_rubric.*JUDGE_RUBRIC"):
        asyncio.run(async_rm(make_args(), Sample(prompt="q", response="r")))
    assert fake.requests == []


def test_a_failed_sample_gets_the_fill_value_flagged_and_removed_from_the_loss(
    fake: FakeJudge, env: None
) -> None:
    args = make_args()
    samples = [Sample(prompt="q", response="good"), Sample(prompt="q", response="FAIL")]
    for sample, reward in zip(samples, asyncio.run(batched_async_rm(args, samples)), strict=True):
        sample.reward = reward
    good, bad = samples
    assert bad.reward == {
        "reward": 0.0,
        "ok": False,
        "status": "judge_error",
        "error": "boom",
        "rubric": "helpfulness",
        "rubric_version": version("helpfulness"),
        "model": MODEL,
        "cached": False,
    }
    assert bad.get_reward_value(args) == 0.0
    assert bad.remove_sample is True
    assert good.remove_sample is False
    # --log-reward-category status (slime/observability/rollout_metrics.py)
    categories = [s.reward["status"] for s in samples]  # type: ignore[index]
    assert categories == ["ok", "judge_error"]


def test_fill_value_and_loss_removal_are_configurable(
    fake: FakeJudge, env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("JUDGE_FILL_VALUE", "-0.5")
    sample = Sample(prompt="q", response="FAIL")
    assert asyncio.run(async_rm(make_args(), sample))["reward"] == -0.5
    sample = Sample(prompt="q", response="FAIL")
    args = make_args(judge_fill_value=0.1, judge_remove_failed=False)
    assert asyncio.run(async_rm(args, sample))["reward"] == 0.1
    assert sample.remove_sample is False


def test_a_sample_the_client_cannot_send_fails_alone(fake: FakeJudge, env: None) -> None:
    no_role: Any = [{"content": "no role"}]
    samples = [Sample(prompt=no_role, response="r"), Sample(prompt="q", response="r")]
    bad, good = asyncio.run(batched_async_rm(make_args(), samples))
    assert (bad["status"], bad["ok"], bad["reward"]) == ("invalid_input", False, 0.0)
    assert bad["error"].startswith("not sent:")
    assert good["ok"] is True
    assert len(fake.items) == 1


def test_a_server_that_is_down_raises_after_the_retries(fake: FakeJudge, env: None) -> None:
    fake.down = True
    with pytest.raises(APIConnectionError):
        asyncio.run(async_rm(make_args(), Sample(prompt="q", response="r")))
    assert len(fake.requests) == RETRIES + 1
    fake.down, fake.status = False, 503
    with pytest.raises(InternalServerError):
        asyncio.run(batched_async_rm(make_args(), [Sample(prompt="q", response="r")]))


def test_a_group_is_one_request_in_order(fake: FakeJudge, env: None) -> None:
    """``--group-rm``: ``generate_and_rm_group`` passes a prompt's samples together."""
    args = make_args("judge_client.integrations.slime.batched_reward")
    group = [Sample(prompt="q", response="x" * i, label="a") for i in range(1, 9)]
    rewards = asyncio.run(batched_async_rm(args, group))
    assert len(fake.requests) == 1
    assert [r["reward"] for r in rewards] == [reward_of("x" * i) for i in range(1, 9)]
    assert [i["response"] for i in fake.items] == ["x" * i for i in range(1, 9)]


def test_reward_takes_a_list_too_and_groups_by_rubric(fake: FakeJudge, env: None) -> None:
    samples = [
        Sample(prompt="a", response="1"),
        Sample(prompt="b", response="2", metadata={"judge_rubric": "correctness"}),
        Sample(prompt="c", response="3"),
    ]
    rewards = asyncio.run(batched_async_rm(make_args(), samples))
    assert [b["rubric"] for b in fake.bodies] == ["helpfulness", "correctness"]
    assert [r["rubric"] for r in rewards] == ["helpfulness", "correctness", "helpfulness"]
    assert asyncio.run(slime.batched_reward(make_args(), [])) == []


def test_nested_sample_lists_are_refused(fake: FakeJudge, env: None) -> None:
    with pytest.raises(TypeError, match="group-rm"):
        asyncio.run(slime.batched_reward(make_args(), [[Sample()]]))  # type: ignore[list-item]


def test_a_samples_own_criteria_travel_in_metadata(fake: FakeJudge, env: None) -> None:
    criteria = [{"criterion": "Says hello", "points": 3, "tags": []}]
    samples = [
        Sample(prompt="Hi?", response="Hello.", label=None, metadata={"rubrics": criteria}),  # type: ignore[arg-type]
        Sample(prompt="Hi?", response="Hey.", label=None, metadata={"rubrics": "not json"}),  # type: ignore[arg-type]
    ]
    out = asyncio.run(batched_async_rm(make_args(), samples))
    (sent,) = fake.items  # the second could not be sent: invalid_input on its own
    assert sent["rubrics"] == criteria
    assert out[1]["status"] == "invalid_input"
    assert not out[1]["ok"]


def test_a_samples_persona_travels_as_item_metadata(fake: FakeJudge, env: None) -> None:
    samples = [
        Sample(prompt="Hi?", response="Hello.", metadata={"persona": "venting"}),
        Sample(prompt="Hi?", response="Hey."),
    ]
    asyncio.run(batched_async_rm(make_args(), samples))
    with_persona, without = fake.items
    assert with_persona["metadata"] == {"persona": "venting"}
    assert "metadata" not in without
