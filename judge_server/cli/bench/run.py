"""Run the benchmark sections, print a table, write JSON (and a PNG chart).

One engine process at a time (2 CPU cores go a long way for one, not for two): the overhead
server on the instant engine and the bare framework route (its ceiling), then the in-process
engine (rubric cost, then the ceiling), then ``judge-server serve`` (batch, concurrent, cache
hits), then a stock ``vllm serve`` (naive).
"""

from __future__ import annotations

import logging
import os
import platform
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from judge_server.cli.bench import report, sections
from judge_server.cli.bench.backends import Backends, vllm_backends
from judge_server.cli.bench.generation_cost import rubric_generation
from judge_server.cli.bench.http_load import client
from judge_server.cli.bench.rubric_cost import rubric_k1_vs_k8
from judge_server.cli.bench.sections import FULL, QUICK, Sizes
from judge_server.cli.bench.servers import engine_kv_block_size, free_port, serving
from judge_server.cli.bench.workload import POINTWISE_NAME, pointwise_definition, pointwise_rubric
from judge_server.engines.reward_models import RewardModels
from judge_server.service import build_service
from judge_server.settings import Settings

BackendFactory = Callable[[Settings, Path], Backends]


class Progress:
    """One line per finished step on stderr: time since the start, the step's own time, and the
    machine's 1-minute load average (the bench's own processes included; more than the core
    count means something else competed for the CPU)."""

    def __init__(self) -> None:
        self.started = self.last = time.perf_counter()
        self.load_1m: dict[str, float] = {}

    def done(self, step: str) -> None:
        now = time.perf_counter()
        load = os.getloadavg()[0]
        self.load_1m[step] = round(load, 2)
        line = f"[bench {now - self.started:6.1f} s] {step}: {now - self.last:.1f} s"
        print(f"{line} (load {load:.1f})", file=sys.stderr, flush=True)
        self.last = now

    @property
    def total_s(self) -> float:
        return time.perf_counter() - self.started


async def run(
    settings: Settings,
    *,
    quick: bool,
    json_path: Path | None,
    plot_path: Path | None = None,
    compile_model: bool = False,
    backends: BackendFactory = vllm_backends,
    sizes: Sizes | None = None,
) -> dict[str, Any]:
    # Eager unless asked: a compiling start costs minutes per engine process, and there are three.
    settings = settings.model_copy(update={"enforce_eager": not compile_model})
    sizes = sizes or (QUICK if quick else FULL)
    # Keep the progress lines readable: no vLLM info logs, no line per HTTP request.
    os.environ.setdefault("VLLM_LOGGING_LEVEL", "WARNING")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    work = Path(tempfile.mkdtemp(prefix="judge-bench-"))
    rubrics = work / "rubrics"
    rubrics.mkdir()
    (rubrics / f"{POINTWISE_NAME}.yaml").write_text(yaml.safe_dump(pointwise_definition()))
    progress = Progress()
    figures: dict[str, Any] = {
        "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
        "cpus": os.cpu_count(),
        "quick": quick,
        "enforce_eager": settings.enforce_eager,
        "dtype": settings.dtype,
        "kv_cache_gib": settings.kv_cache_gib,
        # what the in-process engine asks vLLM for (32 on a CPU unless set)
        "kv_block_size": engine_kv_block_size(settings),
        "max_model_len": settings.max_model_len,
        "throughput_items": sizes.throughput_items,
        "batch_size": sizes.batch_size,
        "clients": sizes.clients,
    }
    try:
        await _measure(settings, backends(settings, work), sizes, figures, work, progress)
    except BaseException:
        print(f"judge-server bench: failed; server logs are in {work}", file=sys.stderr)
        raise
    shutil.rmtree(work, ignore_errors=True)
    figures["wall_s"] = progress.total_s
    figures["load_1m_after_step"] = progress.load_1m
    figures = report.add_ratios(figures)
    print(report.table(figures))
    if json_path is not None:
        report.write_json(figures, json_path)
    if plot_path is not None and report.write_plot(figures, plot_path):
        print(f"judge-server bench: chart written to {plot_path}", file=sys.stderr)
    return figures


async def _measure(
    settings: Settings,
    backends: Backends,
    sizes: Sizes,
    figures: dict[str, Any],
    work: Path,
    progress: Progress,
) -> None:
    async with client() as http:
        # Both servers up at once, their runs alternated: the ratio of the two is then of
        # measurements seconds apart, not a section apart, on a machine whose load drifts.
        server = backends.overhead_server(free_port())
        bare = backends.bare_server(free_port())
        with (
            serving(server, work / "overhead.log") as started,
            serving(bare, work / "bare.log") as bare_started,
        ):
            figures["overhead_server_start_s"] = started.start_s
            figures.update(
                await sections.overhead_beside_bare(
                    http, (server.url, started.cpu_s), (bare.url, bare_started.cpu_s), sizes
                )
            )
        progress.done("overhead (instant engine) beside the bare framework route, alternated")

    engine = backends.engine()
    engine_started = time.perf_counter()
    await engine.start()
    figures["model"] = engine.model_id
    figures["engine_start_s"] = time.perf_counter() - engine_started
    progress.done("in-process engine started")
    try:
        service = build_service(
            settings, engine=engine, reward_models=RewardModels(), with_cache=False
        )
        figures.update(
            await rubric_k1_vs_k8(
                service,
                n_items=sizes.rubric_items,
                sentences=sizes.rubric_sentences,
            )
        )
        progress.done("rubric k=1 vs k=8 (long and short prompts)")
        figures.update(await rubric_generation(service, runs=sizes.generation_runs))
        progress.done("rubric generation (one rubric of up to 4 criteria)")
        # Last before the server: its ratio to the server batch is then of two measurements
        # only the server's start apart, on a machine whose load drifts.
        figures.update(await sections.engine_ceiling(engine, pointwise_rubric(), sizes))
        progress.done("engine ceiling (in-process, max_tokens=1)")
    finally:
        await engine.shutdown()

    async with client() as http:
        server = backends.judge_server(free_port())
        with serving(server, work / "judge-server.log") as started:
            figures["server_start_s"] = started.start_s
            progress.done("judge-server serve started")
            await sections.server_warmup(http, server.url, sizes)
            figures.update(await sections.server_batch(http, server.url, sizes))
            progress.done(f"server batch ({sizes.batch_size} items per request)")
            figures.update(await sections.server_concurrent(http, server.url, sizes))
            progress.done(f"server concurrent ({sizes.clients} single-item clients)")
            figures.update(await sections.cache_hits(http, server.url, sizes, started.cpu_s))
            progress.done("cache hits")

        naive = backends.naive_server(free_port())
        with serving(naive, work / "naive-server.log") as started:
            figures["naive_server_start_s"] = started.start_s
            progress.done("stock OpenAI-compatible server started")
            figures.update(await sections.naive_baseline(http, naive.url, naive.model, sizes))
            progress.done("naive baseline (chat completions, parsed)")
