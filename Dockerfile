# LayerScope server image: the embedded `tiny` model works offline out of the box.
#
#   docker build -t layerscope .                                   # CPU-only torch (the default)
#   docker build --build-arg TORCH_VARIANT=cu128 -t layerscope:cuda .  # CUDA torch, for GPU nodes
#   docker build --build-arg EXTRAS=scale -t layerscope:ray .      # with Ray Serve and Redis (KubeRay)
#   docker build --build-arg WEIGHTS=alexnet,resnet18 -t layerscope .  # ImageNet weights baked in
FROM python:3.11-slim

# Which of PyTorch's wheel indexes torch and torchvision come from: `cpu` (no CUDA libraries),
# or a CUDA build such as `cu128` (several GB more, for GPU replicas).
ARG TORCH_VARIANT=cpu
# Optional extras of pyproject.toml to install, comma-separated (`scale`: Ray Serve and Redis).
ARG EXTRAS=""
# Weights fetched at build time with `layerscope fetch-weights`, comma-separated model ids.
ARG WEIGHTS=""

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    TORCH_HOME=/srv/layerscope/torch \
    PYTHONPATH=/srv/layerscope \
    LAYERSCOPE_HOST=0.0.0.0 \
    LAYERSCOPE_PORT=8000

# On PYTHONPATH so that Ray's worker processes, which do not start here, import the app too.
WORKDIR /srv/layerscope

# Dependencies first, from pyproject.toml alone, so code changes reuse this layer. torch and
# torchvision come from PyTorch's own index first; the pinned requirement is then already met.
COPY pyproject.toml ./
RUN pip install --index-url "https://download.pytorch.org/whl/${TORCH_VARIANT}" torch==2.14.1 torchvision==0.29.1 \
 && python -c "import sys, tomllib; d = tomllib.load(open('pyproject.toml', 'rb'))['project']; \
extras = [e for e in sys.argv[1].split(',') if e]; \
reqs = d['dependencies'] + [r for e in extras for r in d['optional-dependencies'][e]]; \
print('\n'.join(r for r in reqs if not r.startswith('layerscope')))" "${EXTRAS}" > /tmp/requirements.txt \
 && pip install -r /tmp/requirements.txt \
 && rm /tmp/requirements.txt

COPY app ./app
COPY models ./models
COPY static ./static
COPY templates ./templates

# Baked weights land in torchvision's cache under TORCH_HOME, where the server looks first.
RUN for name in $(echo "${WEIGHTS}" | tr ',' ' '); do python -m app.cli fetch-weights "${name}" || exit 1; done

RUN useradd --create-home --uid 10001 layerscope
USER layerscope

EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
  CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4)"

# Same entry point as `make run`.
CMD ["python", "-m", "app.cli", "serve"]
