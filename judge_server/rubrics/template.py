"""Fill ``{placeholder}`` templates in ONE regex pass.

Never ``str.format``: braces in user text would be read as fields, and a response containing the
literal text ``{reference}`` must not pull the reference in. One pass means text substituted for a
placeholder is never scanned again.
"""

from __future__ import annotations

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


def fill(template: str, values: Mapping[str, str], metadata: Mapping[str, object]) -> str:
    """Substitute every placeholder at once. A missing metadata key raises ``TemplateError``."""

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
