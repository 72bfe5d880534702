"""How well one forward pass with a verdict slot after each step (the way step-tag PRMs such as
Math-Shepherd score) agrees with process mode's per-step calls, on the embedded judge model.

A measurement, not a feature: process mode keeps per-step calls unless this agrees well (see
README, Process rewards). Data: tests/data/gsm8k_process_steps.jsonl (GSM8K test solutions,
each as written and with one step's result changed). Run under the vLLM lock:

    flock /tmp/judge-vllm.lock python scripts/process_one_pass_agreement.py

The one-pass prompt is the judge's turn writing the solution back, "Correct: Yes" after each
step; the probability of Yes against No at each slot is read from the prompt's log-probabilities
(top 20 per position; a form outside them counts as 0). Causal attention means slot i sees
steps 1..i (and the earlier slots' Yes), as the per-step prompt for step i does. It uses the
engine's private tokenizer and request plumbing: a script may, the judges may not.
"""

from __future__ import annotations

import asyncio
import json
import math
import statistics
import sys
from pathlib import Path
from typing import Any

from judge_server.engines.factory import vllm_config
from judge_server.engines.vllm_engine import VllmEngine
from judge_server.judges import JudgeItem, judge_for
from judge_server.judges.modes import parse_rubric
from judge_server.rubrics.registry import read_rubric_file
from judge_server.settings import Settings, project_rubrics_dir

DATA = Path(__file__).resolve().parents[1] / "tests/data/gsm8k_process_steps.jsonl"
TOP = 20
INSTRUCTION = (
    "Copy the solution below one step at a time. After each step write 'Correct: Yes' if the "
    "step is correct (its arithmetic is right and it follows from the problem and the steps "
    "before it), else 'Correct: No'."
)


async def one_pass(engine: VllmEngine, system: str, question: str, steps: list[str]) -> list[float]:
    from vllm import SamplingParams

    tok = engine._tok()
    user = f"Problem:\n{question}\n\n{INSTRUCTION}\n\n" + "\n".join(steps)
    head = engine.render_chat(
        [{"role": "system", "content": system}, {"role": "user", "content": user}]
    )
    yes = [t for f in (" Yes", " yes") if (t := tok.single_token_id(f)) is not None]
    no = [t for f in (" No", " no") if (t := tok.single_token_id(f)) is not None]
    tokens, slots = list(await tok.encode_async(head)), []
    for k, text in enumerate(steps, start=1):
        tokens += await tok.encode_text_async(f"[{k}] {text}\nCorrect:")
        slots.append(len(tokens))
        tokens += [yes[0]] + await tok.encode_text_async("\n")
    out = await engine._run(
        tokens, SamplingParams(max_tokens=1, prompt_logprobs=TOP, detokenize=False)
    )
    scores = []
    for slot in slots:
        row = out.prompt_logprobs[slot]
        p = {tid: math.exp(lp.logprob) for tid, lp in row.items()}
        p_yes, p_no = sum(p.get(t, 0.0) for t in yes), sum(p.get(t, 0.0) for t in no)
        scores.append(p_yes / (p_yes + p_no) if p_yes + p_no > 0 else 0.5)
    return scores


async def main() -> None:
    settings = Settings(kv_cache_gib=1, enforce_eager=True)
    engine = VllmEngine(vllm_config(settings))
    await engine.start()
    spec = read_rubric_file(project_rubrics_dir() / "step_correctness.yaml", parse_rubric)
    judge = judge_for(spec)
    rows = [json.loads(line) for line in DATA.read_text(encoding="utf-8").splitlines()]
    cases = [(row, key) for row in rows for key in ("steps", "corrupted_steps")]

    async def both(row: dict[str, Any], key: str) -> tuple[list[float], list[float]]:
        item = JudgeItem(row["id"], row["question"], "\n".join(row[key]))
        judged = await judge.judge(item, engine)
        single = await one_pass(engine, spec.system or "", row["question"], row[key])
        return [s["score"] for s in judged.details["steps"]], single

    try:
        pairs = await asyncio.gather(*(both(row, key) for row, key in cases))
    finally:
        await engine.shutdown()
    per_step = [x for a, _ in pairs for x in a]
    single = [y for _, b in pairs for y in b]
    rewards: list[tuple[str, float, float]] = [
        (key, min(a), min(b)) for (_, key), (a, b) in zip(cases, pairs, strict=True)
    ]
    json.dump(agreement(per_step, single, rewards), sys.stdout, indent=2)
    print()


def agreement(
    per_step: list[float], single: list[float], rewards: list[tuple[str, float, float]]
) -> dict[str, float]:
    agree = sum((x > 0.5) == (y > 0.5) for x, y in zip(per_step, single, strict=True))
    figures = {
        "steps": float(len(per_step)),
        "pearson": statistics.correlation(per_step, single),
        "binary_agreement": agree / len(per_step),
        "item_reward_pearson": statistics.correlation(
            [r[1] for r in rewards], [r[2] for r in rewards]
        ),
        "mean_abs_diff": statistics.fmean(
            abs(x - y) for x, y in zip(per_step, single, strict=True)
        ),
    }
    good = [r for r in rewards if r[0] == "steps"]
    bad = [r for r in rewards if r[0] == "corrupted_steps"]
    figures["per_step_correct_above_corrupted"] = statistics.fmean(
        float(g[1] > c[1]) for g, c in zip(good, bad, strict=True)
    )
    figures["one_pass_correct_above_corrupted"] = statistics.fmean(
        float(g[2] > c[2]) for g, c in zip(good, bad, strict=True)
    )
    return figures


if __name__ == "__main__":
    asyncio.run(main())
