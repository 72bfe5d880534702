import re

import pytest

from judge_server.rubrics.template import (
    PLACEHOLDER,
    TemplateError,
    check_template,
    fill,
    placeholders,
)


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


def _substituted(template: str, values: dict[str, str], metadata: dict[str, object]) -> str:
    """``fill`` as one regex substitution pass: what it computed before templates were cut
    once and remembered."""

    def repl(match: re.Match[str]) -> str:
        name = match.group(1)
        if name.startswith("metadata."):
            key = name.split(".", 1)[1]
            if key not in metadata:
                raise TemplateError(f"item metadata has no key {key!r} used by the rubric")
            return str(metadata[key])
        if name not in values:
            raise TemplateError(f"no value for placeholder {{{name}}}")
        return values[name]

    return PLACEHOLDER.sub(repl, template)


@pytest.mark.parametrize(
    "template",
    [
        "",
        "no placeholders at all {} {Prompt} {1x}",
        "{prompt}",
        "{prompt}{response}",
        "A {prompt} B {response} C {reference} D {metadata.k-1} E {prompt}",
        "{metadata.n}{metadata.k-1}",
        "{missing} then {prompt}",
        "{metadata.absent} then {missing}",
        "long " * 20_000 + "{prompt} {response}",  # past the remembered length
    ],
)
def test_fill_gives_what_one_substitution_pass_gives(template: str) -> None:
    values = {"prompt": "p {response} {metadata.k-1}", "response": "r", "reference": ""}
    metadata: dict[str, object] = {"k-1": "v {prompt}", "n": 3}
    try:
        expected: str | Exception = _substituted(template, values, metadata)
    except TemplateError as exc:
        expected = exc
    for _ in range(2):  # cut, then remembered
        if isinstance(expected, Exception):
            with pytest.raises(TemplateError) as raised:
                fill(template, values, metadata)
            assert str(raised.value) == str(expected)
        else:
            assert fill(template, values, metadata) == expected
