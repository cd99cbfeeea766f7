# The gateway image: web (uvicorn via `manage.py serve`), Celery worker and beat all run it.
# Secrets are never baked in: they arrive as environment variables at run time (.env).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    GATEWAY_STATE_DIR=/app/var \
    STATIC_ROOT=/app/static

WORKDIR /app

# Every dependency ships as a manylinux wheel (uvloop, httptools, psycopg[binary], hiredis,
# cryptography, orjson), so the slim image needs no compiler. The runtime lock goes first, in its
# own layer: versions and hashes exactly as pinned (pip refuses a mismatch), and a code change
# does not reinstall them. The project then goes in without dependencies.
COPY requirements/main.txt requirements/main.txt
RUN pip install --require-hashes -r requirements/main.txt
COPY . .
RUN pip install --no-deps .

# Admin static files, collected at build time: with DEBUG=0 whitenoise serves STATIC_ROOT only.
# DEBUG=1 here lets settings load without the production secrets, which generates throwaway
# development secrets into a directory that is deleted in the same layer.
RUN DEBUG=1 GATEWAY_STATE_DIR=/tmp/build-state python manage.py collectstatic --noinput \
    && rm -rf /tmp/build-state

# Run unprivileged (Celery warns as root); var/ holds the usage spool and local state. The
# spool directory exists in the image, owned by that user, so a named volume mounted there
# (docker-compose.yml) starts with that owner.
RUN useradd --create-home --uid 10001 gateway \
    && mkdir -p /app/var/usage-spool \
    && chown -R gateway:gateway /app/var
USER gateway

EXPOSE 8000
CMD ["python", "manage.py", "serve", "--host", "0.0.0.0", "--port", "8000", "--workers", "2"]
