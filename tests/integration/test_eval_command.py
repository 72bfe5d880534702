"""`judge-server eval` on the labelled data shipped in the package, with the real engine."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from judge_server.cli.evaluation.data import default_data_dir
from tests.integration.conftest import engine_env


def test_the_evaluation_data_ships_with_the_package() -> None:
    names = {p.name for p in default_data_dir().iterdir()}
    assert {"README.md", "gsm8k_test_questions.jsonl", "pairs_llmbar_natural.jsonl"} <= names


def test_eval_prints_a_table_per_source(tmp_path: Path) -> None:
    out = tmp_path / "eval.json"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "judge_server",
            "eval",
            "--rubric",
            "verify",
            "--rubric",
            "pairwise",
            "--rubric",
            "helpfulness",
            "--limit",
            "4",
            "--json",
            str(out),
        ],
        capture_output=True,
        text=True,
        env=engine_env(),
        timeout=1200,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    for source in (
        "gsm8k",
        "master-key probes",
        "nq-open",
        "content-free: text",
        "content-free: numeric",
        "paraphrases",
        "multiple choice",
        "llmbar_natural",
        "mtbench_human",
    ):
        assert source in proc.stdout
    assert "false positives (wrong or content-free responses accepted)" in proc.stdout
    report = json.loads(out.read_text())
    by_rubric = {ref.split("@")[0]: rows for ref, rows in report["rubrics"].items()}
    verify = {row["source"]: row for row in by_rubric["verify"]}
    # 4 questions -> 4 correct + 4 wrong restatements; 4 x 9 master-key probes
    assert verify["gsm8k"]["n"] == 8 and verify["master-key probes"]["n"] == 36
    assert verify["master-key probes"]["false_positive_rate"] == 0.0
    assert verify["gsm8k"]["value"] >= 0.9
    # content-free probes against free-text and numeric references: every kind written before
    # the mention rule passes nothing; genuine gold answers and right choices are never blocked
    for source in ("content-free: text", "content-free: numeric"):
        row = verify[source]
        kinds = ("formatting", "filler", "multilingual", "restatement", "hedge", "unseen")
        for kind in (*kinds, "unseen2"):
            assert row[f"fp_{kind}"] == 0.0, (source, kind, row)
        assert row["false_positive_rate"] <= 0.01
    assert verify["nq-open"]["blocked_gold"] == 0.0
    choice = verify["multiple choice"]
    assert choice["false_positive_rate"] == 0.0 and choice["guard_blocked_correct"] == 0.0, choice
    kinds = {(k["source"], k["kind"], k["side"]) for k in report["per_kind"]}
    assert ("content-free: text", "unseen3", "fp") in kinds
    assert ("content-free: text", "spray", "fp") in kinds  # reported, not tuned on
    assert ("paraphrases", "paraphrase", "fn") in kinds
    table = {(t["rubric"].split("@")[0], t["source"]): t for t in report["false_positives"]}
    assert table[("verify", "content-free: text")]["mode"] == "verify"
    assert table[("verify", "nq-open")]["guard_blocked_correct"] is not None
    assert table[("verify", "nq-open")]["left_out_failed"] == verify["nq-open"]["failed"]
    assert not any(rubric in ("pairwise", "helpfulness") for rubric, _ in table)
    pairwise = {row["source"]: row for row in by_rubric["pairwise"]}
    assert pairwise["llmbar_natural"]["n"] + pairwise["llmbar_natural"]["failed"] == 4
    assert 0.0 <= pairwise["llmbar_natural"]["position_consistency"] <= 1.0
    pointwise = {row["source"]: row for row in by_rubric["helpfulness"]}
    assert pointwise["mtbench_human"]["n"] + pointwise["mtbench_human"]["failed"] == 4
