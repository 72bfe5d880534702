"""Every server setting is documented: the README's Configure table names its variable."""

from judge_server.settings import Settings
from tests.readme import README


def test_every_setting_has_its_environment_variable_in_the_readme() -> None:
    text = README.read_text(encoding="utf-8")
    missing = [f"JUDGE_{name.upper()}" for name in Settings.model_fields]
    missing = [var for var in missing if var not in text]
    assert not missing, f"settings missing from README.md's Configure table: {missing}"
