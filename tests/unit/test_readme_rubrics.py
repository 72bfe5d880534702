"""Every rubric the README shows in YAML is a valid rubric (the curl examples are replayed
against the real server in tests/integration/test_readme_examples.py)."""

import pytest
import yaml

from judge_server.judges.modes import parse_rubric
from judge_server.settings import project_rubrics_dir
from tests.readme import curl_examples, yaml_rubrics

BLOCKS = yaml_rubrics()


def test_the_readme_has_rubric_examples() -> None:
    assert len(BLOCKS) >= 3
    assert len(curl_examples()) >= 3


@pytest.mark.parametrize(("line", "text"), BLOCKS, ids=[f"README:{n}" for n, _ in BLOCKS])
def test_readme_rubric_example_is_valid(line: int, text: str) -> None:
    data = yaml.safe_load(text)
    data.setdefault("name", "readme-example")
    parse_rubric(data, source=f"README.md:{line}")


def test_format_comment_names_every_mode() -> None:
    """The format example's ``mode:`` comment lists the modes a rubric can have."""
    from judge_server.judges.modes import registered_modes

    (text,) = (t for _, t in BLOCKS if t.startswith("name: helpfulness"))
    comment = next(line for line in text.splitlines() if line.startswith("mode:"))
    listed = {m.strip() for m in comment.split("#", 1)[1].split("|")}
    assert listed == set(registered_modes())


def test_readme_names_the_shipped_rubrics() -> None:
    from tests.readme import README

    text = README.read_text(encoding="utf-8")
    for path in sorted(project_rubrics_dir().glob("*.yaml")):
        assert f"| `{path.stem}` |" in text, f"{path.stem} is missing from the README's table"
