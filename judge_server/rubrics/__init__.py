"""Rubrics are data: the common spec and its building blocks, a one-pass template filler and a
versioned registry. The per-mode specs and the parser live with their judges
(``judge_server.judges.modes``); this package never imports them."""

from judge_server.rubrics.registry import RubricNotFoundError, RubricRegistry
from judge_server.rubrics.spec import RubricError, RubricParser, RubricSpec

__all__ = ["RubricError", "RubricNotFoundError", "RubricParser", "RubricRegistry", "RubricSpec"]
