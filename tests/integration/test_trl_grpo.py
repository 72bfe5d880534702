"""A real TRL ``GRPOTrainer`` (trl==1.16.0) trains one step on CPU, the embedded SmolLM2-135M as
the policy, with its rewards from the live server through ``judge_client.integrations.trl``:
a sync pointwise function, an async one that maps a dataset column to ``reference``, and a
group (Pref-GRPO) one. The embedded model is a weak judge: these tests prove the plumbing
between TRL and the server, never judgment quality."""

from __future__ import annotations

import asyncio
import math
import re
import time
import warnings
from pathlib import Path
from typing import Any

import httpx
import pytest
from judge_client.integrations.trl import (
    AsyncJudgeRewardFunc,
    JudgeRewardFunc,
    make_async_reward_func,
    make_reward_func,
)

from judge_server.engines.model_store import ensure_embedded_model
from judge_server.settings import Settings

# TRL warns on import that it has not been tested with the installed vLLM; training emits
# transformers/torch UserWarnings that are not ours to fix.
pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")

QUESTIONS = [
    ("What is 2 + 2?", "4"),
    ("What is the capital of France?", "Paris"),
    ("Name a primary colour.", "Red"),
    ("How many legs does a spider have?", "8"),
]
NUM_GENERATIONS = 2
MAX_COMPLETION_TOKENS = 16

TOOL_PROMPT = [
    {"role": "system", "content": "You can call tools."},
    {"role": "user", "content": "What is the weather in Paris?"},
    {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {
                "id": "call_1",
                "type": "function",
                "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
            }
        ],
    },
    {"role": "tool", "tool_call_id": "call_1", "content": '{"temp_c": 18, "sky": "clear"}'},
]


def judged_items(server_url: str) -> float:
    """The server's judge_items counter, summed over rubrics, modes and statuses."""
    text = httpx.get(f"{server_url}/metrics", timeout=30).text
    return sum(
        float(m.group(1))
        for m in re.finditer(r"^judge_items_total\{[^}]*\} (\S+)$", text, flags=re.MULTILINE)
    )


def test_grpo_step_with_judge_rewards(server_url: str, tmp_path: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import torch
        from datasets import Dataset
        from transformers import AutoModelForCausalLM, AutoTokenizer
        from trl.trainer.grpo_config import GRPOConfig
        from trl.trainer.grpo_trainer import GRPOTrainer

    folder = ensure_embedded_model(Settings().cache_dir)  # the server's own conversion, cached
    tokenizer = AutoTokenizer.from_pretrained(folder)
    policy = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32)
    dataset = Dataset.from_list(
        [{"prompt": [{"role": "user", "content": q}], "answer": a} for q, a in QUESTIONS]
    )
    helpful = make_reward_func("helpfulness", base_url=server_url)
    correct = make_async_reward_func("correctness", base_url=server_url, reference_column="answer")
    pref = make_reward_func("pairwise", base_url=server_url, group=True, name="pref")
    args = GRPOConfig(
        output_dir=str(tmp_path),
        per_device_train_batch_size=len(QUESTIONS) * NUM_GENERATIONS,
        gradient_accumulation_steps=1,
        num_generations=NUM_GENERATIONS,
        max_completion_length=MAX_COMPLETION_TOKENS,
        max_steps=1,
        learning_rate=1e-6,
        logging_steps=1,
        report_to="none",
        save_strategy="no",
        use_cpu=True,
        bf16=False,
        fp16=False,
        use_vllm=False,
        dataloader_num_workers=0,
        disable_tqdm=True,
        seed=0,
    )
    trainer = GRPOTrainer(
        model=policy,
        reward_funcs=[helpful, correct, pref],
        args=args,
        train_dataset=dataset,
        processing_class=tokenizer,
    )
    before = judged_items(server_url)
    started = time.monotonic()
    trainer.train()
    step_s = time.monotonic() - started
    after = judged_items(server_url)

    logged: dict[str, Any] = {}
    for entry in trainer.state.log_history:
        logged.update(entry)
    for name in ("judge_helpfulness", "judge_correctness", "pref"):
        mean = logged.get(f"rewards/{name}/mean")
        assert mean is not None, sorted(logged)
        assert math.isfinite(mean), (name, mean)  # NaN would mean every item failed
        assert 0.0 <= mean <= 1.0, (name, mean)
        # log_metric reached TRL's metrics, averaged over the step
        failed = logged[f"rewards/{name}/failed_frac"]
        assert 0.0 <= failed < 1.0, (name, failed)
    # log_extra reached the completions table: one status per completion
    n = len(QUESTIONS) * NUM_GENERATIONS
    extra: dict[str, Any] = trainer._logs["extra"]  # type: ignore[assignment]
    statuses = list(extra["judge_correctness/status"])
    assert len(statuses) == n
    assert "ok" in statuses, statuses
    # Every completion was judged by the server: pointwise twice (8 + 8), and one
    # comparison in two orders per prompt of the group function (when the texts differ).
    assert after - before >= 2 * n, (before, after)
    print(f"GRPO step with judge rewards: {step_s:.1f} s; judged items +{after - before:g}")


def test_tool_message_scores_per_item(server_url: str) -> None:
    """A conversation with tool calls and a ``tool`` message scores: the item gets a status of
    its own (ok, or invalid_input if the judge cannot read it), never a 422 for the batch."""
    statuses: list[str] = []

    def log_extra(column: str, values: list[Any]) -> None:
        statuses.extend(values)

    plain = [{"role": "user", "content": "What is the capital of Japan?"}]
    answer = [{"role": "assistant", "content": "It is 18 degrees and clear in Paris."}]
    judge = make_reward_func("helpfulness", base_url=server_url)
    assert isinstance(judge, JudgeRewardFunc)
    rewards = judge(
        prompts=[TOOL_PROMPT, plain],
        completions=[answer, [{"role": "assistant", "content": "Tokyo."}]],
        log_extra=log_extra,
    )
    assert statuses[0] in ("ok", "invalid_input"), statuses
    assert statuses[1] == "ok", statuses
    assert (rewards[0] is None) == (statuses[0] != "ok")
    assert rewards[1] is not None
    assert 0.0 <= rewards[1] <= 1.0

    group = make_async_reward_func("pairwise", base_url=server_url, group=True)
    assert isinstance(group, AsyncJudgeRewardFunc)

    group_statuses: list[str] = []
    group_rewards = asyncio.run(
        group(
            prompts=[TOOL_PROMPT, TOOL_PROMPT],
            completions=[answer, [{"role": "assistant", "content": "No idea."}]],
            log_extra=lambda _c, values: group_statuses.extend(values),
        )
    )
    assert len(group_rewards) == 2
    assert len(group_statuses) == 2
    assert set(group_statuses) <= {"ok", "invalid_input"}, group_statuses
    assert all(
        (r is None) == (s != "ok") for r, s in zip(group_rewards, group_statuses, strict=True)
    )
    print(f"tool-message prompt: pointwise {statuses[0]}, group {group_statuses}")
