# ocmembers: the pinned environment that regenerates the paper (`make all`).
#
# Python packages: exactly the == pins of pyproject.toml (this file carries no
# version of its own; tests/test_pins.py checks it), installed into /opt/venv.
# Debian packages: make and TeX Live for the paper, from the pinned base.
#
# Online (pulls the base image by digest, wheels from PyPI + the CPU torch index):
#   docker build -t ocmembers .
# Offline (no registry; see scripts/build_image.sh, which `make image` runs):
#   debootstrapped bookworm imported as ocmembers-base:bookworm, wheels from a
#   host wheelhouse (scripts/wheelhouse.sh), installed with pip --no-index:
#   docker build --build-arg BASE_IMAGE=ocmembers-base:bookworm \
#                --build-arg WHEELHOUSE=wheelhouse -t ocmembers .
# Run:
#   docker run --rm ocmembers                 # make all
#   docker run --rm ocmembers make demo       # simulated sky, no network
#   docker run --rm -v "$PWD/data:/work/data" -v /path/to/shared/data:/shared/data:ro \
#       ocmembers make all SOURCE=local

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
# WHEELHOUSE: directory of wheels inside the build context (offline route);
# empty: install from PyPI, torch from TORCH_INDEX (CPU build).
ARG WHEELHOUSE=""
ARG EXTRAS=test
# extras installed without their declared dependencies: gaia-oc-amd (the
# authors' published model, --model vg23) declares torchvision, which the
# network does not need
ARG NODEPS_EXTRAS=vg23
ARG TORCH_INDEX=https://download.pytorch.org/whl/cpu
# 1. the pinned dependencies, read from pyproject.toml: a layer that is rebuilt
#    only when pyproject.toml or the wheelhouse change, not with the code.
#    (Without a wheelhouse the second COPY copies a harmless placeholder.)
COPY pyproject.toml /deps/
COPY ${WHEELHOUSE:-.dockerignore} /deps/wheels/
RUN set -eu; \
    python3.11 -m venv /opt/venv; \
    if [ -n "$WHEELHOUSE" ]; then \
        echo "--no-index --find-links /deps/wheels" > /deps/pip-source; \
    else \
        echo "--extra-index-url $TORCH_INDEX" > /deps/pip-source; \
    fi; \
    /opt/venv/bin/python -c "import sys, tomllib; \
p = tomllib.load(open('/deps/pyproject.toml', 'rb'))['project']; \
extras = lambda arg: [r for e in arg.split(',') if e for r in p['optional-dependencies'][e]]; \
open('/deps/requirements.txt', 'w').write('\\n'.join(p['dependencies'] + extras(sys.argv[1]))); \
open('/deps/nodeps.txt', 'w').write('\\n'.join(extras(sys.argv[2])))" "$EXTRAS" "$NODEPS_EXTRAS"; \
    /opt/venv/bin/pip install --no-cache-dir $(cat /deps/pip-source) -r /deps/requirements.txt; \
    /opt/venv/bin/pip check; \
    if [ -s /deps/nodeps.txt ]; then \
        /opt/venv/bin/pip install --no-cache-dir --no-deps $(cat /deps/pip-source) -r /deps/nodeps.txt; \
    fi; \
    rm -rf /root/.cache
# 2. the project itself, editable (/work/src), its pins already satisfied
WORKDIR /work
COPY . /work
RUN set -eu; \
    if [ -n "$WHEELHOUSE" ]; then rm -rf "/work/$WHEELHOUSE"; fi; \
    /opt/venv/bin/pip install --no-cache-dir --no-deps $(cat /deps/pip-source) -e "/work[$EXTRAS]"; \
    rm -rf /work/build /root/.cache

# ---- the image
FROM base
LABEL org.opencontainers.image.title="ocmembers" \
      org.opencontainers.image.description="Open-cluster membership in Gaia DR3 with Deep Sets (van Groeningen et al. 2023): tool and reproducible paper" \
      org.opencontainers.image.licenses="MIT"
COPY --from=build /opt/venv /opt/venv
COPY --from=build /work /work
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    MPLBACKEND=Agg \
    MPLCONFIGDIR=/tmp/matplotlib \
    PYTHON=/opt/venv/bin/python \
    OCMEMBERS_SHARED_DATA=/shared/data
WORKDIR /work
CMD ["make", "all"]
