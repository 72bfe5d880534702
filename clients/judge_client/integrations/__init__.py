"""Trainer adapters: each maps one RL trainer's reward contract onto ``JudgeClient``.

Import the one for your trainer (``judge_client.integrations.trl``, ``.verl``, ``.verifiers``,
``.slime``); none is imported here, so using one never imports another trainer's code.
Every adapter follows one failure policy (``_common.py``): a failed item is ``None`` where the
trainer can carry it (TRL), else a flagged fill value; a server that cannot be reached is
retried with the client's ``RetryPolicy`` and then raises, never a reward.
"""
