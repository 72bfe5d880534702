"""Every server setting is documented: the README's Configure table names its variable."""

from judge_server.settings import Settings
from tests.readme import README


def configure_section() -> str:
    text = README.read_text(encoding="utf-8")
    start = text.index("\n## Configure\n")
    end = text.index("\n## ", start + 1)
    return text[start:end]


def test_every_setting_has_its_environment_variable_in_the_configure_table() -> None:
    table = configure_section()
    missing = [f"JUDGE_{name.upper()}" for name in Settings.model_fields]
    missing = [var for var in missing if f"`{var}`" not in table]
    assert not missing, f"settings missing from README.md's Configure table: {missing}"
