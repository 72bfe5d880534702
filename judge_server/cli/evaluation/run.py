"""Score labelled data with one rubric and print a table per source.

- pair files: pairwise accuracy (chosen preferred over rejected). Pointwise-style rubrics score
  both responses and compare (equal scores are ties, counted apart); pairwise rubrics judge the
  pair directly, and position consistency is the share of pairs whose two orders agree.
- questions: verification accuracy on restated gold solutions (correct) and the same with a
  wrong final answer (incorrect), and the false-positive rate on master-key probes.
- content-free probes (``probes``) against short factual questions (free text) and GSM8K
  (numeric): the false-positive rate per kind of probe, and the share of genuine correct answers
  the content-free guard blocked. ``false_positive_table`` gathers them per rubric and mode.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from judge_server.cli.evaluation.choices import choice_cases
from judge_server.cli.evaluation.data import (
    Pair,
    VerifyCase,
    load_pairs,
    master_key_cases,
    verification_cases,
)
from judge_server.cli.evaluation.guard_report import guard_rates, kind_rows
from judge_server.cli.evaluation.paraphrases import paraphrase_cases
from judge_server.cli.evaluation.probes import genuine_cases, load_questions, probe_cases
from judge_server.judges import Judge, JudgeItem
from judge_server.service import ItemResult, JudgeService

TIE_EPS = 1e-6
CHUNK = 32


@dataclass
class Row:
    source: str
    metric: str
    n: int = 0
    hits: int = 0
    ties: int = 0
    failed: int = 0
    extra: dict[str, float] = field(default_factory=dict)
    kinds: list[dict[str, Any]] = field(default_factory=list)

    @property
    def value(self) -> float:
        return self.hits / self.n if self.n else float("nan")


async def _score(
    service: JudgeService, judge: Judge, items: list[JudgeItem], label: str
) -> list[ItemResult]:
    from tqdm import tqdm

    results: list[ItemResult] = []
    chunk_size = min(CHUNK, service.settings.max_items_per_request)
    with tqdm(total=len(items), desc=label, unit="item", file=sys.stderr) as bar:
        for start in range(0, len(items), chunk_size):
            chunk = items[start : start + chunk_size]
            results.extend(await service.score(judge, chunk, timeout_s=3600, use_cache=False))
            bar.update(len(chunk))
    return results


def valid_masses(details: dict[str, Any]) -> list[float]:
    """Every verdict's valid mass in one result: its own, or its criteria's (rubric mode)."""
    if "valid_mass" in details:
        return [float(details["valid_mass"])]
    return [float(c["valid_mass"]) for c in details.get("criteria", []) if "valid_mass" in c]


def valid_mass_stats(results: Sequence[ItemResult]) -> dict[str, float]:
    """How much probability the judge put on valid answers (what ``min_valid_mass`` cuts):
    the minimum, the 1st and 5th percentiles and the median over every verdict read."""
    masses = sorted(m for r in results if r.status == "ok" for m in valid_masses(r.details))
    if not masses:
        return {}

    def quantile(q: float) -> float:
        return masses[min(len(masses) - 1, int(q * len(masses)))]

    return {
        "valid_mass_min": masses[0],
        "valid_mass_p01": quantile(0.01),
        "valid_mass_p05": quantile(0.05),
        "valid_mass_median": quantile(0.5),
    }


async def eval_pairs(
    service: JudgeService, judge: Judge, pairs: Sequence[Pair], source: str
) -> Row:
    row = Row(source, "pairwise accuracy")
    if judge.rubric.mode == "pairwise":
        items = [
            JudgeItem(p.id, p.prompt, p.chosen, metadata={"response_b": p.rejected}) for p in pairs
        ]
        agree = 0
        results = await _score(service, judge, items, source)
        row.extra.update(valid_mass_stats(results))
        for r in results:
            if r.status != "ok" or r.reward is None:
                row.failed += 1
                continue
            row.n += 1
            if abs(r.reward - 0.5) <= TIE_EPS:
                row.ties += 1
            row.hits += r.reward > 0.5 + TIE_EPS
            agree += bool(r.details.get("agree"))
        row.extra["position_consistency"] = agree / row.n if row.n else float("nan")
        return row
    items = [
        JudgeItem(f"{p.id}/{side}", p.prompt, text)
        for p in pairs
        for side, text in (("chosen", p.chosen), ("rejected", p.rejected))
    ]
    results = await _score(service, judge, items, source)
    row.extra.update(valid_mass_stats(results))
    for chosen, rejected in zip(results[::2], results[1::2], strict=True):
        if chosen.reward is None or rejected.reward is None:
            row.failed += 1
            continue
        row.n += 1
        if abs(chosen.reward - rejected.reward) <= TIE_EPS:
            row.ties += 1
        row.hits += chosen.reward > rejected.reward + TIE_EPS
    return row


async def eval_verification(
    service: JudgeService, judge: Judge, cases: Sequence[VerifyCase], source: str, metric: str
) -> Row:
    row = Row(source, metric)
    items = [JudgeItem(c.id, c.question, c.response, reference=c.reference) for c in cases]
    results = await _score(service, judge, items, source)
    row.extra.update(valid_mass_stats(results))
    for case, r in zip(cases, results, strict=True):
        if r.reward is None:
            row.failed += 1
            continue
        row.n += 1
        row.hits += (r.reward >= 0.5) == case.correct
    row.extra.update(guard_rates(cases, results))
    row.kinds = kind_rows(cases, results)
    return row


def print_table(rubric_ref: str, model: str, rows: Sequence[Row]) -> None:
    print(f"\nrubric {rubric_ref}  model {model}")
    header = f"{'source':<22} {'metric':<24} {'value':>7} {'n':>6} {'ties':>5} {'failed':>6}  extra"
    print(header)
    print("-" * len(header))
    for r in rows:
        extra = "  ".join(f"{k}={v:.3g}" for k, v in r.extra.items())
        print(
            f"{r.source:<22} {r.metric:<24} {r.value:>7.3f} {r.n:>6} {r.ties:>5} "
            f"{r.failed:>6}  {extra}"
        )


def takes_reference(judge: Judge) -> bool:
    rubric = judge.rubric
    return rubric.mode == "verify" or rubric.requires_reference


async def evaluate(
    service: JudgeService, judge: Judge, data_dir: Path, limit: int | None
) -> list[Row]:
    rows: list[Row] = []
    if takes_reference(judge):
        rows.extend(await eval_content_free(service, judge, data_dir, limit))
        questions = data_dir / "gsm8k_test_questions.jsonl"
        rows.append(
            await eval_verification(
                service,
                judge,
                verification_cases(questions, limit),
                "gsm8k",
                "verification accuracy",
            )
        )
        rows.append(
            await eval_verification(
                service,
                judge,
                master_key_cases(questions, limit),
                "master-key probes",
                "accuracy (all wrong)",
            )
        )
    else:
        for path in sorted(data_dir.glob("pairs_*.jsonl")):
            pairs = load_pairs(path, limit)
            rows.append(await eval_pairs(service, judge, pairs, path.stem.removeprefix("pairs_")))
    return rows


async def eval_content_free(
    service: JudgeService, judge: Judge, data_dir: Path, limit: int | None
) -> list[Row]:
    """Short factual questions (free-text references): genuine answers, hand-written
    paraphrases of references, content-free probes, and the same questions as multiple choice;
    GSM8K (numeric references): content-free probes."""
    factual = load_questions(data_dir / "nq_open_dev_questions.jsonl", limit)
    numeric = load_questions(data_dir / "gsm8k_test_questions.jsonl", limit)
    return [
        await eval_verification(
            service, judge, genuine_cases(factual, "nq-open"), "nq-open", "verification accuracy"
        ),
        await eval_verification(
            service, judge, paraphrase_cases("paraphrases"), "paraphrases", "verification accuracy"
        ),
        await eval_verification(
            service,
            judge,
            probe_cases(factual, "content-free: text"),
            "content-free: text",
            "accuracy (all wrong)",
        ),
        await eval_verification(
            service,
            judge,
            choice_cases(factual, "multiple choice"),
            "multiple choice",
            "verification accuracy",
        ),
        await eval_verification(
            service,
            judge,
            probe_cases(numeric, "content-free: numeric"),
            "content-free: numeric",
            "accuracy (all wrong)",
        ),
    ]


def false_positive_table(report: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per rubric and source that has a false-positive rate: what passed that must not."""
    table = []
    for ref, (mode, rows) in report.items():
        for row in rows:
            if "false_positive_rate" in row:
                table.append(
                    {
                        "rubric": ref,
                        "mode": mode,
                        "source": row["source"],
                        "n": row["n"],
                        "false_positive_rate": row["false_positive_rate"],
                        "guard_blocked_correct": row.get("guard_blocked_correct"),
                        "left_out_failed": int(row.get("left_out_failed", 0)),
                    }
                )
    return table


def print_false_positives(table: Sequence[dict[str, Any]]) -> None:
    if not table:
        return
    print("\nfalse positives (wrong or content-free responses accepted), per rubric and mode")
    print("(items that failed are no verdict: left out of the rates, counted under 'failed')")
    header = (
        f"{'rubric':<28} {'mode':<8} {'source':<22} {'n':>6} {'fp rate':>8} {'blocked ok':>10} "
        f"{'failed':>6}"
    )
    print(header)
    print("-" * len(header))
    for t in table:
        blocked = t["guard_blocked_correct"]
        print(
            f"{t['rubric']:<28} {t['mode']:<8} {t['source']:<22} {t['n']:>6} "
            f"{t['false_positive_rate']:>8.4f} {'-' if blocked is None else f'{blocked:.4f}':>10} "
            f"{t['left_out_failed']:>6}"
        )


def as_json(rows: Sequence[Row]) -> list[dict[str, Any]]:
    return [
        {
            "source": r.source,
            "metric": r.metric,
            "value": r.value,
            "n": r.n,
            "ties": r.ties,
            "failed": r.failed,
            **r.extra,
            **({"kinds": r.kinds} if r.kinds else {}),
        }
        for r in rows
    ]
