# LayerScope server image: the embedded `tiny` model works offline out of the box.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    LAYERSCOPE_HOST=0.0.0.0 \
    LAYERSCOPE_PORT=8000

WORKDIR /srv/layerscope

# Dependencies first, from pyproject.toml alone, so code changes reuse this layer.
COPY pyproject.toml ./
RUN pip install torch==2.14.1 torchvision==0.29.1 \
 && python -c "import tomllib; d = tomllib.load(open('pyproject.toml', 'rb')); print('\n'.join(d['project']['dependencies']))" > /tmp/requirements.txt \
 && pip install -r /tmp/requirements.txt \
 && rm /tmp/requirements.txt

COPY app ./app
COPY models ./models
COPY static ./static
COPY templates ./templates

RUN useradd --create-home --uid 10001 layerscope
USER layerscope

EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
  CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4)"

# Same entry point as `make run`.
CMD ["python", "-m", "app.cli", "serve"]
