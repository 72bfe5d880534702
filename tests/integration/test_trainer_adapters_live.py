"""The client-side trainer adapters (``judge_client.integrations.verl`` / ``.verifiers`` /
``.slime``) on the real engine, called the way each trainer calls them.

- verifiers 0.4.0 is installed (dev dependency): a real ``vf.Task`` with the judge plugged in by
  ``vf.TaskConfig(rewards=...)``, scored by its own ``Task.score`` on a real ``vf.Trace``.
- veRL 0.9.1 (installed ``--no-deps`` by scripts/install.sh with ray, tensordict, omegaconf,
  codetiming, pyvers and orjson): its own code runs: ``RewardLoopWorker`` (reward
  loop, ``verl/experimental/reward_loop/reward_loop.py``) loads the adapter through
  ``get_custom_reward_fn`` and scores a ``DataProto`` with ``NaiveRewardManager.run_single``;
  ``BatchRewardManager`` (``verl/workers/reward_manager/batch.py``) runs the batch form; and
  ``test_verl_calls_as_verl_makes_them`` builds the same calls as
  verl 0.9.1 makes them (``verl/trainer/ppo/reward.py`` ``_call_with_kwargs``: reward_kwargs
  merged into the call's keywords and winning; ``naive.py`` ``run_single``: keywords
  ``data_source``/``solution_str``/``ground_truth``/``extra_info``; ``batch.py`` ``verify``:
  the plural keywords).
- slime cannot be installed from the package index (the ``slime`` name there is another
  project), so ``async_rm`` / ``batched_async_rm`` below repeat
  ``slime/rollout/rm_hub/__init__.py`` at commit 624b824a898ab0ec1fcb4d373004c7f3852bf515 for
  ``--custom-rm-path`` (``load_function`` of ``slime/utils/misc.py``, then
  ``await rm(args, sample)`` / ``await rm(args, samples)``), and ``Sample`` has the fields of
  ``slime/utils/types.py`` that the reward path reads and sets.
"""

from __future__ import annotations

import asyncio
import importlib
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import partial
from types import ModuleType, SimpleNamespace
from typing import Any

import httpx
import judge_client.integrations.verl as verl_adapter
import numpy as np
import pytest
import verifiers.v1 as vf
from judge_client import APIConnectionError, JudgeClient
from judge_client.integrations._clients import CLIENTS
from judge_client.integrations.verifiers import make_reward_func
from verifiers.v1.graph import MessageNode
from verifiers.v1.types import AssistantMessage, UserMessage

from judge_server.cli.bench.servers import free_port
from judge_server.engines.model_store import resolve_model
from judge_server.settings import Settings

QUESTION = "What is the capital of France?"
ANSWER = "The capital of France is Paris."
WRONG = "The capital of France is Berlin."
LABEL = "Paris"
IMAGE_PROMPT = [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}]


@pytest.fixture(autouse=True)
def fresh_clients() -> Iterator[None]:
    CLIENTS.clear()
    yield
    CLIENTS.clear()


@pytest.fixture(scope="module")
def model_path() -> str:
    return resolve_model(None, Settings().cache_dir)[0]


def assert_judged(rubric: str, version: str, model: str) -> None:
    assert len(version) == 12, version
    assert model.startswith("SmolLM2-135M"), model
    assert rubric in ("helpfulness", "correctness")


class CountingTransport(httpx.HTTPTransport):
    """Counts the HTTP requests a sync client sends."""

    def __init__(self) -> None:
        super().__init__()
        self.count = 0

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.count += 1
        return super().handle_request(request)


@pytest.fixture
def counting(monkeypatch: pytest.MonkeyPatch) -> CountingTransport:
    transport = CountingTransport()
    monkeypatch.setattr(
        CLIENTS, "sync_factory", lambda url, key: JudgeClient(url, api_key=key, transport=transport)
    )
    return transport


# -- veRL: its own reward loop ---------------------------------------------------------------


VERL_MODULES = (
    "verl.experimental.reward_loop.reward_loop",
    "verl.experimental.reward_loop.reward_manager.naive",
    "verl.trainer.ppo.reward",
    "verl.workers.reward_manager.batch",
)


@pytest.fixture(scope="module")
def verl() -> ModuleType:
    """veRL, with the modules the tests use imported."""
    with warnings.catch_warnings():
        # ray, imported by verl, warns about its own deprecated modules on import
        warnings.simplefilter("ignore", DeprecationWarning)
        module = importlib.import_module("verl")  # installed --no-deps by scripts/install.sh
        for name in VERL_MODULES:
            importlib.import_module(name)
    return module


def verl_batch(verl: Any, tokenizer: Any, rows: list[dict[str, Any]]) -> Any:
    """A ``DataProto`` as the rollout hands it to the reward: left-padded prompts, right-padded
    responses ending in EOS, and the non-tensor columns of veRL's parquet rows."""
    import torch

    width = 24
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    prompts, responses, masks = [], [], []
    for row in rows:
        p = tokenizer.encode(row["question"] if isinstance(row["question"], str) else "q")[:width]
        r = [*tokenizer.encode(row["response"]), tokenizer.eos_token_id][:width]
        prompts.append([pad] * (width - len(p)) + p)
        responses.append(r + [pad] * (width - len(r)))
        masks.append([0] * (width - len(p)) + [1] * len(p) + [1] * len(r) + [0] * (width - len(r)))
    prompt_ids, response_ids = torch.tensor(prompts), torch.tensor(responses)
    extra = [
        {
            "question": row["question"],
            **({"judge_rubric": row["rubric"]} if "rubric" in row else {}),
        }
        for row in rows
    ]
    return verl.DataProto.from_dict(
        tensors={
            "prompts": prompt_ids,
            "responses": response_ids,
            "input_ids": torch.cat([prompt_ids, response_ids], dim=1),
            "attention_mask": torch.tensor(masks),
        },
        non_tensors={
            "data_source": np.array(["openai/gsm8k"] * len(rows), dtype=object),
            "reward_model": np.array(
                [{"ground_truth": row["label"]} for row in rows], dtype=object
            ),
            "extra_info": np.array(extra, dtype=object),
        },
    )


def verl_config(model_path: str, path: str, name: str, server_url: str) -> Any:
    from omegaconf import OmegaConf

    return OmegaConf.create(
        {
            "actor_rollout_ref": {"model": {"path": model_path, "tokenizer_path": None}},
            "reward": {
                "custom_reward_function": {
                    "path": path,
                    "name": name,
                    "reward_kwargs": {
                        "judge_server_url": server_url,
                        "judge_rubric": "helpfulness",
                    },
                },
                "reward_manager": {
                    "source": "register",
                    "name": "naive",
                    "module": {"path": None, "name": "custom_reward_manager"},
                },
                "reward_model": {"enable": False},
            },
        }
    )


VERL_ROWS = [
    {"question": QUESTION, "response": ANSWER, "label": LABEL},
    {"question": QUESTION, "response": ANSWER, "label": LABEL, "rubric": "correctness"},
    # no reference for a rubric that needs one: the server says invalid_input
    {"question": QUESTION, "response": ANSWER, "label": "", "rubric": "correctness"},
    {"question": IMAGE_PROMPT, "response": ANSWER, "label": LABEL},
]


@pytest.mark.parametrize(
    ("path", "name"),
    [
        ("pkg://judge_client.integrations.verl", "compute_score_async"),
        (verl_adapter.__file__, "compute_score"),
    ],
)
def test_verl_reward_loop_scores_with_the_adapter(
    verl: Any, model_path: str, server_url: str, path: str, name: str
) -> None:
    from transformers import AutoTokenizer
    from verl.experimental.reward_loop.reward_loop import RewardLoopWorker
    from verl.experimental.reward_loop.reward_manager.naive import NaiveRewardManager

    data = verl_batch(verl, AutoTokenizer.from_pretrained(model_path), VERL_ROWS)
    config = verl_config(model_path, path, name, server_url)

    async def run() -> list[dict[str, Any]]:
        worker = RewardLoopWorker(config)  # what each reward-loop Ray actor runs
        assert worker.reward_manager.is_async_reward_score == name.endswith("_async")
        outputs: list[dict[str, Any]] = await worker.compute_score_batch(data)
        await CLIENTS.aclose()
        return outputs

    outputs = asyncio.run(run())
    # RewardLoopManager.compute_rm_score, line for line
    scores = [item["reward_score"] for item in outputs]
    rm_scores = NaiveRewardManager.assemble_rm_scores(data, scores)
    infos = [output.get("reward_extra_info", {}) for output in outputs]
    columns = {key: np.array([info[key] for info in infos]) for key in infos[0]}

    assert rm_scores.sum(dim=1).tolist() == pytest.approx(scores)
    assert columns["judge_ok"].tolist() == [1.0, 1.0, 0.0, 0.0]
    assert columns["judge_status"].tolist() == ["ok", "ok", "invalid_input", "invalid_input"]
    assert columns["judge_rubric"].tolist() == ["helpfulness", "correctness", "correctness",
                                                "helpfulness"]  # fmt: skip
    for i in range(2):
        assert 0.0 <= scores[i] <= 1.0
        assert_judged(infos[i]["judge_rubric"], infos[i]["rubric_version"], infos[i]["judge_model"])
    assert scores[2:] == [0.0, 0.0]  # the fill value, flagged
    assert "reference" in infos[2]["judge_error"]
    assert "image_url" in infos[3]["judge_error"]


def test_verl_batch_reward_manager_sends_one_request(
    verl: Any, model_path: str, server_url: str, counting: CountingTransport
) -> None:
    from transformers import AutoTokenizer
    from verl.trainer.ppo.reward import get_custom_reward_fn
    from verl.workers.reward_manager.batch import BatchRewardManager

    tokenizer = AutoTokenizer.from_pretrained(model_path)
    rows = [{"question": QUESTION, "response": r, "label": LABEL} for r in (ANSWER, WRONG, "Paris")]
    config = verl_config(model_path, verl_adapter.__file__, "compute_score_batch", server_url)
    manager = BatchRewardManager(
        tokenizer, num_examine=0, compute_score=get_custom_reward_fn(config)
    )
    result = manager(verl_batch(verl, tokenizer, rows), return_dict=True)
    assert counting.count == 1
    info = result["reward_extra_info"]
    assert info["judge_ok"] == [1.0, 1.0, 1.0]
    assert result["reward_tensor"].sum(dim=1).tolist() == pytest.approx(info["score"])


# -- veRL: the exact calls, without veRL ----------------------------------------------------


def _call_with_kwargs(raw_fn: Callable[..., Any], extra: dict[str, Any], *a: Any, **kw: Any) -> Any:
    """``verl/trainer/ppo/reward.py`` (verl 0.9.1) ``_call_with_kwargs``."""
    return raw_fn(*a, **{**kw, **extra})


async def _call_with_kwargs_async(
    raw_fn: Callable[..., Any], extra: dict[str, Any], *a: Any, **kw: Any
) -> Any:
    return await raw_fn(*a, **{**kw, **extra})


def test_verl_calls_as_verl_makes_them(server_url: str, counting: CountingTransport) -> None:
    reward_kwargs = {"judge_server_url": server_url, "judge_rubric": "correctness"}
    sync = partial(_call_with_kwargs, verl_adapter.compute_score, reward_kwargs)
    async_ = partial(_call_with_kwargs_async, verl_adapter.compute_score_async, reward_kwargs)
    batch = partial(_call_with_kwargs, verl_adapter.compute_score_batch, reward_kwargs)
    extra_info = {"question": QUESTION, "num_turns": None, "rollout_reward_scores": {}}

    # NaiveRewardManager.run_single: run_in_executor for sync, await for async
    right = sync(
        data_source="gsm8k", solution_str=ANSWER, ground_truth=LABEL, extra_info=extra_info
    )

    async def run() -> dict[str, Any]:
        out: dict[str, Any] = await async_(
            data_source="gsm8k", solution_str=WRONG, ground_truth=LABEL, extra_info=extra_info
        )
        await CLIENTS.aclose()
        return out

    wrong = asyncio.run(run())
    assert right["judge_ok"] == wrong["judge_ok"] == 1.0
    assert 0.0 <= wrong["score"] <= 1.0
    assert_judged(right["judge_rubric"], right["rubric_version"], right["judge_model"])

    # BatchRewardManager.verify: numpy columns as DataProto holds them
    before = counting.count
    outs = batch(
        data_sources=np.array(["gsm8k"] * 3, dtype=object),
        solution_strs=[ANSWER, ANSWER, ANSWER],
        ground_truths=[LABEL, None, LABEL],
        extra_infos=np.array(
            [extra_info, extra_info, {**extra_info, "question": IMAGE_PROMPT}], dtype=object
        ),
    )
    assert counting.count - before == 1
    assert [o["judge_ok"] for o in outs] == [1.0, 0.0, 0.0]
    assert outs[0]["score"] == pytest.approx(right["score"])  # the judge is deterministic
    assert [(o["score"], o["judge_status"]) for o in outs[1:]] == [(0.0, "invalid_input")] * 2


# -- verifiers 0.4.0: Task.score -------------------------------------------------------------


class QAData(vf.TaskData):
    answer: str = ""


class QATask(vf.Task[QAData]):
    helpfulness = vf.reward(make_reward_func("helpfulness", name="helpfulness"), weight=0.0)


def vf_trace(data: QAData, reply: str) -> vf.Trace:
    return vf.Trace(
        agent=vf.AgentInfo(config=vf.AgentConfig()),
        task=vf.TraceTask(type="QATask", data=data),
        nodes=[
            MessageNode(parent=None, message=UserMessage(content=QUESTION), sampled=False),
            MessageNode(parent=0, message=AssistantMessage(content=reply), sampled=True),
        ],
    )


def test_verifiers_task_scores_with_the_judge(
    server_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("JUDGE_SERVER_URL", server_url)
    monkeypatch.setenv("JUDGE_RUBRIC", "correctness")
    config = vf.TaskConfig(
        rewards={"judge": vf.RewardFunctionConfig(fn="judge_client.integrations.verifiers:judge")}
    )
    data = QAData(idx=0, prompt=QUESTION, system_prompt="Answer briefly.", answer=LABEL)

    async def run() -> tuple[vf.Trace, vf.Trace]:
        task = QATask(data, config)
        right, wrong = vf_trace(data, ANSWER), vf_trace(data, WRONG)
        await asyncio.gather(task.score(right), task.score(wrong))
        await CLIENTS.aclose()
        return right, wrong

    right, wrong = asyncio.run(run())
    for trace in (right, wrong):
        assert set(trace.rewards) == {"judge", "helpfulness"}
        assert trace.metrics == {"judge_ok": 1.0, "helpfulness_ok": 1.0}
        for name, rubric in (("judge", "correctness"), ("helpfulness", "helpfulness")):
            info = trace.info["judge_server"][name]
            assert (info["status"], info["rubric"]) == ("ok", rubric)
            assert_judged(info["rubric"], info["rubric_version"], info["model"])
            assert 0.0 <= info["reward"] <= 1.0
    assert right.reward == right.rewards["judge"].score  # type: ignore[union-attr]  # weight 0


def test_verifiers_records_a_task_error_for_a_rollout_it_cannot_judge(server_url: str) -> None:
    judge = make_reward_func("helpfulness", base_url=server_url, name="judge")
    data = QAData(idx=0, prompt=IMAGE_PROMPT)  # type: ignore[arg-type]
    config = vf.TaskConfig(rewards={})

    class Judged(vf.Task[QAData]):
        pass

    Judged.judge = vf.reward(judge)  # type: ignore[attr-defined]
    trace = vf_trace(data, ANSWER)

    async def run() -> None:
        try:
            await Judged(data, config).score(trace)
        finally:
            await CLIENTS.aclose()

    with pytest.raises(vf.TaskError, match="invalid_input"):
        asyncio.run(run())
    assert trace.rewards["judge"] is None
    assert trace.metrics["judge_ok"] == 0.0
    assert trace.info["judge_server"]["judge"]["status"] == "invalid_input"


# -- slime: --custom-rm-path ----------------------------------------------------------------


@dataclass
class SlimeSample:
    """``slime.utils.types.Sample``: the fields of the reward path."""

    prompt: str | list[dict[str, Any]] = ""
    response: str = ""
    label: str | None = None
    reward: float | dict[str, Any] | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    remove_sample: bool = False

    def get_reward_value(self, args: Any) -> Any:
        return self.reward if not args.reward_key else self.reward[args.reward_key]  # type: ignore[index]


def load_function(path: str) -> Any:
    module_path, _, attr = path.rpartition(".")
    return getattr(importlib.import_module(module_path), attr)


async def async_rm(args: Any, sample: SlimeSample, **kwargs: Any) -> Any:
    rm_function = load_function(args.custom_rm_path)
    return await rm_function(args, sample, **kwargs)


async def batched_async_rm(args: Any, samples: list[SlimeSample], **kwargs: Any) -> Any:
    rm_function = load_function(args.custom_rm_path)
    return await rm_function(args, samples, **kwargs)


def test_slime_custom_rm_scores_samples_and_groups(server_url: str) -> None:
    args = SimpleNamespace(
        custom_rm_path="judge_client.integrations.slime.reward",
        reward_key="reward",
        judge_server_url=server_url,  # from --custom-config-path
        judge_rubric="helpfulness",
    )
    group_args = SimpleNamespace(
        **{**vars(args), "custom_rm_path": "judge_client.integrations.slime.batched_reward"}
    )
    one = SlimeSample(prompt=[{"role": "user", "content": QUESTION}], response=ANSWER, label=LABEL)
    correctness = {"judge_rubric": "correctness"}
    group = [
        SlimeSample(prompt=QUESTION, response=ANSWER, label=LABEL, metadata=correctness),
        SlimeSample(prompt=QUESTION, response=ANSWER, label=None, metadata=correctness),
        SlimeSample(prompt=IMAGE_PROMPT, response=ANSWER, label=LABEL),
    ]

    async def run() -> None:
        one.reward = await async_rm(args, one)
        for sample, reward in zip(group, await batched_async_rm(group_args, group), strict=True):
            sample.reward = reward
        await CLIENTS.aclose()

    asyncio.run(run())
    assert isinstance(one.reward, dict)
    assert one.reward["ok"] is True
    assert 0.0 <= one.get_reward_value(args) <= 1.0
    assert_judged(one.reward["rubric"], one.reward["rubric_version"], one.reward["model"])
    rewards: list[dict[str, Any]] = [s.reward for s in group]  # type: ignore[misc]
    assert [r["rubric"] for r in rewards] == ["correctness", "correctness", "helpfulness"]
    assert rewards[0]["ok"] is True
    assert 0.0 <= group[0].get_reward_value(args) <= 1.0
    # a sample the judge cannot score: the fill value, flagged, and out of the loss
    assert [(r["reward"], r["ok"]) for r in rewards[1:]] == [(0.0, False)] * 2
    assert [s.remove_sample for s in group] == [False, True, True]
    # --log-reward-category status
    assert [r["status"] for r in rewards] == ["ok", "invalid_input", "invalid_input"]


# -- a server that is down: retried, then raised, never a reward ---------------------------


def test_adapters_raise_when_the_server_is_down() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(APIConnectionError):
        verl_adapter.compute_score(
            "ds",
            ANSWER,
            LABEL,
            {"question": QUESTION},
            judge_server_url=url,
            judge_rubric="helpfulness",
        )
    args = SimpleNamespace(
        custom_rm_path="judge_client.integrations.slime.reward",
        reward_key="reward",
        judge_server_url=url,
        judge_rubric="helpfulness",
    )
    data = QAData(idx=0, prompt=QUESTION)
    judge = make_reward_func("helpfulness", base_url=url, on_failure="fill")

    async def slime_call() -> Any:
        try:
            return await async_rm(args, SlimeSample(prompt=QUESTION, response=ANSWER))
        finally:
            await CLIENTS.aclose()

    async def verifiers_call() -> float:
        try:
            return await judge(task=data, trace=vf_trace(data, ANSWER))
        finally:
            await CLIENTS.aclose()

    with pytest.raises(APIConnectionError):
        asyncio.run(slime_call())
    with pytest.raises(APIConnectionError):
        asyncio.run(verifiers_call())
