"""The trainer dialect routes on the real engine, called by the trainers' own request code.

- OpenRLHF 0.11.2 is installed without its GPU dependencies (scripts/install.sh), so the test runs
  its real ``SingleTurnAgentExecutor.execute`` (``openrlhf/utils/agent.py``): it decodes prompt +
  generated tokens with the real SmolLM2 tokenizer, posts to ``/get_reward`` with its own aiohttp
  code and reads the answer as it does. Only the generation engine is a stand-in (its vLLM).
- slime cannot be installed from the package index (the ``slime`` name there is another
  project), so ``slime_remote_rm`` below repeats ``remote_rm`` of
  ``slime/rollout/rm_hub/__init__.py`` at commit 624b824a898ab0ec1fcb4d373004c7f3852bf515 line
  for line (payload, aiohttp post, ``raise_for_status``, ``resp.json()``), and
  ``Sample.get_reward_value`` of ``slime/utils/types.py`` (``reward[args.reward_key]``).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import aiohttp
import httpx
import pytest
import torch
from openrlhf.utils.agent import SingleTurnAgentExecutor
from transformers import AutoTokenizer

from judge_server.api.templated_prompt import chat_messages
from judge_server.engines.model_store import resolve_model
from judge_server.settings import Settings

QUESTION = "What is the capital of France?"
ANSWER = "The capital of France is Paris."


@pytest.fixture(scope="module")
def tokenizer() -> Any:
    path = Path(resolve_model(None, Settings().cache_dir)[0])
    return AutoTokenizer.from_pretrained(path)


@dataclass
class _Completion:
    token_ids: list[int]
    finish_reason: str = "stop"
    logprobs: Any = None


@dataclass
class _RequestOutput:
    outputs: list[_Completion] = field(default_factory=list)


class _PolicyEngine:
    """OpenRLHF's rollout engine seam (its vLLM): answers with fixed tokens ending in EOS."""

    def __init__(self, answer_ids: list[int]) -> None:
        self.answer_ids = answer_ids

    async def generate(
        self, prompt_token_ids: list[int], sampling_params: Any, multi_modal_data: Any = None
    ) -> _RequestOutput:
        return _RequestOutput([_Completion(list(self.answer_ids))])


def _openrlhf_rollout(url: str, tokenizer: Any, label: str | None) -> dict[str, Any]:
    prompt = tokenizer.apply_chat_template(
        [{"role": "user", "content": QUESTION}], tokenize=False, add_generation_prompt=True
    )
    answer_ids = tokenizer(ANSWER, add_special_tokens=False)["input_ids"]
    answer_ids.append(tokenizer.eos_token_id)
    executor = SingleTurnAgentExecutor(remote_rm_url=url)
    sampling = SimpleNamespace(max_tokens=32, logprobs=None)
    output: dict[str, Any] = asyncio.run(
        executor.execute(
            prompt, label, sampling, 256, tokenizer, _PolicyEngine(answer_ids)
        )
    )
    output["prompt_text"] = prompt
    return output


def test_openrlhf_executor_gets_a_numeric_traceable_reward(
    server_url: str, tokenizer: Any
) -> None:
    output = _openrlhf_rollout(f"{server_url}/get_reward?rubric=helpfulness", tokenizer, "Paris")
    reward = output["reward"]
    assert isinstance(reward, list) and len(reward) == 1 and 0.0 <= reward[0] <= 1.0
    assert output["scores"] == reward
    assert output["extra_logs"] == {"judge_ok": [1.0]}
    # what OpenRLHF does next (samples_generator._process_response_into_experience)
    assert torch.tensor([reward]).shape == (1, 1)
    for value in output["extra_logs"].values():
        torch.tensor([value])
    # The server judged exactly (the templated prompt read back into messages, the answer
    # without its EOS marker): the same item through /v1/score is now a cache hit.
    messages = chat_messages(output["prompt_text"])
    assert isinstance(messages, list) and messages[-1] == {"role": "user", "content": QUESTION}
    item = {"prompt": messages, "response": ANSWER, "reference": "Paris"}
    again = httpx.post(
        f"{server_url}/v1/score",
        json={"rubric": "helpfulness", "items": [item]},
        timeout=120,
    ).json()["results"][0]
    assert again["cached"] is True and again["reward"] == pytest.approx(reward[0])


def test_openrlhf_gets_a_4xx_for_an_unknown_rubric_and_no_reward(
    server_url: str, tokenizer: Any
) -> None:
    resp = httpx.post(
        f"{server_url}/get_reward?rubric=no-such-rubric",
        json={"query": ["p r"], "prompts": ["p"], "labels": [None]},
    )
    assert resp.status_code == 404 and resp.json()["error"]["param"] == "rubric"


async def slime_remote_rm(url: str, sample: SimpleNamespace, max_retries: int = 2) -> Any:
    """``remote_rm`` of slime (commit 624b824a), with its shared session made local."""
    payload = {"prompt": sample.prompt, "response": sample.response, "label": sample.label}
    timeout = aiohttp.ClientTimeout(total=120)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        for attempt in range(max_retries):
            try:
                async with session.post(url, json=payload) as resp:
                    resp.raise_for_status()
                    return await resp.json()
            except Exception:
                if attempt + 1 >= max_retries:
                    raise
                await asyncio.sleep(0.1)
    raise AssertionError("unreachable")


@pytest.mark.parametrize(
    "prompt",
    [QUESTION, [{"role": "system", "content": "Be brief."}, {"role": "user", "content": QUESTION}]],
)
def test_slime_remote_rm_reads_a_numeric_reward_key(server_url: str, prompt: Any) -> None:
    sample = SimpleNamespace(prompt=prompt, response=ANSWER, label="Paris")
    reward = asyncio.run(slime_remote_rm(f"{server_url}/slime/reward?rubric=helpfulness", sample))
    value = reward["reward"]  # Sample.get_reward_value with --reward-key reward
    assert isinstance(value, float) and 0.0 <= value <= 1.0
    assert reward["ok"] is True and reward["status"] == "ok"
    assert reward["rubric"] == "helpfulness" and len(reward["rubric_version"]) == 12
    assert reward["model"].startswith("SmolLM2-135M")


def test_slime_gets_a_flagged_fill_for_a_prompt_it_cannot_judge(server_url: str) -> None:
    sample = SimpleNamespace(
        prompt=[{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}],
        response=ANSWER,
        label=None,
    )
    reward = asyncio.run(slime_remote_rm(f"{server_url}/slime/reward?rubric=helpfulness", sample))
    assert reward["reward"] == 0.0 and reward["ok"] is False
    assert reward["status"] == "invalid_input" and "image_url" in reward["error"]
