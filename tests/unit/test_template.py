import pytest

from judge_server.rubrics.template import TemplateError, check_template, fill, placeholders


def test_fill_substitutes_every_placeholder_once() -> None:
    out = fill("Q: {prompt}\nA: {response}", {"prompt": "2+2?", "response": "4"}, {})
    assert out == "Q: 2+2?\nA: 4"


def test_braces_in_user_text_are_literal_and_never_rescanned() -> None:
    # A response that contains a placeholder must not pull the reference in.
    values = {"prompt": "p {x} {}", "response": "see {reference}", "reference": "SECRET"}
    out = fill("{prompt}|{response}", values, {})
    assert out == "p {x} {}|see {reference}"
    assert "SECRET" not in out


def test_metadata_placeholders() -> None:
    assert fill("lang={metadata.lang}", {}, {"lang": "fr"}) == "lang=fr"
    with pytest.raises(TemplateError, match="no key 'lang'"):
        fill("lang={metadata.lang}", {}, {})


def test_unknown_placeholder_is_rejected_at_load() -> None:
    with pytest.raises(TemplateError, match="unknown placeholder"):
        check_template("{prompt} {answer}")
    check_template("{prompt} {response} {reference} {metadata.topic}")
    assert placeholders("{prompt} {metadata.k}") == {"prompt", "metadata.k"}
