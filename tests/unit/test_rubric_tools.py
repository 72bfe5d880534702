"""``judge-server rubrics ...`` through the real argument parser."""

import json
from pathlib import Path

import pytest

from judge_server.cli.main import main

RM_RUBRIC = "name: rm\nmode: reward_model\nreward_model:\n  model: toy\n"


@pytest.fixture
def rm_dir(tmp_path: Path) -> Path:
    d = tmp_path / "rubrics"
    d.mkdir()
    (d / "rm.yaml").write_text(RM_RUBRIC)
    return d


@pytest.fixture
def item_file(tmp_path: Path) -> Path:
    path = tmp_path / "item.json"
    path.write_text(json.dumps({"prompt": "Capital of France?", "response": "Paris."}))
    return path


def run(argv: list[str]) -> int:
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    code = exit_info.value.code
    return code if isinstance(code, int) else 1


def test_render_a_reward_model_rubric_shows_the_conversation_it_scores(
    rm_dir: Path, item_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["rubrics", "render", "rm", "--item", str(item_file), "--rubrics-dir", str(rm_dir)]
    code = run([*argv, "--messages", "--reward-model", "toy=/models/toy-rm"])
    out = capsys.readouterr().out
    assert code == 0
    assert "# rm@" in out and "1 judge call" in out
    messages = json.loads(out.split("=====\n", 1)[1])
    assert messages == [
        {"role": "user", "content": "Capital of France?"},
        {"role": "assistant", "content": "Paris."},
    ]


def test_render_without_the_reward_model_says_how_to_pass_it(
    rm_dir: Path, item_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["rubrics", "render", "rm", "--item", str(item_file), "--rubrics-dir", str(rm_dir)]
    assert run([*argv, "--messages"]) == 2
    err = capsys.readouterr().err
    assert "reward model 'toy' is not loaded" in err and "--reward-model toy=PATH" in err
    assert "Traceback" not in err


@pytest.mark.parametrize(
    ("rubric", "criteria", "why"),
    [
        ("healthbench", None, "needs a rubrics field"),  # required, and the item brings none
        ("helpfulness", [{"criterion": "Says Paris.", "points": 5}], "rubrics"),  # forbidden
    ],
)
def test_render_applies_the_rubrics_criteria_policy(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    rubric: str,
    criteria: object,
    why: str,
) -> None:
    from judge_server.settings import project_rubrics_dir

    path = tmp_path / "item.json"
    item: dict[str, object] = {"prompt": "Capital of France?", "response": "Paris."}
    if criteria is not None:
        item["rubrics"] = criteria
    path.write_text(json.dumps(item))
    argv = ["rubrics", "render", rubric, "--item", str(path), "--messages"]
    assert run([*argv, "--rubrics-dir", str(project_rubrics_dir())]) == 2
    err = capsys.readouterr().err
    assert f"the item does not fit {rubric}" in err and why in err
