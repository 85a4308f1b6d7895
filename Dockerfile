# One image for the twin, the Locust master (`ccharness run`) and the Locust workers
# (docker-compose.yml picks the command). Build: docker build -t ccharness .
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app

# The package first (its dependencies change least often), then the files the
# commands read at run time: plain-Locust workers need locustfiles/, the master the
# bundled experiments (docker-compose.yml mounts experiments/ over them read-only).
COPY pyproject.toml README.md ./
COPY harness ./harness
RUN pip install . \
 && useradd --create-home --uid 10001 ccharness \
 && mkdir -p /shared /runs \
 && chown ccharness:ccharness /shared /runs
COPY locustfiles ./locustfiles
COPY experiments ./experiments

# Named volumes mounted on /shared (the twin's endpoints file) and /runs (run
# directories) take this ownership on first use, so the non-root user can write.
USER ccharness
VOLUME ["/shared", "/runs"]

CMD ["ccharness", "--help"]
