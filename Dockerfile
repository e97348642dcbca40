# syntax=docker/dockerfile:1
#
# billsync container image.
#
#   docker build -t billsync .
#   docker run --rm --init -v billsync-data:/var/lib/billsync --env-file billsync.env billsync
#       -> one sync cycle (`billsync run`), exit code 0/1/2/3 as documented
#   docker run -d --init -p 8080:8080 -v billsync-data:/var/lib/billsync \
#       --env-file billsync.env billsync serve
#       -> webhook receiver, health, metrics and ops pages on :8080
#
# `--init` (compose: `init: true`) gives the process a real PID 1 so SIGTERM from
# `docker stop` reaches `billsync run` promptly. See deploy/README.md.

# ---------------------------------------------------------------------------
# Builder: the project wheel plus a wheel for every dependency, so the runtime
# stage installs from local files only and never needs a compiler or an index.
# ---------------------------------------------------------------------------
FROM python:3.11-slim AS builder

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1

WORKDIR /src
COPY . .

# The postgres extra (psycopg binary wheel) is included so one image serves both the
# SQLite default and a PostgreSQL ledger chosen by URL.
RUN pip wheel --no-cache-dir --wheel-dir /wheels ".[postgres]"

# ---------------------------------------------------------------------------
# Runtime: installs only the wheels built above into a venv; no build tools.
# ---------------------------------------------------------------------------
FROM python:3.11-slim AS runtime

LABEL org.opencontainers.image.title="billsync" \
      org.opencontainers.image.description="Quote-to-cash sync: Salesforce deals to QuickBooks Online or Stripe invoices, exactly once" \
      org.opencontainers.image.licenses="Apache-2.0"

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PATH="/opt/billsync/bin:${PATH}"

# Fixed UID/GID so volume ownership and Kubernetes `runAsUser` are predictable.
RUN groupadd --system --gid 10001 billsync \
    && useradd --system --uid 10001 --gid billsync --no-create-home \
        --home-dir /var/lib/billsync --shell /usr/sbin/nologin billsync \
    && mkdir -p /var/lib/billsync \
    && chown billsync:billsync /var/lib/billsync

# Bind-mount the builder's wheels instead of COPYing them, so they add no layer.
RUN --mount=type=bind,from=builder,source=/wheels,target=/wheels \
    python -m venv /opt/billsync \
    && /opt/billsync/bin/pip install --no-cache-dir --no-index --find-links=/wheels \
        "billsync[postgres]"

# The SQLite ledger lives here by default; mount a volume so it survives the container.
# Point BILLSYNC_LEDGER__URL at postgresql+psycopg://... to use PostgreSQL instead.
ENV BILLSYNC_LEDGER__URL=sqlite:////var/lib/billsync/billsync.db
WORKDIR /var/lib/billsync
VOLUME ["/var/lib/billsync"]

EXPOSE 8080

# Meaningful in serve mode only (`billsync serve` answers /healthz on :8080). The cron
# container (`billsync run`, the default CMD) exits long before the first probe;
# disable the check there with `docker run --no-healthcheck` or, in compose,
# `healthcheck: {disable: true}`. Kubernetes ignores HEALTHCHECK; use probes instead.
# python's urllib because the slim image has no curl; any error or non-2xx exits 1.
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=4)"]

USER 10001:10001

ENTRYPOINT ["billsync"]
CMD ["run"]
