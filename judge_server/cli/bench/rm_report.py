"""Figures and the printed table of ``bench --section rm-vs-serve-rm``.

One row per measured server route: judge-server through OpenRLHF's dialect route
(``rm_judge_get_reward``) and through ``/v1/score`` (``rm_judge_v1_score``), and the
``serve_rm`` baseline (``rm_serve_rm``); each judge-server row gets its rate over serve_rm's.
"""

from __future__ import annotations

from typing import Any

from judge_server.cli.bench.report import busy_notes
from judge_server.cli.bench.rm_load import LoadResult

GET_REWARD, V1_SCORE, SERVE_RM = "rm_judge_get_reward", "rm_judge_v1_score", "rm_serve_rm"
JUDGE_ROWS = (GET_REWARD, V1_SCORE)
LABELS = {
    GET_REWARD: "judge-server reward_model (POST /get_reward, vLLM)",
    V1_SCORE: "judge-server reward_model (POST /v1/score, vLLM)",
    SERVE_RM: "OpenRLHF serve_rm (POST /get_reward, transformers, serialised)",
}
RATIO_LABELS = {
    GET_REWARD: "judge-server /get_reward over serve_rm",
    V1_SCORE: "judge-server /v1/score over serve_rm",
}


def judge_prefix(route: str) -> str:
    """The figures' prefix for a judge-server route (``POST /get_reward?...``, ``POST /v1/...``)."""
    return GET_REWARD if "/get_reward" in route else V1_SCORE


def ratio_key(prefix: str) -> str:
    return f"{prefix}_over_serve_rm"


def side_figures(prefix: str, result: LoadResult) -> dict[str, Any]:
    """One row's rate and latencies, keyed ``<prefix>_samples_per_s`` and so on."""
    return {
        f"{prefix}_samples_per_s": result.samples_per_s,
        f"{prefix}_p50_ms": result.latency_ms(50),
        f"{prefix}_p95_ms": result.latency_ms(95),
    }


def add_ratios(figures: dict[str, Any]) -> dict[str, Any]:
    """Figures plus each judge-server row's rate over serve_rm's, where both were measured."""
    out = dict(figures)
    den = figures.get(f"{SERVE_RM}_samples_per_s")
    for prefix in JUDGE_ROWS:
        num = figures.get(f"{prefix}_samples_per_s")
        if isinstance(num, int | float) and isinstance(den, int | float) and den > 0:
            out[ratio_key(prefix)] = num / den
    return out


def _num(value: Any, digits: int = 1) -> str:
    return f"{value:,.{digits}f}" if isinstance(value, int | float) else "-"


def table(figures: dict[str, Any]) -> str:
    """The measured rows' rates and latencies, the ratios, and the same-weights check."""
    rows = [("server", "samples/s", "p50 ms", "p95 ms")]
    measured = [p for p in (*JUDGE_ROWS, SERVE_RM) if f"{p}_samples_per_s" in figures]
    for prefix in measured:
        rows.append(
            (
                LABELS[prefix],
                _num(figures[f"{prefix}_samples_per_s"]),
                _num(figures.get(f"{prefix}_p50_ms"), 0),
                _num(figures.get(f"{prefix}_p95_ms"), 0),
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    lines = [
        "  ".join(
            [
                row[0].ljust(widths[0]),
                *(c.rjust(w) for c, w in zip(row[1:], widths[1:], strict=True)),
            ]
        )
        for row in rows
    ]
    lines.insert(1, "-" * (sum(widths) + 6))
    head = (
        f"rm-vs-serve-rm: {figures.get('rm_requests', '?')} requests per row from "
        f"{figures.get('rm_clients', '?')} concurrent one-sample clients "
        f"({figures.get('rm_warmup', '?')} warm-up requests first)\n"
        f"model: {figures.get('rm_model', '?')} (float32), "
        f"{_num(figures.get('rm_query_tokens_mean'))} tokens per OpenRLHF query"
    )
    tail = [
        f"{RATIO_LABELS[p]}: {_num(figures[ratio_key(p)], 2)}x"
        for p in JUDGE_ROWS
        if ratio_key(p) in figures
    ]
    if "rm_same_weights_abs_diff" in figures:
        tail.append(
            f"same weights: one conversation's logit {figures['rm_judge_server_check_logit']:.5f} "
            f"(judge-server) vs {figures['rm_serve_rm_check_logit']:.5f} (serve_rm), "
            f"|diff| {figures['rm_same_weights_abs_diff']:.1e}"
        )
    loads = figures.get("load_1m_after_step", {})
    if loads:
        steps = ", ".join(f"{step} {load:.1f}" for step, load in loads.items())
        tail.append(f"1-min load after each step ({figures.get('cpus', '?')} CPUs): {steps}")
    return "\n".join([head, "", *lines, "", *tail, *busy_notes(figures)])
