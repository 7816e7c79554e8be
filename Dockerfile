# clickback's container image: `docker build -t clickback .`, or `docker compose up` (compose.yaml).
# Kept at the repository's root, where `docker build .` and compose look for it, with the root as
# its build context (.dockerignore lets in only what is copied below). docs/deployment.md has the
# manual check; tests/deploy/test_image.py runs the same install and start without Docker.

# Build: the locked packages and clickback, into a virtual environment (deploy/install.py).
FROM python:3.11-slim-bookworm AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md requirements.lock ./
COPY deploy/install.py deploy/
COPY src src
RUN python3 deploy/install.py /opt/clickback

# Run: that environment alone, as an unprivileged user; the data directory (generated secrets if
# none are given, the SQLite database if no PostgreSQL is, the click spool) is a volume.
FROM python:3.11-slim-bookworm
RUN groupadd --system --gid 10001 clickback \
    && useradd --system --uid 10001 --gid 10001 --home-dir /var/lib/clickback --shell /usr/sbin/nologin clickback \
    && install --directory --owner=clickback --group=clickback --mode=0700 /var/lib/clickback
COPY --from=build /opt/clickback /opt/clickback
ENV PATH=/opt/clickback/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    CLICKBACK_DATA_DIR=/var/lib/clickback
# Numeric, so that a runtime can tell it is not root without reading the image's /etc/passwd.
USER 10001:10001
WORKDIR /var/lib/clickback
VOLUME /var/lib/clickback
EXPOSE 8000
# Liveness only: /healthz answers while the server serves and reads nothing from the database.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4)"]
# On SIGTERM (docker stop) every worker writes the clicks it holds before it exits.
STOPSIGNAL SIGTERM
CMD ["clickback", "serve", "--host", "0.0.0.0", "--port", "8000", "--workers", "2"]
