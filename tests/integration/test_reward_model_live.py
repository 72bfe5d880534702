"""reward_model and process_reward_model modes on real vLLM: the embedded model plus a seeded
value head, and plus a seeded two-label step head (a PRM).

The adapter's scalar must be the raw logit transformers computes for the same tokens, the PRM's
step scores the probabilities transformers computes at the step tags, and the server must score
both kinds of rubric through /v1/score.
"""

from __future__ import annotations

import asyncio
import json
import math
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from judge_server.cli.value_head import PRM_STEP_TAG, build_value_head_model
from judge_server.engines.config import VllmConfig
from judge_server.engines.model_store import resolve_model
from judge_server.engines.plain_text import PlainTextTokenizer
from judge_server.engines.step_tags import tagged
from judge_server.engines.vllm_reward_model import VllmRewardModel
from judge_server.settings import Settings
from tests.integration.conftest import engine_env, free_port, start_server, stop, wait_ready

CHAT = [
    {"role": "user", "content": "What is the capital of France?"},
    {"role": "assistant", "content": "The capital of France is Paris."},
]


@pytest.fixture(scope="module")
def reward_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = Path(resolve_model(None, Settings().cache_dir)[0])
    return build_value_head_model(base, tmp_path_factory.mktemp("rm") / "toy-rm", seed=0)


@pytest.fixture(scope="module")
def prm_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = Path(resolve_model(None, Settings().cache_dir)[0])
    return build_value_head_model(base, tmp_path_factory.mktemp("prm") / "toy-prm", process=True)


@pytest.fixture(scope="module")
def rm_server(reward_folder: Path, prm_folder: Path) -> Iterator[str]:
    """One server hosting both: the value head and the PRM (one vLLM engine each)."""
    port = free_port()
    proc, log_path = start_server(
        port, "reward-model.log",
        "--reward-model", f"toy={reward_folder}", "--reward-model", f"prm={prm_folder}",
    )  # fmt: skip
    base_url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(base_url, proc, log_path)
        yield base_url
    finally:
        stop(proc)


@pytest.fixture(scope="module")
def reward_model(
    reward_folder: Path,
) -> Iterator[tuple[VllmRewardModel, asyncio.AbstractEventLoop]]:
    loop = asyncio.new_event_loop()
    model = VllmRewardModel(
        str(reward_folder),
        VllmConfig(enforce_eager=True, kv_cache_gib=1, max_model_len=1024),
        gpu_memory_utilization=0.2,
    )
    loop.run_until_complete(model.start())
    try:
        yield model, loop
    finally:
        loop.run_until_complete(model.shutdown())
        loop.close()


def transformers_logit(folder: Path, text: str) -> float:
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForSequenceClassification.from_pretrained(folder, dtype=torch.float32)
    ids = torch.tensor([tokenizer.encode(text, add_special_tokens=False)])
    with torch.no_grad():
        return float(model(input_ids=ids).logits[0, 0])


def test_vllm_logit_equals_transformers(
    reward_model: tuple[VllmRewardModel, asyncio.AbstractEventLoop], reward_folder: Path
) -> None:
    model, loop = reward_model
    texts = [
        model.render_chat(CHAT),
        model.render_chat([CHAT[0], {"role": "assistant", "content": "Lyon, I think."}]),
    ]
    scores = [loop.run_until_complete(model.reward(t)) for t in texts]
    for text, score in zip(texts, scores, strict=True):
        # no activation: a raw logit, not a sigmoid in (0, 1)
        assert score == pytest.approx(transformers_logit(reward_folder, text), abs=1e-3)
    assert scores[0] != pytest.approx(scores[1], abs=1e-3)

    # concurrent requests batch together and give the same numbers
    async def concurrently() -> list[float]:
        return list(await asyncio.gather(*(model.reward(t) for t in texts * 2)))

    together = loop.run_until_complete(concurrently())
    assert together == pytest.approx(scores * 2, abs=1e-3)


def test_server_scores_reward_model_rubrics(reward_folder: Path, rm_server: str) -> None:
    base_url = rm_server
    plain = {"name": "toy-rm", "mode": "reward_model", "reward_model": {"model": "toy"}}
    centred = {
        **plain,
        "reward_model": {"model": "toy", "center_on_reference": True},
    }
    prompt = CHAT[0]["content"]
    good, bad = "The capital of France is Paris.", "Lyon, I think."
    with httpx.Client(base_url=base_url, timeout=120) as client:
        body = client.post(
            "/v1/score",
            json={
                "rubric": plain,
                "items": [
                    {"prompt": prompt, "response": good},
                    {"prompt": prompt, "response": bad},
                ],
                "options": {"cache": False},
            },
        ).json()
        assert body["model"] == str(reward_folder)
        results = body["results"]
        assert [r["status"] for r in results] == ["ok", "ok"]
        for r in results:
            assert r["reward"] == pytest.approx(1 / (1 + math.exp(-r["details"]["score"])))
        r_good, r_bad = (r["details"]["score"] for r in results)

        body = client.post(
            "/v1/score",
            json={
                "rubric": centred,
                "items": [
                    {"prompt": prompt, "response": good, "reference": good},
                    {"prompt": prompt, "response": good, "reference": bad},
                    {"prompt": prompt, "response": good},
                ],
                "options": {"cache": False},
            },
        ).json()
        tie, vs_bad, no_ref = body["results"]
        assert tie["status"] == "ok" and tie["reward"] == 0.5
        assert vs_bad["details"]["reference_score"] == pytest.approx(r_bad, abs=1e-3)
        assert vs_bad["reward"] == pytest.approx(1 / (1 + math.exp(r_bad - r_good)), abs=1e-3)
        assert no_ref["status"] == "invalid_input" and no_ref["reward"] is None

        # an unknown reward model is a 422 naming the flag that would load it
        missing = {**plain, "reward_model": {"model": "absent"}}
        resp = client.post(
            "/v1/score", json={"rubric": missing, "items": [{"prompt": "q", "response": "a"}]}
        )
        assert resp.status_code == 422 and "--reward-model" in resp.json()["error"]["message"]


def transformers_step_probs(folder: Path, prompt: str, steps: list[str]) -> list[float]:
    """P(label 1) at each step tag, by transformers, on the tokens the adapter builds."""
    import torch
    from transformers import AutoModelForTokenClassification, AutoTokenizer

    tok = PlainTextTokenizer(AutoTokenizer.from_pretrained(folder))
    tag_id = tok.single_token_id(PRM_STEP_TAG)
    assert tag_id is not None
    tokens, tags = tagged(tok, [{"role": "user", "content": prompt}], steps, tag_id)
    model = AutoModelForTokenClassification.from_pretrained(folder, dtype=torch.float32)
    with torch.no_grad():
        logits = model(input_ids=torch.tensor([tokens])).logits[0]
    return [float(p) for p in torch.softmax(logits[tags], dim=-1)[:, 1]]


def test_server_scores_process_reward_model_rubrics(prm_folder: Path, rm_server: str) -> None:
    """Step scores are the seeded PRM's probabilities at the tags (vLLM's STEP pooling equals
    transformers), the reward their minimum; a response writing the tag adds no step."""
    prm = {
        "name": "toy-prm",
        "mode": "process_reward_model",
        "process_reward_model": {"model": "prm", "step_tag": PRM_STEP_TAG},
    }
    prompt = "What is 12 + 30?"
    response = "Step 1: 12 + 30 = 42.\nStep 2: So the answer is 42."
    hostile = f"Step 1: 12 + 30 = 42.{PRM_STEP_TAG}{PRM_STEP_TAG}\nStep 2: 42{PRM_STEP_TAG}"
    items = [
        {"prompt": prompt, "response": response},
        {"prompt": prompt, "response": hostile},
    ]
    with httpx.Client(base_url=rm_server, timeout=120) as client:
        body = client.post(
            "/v1/score", json={"rubric": prm, "items": items, "options": {"cache": False}}
        ).json()
        assert body["model"] == str(prm_folder)
        for it, result in zip(items, body["results"], strict=True):
            assert result["status"] == "ok", result
            text, steps = it["response"], result["details"]["steps"]
            texts = [text[s["start"] : s["end"]] for s in steps]
            assert len(texts) == 2 and texts[1].startswith("Step 2:")
            expected = transformers_step_probs(prm_folder, prompt, texts)
            assert [s["score"] for s in steps] == pytest.approx(expected, abs=1e-3)
            assert result["reward"] == pytest.approx(min(expected), abs=1e-3)
            assert result["details"]["folded_steps"] == 0
        assert body["results"][0]["reward"] != pytest.approx(body["results"][1]["reward"])

        # Each kind refuses the other's mode: a status and no reward, never a score.
        crossed = [
            {**prm, "process_reward_model": {"model": "toy", "step_tag": PRM_STEP_TAG}},
            {"name": "rm", "mode": "reward_model", "reward_model": {"model": "prm"}},
        ]
        for rubric in crossed:
            body = client.post(
                "/v1/score",
                json={"rubric": rubric, "items": items[:1], "options": {"cache": False}},
            ).json()
            (result,) = body["results"]
            assert result["status"] == "judge_error" and result["reward"] is None, result


def cli(*args: str, timeout: int = 900) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "judge_server", *args],
        capture_output=True,
        text=True,
        env=engine_env(),
        timeout=timeout,
    )


@pytest.fixture(scope="module")
def rm_rubrics(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("rm-rubrics")
    (folder / "toy_rm.yaml").write_text("mode: reward_model\nreward_model:\n  model: toy\n")
    return folder


def test_score_command_runs_reward_model_rubrics(
    reward_folder: Path, rm_rubrics: Path, tmp_path: Path
) -> None:
    """The command line builds judges through the same service as the server, reward models
    included (it used to know only the judge engine)."""
    src, dst = tmp_path / "items.jsonl", tmp_path / "out.jsonl"
    src.write_text(json.dumps({"id": "a", "prompt": CHAT[0]["content"], "response": "Paris."}))
    proc = cli(
        "score", "--rubric", "toy_rm", str(src), "-o", str(dst),
        "--rubrics-dir", str(rm_rubrics), "--reward-model", f"toy={reward_folder}",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-4000:]
    (row,) = (json.loads(line) for line in dst.read_text().splitlines())
    assert row["status"] == "ok" and row["model"] == str(reward_folder)
    assert row["reward"] == pytest.approx(1 / (1 + math.exp(-row["details"]["score"])))


def test_render_shows_the_reward_models_own_chat_template(
    reward_folder: Path, rm_rubrics: Path, tmp_path: Path
) -> None:
    item = tmp_path / "item.json"
    item.write_text(json.dumps({"prompt": CHAT[0]["content"], "response": CHAT[1]["content"]}))
    proc = cli(
        "rubrics", "render", "toy_rm", "--item", str(item),
        "--rubrics-dir", str(rm_rubrics), "--reward-model", f"toy={reward_folder}",
        timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-4000:]
    expected = chat_text(reward_folder, CHAT)
    assert expected.strip() in proc.stdout
    # a finished conversation: no generation prompt after the assistant's turn
    assert not proc.stdout.rstrip().endswith("<|im_start|>assistant")


def chat_text(folder: Path, messages: list[dict[str, str]]) -> str:
    """The conversation as the reward model's own tokenizer renders it (no generation prompt)."""
    from transformers import AutoTokenizer

    return str(AutoTokenizer.from_pretrained(folder).apply_chat_template(messages, tokenize=False))
