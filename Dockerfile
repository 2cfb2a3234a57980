# tokensmith, from this source tree: docker build -t tokensmith .
# docs/production.md#containers explains it and compose.yaml.
FROM python:3.12-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# A user of its own, with a home that holds what a single container keeps on disk
# (tokensmith.db and tokensmith.key when no database URL or secret key is given).
RUN groupadd --system --gid 10001 tokensmith \
 && useradd --system --uid 10001 --gid tokensmith --home-dir /var/lib/tokensmith \
    --create-home --shell /usr/sbin/nologin tokensmith

WORKDIR /tmp/tokensmith-src
COPY pyproject.toml README.md LICENSE ./
COPY src ./src
RUN pip install . && rm -rf /tmp/tokensmith-src

WORKDIR /var/lib/tokensmith
USER 10001:10001

EXPOSE 8000
# /livez answers 200 while the process serves (docs/operations.md); the slim image has no
# curl, so Python asks.
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
  CMD ["python", "-c", "import os, sys, urllib.request; port = os.environ.get('TOKENSMITH_PORT', '8000'); sys.exit(0 if urllib.request.urlopen(f'http://127.0.0.1:{port}/livez', timeout=2).status == 200 else 1)"]

# Arguments after the image name go to `tokensmith serve` (--workers 4, --compat dot, ...).
ENTRYPOINT ["tokensmith", "serve", "--host", "0.0.0.0"]
