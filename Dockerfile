# scratchllm serve in a container: CPU by default; a CUDA base with
#   docker build --build-arg BASE=nvidia/cuda:12.8.1-cudnn-runtime-ubuntu24.04 --build-arg TORCH_INDEX=cu128 -t scratchllm:cuda .
# Unpinned apt packages (DL3008): the two bases ship different versions; pin them in your own build.
# The run directory comes in as a volume at /run (see compose.yaml):
#   docker build -t scratchllm . && docker run -p 8000:8000 -v "$PWD/runs/sft:/run:ro" scratchllm
ARG BASE=python:3.11-slim-bookworm
FROM ${BASE}

ARG TORCH_INDEX=cpu
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1

# A CUDA base image has no Python of its own: install one only there.
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
# hadolint ignore=DL3008
RUN if ! command -v python3 >/dev/null; then \
        apt-get update && apt-get install -y --no-install-recommends python3 python3-pip python3-venv curl \
        && rm -rf /var/lib/apt/lists/*; \
    else \
        apt-get update && apt-get install -y --no-install-recommends curl && rm -rf /var/lib/apt/lists/*; \
    fi \
    && python3 -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH

WORKDIR /app
# torch first, from its own index (the CPU wheel is ~200 MB, the default CUDA one several GB).
RUN pip install --index-url "https://download.pytorch.org/whl/${TORCH_INDEX}" torch==2.13.0
COPY pyproject.toml README.md ./
COPY src ./src
RUN pip install . && useradd --create-home --uid 10001 scratchllm
USER 10001
EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=3 \
    CMD ["curl", "-fsS", "http://127.0.0.1:8000/health"]
# 0.0.0.0 inside the container: the port is published (or not) by docker run / compose.
ENTRYPOINT ["scratchllm", "serve", "--run", "/run", "--host", "0.0.0.0", "--port", "8000"]
