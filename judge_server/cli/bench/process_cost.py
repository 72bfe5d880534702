"""``bench --section process``: what a process reward costs. Eight-step solutions are scored
once per step with the shipped ``step_correctness`` rubric, and once with a single verdict over
the same steps (the same prompt asking about the whole solution); the figure is the ratio of
the two times (goal: at most 1.5), beside the share of the process run's prompt tokens the
prefix cache served.

The solutions are generated arithmetic (no data files): each step one line of about 20 tokens.
"""

from __future__ import annotations

import json
import logging
import os
import random
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from judge_server.cli.bench.report import write_json
from judge_server.cli.bench.run import Progress
from judge_server.cli.bench.servers import engine_kv_block_size
from judge_server.engines.factory import vllm_config
from judge_server.engines.reward_models import RewardModels
from judge_server.judges import Judge, JudgeItem
from judge_server.judges.modes import parse_rubric
from judge_server.judges.process import steps_text
from judge_server.rubrics.registry import read_rubric_file
from judge_server.rubrics.spec import RubricSpec
from judge_server.service import JudgeService, build_service
from judge_server.settings import Settings, project_rubrics_dir

STEPS = 8
RUBRIC = "step_correctness"
VERDICT_QUESTION = (
    "Is every step correct: is the arithmetic right throughout?\nReply with Yes or No."
)


def solution(seed: int) -> tuple[str, str]:
    """A word problem and its eight-step solution, one step per line."""
    rng = random.Random(seed)
    start = rng.randint(10, 99)
    question = (
        f"A shop starts the week with {start} boxes. Each day some boxes arrive and some are "
        "sold, as listed in the solution. How many boxes are left at the end?"
    )
    lines, total = [], start
    for day in range(1, STEPS):
        arrived, sold = rng.randint(5, 40), rng.randint(1, 20)
        after = total + arrived - sold
        lines.append(
            f"Day {day}: {total} boxes, {arrived} arrive and {sold} are sold, so "
            f"{total} + {arrived} - {sold} = {after} boxes remain."
        )
        total = after
    lines.append(f"The answer is {total}.")
    return question, "\n".join(lines)


def one_verdict(spec: RubricSpec) -> RubricSpec:
    """The process rubric's prompt asking one question about the whole solution."""
    assert spec.template is not None
    template = spec.template.split("{steps}")[0] + "{response}\n\n" + VERDICT_QUESTION
    data = {"name": "bench-one-verdict", "mode": "verdict", "template": template}
    return parse_rubric({**data, "system": spec.system})


async def _timed(service: JudgeService, judge: Judge, items: list[JudgeItem]) -> dict[str, Any]:
    engine = service.engine
    await engine.reset_prefix_cache()  # no run may warm the next
    before = engine.stats.prompt_tokens, engine.stats.cached_prompt_tokens
    started = time.perf_counter()
    results = await service.score(judge, items, timeout_s=3600, use_cache=False)
    elapsed = time.perf_counter() - started
    if failed := [r for r in results if r.status != "ok"]:
        raise RuntimeError(f"benchmark items failed: {failed[0].status}: {failed[0].error}")
    prompt = engine.stats.prompt_tokens - before[0]
    return {
        "s": elapsed,
        "cached_fraction": (engine.stats.cached_prompt_tokens - before[1]) / prompt,
    }


async def process_vs_one(service: JudgeService, n_items: int) -> dict[str, Any]:
    spec = read_rubric_file(project_rubrics_dir() / f"{RUBRIC}.yaml", parse_rubric)
    process, verdict = service.judge_for(spec), service.judge_for(one_verdict(spec))
    items = [JudgeItem(str(i), *solution(i)) for i in range(n_items + 1)]
    # The verdict sees the very text the last step's prompt shows: every step, labelled.
    whole = [replace(it, response=steps_text(it.response.split("\n"))) for it in items]
    await _timed(service, process, items[:1])  # warm-up
    one = await _timed(service, verdict, whole[1:])
    steps = await _timed(service, process, items[1:])
    return {
        "process_items": n_items,
        "process_one_verdict_s": one["s"],
        f"process_k{STEPS}_s": steps["s"],
        f"process_k{STEPS}_over_one": steps["s"] / one["s"],
        f"process_k{STEPS}_cached_fraction": steps["cached_fraction"],
    }


async def run_process(
    settings: Settings, *, quick: bool, json_path: Path | None, compile_model: bool = False
) -> dict[str, Any]:
    from judge_server.engines.vllm_engine import VllmEngine

    settings = settings.model_copy(update={"enforce_eager": not compile_model})
    os.environ.setdefault("VLLM_LOGGING_LEVEL", "WARNING")
    logging.getLogger("judge_server").setLevel(logging.WARNING)
    progress = Progress()
    engine = VllmEngine(vllm_config(settings))
    await engine.start()
    progress.done("in-process engine started")
    figures: dict[str, Any] = {
        "model": engine.model_id,
        "cpus": os.cpu_count(),
        "kv_block_size": engine_kv_block_size(settings),
    }
    try:
        service = build_service(
            settings, engine=engine, reward_models=RewardModels(), with_cache=False
        )
        figures.update(await process_vs_one(service, 4 if quick else 16))
        progress.done(f"process: {STEPS}-step solutions against one verdict")
    finally:
        await engine.shutdown()
    figures["wall_s"] = progress.total_s
    figures["load_1m_after_step"] = progress.load_1m
    print(json.dumps(figures, indent=2))
    if json_path is not None:
        write_json(figures, json_path)
    return figures
