#!/usr/bin/env bash
# Offline build of the ocmembers container image (`make image`).
#
# No registry is contacted: the base image is made from a Debian bookworm root
# file system (debootstrap from a Debian mirror, imported with `docker import`)
# and every Python package comes from a host wheelhouse (scripts/wheelhouse.sh:
# the files of the lock, requirements/lock.txt and requirements/lock-nodeps.txt),
# installed inside the build with `pip install --no-index --require-hashes`.
# The same Dockerfile builds online from the pinned python:3.11-slim-bookworm
# digest with a plain `docker build -t ocmembers .`, from the same lock.
#
#   1. base image  $BASE_TAG   (skipped when it exists, unless REBUILD_BASE=1):
#        debootstrap --variant=minbase bookworm $ROOTFS $MIRROR
#        (pinned: $MIRROR is the Debian archive as it was at $SNAPSHOT, from
#        snapshot.debian.org, so every build gets the same packages; the versions
#        installed are written to /etc/ocmembers-base-packages.txt in the image)
#        chroot: apt-get install --no-install-recommends python3.11 python3.11-venv
#                <APT_PACKAGES of the Dockerfile>   (make, latexmk, TeX Live)
#        tar -C $ROOTFS -c . | docker import - $BASE_TAG
#   2. wheelhouse  <repo>/$WHEELHOUSE (scripts/wheelhouse.sh: the locked files;
#        refilled when it is empty or older than a lock file, or REFRESH_WHEELHOUSE=1)
#   3. docker build --build-arg BASE_IMAGE=$BASE_TAG --build-arg WHEELHOUSE=$WHEELHOUSE
#        -t $IMAGE <repo>
#
# Needs root (debootstrap, chroot), debootstrap, and a running Docker engine
# (Debian: apt-get install docker.io debootstrap; dockerd &).
#
# Usage: scripts/build_image.sh [IMAGE]        (make image [IMAGE=...] [VAR=...])
# Variables (environment, or on the make command line):
#   IMAGE               image to build; also the first argument
#                                                      (default: ocmembers:latest)
#   SNAPSHOT            the dated Debian snapshot the base is built from
#                                                      (default: 20261120T000000Z);
#                       empty: the live MIRROR, NOT pinned (a warning says so)
#   BASE_TAG            local base image               (default: ocmembers-base:bookworm-$SNAPSHOT,
#                                                       ocmembers-base:bookworm-unpinned without one)
#   ROOTFS              scratch dir for debootstrap, outside the repo
#                                                      (default: /var/tmp/ocm-rootfs)
#   MIRROR              Debian mirror                  (default: the snapshot,
#                       http://snapshot.debian.org/archive/debian/$SNAPSHOT; without a
#                       snapshot http://deb.debian.org/debian)
#   WHEELHOUSE          wheel dir, relative to the repo root (inside the build
#                       context)                       (default: wheelhouse)
#   REBUILD_BASE=1      rebuild the base image even if it exists
#   REFRESH_WHEELHOUSE=1  run scripts/wheelhouse.sh even if the wheelhouse is up to date
#   KEEP_ROOTFS=1       keep $ROOTFS after the import
#   DOCKER_BUILD_ARGS   extra arguments for `docker build` (e.g. --no-cache)
#   PRUNE=1             remove the build stage's image afterwards (label
#                       org.ocmembers.stage=build, ~3 GB; the next build then
#                       reinstalls the lock instead of reusing that layer)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
IMAGE=${1:-${IMAGE:-ocmembers:latest}}
# the Debian archive as of this date (snapshot.debian.org): the pin of the offline base
SNAPSHOT=${SNAPSHOT-20261120T000000Z}
if [ -n "$SNAPSHOT" ]; then
    MIRROR=${MIRROR:-http://snapshot.debian.org/archive/debian/$SNAPSHOT}
    SECURITY=${SECURITY:-http://snapshot.debian.org/archive/debian-security/$SNAPSHOT}
    BASE_TAG=${BASE_TAG:-ocmembers-base:bookworm-$SNAPSHOT}
else
    MIRROR=${MIRROR:-http://deb.debian.org/debian}
    SECURITY=${SECURITY:-http://deb.debian.org/debian-security}
    BASE_TAG=${BASE_TAG:-ocmembers-base:bookworm-unpinned}
fi
ROOTFS=${ROOTFS:-/var/tmp/ocm-rootfs}
PRUNE=${PRUNE:-0}
SUITE=bookworm
WHEELHOUSE=${WHEELHOUSE:-wheelhouse}
REBUILD_BASE=${REBUILD_BASE:-0}
REFRESH_WHEELHOUSE=${REFRESH_WHEELHOUSE:-0}
KEEP_ROOTFS=${KEEP_ROOTFS:-0}
DOCKER_BUILD_ARGS=${DOCKER_BUILD_ARGS:-}

say() { echo "build_image.sh: $*"; }
die() { echo "build_image.sh: error: $*" >&2; exit 1; }

case "$WHEELHOUSE" in
    /*|..*) die "WHEELHOUSE=$WHEELHOUSE must be a path relative to $ROOT (the build context)" ;;
esac
case "$ROOTFS" in
    "$ROOT"|"$ROOT"/*) die "ROOTFS=$ROOTFS must lie outside the repository" ;;
esac
docker info >/dev/null 2>&1 || die "no Docker engine: start one (as root: dockerd >/tmp/dockerd.log 2>&1 &)"

# ---- 1. base image from a debootstrapped Debian bookworm ---------------------
if [ "$REBUILD_BASE" = 1 ] || ! docker image inspect "$BASE_TAG" >/dev/null 2>&1; then
    [ "$(id -u)" = 0 ] || die "building the base image needs root (debootstrap, chroot)"
    command -v debootstrap >/dev/null || die "debootstrap not found (apt-get install debootstrap)"
    # The Debian packages are listed once, in the Dockerfile (ARG APT_PACKAGES).
    apt_packages=$(sed -n 's/^ARG APT_PACKAGES="\(.*\)"$/\1/p' "$ROOT/Dockerfile")
    [ -n "$apt_packages" ] || die "no 'ARG APT_PACKAGES=\"...\"' line in $ROOT/Dockerfile"
    packages="python3.11 python3.11-venv $apt_packages"
    if [ -z "$SNAPSHOT" ]; then
        say "WARNING: SNAPSHOT is empty: the base comes from the live mirror $MIRROR and is NOT pinned" \
            "(whatever bookworm it serves today); its package versions are recorded in the image"
    fi
    say "debootstrap $SUITE into $ROOTFS from $MIRROR"
    t0=$(date +%s)
    rm -rf "$ROOTFS"
    debootstrap --variant=minbase "$SUITE" "$ROOTFS" "$MIRROR"
    cat >"$ROOTFS/etc/apt/sources.list" <<EOF
deb $MIRROR $SUITE main
deb $MIRROR $SUITE-updates main
deb $SECURITY $SUITE-security main
EOF
    # a snapshot's Release files are old by design: their Valid-Until has passed
    [ -z "$SNAPSHOT" ] || echo 'Acquire::Check-Valid-Until "false";' >"$ROOTFS/etc/apt/apt.conf.d/99snapshot"
    # No documentation or man pages in the image.
    cat >"$ROOTFS/etc/dpkg/dpkg.cfg.d/01-nodoc" <<'EOF'
path-exclude=/usr/share/doc/*
path-include=/usr/share/doc/*/copyright
path-exclude=/usr/share/man/*
path-exclude=/usr/share/info/*
path-exclude=/usr/share/locale/*
path-include=/usr/share/locale/locale.alias
EOF
    printf '#!/bin/sh\nexit 101\n' >"$ROOTFS/usr/sbin/policy-rc.d"
    chmod +x "$ROOTFS/usr/sbin/policy-rc.d"
    mount -t proc proc "$ROOTFS/proc"
    trap 'umount "$ROOTFS/proc" 2>/dev/null || true' EXIT
    say "chroot apt-get install: $packages"
    # shellcheck disable=SC2086
    chroot "$ROOTFS" /usr/bin/env DEBIAN_FRONTEND=noninteractive LC_ALL=C \
        sh -ec "apt-get update -q && apt-get install -y -q --no-install-recommends $packages \
                && apt-get clean && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin"
    chroot "$ROOTFS" dpkg-query -W -f='${Package} ${Version}\n' >"$ROOTFS/etc/ocmembers-base-packages.txt"
    umount "$ROOTFS/proc"
    trap - EXIT
    rm -f "$ROOTFS/usr/sbin/policy-rc.d"
    rm -rf "$ROOTFS"/usr/share/doc/*/[!c]* "$ROOTFS"/usr/share/man/* "$ROOTFS"/var/log/*.log \
           "$ROOTFS"/var/cache/debconf/*-old "$ROOTFS"/tmp/* "$ROOTFS"/debootstrap
    say "docker import -> $BASE_TAG ($(du -sh "$ROOTFS" | cut -f1) root file system)"
    tar --numeric-owner -C "$ROOTFS" -c . | docker import \
        --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
        --change 'ENV LANG=C.UTF-8' \
        --change 'CMD ["/bin/bash"]' \
        --change "LABEL org.ocmembers.debian-snapshot=${SNAPSHOT:-unpinned}" \
        --message "debootstrap --variant=minbase $SUITE $MIRROR + $packages" \
        - "$BASE_TAG"
    [ "$KEEP_ROOTFS" = 1 ] || rm -rf "$ROOTFS"
    say "base image built in $(( $(date +%s) - t0 )) s"
else
    say "base image $BASE_TAG exists (REBUILD_BASE=1 to rebuild)"
fi

# ---- 2. wheelhouse: the files of the lock ---------------------------------------
LOCKS=("$ROOT/requirements/lock.txt" "$ROOT/requirements/lock-nodeps.txt")
stamp="$ROOT/$WHEELHOUSE/.lock-downloaded"
stale=0
for lock in "${LOCKS[@]}"; do
    [ -f "$lock" ] || die "no $lock (scripts/lock.sh writes it)"
    [ -f "$stamp" ] && [ ! "$lock" -nt "$stamp" ] || stale=1
done
if [ "$REFRESH_WHEELHOUSE" = 1 ] || [ "$stale" = 1 ]; then
    say "filling the wheelhouse $ROOT/$WHEELHOUSE from ${LOCKS[*]#"$ROOT"/}"
    WHEELHOUSE="$ROOT/$WHEELHOUSE" "$ROOT/scripts/wheelhouse.sh"
    touch "$stamp"
else
    say "wheelhouse $ROOT/$WHEELHOUSE has the files of the lock (REFRESH_WHEELHOUSE=1 to refresh)"
fi

# ---- 3. the image ---------------------------------------------------------------
say "docker build -t $IMAGE (base $BASE_TAG, the lock's files from $WHEELHOUSE)"
t0=$(date +%s)
# shellcheck disable=SC2086
docker build $DOCKER_BUILD_ARGS \
    --build-arg BASE_IMAGE="$BASE_TAG" \
    --build-arg WHEELHOUSE="$WHEELHOUSE" \
    -t "$IMAGE" "$ROOT"
say "image built in $(( $(date +%s) - t0 )) s"
docker image ls "$IMAGE"
# The build stage (the venv with the wheelhouse, ~3 GB) stays behind as an untagged image:
# it is the layer cache of the next build. PRUNE=1 removes it now.
if [ "$PRUNE" = 1 ]; then
    docker image prune -f --filter label=org.ocmembers.stage=build
else
    say "the build stage's image is kept as cache; remove it with:" \
        "docker image prune -f --filter label=org.ocmembers.stage=build (and docker builder prune with BuildKit)"
fi
