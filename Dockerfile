# The application image: API, worker and migration job share it.
FROM python:3.11.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    UV_PROJECT_ENVIRONMENT=/opt/venv \
    PATH=/opt/venv/bin:$PATH

RUN pip install --no-cache-dir "uv==0.13.9" && useradd --system --uid 10001 app

WORKDIR /srv
COPY pyproject.toml uv.lock ./
RUN uv sync --frozen --no-dev --no-install-project

COPY app ./app
COPY domain ./domain
COPY workflows ./workflows
COPY activities ./activities
COPY api ./api
COPY web ./web
COPY migrations ./migrations

USER app
ENV ENVIRONMENT=production LOG_FORMAT=json API_HOST=0.0.0.0 API_PORT=8400
EXPOSE 8400 9400
CMD ["python", "-m", "app", "api"]
