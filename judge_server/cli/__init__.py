"""Command-line tools, the layer above the service (``judge-server --help``):

- ``serve``: the HTTP reward server (``cli.serve``);
- ``score``: score a JSONL file offline with the same judges (``cli.score``);
- ``eval``: agreement with labelled data (``cli.evaluation``);
- ``bench``: throughput and rubric cost on this machine (``cli.bench``);
- ``rubrics validate|render|schema``: tools for rubric authors (``cli.rubric_tools``);
- ``build-value-head``: a toy reward model for reward_model mode (``cli.value_head``).

Each command imports what it needs when it runs: nothing heavy happens at import time.
"""

from judge_server.cli.main import main

__all__ = ["main"]
