"""``bench --section routing``'s machinery: reading vLLM's prefix-cache counters, the router's
command line (checked against the installed vllm-router's own parser), the table. The section
itself runs two real replicas (its figures are in the README)."""

from __future__ import annotations

from pathlib import Path

from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest
from vllm_router.launch_router import parse_router_args

from judge_server.cli.bench.routing_prefix import prefix_cache_counters, router_launch, table
from judge_server.cli.main import build_parser


def test_prefix_cache_counters_sum_the_engines_of_a_replica() -> None:
    registry = CollectorRegistry()
    labels = ["model_name", "engine"]
    queries = Counter("vllm:prefix_cache_queries", "q", labels, registry=registry)
    hits = Counter("vllm:prefix_cache_hits", "h", labels, registry=registry)
    other = Gauge("vllm:kv_cache_usage_perc", "u", labels, registry=registry)
    for engine, (q, h) in {"0": (1000, 384), "1": (500, 128)}.items():
        queries.labels("m", engine).inc(q)
        hits.labels("m", engine).inc(h)
        other.labels("m", engine).set(0.5)
    text = generate_latest(registry).decode()
    assert "vllm:prefix_cache_queries_total" in text  # the name vLLM's counters are scraped by
    assert prefix_cache_counters(text) == (1500.0, 512.0)
    assert prefix_cache_counters("") == (0.0, 0.0)


def test_router_command_is_valid_for_the_installed_vllm_router(tmp_path: Path) -> None:
    workers = ["http://127.0.0.1:8001", "http://127.0.0.1:8002"]
    (cmd, _, ready_url, log_path), url = router_launch("round_robin", workers, tmp_path)
    assert cmd[1:3] == ["-m", "vllm_router.launch_router"]
    args = parse_router_args(cmd[3:])
    assert args.worker_urls == workers and args.policy == "round_robin"
    assert url == f"http://127.0.0.1:{args.port}" and ready_url == f"{url}/readiness"
    assert args.prometheus_port not in (None, 29000, args.port)  # two routers may run at once
    assert args.health_check_interval_secs == 5
    assert log_path.parent == tmp_path


def test_table_and_cli() -> None:
    figures = {"routing_items": 4, "routing_criteria": 4, "model": "m"}
    for name, rate in [("cache_aware", 0.6), ("round_robin", 0.3), ("builtin", 0.3)]:
        figures |= {
            f"routing_{name}_prefix_hit_rate": rate,
            f"routing_{name}_busiest_replica_share": 0.5,
            f"routing_{name}_s": 10.0,
            f"routing_{name}_prompt_tokens_per_call": 600.0,
        }
    figures["routing_cache_aware_over_round_robin"] = 2.0
    out = table(figures)
    row = next(line for line in out.splitlines() if line.startswith("vllm-router cache_aware"))
    assert row.split()[2:] == ["0.600", "0.50", "10.0"]
    assert "cache_aware / round_robin hit rate: 2.00" in out
    args = build_parser().parse_args(["bench", "--section", "routing", "--quick"])
    assert (args.section, args.quick) == ("routing", True)
