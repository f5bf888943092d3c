#!/usr/bin/env bash
# Builds the harness's base image without any registry: a minimal Debian bookworm made by
# debootstrap from the distribution's mirror (python3 with aiohttp, nginx-light, haproxy),
# imported into the engine as lb-harness/base:bookworm. Needs root and debootstrap.
#
#   DOCKER_HOST=unix:///run/lb-harness-docker/docker.sock bash infra/docker/build-base.sh
set -euo pipefail
tag=${1:-lb-harness/base:bookworm}
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
root=$(mktemp -d /tmp/lb-harness-rootfs.XXXXXX)
trap 'rm -rf "$root"' EXIT
debootstrap --variant=minbase --include=python3,python3-aiohttp,nginx-light,haproxy \
    bookworm "$root" "$mirror" >&2
# The packages' own services never start inside a container; their default configs stay unused.
rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
tar -C "$root" -c . | docker import \
    --change 'ENV LANG=C.UTF-8' --change 'CMD ["/bin/bash"]' \
    --message "lb-harness base: debootstrap bookworm minbase" - "$tag" >&2
docker image inspect --format '{{.Id}}' "$tag"
