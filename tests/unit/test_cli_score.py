"""``judge-server score`` at the engine seam (the real engine runs it in tests/integration)."""

import json
from pathlib import Path

import pytest

from judge_server.cli.score import score_file
from judge_server.service import builder
from judge_server.settings import Settings, project_rubrics_dir
from tests.fakes import ScriptedEngine


async def test_batches_stay_within_the_request_bound(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(builder, "build_engine", lambda _: ScriptedEngine())
    src, dst = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    src.write_text("".join(json.dumps({"id": i, "prompt": "p", "response": "r"}) + "\n"
                           for i in range(5)))  # fmt: skip
    settings = Settings(rubrics_dir=project_rubrics_dir(), max_items_per_request=2)
    # a --batch-size above the bound used to fail mid-file with a traceback
    assert await score_file(settings, "helpfulness", src, dst, batch_size=3) == 0
    rows = [json.loads(line) for line in dst.read_text().splitlines()]
    assert [r["id"] for r in rows] == ["0", "1", "2", "3", "4"]
    assert all(r["status"] == "ok" for r in rows)
    assert "wrote 5 results" in capsys.readouterr().err


async def test_healthbench_rows_in_batches_within_the_engine_call_bound(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(builder, "build_engine", lambda _: ScriptedEngine())
    rows = Path(__file__).parents[1] / "data" / "healthbench_rows.jsonl"
    dst = tmp_path / "out.jsonl"
    # rows of 4, 3 and 3 criteria: 7 calls per batch at most means batches [4], [3, 3]
    settings = Settings(rubrics_dir=project_rubrics_dir(), max_engine_calls_per_request=7)
    assert await score_file(settings, "healthbench", rows, dst, batch_size=64) == 0
    out = [json.loads(line) for line in dst.read_text().splitlines()]
    assert [r["id"] for r in out] == ["hb-own-1", "hb-own-2", "hb-own-3"]
    assert all(r["status"] == "ok" for r in out), out
    assert [r["usage"]["engine_calls"] for r in out] == [4, 3, 3]
    assert [len(r["details"]["criteria"]) for r in out] == [4, 3, 3]
    assert all(r["rubric"]["name"] == "healthbench" and r["details"]["criteria_hash"] for r in out)
    assert "3 ok" in capsys.readouterr().err


async def test_a_line_alone_over_the_engine_call_bound_is_its_own_refusal(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(builder, "build_engine", lambda _: ScriptedEngine())
    rows = Path(__file__).parents[1] / "data" / "healthbench_rows.jsonl"
    dst = tmp_path / "out.jsonl"
    # rows of 4, 3 and 3 criteria: the first alone passes a bound of 3; the run goes on
    settings = Settings(rubrics_dir=project_rubrics_dir(), max_engine_calls_per_request=3)
    assert await score_file(settings, "healthbench", rows, dst, batch_size=64) == 0
    out = [json.loads(line) for line in dst.read_text().splitlines()]
    assert [(r["id"], r["status"]) for r in out] == [
        ("hb-own-1", "invalid_input"), ("hb-own-2", "ok"), ("hb-own-3", "ok")
    ]  # fmt: skip
    assert "needs 4 engine calls" in out[0]["error"] and out[0]["reward"] is None
    assert "1 invalid_input, 2 ok" in capsys.readouterr().err
