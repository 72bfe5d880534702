"""Fill ``{placeholder}`` templates in ONE regex pass.

Never ``str.format``: braces in user text would be read as fields, and a response containing the
literal text ``{reference}`` must not pull the reference in. One pass means text substituted for a
placeholder is never scanned again.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping

PLACEHOLDER = re.compile(r"\{([a-z_][a-z0-9_]*(?:\.[A-Za-z0-9_\-]+)?)\}")
KNOWN_FIELDS = frozenset({"prompt", "response", "reference"})


class TemplateError(ValueError):
    pass


def placeholders(template: str) -> set[str]:
    return set(PLACEHOLDER.findall(template))


def check_template(template: str, allowed: frozenset[str] = KNOWN_FIELDS) -> None:
    """Reject placeholders a rubric can never fill, at load time rather than per request."""
    for name in placeholders(template):
        if name.startswith("metadata."):
            continue
        if name not in allowed:
            raise TemplateError(
                f"unknown placeholder {{{name}}}; allowed: "
                + ", ".join(f"{{{n}}}" for n in sorted(allowed))
                + ", {metadata.KEY}"
            )


#: Templates longer than this are cut at their placeholders for every fill, not remembered.
_REMEMBERED_CHARS = 16_384  # real templates are a few KB; 256 of these stay under ~16 MiB


@functools.lru_cache(maxsize=256)
def _cut(template: str) -> tuple[str, ...]:
    """The template's literal text and placeholder names, alternating (literal first and
    last): ``re.split`` with the name's group. Read-only, shared by every fill."""
    return tuple(PLACEHOLDER.split(template))


def fill(template: str, values: Mapping[str, str], metadata: Mapping[str, object]) -> str:
    """Substitute every placeholder at once. A missing metadata key raises ``TemplateError``."""
    # Cut once per template (it fills every item of its rubric), then joined: the same text as
    # a substitution pass, with no regex run or callback per item.
    pieces = _cut(template) if len(template) <= _REMEMBERED_CHARS else PLACEHOLDER.split(template)
    out = list(pieces)
    for i in range(1, len(out), 2):
        out[i] = _value(out[i], values, metadata)
    return "".join(out)


def _value(name: str, values: Mapping[str, str], metadata: Mapping[str, object]) -> str:
    if name.startswith("metadata."):
        key = name.split(".", 1)[1]
        if key not in metadata:
            raise TemplateError(f"item metadata has no key {key!r} used by the rubric")
        return str(metadata[key])
    if name not in values:
        raise TemplateError(f"no value for placeholder {{{name}}}")
    return values[name]
