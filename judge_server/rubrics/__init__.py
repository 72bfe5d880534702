"""Rubrics are data: pydantic models, a one-pass template filler and a versioned registry."""

from judge_server.rubrics.models import Rubric, RubricError
from judge_server.rubrics.registry import RubricNotFoundError, RubricRegistry

__all__ = ["Rubric", "RubricError", "RubricNotFoundError", "RubricRegistry"]
