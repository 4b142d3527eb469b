# One image for every service; docker-compose.yml gives each its command.
FROM python:3.11-slim AS base
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 \
    HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
WORKDIR /app
COPY pyproject.toml constraints.txt README.md ./
COPY core core
COPY ingest ingest
COPY classify classify
COPY trends trends
COPY workers workers
COPY api api
COPY cli cli
COPY data data
RUN pip install --extra-index-url https://download.pytorch.org/whl/cpu -c constraints.txt . \
    && useradd --system --uid 10001 undertow && mkdir -p /app/var && chown undertow /app/var
USER undertow
# The encoder's ONNX graph, exported once from the packaged weights (no network at run time).
RUN python -m classify.onnx_backend
EXPOSE 8000
CMD ["undertow", "api", "--host", "0.0.0.0"]
