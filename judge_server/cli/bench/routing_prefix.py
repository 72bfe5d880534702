"""``judge-server bench --section routing``: prefix-cache hits of rubric mode on a two-replica
fleet, ``vllm-router``'s cache-aware policy against its round robin (and the remote engine's own
least-outstanding routing over the same two URLs).

Rubric mode asks K criteria of one response; the K prompts share everything up to the criterion
(``judges/rubric.py``), so the replica that computed the first one holds the rest's prefix in
its cache. The hits are read where they happen: each replica's ``/metrics``, vLLM's
``vllm:prefix_cache_queries`` and ``vllm:prefix_cache_hits`` counters (prompt tokens looked up
in the prefix cache, and found; vllm/v1/metrics/loggers.py). The hit rate of a routing is the
hits over the queries of both replicas during its run. Each routing scores items of its own
(no hit from a previous run), after one warm-up run that puts the shared template head in both
caches. vLLM-CPU caches whole 128-token blocks, so the responses are long (several blocks).

``vllm-router`` runs as ``python -m vllm_router.launch_router`` (the ``vllm-router`` script's
module; vllm-project/router, py_src/vllm_router/launch_router.py, release 0.1.17), one process per
policy, each with a Prometheus port of its own (its default 29000 is taken by the first).
"""

from __future__ import annotations

import logging
import os
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

from judge_server.cli.bench.backends import naive_dtype
from judge_server.cli.bench.report import write_json
from judge_server.cli.bench.run import Progress
from judge_server.cli.bench.servers import (
    Launch,
    free_port,
    kv_cache_env,
    running,
    running_together,
    vllm_server_cmd,
)
from judge_server.cli.bench.workload import criteria_rubric, items
from judge_server.engines.model_store import resolve_model
from judge_server.engines.remote import RemoteEngine
from judge_server.engines.reward_models import RewardModels
from judge_server.service import build_service
from judge_server.settings import Settings

POLICIES = ("cache_aware", "round_robin")
BUILTIN = "builtin"
"""The remote engine given both replica URLs: its own least-outstanding routing."""
WARMUP, TIMED, STRIDE = 800_000, 810_000, 10_000
_QUERIES, _HITS = "vllm:prefix_cache_queries", "vllm:prefix_cache_hits"


@dataclass(frozen=True)
class RoutingSizes:
    items: int = 16
    """Responses scored per routing, all in flight at once."""
    criteria: int = 4
    sentences: int = 40
    """Sentences per response: judge prompts of about 550 tokens, four whole 128-token blocks
    shared by the criteria of one response."""


#: --quick: about 3.5 minutes on a 2-core CPU with the embedded model (measured 202 s on a busy
#: machine, 141 s of it the two replica starts; then a warm-up and 3 x 16 calls of 553 tokens).
ROUTING_QUICK = RoutingSizes(items=4)


def replica_launches(settings: Settings, model_path: str, work: Path) -> list[Launch]:
    """Two ``vllm serve`` replicas with cached-token reporting, one CPU core each where the
    machine has two (as two machines would)."""
    cpus = sorted(os.sched_getaffinity(0))
    launches: list[Launch] = []
    for i in range(2):
        port = free_port()
        env = kv_cache_env(settings)
        if len(cpus) >= 2:
            env["VLLM_CPU_OMP_THREADS_BIND"] = str(cpus[i % len(cpus)])
        # vLLM's own block size unless one is set: the figures below assume its 128 on a CPU
        cmd = vllm_server_cmd(
            port, model_path, settings, naive_dtype(settings), engine_blocks=False
        )
        cmd.append("--enable-prompt-tokens-details")
        url = f"http://127.0.0.1:{port}/health"
        launches.append((cmd, env, url, work / f"replica-{i}.log"))
    return launches


def router_launch(policy: str, worker_urls: list[str], work: Path) -> tuple[Launch, str]:
    """``vllm-router`` in front of the workers (its flags: py_src/vllm_router/router_args.py)."""
    port = free_port()
    cmd = [
        sys.executable,
        "-m",
        "vllm_router.launch_router",
        "--worker-urls",
        *worker_urls,
        "--policy",
        policy,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--prometheus-port",
        str(free_port()),
        "--health-check-interval-secs",
        "5",
    ]
    url = f"http://127.0.0.1:{port}"
    return (cmd, dict(os.environ), f"{url}/readiness", work / f"router-{policy}.log"), url


def prefix_cache_counters(metrics_text: str) -> tuple[float, float]:
    """(queries, hits) in prompt tokens, summed over the engines of one replica's ``/metrics``."""
    totals = {_QUERIES: 0.0, _HITS: 0.0}
    for family in text_string_to_metric_families(metrics_text):
        if family.name in totals:
            totals[family.name] += sum(s.value for s in family.samples if s.name.endswith("_total"))
    return totals[_QUERIES], totals[_HITS]


async def fleet_counters(
    http: httpx.AsyncClient, replica_urls: list[str]
) -> list[tuple[float, float]]:
    out = []
    for url in replica_urls:
        resp = await http.get(f"{url}/metrics")
        resp.raise_for_status()
        out.append(prefix_cache_counters(resp.text))
    return out


async def score_through(
    settings: Settings,
    urls: list[str],
    model_path: str,
    replica_urls: list[str],
    sizes: RoutingSizes,
    start: int,
) -> dict[str, float]:
    """Score ``sizes.items`` responses on K criteria through ``urls``; the replicas' counters."""
    engine = RemoteEngine(
        urls, tokenizer=model_path, max_model_len=settings.max_model_len, request_timeout_s=600
    )
    await engine.start()
    try:
        service = build_service(
            settings, engine=engine, reward_models=RewardModels(), with_cache=False
        )
        judge = service.judge_for(criteria_rubric(sizes.criteria))
        batch = items(sizes.items, sizes.sentences, start=start)
        async with httpx.AsyncClient(timeout=30) as http:
            before = await fleet_counters(http, replica_urls)
            started = time.perf_counter()
            results = await service.score(judge, batch, timeout_s=3600, use_cache=False)
            elapsed = time.perf_counter() - started
            after = await fleet_counters(http, replica_urls)
    finally:
        await engine.shutdown()
    failed = [r for r in results if r.status != "ok"]
    if failed:
        raise RuntimeError(f"routing section: {failed[0].status}: {failed[0].error}")
    queries = [a[0] - b[0] for a, b in zip(after, before, strict=True)]
    hits = sum(a[1] - b[1] for a, b in zip(after, before, strict=True))
    return {
        "prefix_hit_rate": hits / max(1.0, sum(queries)),
        "busiest_replica_share": max(queries) / max(1.0, sum(queries)),
        "s": elapsed,
        "prompt_tokens_per_call": engine.stats.prompt_tokens / (sizes.items * sizes.criteria),
    }


async def run_routing(
    settings: Settings,
    *,
    sizes: RoutingSizes,
    json_path: Path | None,
    compile_model: bool = False,
) -> dict[str, Any]:
    settings = settings.model_copy(update={"enforce_eager": not compile_model})
    os.environ.setdefault("VLLM_LOGGING_LEVEL", "WARNING")
    for noisy in ("httpx", "judge_server"):  # keep the progress lines readable
        logging.getLogger(noisy).setLevel(logging.WARNING)
    model_path, _ = resolve_model(settings.model, settings.cache_dir)
    work = Path(tempfile.mkdtemp(prefix="judge-bench-routing-"))
    progress = Progress()
    figures: dict[str, Any] = {
        "model": model_path,
        "cpus": os.cpu_count(),
        "routing_items": sizes.items,
        "routing_criteria": sizes.criteria,
        "kv_cache_gib": settings.kv_cache_gib,
    }
    try:
        launches = replica_launches(settings, model_path, work)
        replica_urls = [ready.removesuffix("/health") for _, _, ready, _ in launches]
        with running_together(launches) as start_s:
            figures["routing_replicas_start_s"] = start_s
            progress.done("two vllm serve replicas started")
            await score_through(settings, replica_urls, model_path, replica_urls, sizes, WARMUP)
            progress.done("warm-up")
            runs = [*POLICIES, BUILTIN]
            for i, name in enumerate(runs):
                start = TIMED + i * STRIDE
                if name == BUILTIN:
                    run = await score_through(
                        settings, replica_urls, model_path, replica_urls, sizes, start
                    )
                else:
                    launch, router_url = router_launch(name, replica_urls, work)
                    with running(*launch):
                        run = await score_through(
                            settings, [router_url], model_path, replica_urls, sizes, start
                        )
                for key, value in run.items():
                    figures[f"routing_{name}_{key}"] = value
                progress.done(f"routing: {name}")
    except BaseException:
        print(f"judge-server bench: failed; logs are in {work}", file=sys.stderr)
        raise
    shutil.rmtree(work, ignore_errors=True)
    rr = figures["routing_round_robin_prefix_hit_rate"]
    figures["routing_cache_aware_over_round_robin"] = (
        figures["routing_cache_aware_prefix_hit_rate"] / rr if rr > 0 else None
    )
    figures["wall_s"] = progress.total_s
    figures["load_1m_after_step"] = progress.load_1m
    print(table(figures))
    if json_path is not None:
        write_json(figures, json_path)
    return figures


def table(figures: dict[str, Any]) -> str:
    rows = [("routing", "prefix hit rate", "busiest replica share", "seconds")]
    for name in (*POLICIES, BUILTIN):
        label = f"vllm-router {name}" if name != BUILTIN else "remote engine, 2 URLs (built-in)"
        rows.append(
            (
                label,
                f"{figures[f'routing_{name}_prefix_hit_rate']:.3f}",
                f"{figures[f'routing_{name}_busiest_replica_share']:.2f}",
                f"{figures[f'routing_{name}_s']:.1f}",
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    ratio = figures.get("routing_cache_aware_over_round_robin")
    lines.append(
        f"cache_aware / round_robin hit rate: {ratio:.2f}"
        if ratio is not None
        else "cache_aware / round_robin hit rate: n/a (round robin had no hit)"
    )
    tokens = figures["routing_cache_aware_prompt_tokens_per_call"]
    lines.append(
        f"{figures['routing_items']} responses x {figures['routing_criteria']} criteria per "
        f"routing, {tokens:.0f} prompt tokens per call, model {figures['model']}"
    )
    return "\n".join(lines)
