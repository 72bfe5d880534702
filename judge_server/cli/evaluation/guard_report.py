"""The content-free guard's report: what passed that must not, per kind of probe, and what the
guard refused that was right, per kind of genuine answer.

A false positive is a wrong or content-free response accepted (reward >= 0.5); a false negative
of the guard is a correct answer it refused (``details.method`` ``answer_guard``), whatever the
judge would have said.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from judge_server.cli.evaluation.data import VerifyCase
from judge_server.judges.answer_guard import GUARD_METHOD
from judge_server.service import ItemResult


def _by_kind(
    cases: Sequence[VerifyCase], results: Sequence[ItemResult]
) -> tuple[dict[str, list[bool]], dict[str, list[bool]]]:
    """Per kind: wrong responses accepted, and correct ones the guard blocked (failures left
    out: a judge failure is no verdict)."""
    accepted: dict[str, list[bool]] = {}
    blocked: dict[str, list[bool]] = {}
    for case, r in zip(cases, results, strict=True):
        if r.reward is None:
            continue
        if case.correct:
            blocked.setdefault(case.category, []).append(r.details.get("method") == GUARD_METHOD)
        else:
            accepted.setdefault(case.category, []).append(r.reward >= 0.5)
    return accepted, blocked


def guard_rates(cases: Sequence[VerifyCase], results: Sequence[ItemResult]) -> dict[str, float]:
    """The false-positive rate, overall and per kind of probe (``fp_<kind>``); the share of
    correct answers the guard blocked (``guard_blocked_correct``, and ``blocked_<kind>``); and
    how many items failed and were left out of them (``left_out_failed``)."""
    accepted, blocked = _by_kind(cases, results)
    # Failures are no verdict and are left out of every rate; say how many, so none hide.
    rates: dict[str, float] = {"left_out_failed": float(sum(r.reward is None for r in results))}
    wrong = [a for values in accepted.values() for a in values]
    rates["false_positive_rate"] = sum(wrong) / len(wrong) if wrong else float("nan")
    if len(accepted) > 1:
        for category, values in sorted(accepted.items()):
            rates[f"fp_{category or 'other'}"] = sum(values) / len(values)
    correct = [b for values in blocked.values() for b in values]
    if correct:
        rates["guard_blocked_correct"] = sum(correct) / len(correct)
    if len(blocked) > 1:
        for category, values in sorted(blocked.items()):
            rates[f"blocked_{category or 'other'}"] = sum(values) / len(values)
    return rates


def kind_rows(cases: Sequence[VerifyCase], results: Sequence[ItemResult]) -> list[dict[str, Any]]:
    """One row per kind: ``side`` ``fp`` (wrong accepted) or ``fn`` (right blocked), its count
    and rate."""
    accepted, blocked = _by_kind(cases, results)
    return [
        {"kind": kind or "other", "side": side, "n": len(values), "rate": sum(values) / len(values)}
        for side, groups in (("fp", accepted), ("fn", blocked))
        for kind, values in sorted(groups.items())
    ]


def kind_table(report: dict[str, Any]) -> list[dict[str, Any]]:
    """Every rubric's per-kind rows, with the rubric and source."""
    return [
        {"rubric": ref, "source": row["source"], **kind}
        for ref, (_mode, rows) in report.items()
        for row in rows
        for kind in row.get("kinds", [])
    ]


def print_kinds(table: Sequence[dict[str, Any]]) -> None:
    if not table:
        return
    print(
        "\nper kind: fp = wrong or content-free responses accepted; "
        "fn = correct answers the guard refused"
    )
    header = f"{'rubric':<28} {'source':<22} {'kind':<14} {'side':<4} {'n':>6} {'rate':>8}"
    print(header)
    print("-" * len(header))
    for t in table:
        print(
            f"{t['rubric']:<28} {t['source']:<22} {t['kind']:<14} {t['side']:<4} "
            f"{t['n']:>6} {t['rate']:>8.4f}"
        )
