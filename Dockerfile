# syntax=docker/dockerfile:1
# Build stage: wheels for the project and its dependencies.
FROM python:3.11-slim AS build
WORKDIR /src
RUN pip install --no-cache-dir --upgrade pip build
COPY pyproject.toml README.md ./
COPY config ./config
COPY tenants ./tenants
COPY apps ./apps
COPY schema ./schema
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

# Runtime stage: no compilers, a non-root user, an ASGI server and a health check.
FROM python:3.11-slim AS runtime
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 DJANGO_SETTINGS_MODULE=config.settings PORT=8000
RUN groupadd --system app && useradd --system --gid app --home /app app
# Debian's PgBouncer: the compose's pgbouncer service runs it from this image.
RUN apt-get update && apt-get install -y --no-install-recommends pgbouncer \
    && rm -rf /var/lib/apt/lists/*
# Media and export files live on a volume at /data; a new volume takes this folder's owner.
RUN mkdir -p /data/media /data/exports && chown -R app:app /data
WORKDIR /app
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir /wheels/* && rm -rf /wheels
COPY --chown=app:app . .
# collectstatic needs settings but no services; the key is a build-time placeholder only.
RUN SECRET_KEY=collectstatic-only python manage.py collectstatic --noinput
USER app
EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=3s --start-period=20s --retries=3 \
  CMD python -c "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=2).status == 200 else 1)"
CMD ["sh", "-c", "rm -rf /tmp/prometheus && mkdir -p /tmp/prometheus && uvicorn config.asgi:application --host 0.0.0.0 --port ${PORT} --proxy-headers --no-access-log --timeout-graceful-shutdown 8 --workers ${WEB_CONCURRENCY:-2}"]
