# The mock as a container: `docker build -t insights-mock .` then
#   docker run --rm -p 4010:4010 insights-mock                          serve the default scenario
#   docker run --rm -p 4010:4010 -e MOCK_ADMIN_TOKEN=s3cret insights-mock   ... with /__admin/* unlocked
#   docker run --rm insights-mock --version
# Every `serve` option is also a MOCK_* variable (MOCK_SCENARIO=busy, MOCK_DATABASE_URL=..., see --help).
# compose.yaml beside this file runs it, and the PostgreSQL variant with two replicas.
#
# Only what serving needs: the runtime lock plus the postgres extra (requirements/container.txt, compiled
# against the test lock, so the image runs the versions the tests ran), then the package itself. No test
# tools, no compiler: every dependency is a wheel.
#
# tests/system/test_container.py builds this file with `podman build --from <a local Debian bookworm base>`
# (scripts/container-base.sh): that base's python3 is 3.11 too, but at /usr/bin, so nothing below may
# assume python:*-slim's /usr/local layout, and there is one FROM, the one --from replaces.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PATH=/opt/insights-mock/bin:$PATH

# Not root: the mock needs no privilege, and a container escape should find none either.
RUN useradd --system --user-group --uid 10001 --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin mock

# A venv, so pip never touches the base image's Python (Debian's is marked externally managed).
# Behind a TLS-inspecting proxy, hand pip the CA bundle that trusts it as a build secret (never a layer):
#   docker build --secret id=pip-ca,src=/etc/ssl/certs/ca-certificates.crt .
COPY requirements/container.txt requirements/test.txt /opt/requirements/
RUN --mount=type=secret,id=pip-ca \
    python3 -m venv /opt/insights-mock \
 && if [ -s /run/secrets/pip-ca ]; then export PIP_CERT=/run/secrets/pip-ca; fi \
 && pip install --no-deps -r /opt/requirements/container.txt

# The package alone (its dependencies are in the layer above, which a code change does not rebuild). COPY,
# not RUN --mount=type=bind: podman's builder (buildah) never invalidates a bind-mount RUN's cache when the
# files change, so an edited package would silently be served stale. The copy (.dockerignore's allow-list,
# under 1 MB) is deleted after the install. PIP_CONSTRAINT pins the build backend (setuptools) to the test
# lock's version in pip's isolated build environment too.
COPY . /tmp/build
RUN --mount=type=secret,id=pip-ca \
    if [ -s /run/secrets/pip-ca ]; then export PIP_CERT=/run/secrets/pip-ca; fi \
 && PIP_CONSTRAINT=/opt/requirements/test.txt pip install --no-deps /tmp/build \
 && rm -rf /tmp/build /opt/requirements \
 && insights-mock --version

USER mock
WORKDIR /tmp

# A container is reached from outside itself: listen on every interface. Off loopback the operator API
# (/__admin/*) is locked (401 naming MOCK_ADMIN_TOKEN) until MOCK_ADMIN_TOKEN is set; /__admin/health is open.
ENV MOCK_HOST=0.0.0.0 \
    MOCK_PORT=4010
EXPOSE 4010
# Docker honours this; podman only with --format docker (an OCI image has no healthcheck field).
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
  CMD ["python3", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/__admin/health' % os.environ.get('MOCK_PORT', '4010'), timeout=2)"]

# SIGTERM (docker stop) stops the server cleanly: the CLI handles it as Ctrl-C, even as PID 1.
ENTRYPOINT ["insights-mock"]
CMD ["serve"]
