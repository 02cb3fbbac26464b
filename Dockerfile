# ocmembers: the pinned environment that regenerates the paper (`make all`).
#
# Python packages: exactly the lock, requirements/lock.txt (every transitive
# dependency, hash-checked: pip install --require-hashes) and
# requirements/lock-nodeps.txt (--no-deps), written by scripts/lock.sh from the
# ranges of pyproject.toml; this file carries no version of its own
# (tests/test_pins.py checks it). Installed into /opt/venv.
# Debian packages: make and TeX Live for the paper, from the pinned base.
#
# Online (pulls the base image by digest, wheels from PyPI + the CPU torch index):
#   docker build -t ocmembers .
# Offline (no registry; see scripts/build_image.sh, which `make image` runs):
#   bookworm debootstrapped from a dated snapshot.debian.org archive (SNAPSHOT) and
#   imported as ocmembers-base:bookworm-<SNAPSHOT>, the locked files from a host
#   wheelhouse (scripts/wheelhouse.sh), installed with pip --no-index --require-hashes:
#   docker build --build-arg BASE_IMAGE=ocmembers-base:bookworm-20261120T000000Z \
#                --build-arg WHEELHOUSE=wheelhouse -t ocmembers .
# Run as yourself, with the products mounted (the PDF is data/<source>/paper/ms.pdf):
#   mkdir -p data figures
#   docker run --rm --user "$(id -u):$(id -g)" -v "$PWD/data:/work/data" \
#       -v "$PWD/figures:/work/figures" ocmembers make demo
#   docker run --rm --user "$(id -u):$(id -g)" -v "$PWD/data:/work/data" \
#       -v "$PWD/figures:/work/figures" -v /path/to/shared/data:/shared/data:ro \
#       ocmembers make all SOURCE=local DATA_DIR=/shared/data

# python:3.11.13-slim-bookworm (Debian 12), pinned by digest.
ARG BASE_IMAGE=python:3.11.13-slim-bookworm@sha256:86adf8dbadc3d6e82ee5dd2c74bec2e1c2467cdad47886280501df722372d2e1

FROM ${BASE_IMAGE} AS base
# Debian packages of the image; scripts/build_image.sh reads this line to put
# the same packages into the offline base.  Installed only if missing.
# paper/ms.tex needs LaTeX base + recommended (graphicx, amsmath, booktabs,
# hyperref, geometry).  The A&A class aa.cls is in no Debian package (not even
# texlive-publishers; EDP Sciences distributes it): ms.tex falls back to
# article, or uses an aa.cls placed in paper/.
ARG APT_PACKAGES="make latexmk texlive-latex-base texlive-latex-recommended texlive-fonts-recommended"
ENV DEBIAN_FRONTEND=noninteractive \
    LANG=C.UTF-8 \
    LC_ALL=C.UTF-8
RUN set -eu; \
    missing=""; \
    for p in $APT_PACKAGES; do \
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing="$missing $p"; \
    done; \
    if [ -n "$missing" ]; then \
        apt-get update; \
        apt-get install -y --no-install-recommends $missing; \
        apt-get clean; \
        rm -rf /var/lib/apt/lists/*; \
    fi

# ---- build stage: the virtual environment (the wheelhouse never reaches the image)
FROM base AS build
# The build stage stays behind as an untagged ~3 GB image (the layer cache of the next
# build); the label finds it: docker image prune -f --filter label=org.ocmembers.stage=build
LABEL org.ocmembers.stage=build
# WHEELHOUSE: directory of the locked files inside the build context (offline
# route, scripts/wheelhouse.sh); empty: from PyPI, torch from TORCH_INDEX (the
# CPU build: the lock holds the hash of the CPU wheel only).
ARG WHEELHOUSE=""
ARG TORCH_INDEX=https://download.pytorch.org/whl/cpu
# 1. the lock: a layer that is rebuilt only when the lock files or the
#    wheelhouse change, not with the code. (Without a wheelhouse the second
#    COPY copies a harmless placeholder.)
#    requirements/lock-nodeps.txt: gaia-oc-amd (the authors' published model,
#    --model vg23) without its declared torchvision, which the network does
#    not need.
COPY requirements/lock.txt requirements/lock-nodeps.txt /deps/
COPY ${WHEELHOUSE:-.dockerignore} /deps/wheels/
RUN set -eu; \
    python3.11 -m venv /opt/venv; \
    if [ -n "$WHEELHOUSE" ]; then \
        pip_source="--no-index --find-links /deps/wheels"; \
    else \
        pip_source="--extra-index-url $TORCH_INDEX"; \
    fi; \
    /opt/venv/bin/pip install --no-cache-dir --require-hashes $pip_source -r /deps/lock.txt; \
    /opt/venv/bin/pip check; \
    /opt/venv/bin/pip install --no-cache-dir --require-hashes --no-deps $pip_source -r /deps/lock-nodeps.txt; \
    rm -rf /root/.cache
# 2. the project itself, editable (/work/src): no dependencies of its own to
#    fetch, built with the locked setuptools (no build isolation, no index)
WORKDIR /work
COPY . /work
RUN set -eu; \
    if [ -n "$WHEELHOUSE" ]; then rm -rf "/work/$WHEELHOUSE"; fi; \
    /opt/venv/bin/pip install --no-cache-dir --no-deps --no-build-isolation --no-index -e /work; \
    rm -rf /work/build /root/.cache

# ---- the image
FROM base
LABEL org.opencontainers.image.title="ocmembers" \
      org.opencontainers.image.description="Open-cluster membership in Gaia DR3 with Deep Sets (van Groeningen et al. 2023): tool and reproducible paper" \
      org.opencontainers.image.licenses="MIT"
COPY --from=build /opt/venv /opt/venv
COPY --from=build /work /work
# Any user may run the image (docker run --user "$(id -u):$(id -g)", so that the files in the
# mounts belong to the host user): the product directories are writable by all (sticky, as
# /tmp), and HOME is /tmp (TeX's and matplotlib's caches); a mount replaces the directory.
RUN mkdir -p /work/data /work/figures /work/paper \
    && chmod 1777 /work/data /work/figures /work/paper
ENV HOME=/tmp \
    PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    MPLBACKEND=Agg \
    MPLCONFIGDIR=/tmp/matplotlib \
    PYTHON=/opt/venv/bin/python \
    OCMEMBERS_SHARED_DATA=/shared/data
WORKDIR /work
CMD ["make", "all"]
