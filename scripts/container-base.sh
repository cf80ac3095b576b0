#!/usr/bin/env bash
# A local stand-in for python:3.11-slim, built from Debian's packages, for machines that reach Debian's
# archive and PyPI but no image registry (this project's test machines and CI). Debian bookworm's python3 is
# 3.11, the Dockerfile's Python. tests/system/test_container.py builds the Dockerfile on it with
# `podman build --from <this image>`; real users build on the Dockerfile's own FROM.
#
#   scripts/container-base.sh            print the image's name, building it only if it is missing
#   scripts/container-base.sh --rebuild  build it anew (e.g. for Debian's security updates)
#
# Cached twice, so it is built once per machine: in podman's image store (the name printed), and as the
# root file system tarball under $INSIGHTS_MOCK_CONTAINER_CACHE (default ~/.cache/insights-mock), from which a
# wiped image store is refilled in seconds. Needs root (or a user with subuids), podman and mmdebstrap.
set -euo pipefail

image="${INSIGHTS_MOCK_BASE_IMAGE:-localhost/insights-mock-base:bookworm}"
cache="${INSIGHTS_MOCK_CONTAINER_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/insights-mock}"
tarball="$cache/base-bookworm.tar"
rebuild=0
[ "${1:-}" = "--rebuild" ] && rebuild=1

if [ "$rebuild" -eq 0 ] && podman image exists "$image"; then
  echo "$image"
  exit 0
fi

if [ "$rebuild" -eq 1 ] || [ ! -s "$tarball" ]; then
  mkdir -p "$cache"
  started=$(date +%s)
  # minbase: Essential and Priority required packages only (dpkg, apt, passwd for useradd), plus what
  # the Dockerfile needs: python3 with venv and ensurepip, and the CA certificates pip checks PyPI with.
  # No mirror given: mmdebstrap uses Debian's default archive, with -updates and -security for a release.
  # Written to a temporary name first, so an interrupted build never leaves a truncated cache.
  # Documentation, man pages and translations are left out (as Debian's slim images do; the licences stay):
  # 50 MB less to import and to carry under every image built on it.
  mmdebstrap --quiet --format=tar --variant=minbase --include=python3,python3-venv,ca-certificates \
    --aptopt='Acquire::Retries "3"' \
    --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-include=/usr/share/doc/*/copyright' \
    --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/info/*' \
    --dpkgopt='path-exclude=/usr/share/locale/*' --dpkgopt='path-include=/usr/share/locale/locale.alias' \
    --customize-hook='rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/*' \
    bookworm "$tarball.part" </dev/null >&2
  mv "$tarball.part" "$tarball"
  echo "container-base: built $tarball in $(( $(date +%s) - started )) s" >&2
fi

# As python:3.11-slim: a shell by default, and a UTF-8 locale Python can rely on.
podman import --quiet --change 'CMD ["/bin/bash"]' --change 'ENV LANG=C.UTF-8' \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  "$tarball" "$image" >/dev/null
echo "$image"
