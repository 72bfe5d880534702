"""Run the benchmark sections, print a table, write JSON."""

from __future__ import annotations

import json
import platform
import time
from pathlib import Path
from typing import Any

from judge_server.settings import Settings


def print_table(figures: dict[str, Any]) -> None:
    width = max(len(k) for k in figures)
    print(f"{'figure'.ljust(width)}  value")
    for key, value in figures.items():
        shown = f"{value:.3f}" if isinstance(value, float) else str(value)
        print(f"{key.ljust(width)}  {shown}")


async def run(settings: Settings, *, quick: bool, json_path: Path | None) -> dict[str, Any]:
    from judge_server.bench.rubric_cost import rubric_k1_vs_k8
    from judge_server.engines.vllm_engine import VllmEngine

    engine = VllmEngine(settings)
    started = time.perf_counter()
    await engine.start()
    figures: dict[str, Any] = {
        "model": engine.model_id,
        "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
        "quick": quick,
        "engine_start_s": time.perf_counter() - started,
    }
    try:
        figures.update(await rubric_k1_vs_k8(engine, quick=quick))
    finally:
        await engine.shutdown()
    print_table(figures)
    if json_path is not None:
        json_path.write_text(json.dumps(figures, indent=2) + "\n")
    return figures
