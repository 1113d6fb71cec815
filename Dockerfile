# clawstats beside an OpenClaw gateway (deploy/README.md): a small, non-root image that only
# reads the state dir mounted at /state and keeps its index in /cache.
#   docker build -t clawstats .                       (add --build-arg EXTRAS=otlp for OTLP export)
# BASE is any Debian-like image with python3 >= 3.11 and its venv module; the build stage and
# the final stage use the same one, so the venv's interpreter path is the same in both.
ARG BASE=python:3.11-slim-bookworm

FROM ${BASE} AS build
COPY pyproject.toml README.md /src/
COPY clawstats /src/clawstats
ARG EXTRAS=""
# pip reads PIP_* from the environment: --build-arg PIP_INDEX_URL=... for a mirror, or
# PIP_NO_INDEX=1 with PIP_FIND_LINKS=<dir> for an offline wheelhouse (the test suite does that).
ARG PIP_INDEX_URL
ARG PIP_NO_INDEX
ARG PIP_FIND_LINKS
RUN python3 -m venv /opt/clawstats \
 && /opt/clawstats/bin/pip install --no-cache-dir --disable-pip-version-check "/src${EXTRAS:+[$EXTRAS]}" \
 && /opt/clawstats/bin/pip uninstall -y -q --disable-pip-version-check pip setuptools wheel

FROM ${BASE}
COPY --from=build /opt/clawstats /opt/clawstats
# No installer left in the final image: python:*-slim bases ship pip, setuptools and wheel in
# the system interpreter (Debian's python3 has none). A user of its own, written without useradd
# (which minimal bases lack). /cache is writable by any uid, so `user:` may be set to the
# gateway's uid when the state dir is private to it.
RUN (python3 -m pip uninstall -y -q --disable-pip-version-check pip setuptools wheel 2>/dev/null || true) \
 && echo 'clawstats:x:10001:10001:clawstats:/cache:/usr/sbin/nologin' >> /etc/passwd \
 && echo 'clawstats:x:10001:' >> /etc/group \
 && mkdir -p /state /cache && chmod 1777 /cache
ENV PATH=/opt/clawstats/bin:$PATH \
    HOME=/cache \
    PYTHONUNBUFFERED=1 \
    CLAWSTATS_STATE_DIR=/state \
    CLAWSTATS_CACHE_DIR=/cache \
    CLAWSTATS_HOST=0.0.0.0 \
    CLAWSTATS_PORT=18780
USER 10001:10001
EXPOSE 18780
# Healthy once the first scan is done and the store reads cleanly (/healthz needs no token);
# Python's stdlib, no curl in the image.
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 CMD ["python3", "-c", "import json, os, sys, urllib.request as r; port = os.environ.get('CLAWSTATS_PORT', '18780'); body = json.load(r.urlopen(f'http://127.0.0.1:{port}/healthz', timeout=4)); sys.exit(body['status'] != 'ok')"]
ENTRYPOINT ["clawstats"]
CMD ["serve"]
