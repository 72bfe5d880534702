"""Ratios and targets, the printed table, the JSON file and the optional bar chart."""

from __future__ import annotations

import json
import operator
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: The figures every complete run writes (the issue's contract with the JSON file).
THROUGHPUT_KEYS = (
    "engine_ceiling_items_per_s",
    "server_batch_items_per_s",
    "server_concurrent_items_per_s",
    "naive_baseline_items_per_s",
    "cache_hit_items_per_s",
    "overhead_items_per_s",
    "bare_framework_items_per_s",
)
#: Server CPU time per item (the serving process alone), microseconds.
CPU_KEYS = (
    "overhead_server_cpu_us_per_item",
    "cache_hit_server_cpu_us_per_item",
    "bare_framework_server_cpu_us_per_item",
)
#: The load generator's (the bench process's) CPU time per item on the same paths: where it is
#: above the server's, the load generator bounded the rate, not the server.
CLIENT_CPU_KEYS = (
    "overhead_client_cpu_us_per_item",
    "cache_hit_client_cpu_us_per_item",
    "bare_framework_client_cpu_us_per_item",
)
REQUIRED_KEYS = (
    *THROUGHPUT_KEYS,
    *CPU_KEYS,
    *CLIENT_CPU_KEYS,
    "naive_parse_failures",
    "rubric_k1_s",
    "rubric_k8_s",
    "rubric_short_k1_s",
    "rubric_short_k8_s",
    "rubric_generation_s",
)


@dataclass(frozen=True)
class Ratio:
    key: str
    label: str
    numerator: str
    denominator: str
    target: tuple[str, float] | None = None


RATIOS = (
    Ratio(
        "server_batch_over_engine_ceiling",
        "server batch / engine ceiling",
        "server_batch_items_per_s",
        "engine_ceiling_items_per_s",
        (">=", 0.95),
    ),
    Ratio(
        "server_concurrent_over_batch",
        "server concurrent / server batch",
        "server_concurrent_items_per_s",
        "server_batch_items_per_s",
        (">=", 0.95),
    ),
    Ratio(
        "overhead_over_bare_framework",
        "overhead / bare framework",
        "overhead_items_per_s",
        "bare_framework_items_per_s",
        (">=", 0.5),
    ),
    Ratio(
        "cache_hit_over_bare_framework",
        "cache hits / bare framework",
        "cache_hit_items_per_s",
        "bare_framework_items_per_s",
        (">=", 0.5),
    ),
    Ratio("rubric_k8_over_k1", "rubric k8 / k1 (time)", "rubric_k8_s", "rubric_k1_s", ("<=", 1.5)),
    Ratio(
        "rubric_short_k8_over_k1",
        "rubric k8 / k1, short prompts (time)",
        "rubric_short_k8_s",
        "rubric_short_k1_s",
        ("<=", 1.5),
    ),
    Ratio(
        "server_batch_over_naive",
        "server batch / naive baseline",
        "server_batch_items_per_s",
        "naive_baseline_items_per_s",
    ),
    Ratio(
        "server_concurrent_over_naive",
        "server concurrent / naive baseline",
        "server_concurrent_items_per_s",
        "naive_baseline_items_per_s",
    ),
)
FIGURE_TARGETS: dict[str, tuple[str, float]] = {"cache_hit_items_per_s": (">=", 5000.0)}
# The bench's own processes (engine threads, server, client) keep up to about 1.5 runnable
# threads per core busy; well beyond that, something else ran.
BUSY_LOAD_PER_CPU = 2.0
_COMPARE: dict[str, Callable[[float, float], bool]] = {">=": operator.ge, "<=": operator.le}


def add_ratios(figures: dict[str, Any]) -> dict[str, Any]:
    """Figures plus every ratio both of whose terms were measured, and the targets' verdicts."""
    out = dict(figures)
    targets: dict[str, str] = {}
    met: dict[str, bool] = {}
    for ratio in RATIOS:
        num, den = figures.get(ratio.numerator), figures.get(ratio.denominator)
        if isinstance(num, int | float) and isinstance(den, int | float) and den > 0:
            out[ratio.key] = num / den
    for key, target in [*((r.key, r.target) for r in RATIOS), *FIGURE_TARGETS.items()]:
        if target is None:
            continue
        targets[key] = f"{target[0]} {target[1]:g}"
        if isinstance(out.get(key), int | float):
            met[key] = _COMPARE[target[0]](out[key], target[1])
    out["targets"] = targets
    out["targets_met"] = met
    out["load_generator_bound"] = load_generator_bound(figures)
    return out


def load_generator_bound(figures: dict[str, Any]) -> list[str]:
    """The HTTP paths whose load generator spent more CPU per item than their server: the
    client, not the server, bounded their rate."""
    bound = []
    for client_key in CLIENT_CPU_KEYS:
        path = client_key.removesuffix("_client_cpu_us_per_item")
        client, server = figures.get(client_key), figures.get(f"{path}_server_cpu_us_per_item")
        if isinstance(client, int | float) and isinstance(server, int | float) and client > server:
            bound.append(path)
    return bound


def _shown(value: Any) -> str:
    if isinstance(value, bool) or value is None:
        return str(value).lower() if isinstance(value, bool) else "-"
    if isinstance(value, float):
        return f"{value:,.3f}" if abs(value) < 100 else f"{value:,.1f}"
    return str(value)


def table(figures: dict[str, Any]) -> str:
    """The measured figures, then the ratios with their targets."""
    rows: list[tuple[str, str, str]] = [("figure", "value", "target")]
    for key in REQUIRED_KEYS:
        target = figures.get("targets", {}).get(key, "")
        rows.append((key, _shown(figures.get(key)), _verdict(figures, key, target)))
    for ratio in RATIOS:
        target = figures.get("targets", {}).get(ratio.key, "")
        rows.append(
            (ratio.label, _shown(figures.get(ratio.key)), _verdict(figures, ratio.key, target))
        )
    context = [
        f"{k}={_shown(figures[k])}"
        for k in ("model", "enforce_eager", "prompt_tokens_per_item", "wall_s")
        if k in figures
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    lines = [f"{a.ljust(widths[0])}  {b.rjust(widths[1])}  {c}".rstrip() for a, b, c in rows]
    lines.insert(1, "-" * (sum(widths) + 4))
    notes = [*client_bound_notes(figures), *busy_notes(figures)]
    return "\n".join([*lines, "", "  ".join(context), *notes])


def client_bound_notes(figures: dict[str, Any]) -> list[str]:
    return [
        f"note: {path}_items_per_s is bounded by the load generator, not the server: the bench "
        f"spent {figures[f'{path}_client_cpu_us_per_item']:.1f} us of CPU per item sending it, "
        f"the server {figures[f'{path}_server_cpu_us_per_item']:.1f} us (ratios with it measure "
        "the load generator too)"
        for path in figures.get("load_generator_bound", [])
    ]


def busy_notes(figures: dict[str, Any]) -> list[str]:
    """Steps during which something besides the bench competed for the CPU."""
    cpus = figures.get("cpus") or 1
    loads: dict[str, float] = figures.get("load_1m_after_step", {})
    return [
        f"note: busy machine during '{step}' (1-min load {load:.1f} on {cpus} CPUs): "
        "its figures are unreliable"
        for step, load in loads.items()
        if load > BUSY_LOAD_PER_CPU * cpus
    ]


def _verdict(figures: dict[str, Any], key: str, target: str) -> str:
    if not target:
        return ""
    met = figures.get("targets_met", {}).get(key)
    return f"{target} ({'met' if met else 'NOT met' if met is not None else 'n/a'})"


def write_json(figures: dict[str, Any], path: Path) -> None:
    path.write_text(json.dumps(figures, indent=2) + "\n")


def write_plot(figures: dict[str, Any], path: Path) -> bool:
    """A bar chart of the throughput figures, if matplotlib is importable (not a dependency)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print(
            f"judge-server bench: --plot needs matplotlib (pip install matplotlib); "
            f"{path} not written",
            file=sys.stderr,
        )
        return False
    keys = [k for k in THROUGHPUT_KEYS if isinstance(figures.get(k), int | float)]
    values = [float(figures[k]) for k in keys]
    fig, ax = plt.subplots(figsize=(9, 4.5))
    bars = ax.bar([k.removesuffix("_items_per_s") for k in keys], values, color="#4c72b0")
    ax.bar_label(bars, labels=[f"{v:,.1f}" for v in values], fontsize=8)
    ax.set_yscale("log")  # the engine-bound figures and the cache/overhead ones differ by 1000x
    ax.set_ylabel("items / s (log scale)")
    ax.set_title(f"judge-server bench: {figures.get('model', '')}")
    ax.tick_params(axis="x", labelrotation=20)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return True
