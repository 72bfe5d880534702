"""`judge-server score` on the real engine: JSONL in, JSONL out, bad lines kept in place."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.integration.conftest import engine_env


def test_score_command_writes_one_result_per_line(tmp_path: Path) -> None:
    src = tmp_path / "items.jsonl"
    rows = [
        {"id": "paris", "prompt": "What is the capital of France?", "response": "Paris."},
        {"id": "math", "prompt": [{"role": "user", "content": "What is 3 + 4?"}], "response": "7"},
        {"id": "broken", "prompt": "no response field"},
        {"id": "gravity", "prompt": "Explain gravity.", "response": "Masses attract."},
    ]
    src.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    dst = tmp_path / "out.jsonl"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "judge_server",
            "score",
            "--rubric",
            "helpfulness",
            str(src),
            "-o",
            str(dst),
            "--batch-size",
            "2",
        ],
        capture_output=True,
        text=True,
        env=engine_env(),
        timeout=900,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert "scoring with helpfulness@" in proc.stderr  # the progress bar's label
    assert "4/4" in proc.stderr
    out = [json.loads(line) for line in dst.read_text().splitlines()]
    assert [r["id"] for r in out] == ["paris", "math", "broken", "gravity"]
    assert [r["status"] for r in out] == ["ok", "ok", "invalid_input", "ok"]
    assert out[2]["reward"] is None and "response" in out[2]["error"]
    for r in (out[0], out[1], out[3]):
        assert 0.0 <= r["reward"] <= 1.0
        assert r["rubric"]["name"] == "helpfulness" and len(r["rubric"]["version"]) == 12
        assert r["model"].startswith("SmolLM2-135M-Instruct")
        assert set(r["details"]["distribution"]) == {str(s) for s in range(1, 10)}


def test_score_command_unknown_rubric_fails_fast(tmp_path: Path) -> None:
    src = tmp_path / "items.jsonl"
    src.write_text('{"prompt": "p", "response": "r"}\n')
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "judge_server",
            "score",
            "--rubric",
            "nope",
            str(src),
            "-o",
            str(tmp_path / "o.jsonl"),
        ],
        capture_output=True,
        text=True,
        env=engine_env(),
        timeout=120,
    )
    assert proc.returncode == 2
    assert "unknown rubric 'nope'" in proc.stderr
