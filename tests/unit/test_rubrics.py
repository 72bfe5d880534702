from pathlib import Path

import pytest

from judge_server.judges.modes import parse_rubric
from judge_server.rubrics.registry import RubricNotFoundError, RubricRegistry, read_rubric_file
from judge_server.rubrics.spec import RubricError
from judge_server.settings import project_rubrics_dir

BASE = {
    "name": "demo",
    "mode": "pointwise",
    "template": "Rate {response} for {prompt}. Reply with a digit.",
}


def test_shipped_rubrics_validate() -> None:
    names = {read_rubric_file(p, parse_rubric).name for p in project_rubrics_dir().glob("*.yaml")}
    assert {"helpfulness", "correctness"} <= names


def test_version_is_content_hash_ignoring_formatting(tmp_path: Path) -> None:
    a = tmp_path / "demo.yaml"
    a.write_text(
        "name: demo\nmode: pointwise\n"
        "template: 'Rate {response} for {prompt}. Reply with a digit.'\n"
    )
    b = parse_rubric(dict(BASE))
    assert read_rubric_file(a, parse_rubric).version == b.version
    changed = parse_rubric({**BASE, "template": BASE["template"] + " Be strict."})
    assert changed.version != b.version
    assert len(b.version) == 12


@pytest.mark.parametrize(
    ("patch", "message"),
    [
        ({"mode": "poetry"}, "mode"),
        ({"template": "{answer}"}, "unknown placeholder"),
        ({"scores": {"min": 5, "max": 3}}, "must exceed"),
        ({"requires_reference": True}, "never uses {reference}"),
        ({"name": "Bad Name"}, "name"),
        ({"mode": "verdict", "verdict": {"yes": ["Yes"], "no": ["Yes"]}}, "share a token"),
        ({"surprise": 1}, "surprise"),
        # a field of another mode is refused, and the message says whose it is
        ({"verdict": {"yes": ["Y"]}}, "verdict: not a field of pointwise rubrics; it belongs to "),
        ({"criteria": []}, "criteria: not a field of pointwise rubrics; it belongs to rubric mode"),
        ({"mode": None}, "unknown mode None"),
        ({"mode": "poetry"}, r"unknown mode 'poetry' \(one of: pointwise, verdict, rubric, "),
    ],
)
def test_invalid_rubrics_are_refused_with_a_reason(patch: dict[str, object], message: str) -> None:
    with pytest.raises(RubricError, match=message):
        parse_rubric({**BASE, **patch})


def test_registry_keeps_last_good_version_and_pins(tmp_path: Path) -> None:
    path = tmp_path / "demo.yaml"
    path.write_text("mode: pointwise\ntemplate: 'v1 {response}'\n")
    registry = RubricRegistry(parse_rubric)
    report = registry.load_dir(tmp_path)
    assert report.loaded == ["demo"] and not report.errors
    v1 = registry.resolve("demo").version

    path.write_text("mode: pointwise\ntemplate: 'v2 {response}'\n")
    registry.load_dir(tmp_path)
    v2 = registry.resolve("demo").version
    assert v2 != v1
    assert registry.resolve(f"demo@{v1}").template.startswith("v1")
    assert registry.history("demo") == [v1, v2]

    path.write_text("mode: pointwise\ntemplate: 'broken {nope}'\n")
    report = registry.load_dir(tmp_path)
    assert str(path) in report.errors
    assert registry.resolve("demo").version == v2  # last good keeps serving

    with pytest.raises(RubricNotFoundError):
        registry.resolve("demo@000000000000")
    with pytest.raises(RubricNotFoundError):
        registry.resolve("missing")


def test_file_name_must_match_rubric_name(tmp_path: Path) -> None:
    path = tmp_path / "one.yaml"
    path.write_text("name: two\nmode: pointwise\ntemplate: '{response}'\n")
    with pytest.raises(RubricError, match="must match the file name"):
        read_rubric_file(path, parse_rubric)
