# The production image: one image for the web server, the Celery worker and Celery beat (docker-compose.yml).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONPATH=/app \
    DJANGO_SETTINGS_MODULE=helpdesk.settings \
    HELPDESK_VAR_DIR=/var/lib/helpdesk \
    MEDIA_ROOT=/var/lib/helpdesk/media

WORKDIR /app

# The runtime dependencies first, read from pyproject.toml alone, so that a code change reuses this layer.
COPY pyproject.toml ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" \
        > /tmp/requirements.txt \
    && pip install -r /tmp/requirements.txt \
    && rm /tmp/requirements.txt

# Everything .dockerignore lets through (not tests, benchmarks, scripts, .venv, var/): every app, as INSTALLED_APPS
# lists them. Naming each app here had left chat, console and realtime out, and the image could not start.
COPY . ./

# Static files are collected into the image (hashed names, compressed; whitenoise serves them); the web server
# would collect them itself at start if they were missing or stale (helpdesk/staticfiles.py). media/ and beat/
# become volumes; they are created here so that the volumes start owned by the unprivileged user.
RUN useradd --system --uid 10001 --no-create-home --home-dir /app --shell /usr/sbin/nologin helpdesk \
    && mkdir -p /var/lib/helpdesk/media /var/lib/helpdesk/beat \
    && python manage.py collectstatic --noinput --verbosity 0 \
    && chown -R helpdesk:helpdesk /var/lib/helpdesk

USER helpdesk
EXPOSE 8000
# WEB_CONCURRENCY sets uvicorn's number of worker processes.
CMD ["uvicorn", "helpdesk.asgi:application", "--host", "0.0.0.0", "--port", "8000", "--lifespan", "off", "--ws-per-message-deflate", "false", "--ws-max-size", "65536"]
