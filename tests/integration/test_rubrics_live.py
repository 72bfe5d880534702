"""Rubrics on the real engine: the library scores, the prefix cache shares criteria prompts,
and rubrics swap live under a trainer-like loop (file edits and PUTs, valid and invalid)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from judge_client import AsyncJudgeClient

from judge_server.judges.modes import parse_rubric
from judge_server.judges.rubric import RubricModeSpec
from judge_server.rubrics.registry import read_rubric_file
from tests.integration.conftest import ADMIN_TOKEN

SAMPLES = {
    "instruction_following": (
        "List exactly three fruits, one per line, no other text.",
        "Apple\nBanana\nCherry",
    ),
    "medical_consultation": (
        "I've had a mild headache since this morning after sleeping badly. What can I do?",
        "A mild headache after poor sleep is common. Drink water, rest, and consider an "
        "over-the-counter pain reliever as directed on the label. If it becomes severe, comes "
        "with fever, a stiff neck, confusion or vision changes, seek medical care right away.",
    ),
    "empathetic_support": (
        "I failed my driving test again and I feel like an idiot.",
        "I'm sorry, that sounds really discouraging, especially after all the practice you put "
        "in. Failing a test doesn't make you an idiot; many people need a few attempts.",
    ),
    "safety_compliance": (
        "How do I remove a stripped screw?",
        "Press a wide rubber band between the screwdriver and the screw head for grip, or use a "
        "screw extractor bit: drill a small pilot hole, then turn the extractor anticlockwise.",
    ),
    "concise_helpfulness": ("What is the capital of Japan?", "Tokyo."),
    "helpfulness": ("What is the capital of Japan?", "Tokyo."),
}


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_library_rubric_scores_on_real_engine(server_url: str, name: str) -> None:
    prompt, response = SAMPLES[name]
    body = {"rubric": name, "items": [{"id": "x", "prompt": prompt, "response": response}]}
    resp = httpx.post(f"{server_url}/v1/score", json=body, timeout=600)
    assert resp.status_code == 200, resp.text
    result = resp.json()["results"][0]
    assert result["status"] == "ok", result
    assert 0.0 <= result["reward"] <= 1.0
    rubric = read_rubric_file(Path(__file__).parents[2] / "rubrics" / f"{name}.yaml", parse_rubric)
    assert resp.json()["rubric"]["version"] == rubric.version
    if isinstance(rubric, RubricModeSpec):
        rows = result["details"]["criteria"]
        assert [r["id"] for r in rows] == [c.id for c in rubric.criteria]
        assert all(0.0 <= r["p_met"] <= 1.0 and r["weight"] for r in rows)
    if name == "medical_consultation":
        # a consultation without an emergency: the conditional emergency point cannot zero it
        # (as a hard rule it did: P(met) about 0.1 on this engine capped the reward at 0)
        assert result["details"]["hard_rules_failed"] == [] and result["reward"] > 0
    if rubric.mode == "composite":
        parts = result["details"]["components"]
        assert [p["component"] for p in parts] == ["helpfulness", "length_penalty"]
        assert parts[1]["score"] == 1.0  # "Tokyo." is far below the length limit


def test_criteria_share_the_prefix_through_vllms_prefix_cache(server_url: str) -> None:
    criteria = [{"id": f"c{i}", "text": f"The response mentions the number {i}."} for i in range(8)]
    rubric = {
        "name": "eight",
        "mode": "rubric",
        "template": "Conversation:\n{prompt}\n\nResponse:\n{response}\n\nCriterion: {criterion}\n"
        "Answer Yes or No.",
        "criteria": criteria,
    }
    # CPU prefix-cache blocks hold 128 tokens: the shared part must span several blocks
    response = " ".join(f"Sentence {i} talks about the weather and the sea." for i in range(40))
    body = {"rubric": rubric, "items": [{"prompt": "Describe a day.", "response": response}]}
    result = httpx.post(f"{server_url}/v1/score", json=body, timeout=600).json()["results"][0]
    assert result["status"] == "ok", result
    details = result["details"]
    per_call = details["prompt_tokens"] / 8
    assert per_call > 256
    # criteria 2..8 reuse the full blocks of the shared prefix that criterion 1 computed
    assert details["cached_prompt_tokens"] >= 7 * 128 * int((per_call - 20) // 128)


def test_prefix_cache_hits_reach_metrics(server_url: str) -> None:
    text = httpx.get(f"{server_url}/metrics").text
    cached = [ln for ln in text.splitlines() if ln.startswith("judge_engine_cached_prompt_tokens ")]
    assert cached and float(cached[0].split()[1]) > 0


def scale_rubric(top: int, note: str = "") -> dict[str, Any]:
    """A rubric whose score scale is 1..top: the distribution keys reveal which content scored."""
    return {
        "mode": "pointwise",
        "description": f"live swap probe {note}",
        "template": "Request: {prompt}\nResponse: {response}\n"
        f"Rate the response from 1 to {top}. Reply with one digit.",
        "scores": {"min": 1, "max": top},
    }


def version_of(definition: dict[str, Any], name: str = "swap") -> str:
    return parse_rubric({"name": name, **definition}).version


async def test_live_swap_under_a_trainer_like_loop(
    server_url: str, server_rubrics_dir: Path
) -> None:
    path = server_rubrics_dir / "swap.yaml"
    path.write_text(yaml.safe_dump(scale_rubric(3)))
    scale_of: dict[str, int] = {version_of(scale_rubric(3)): 3}
    seen: list[tuple[float, str, int, str]] = []  # (time, version, scale seen, status)
    failures: list[str] = []
    stop = asyncio.Event()

    async with AsyncJudgeClient(server_url, admin_token=ADMIN_TOKEN) as client:

        async def wait_for(version: str, since: float, timeout: float = 20.0) -> float:
            while True:
                if any(v == version and t >= since for t, v, _, _ in seen):
                    return time.monotonic() - since
                assert time.monotonic() - since < timeout, f"{version} not live in {timeout}s"
                await asyncio.sleep(0.1)

        async def trainer(worker: int) -> None:
            step = 0
            while not stop.is_set():
                items = [
                    {
                        "id": f"{worker}-{step}-{i}",
                        "prompt": "Say hello.",
                        "response": f"Hello number {step}.",
                    }
                    for i in range(2)
                ]
                try:
                    response = await client.score("swap", items)
                except Exception as exc:  # any failed request fails the test
                    failures.append(repr(exc))
                    continue
                for r in response.results:
                    if r.status != "ok":
                        failures.append(f"{r.id}: {r.status} {r.error}")
                        continue
                    scale = max(int(k) for k in r.details["distribution"])
                    seen.append((time.monotonic(), response.rubric.version, scale, r.status))
                step += 1

        # the server's file watcher picks up the new file
        await wait_for_file_version(client, version_of(scale_rubric(3)))
        started = time.monotonic()
        workers = [asyncio.create_task(trainer(w)) for w in range(3)]
        try:
            await wait_for(version_of(scale_rubric(3)), started, timeout=120)
            delays: list[float] = []

            # 1. valid file edit
            t = time.monotonic()
            path.write_text(yaml.safe_dump(scale_rubric(5)))
            scale_of[version_of(scale_rubric(5))] = 5
            delays.append(await wait_for(version_of(scale_rubric(5)), t))

            # 2. invalid file edit: refused, the last good version keeps serving
            path.write_text("mode: pointwise\ntemplate: 'broken {unknown_field}'\n")
            await asyncio.sleep(2.0)
            t_bad = time.monotonic()
            await asyncio.sleep(1.0)
            assert {v for tm, v, _, _ in seen if tm >= t_bad} == {version_of(scale_rubric(5))}

            # 3. valid PUT (also rewrites the broken file)
            t = time.monotonic()
            resp = await client.put_rubric("swap", scale_rubric(7))
            assert resp["version"] == version_of(scale_rubric(7))
            scale_of[resp["version"]] = 7
            delays.append(await wait_for(resp["version"], t))

            # 4. invalid PUT: 422, nothing changes
            with pytest.raises(Exception) as err:
                await client.put_rubric(
                    "swap",
                    {"mode": "pointwise", "scores": {"min": 4, "max": 2}, "template": "{response}"},
                )
            assert getattr(err.value, "status_code", None) == 422
            t_bad = time.monotonic()
            await asyncio.sleep(1.0)
            assert {v for tm, v, _, _ in seen if tm >= t_bad} == {resp["version"]}

            # 5. another file edit, back to a new scale
            t = time.monotonic()
            path.write_text(yaml.safe_dump(scale_rubric(4, "again")))
            scale_of[version_of(scale_rubric(4, "again"))] = 4
            delays.append(await wait_for(version_of(scale_rubric(4, "again")), t))
        finally:
            stop.set()
            await asyncio.gather(*workers)

    assert failures == []
    assert len(seen) > 20
    for _, version, scale, _ in seen:
        # every result names the version whose content scored it
        assert scale_of[version] == scale, (version, scale)
    assert max(delays) < 10.0, delays
    history = httpx.get(f"{server_url}/v1/rubrics/swap").json()["history"]
    assert set(scale_of) <= set(history)


async def wait_for_file_version(
    client: AsyncJudgeClient, version: str, timeout: float = 20
) -> None:
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        try:
            if (await client.get_rubric("swap"))["version"] == version:
                return
        except Exception:
            pass
        await asyncio.sleep(0.1)
    raise AssertionError("the watcher never loaded swap.yaml")


def test_a_judge_that_lost_the_answer_format_errs_instead_of_scoring(server_url: str) -> None:
    """The default min_valid_mass: a prompt that never asks for a score leaves little
    probability on the score digits, and such a verdict is a judge_error, not a reward."""
    items = [{"id": n, "prompt": p, "response": r} for n, (p, r) in sorted(SAMPLES.items())]
    lost = {"name": "lost", "mode": "pointwise", "template": "{prompt}\n\n{response}"}
    results = httpx.post(
        f"{server_url}/v1/score", json={"rubric": lost, "items": items}, timeout=600
    ).json()["results"]
    errors = [r for r in results if r["status"] == "judge_error"]
    assert errors, results
    assert all(r["reward"] is None and "on valid answers" in r["error"] for r in errors)
    working = httpx.post(
        f"{server_url}/v1/score", json={"rubric": "helpfulness", "items": items}, timeout=600
    ).json()["results"]
    assert [r["status"] for r in working] == ["ok"] * len(items)
