"""The process benchmark section on the scripted engine: its figures, and that the one-verdict
run sees the very text of the last step's prompt."""

from judge_server.cli.bench.process_cost import STEPS, process_vs_one, solution
from judge_server.engines.reward_models import RewardModels
from judge_server.service import build_service
from judge_server.settings import Settings
from tests.fakes import ScriptedEngine


async def test_process_section_times_eight_steps_against_one_verdict() -> None:
    engine = ScriptedEngine(max_model_len=8192)
    await engine.start()
    service = build_service(
        Settings(), engine=engine, reward_models=RewardModels(), with_cache=False
    )
    figures = await process_vs_one(service, n_items=2)
    assert figures["process_items"] == 2
    assert 0.0 <= figures["process_k8_cached_fraction"] <= 1.0
    # warm-up 1 item x 8 steps, 2 verdicts, 2 items x 8 steps
    assert len(engine.prompts) == STEPS + 2 + 2 * STEPS
    verdict_prompt = engine.prompts[STEPS]
    last_step_prompt = engine.prompts[STEPS + 2]
    shared = last_step_prompt.split("Is step [8]")[0]
    assert verdict_prompt.startswith(shared) and "Is every step correct" in verdict_prompt


def test_solutions_have_eight_steps_of_right_arithmetic() -> None:
    _, text = solution(3)
    lines = text.split("\n")
    assert len(lines) == STEPS
    for line in lines[:-1]:
        sums = line.split("so ")[1].split(" = ")
        a, _, b, _, c = sums[0].split()
        assert int(a) + int(b) - int(c) == int(sums[1].split()[0])
