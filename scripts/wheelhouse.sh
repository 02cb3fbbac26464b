#!/usr/bin/env bash
# Download every wheel the container needs into a local wheelhouse, so that
# `docker build` can install the pinned environment with `pip --no-index`
# (no network, no CA bundle needed inside the build).
#
# The list of requirements is read from pyproject.toml (build-system requires,
# [project] dependencies and the optional extras named in EXTRAS): the pins
# live in one place only.
#
# Run it on Linux x86_64 with CPython 3.11 (the ABI of the image: Debian
# bookworm's python3.11, or the python:3.11 base image); the few packages
# published as source only are built into wheels here.  On another platform
# run it inside the base image instead:
#   docker run --rm -v "$PWD:/src" -w /src python:3.11-slim-bookworm scripts/wheelhouse.sh
#
# Usage:  scripts/wheelhouse.sh            (or: make wheelhouse / make image)
# Variables (environment):
#   WHEELHOUSE   destination directory          (default: <repo>/wheelhouse)
#   EXTRAS       comma-separated extras         (default: test)
#   NODEPS_EXTRAS  extras fetched without their dependencies (default: vg23:
#                gaia-oc-amd, whose declared torchvision the network does not need)
#   PYTHON       interpreter that runs pip      (default: python3)
#   TORCH_INDEX  index of the CPU-only torch wheel, asked only when pip's own
#                configuration (PyPI, PIP_FIND_LINKS, ...) has no torch==<pin>+cpu
#                (default: https://download.pytorch.org/whl/cpu)
#   IMAGE_PYTHON the image's Python version the wheels must accept
#                (default: 3.11.2, python3.11 of Debian bookworm)
#   GLIBC_MINOR  newest manylinux_2_<N> tag accepted (default: 36, bookworm's glibc)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
WHEELHOUSE=${WHEELHOUSE:-$ROOT/wheelhouse}
EXTRAS=${EXTRAS:-test}
NODEPS_EXTRAS=${NODEPS_EXTRAS-vg23}
PYTHON=${PYTHON:-python3}
TORCH_INDEX=${TORCH_INDEX:-https://download.pytorch.org/whl/cpu}
IMAGE_PYTHON=${IMAGE_PYTHON:-3.11.2}
GLIBC_MINOR=${GLIBC_MINOR:-36}

abi=$("$PYTHON" -c 'import platform, sys; print(sys.implementation.name, "%d.%d" % sys.version_info[:2], platform.system(), platform.machine())')
if [ "$abi" != "cpython 3.11 Linux x86_64" ]; then
    echo "wheelhouse.sh: $PYTHON is '$abi', the image needs 'cpython 3.11 Linux x86_64'" >&2
    exit 1
fi

mkdir -p "$WHEELHOUSE"
reqs=$(mktemp)
nodeps=$(mktemp)
trap 'rm -f "$reqs" "$nodeps"' EXIT

# Requirements of pyproject.toml: build-system + dependencies + the extras
# ($2 = --all), or the requirements of the extras alone ($2 = --extras-only).
read_requirements() {
    "$PYTHON" - "$ROOT/pyproject.toml" "$@" <<'EOF'
import sys
import tomllib

with open(sys.argv[1], "rb") as fh:
    meta = tomllib.load(fh)
only = sys.argv[2] == "--extras-only"
extras = [e for e in sys.argv[3].split(",") if e]
lines = [] if only else list(meta["build-system"]["requires"]) + meta["project"]["dependencies"]
optional = meta["project"].get("optional-dependencies", {})
for extra in extras:
    if extra not in optional:
        sys.exit(f"wheelhouse.sh: unknown extra {extra!r} (pyproject has {sorted(optional)})")
    lines += optional[extra]
print("\n".join(lines))
EOF
}
read_requirements --all "$EXTRAS" >"$reqs"
read_requirements --extras-only "$NODEPS_EXTRAS" >"$nodeps"

echo "wheelhouse.sh: collecting $(wc -l <"$reqs") requirements (+ dependencies) into $WHEELHOUSE"
# 0. torch: the CPU build of the pinned version (`torch==X+cpu`), from pip's
#    own configuration if it has one (a local wheel), else from TORCH_INDEX.
#    With it in the wheelhouse, the resolutions below pick X+cpu (a local
#    version sorts above PyPI's CUDA X) and no nvidia-* wheel is pulled.
torch_pin=$(sed -n 's/^torch==\([0-9][0-9.]*\)$/\1/p' "$reqs")
if [ -n "$torch_pin" ] && ! ls "$WHEELHOUSE"/torch-"$torch_pin"+cpu-*.whl >/dev/null 2>&1; then
    if ! "$PYTHON" -m pip download --no-deps --dest "$WHEELHOUSE" "torch==$torch_pin+cpu"; then
        echo "wheelhouse.sh: torch==$torch_pin+cpu not found locally; asking $TORCH_INDEX"
        "$PYTHON" -m pip download --no-deps --dest "$WHEELHOUSE" \
            --index-url "$TORCH_INDEX" "torch==$torch_pin+cpu"
    fi
fi

# 1. `pip wheel` (resolving for this host's Python) saves published wheels as
#    they are and builds the few packages published as source only
#    (matplotlib-venn, connection_pool, ...) into pure-Python wheels.
"$PYTHON" -m pip wheel --wheel-dir "$WHEELHOUSE" --find-links "$WHEELHOUSE" -r "$reqs"
# 2. Resolve again for the image's exact interpreter (IMAGE_PYTHON; Debian
#    bookworm has 3.11.2, and some releases need >= 3.11.5) and its platform,
#    binary only, taking the wheels built in step 1 from the wheelhouse.
#    pip does not imply older manylinux tags for --platform: list them all.
platform_args=(--platform manylinux2014_x86_64 --platform manylinux2010_x86_64
               --platform manylinux1_x86_64)
for minor in $(seq 5 "$GLIBC_MINOR"); do
    platform_args+=(--platform "manylinux_2_${minor}_x86_64")
done
"$PYTHON" -m pip download --dest "$WHEELHOUSE" --find-links "$WHEELHOUSE" \
    --only-binary=:all: --implementation cp --abi cp311 \
    --python-version "$IMAGE_PYTHON" "${platform_args[@]}" \
    -r "$reqs"
if [ -s "$nodeps" ]; then
    "$PYTHON" -m pip wheel --no-deps --wheel-dir "$WHEELHOUSE" -r "$nodeps"
fi

# A CUDA build of torch would pull gigabytes of nvidia-* wheels: refuse it.
if ls "$WHEELHOUSE"/nvidia_* >/dev/null 2>&1; then
    echo "wheelhouse.sh: CUDA wheels (nvidia_*) in $WHEELHOUSE: a non-CPU torch was picked;" \
         "remove them and check the torch==<pin>+cpu wheel" >&2
    exit 1
fi
echo "wheelhouse.sh: $(ls "$WHEELHOUSE" | wc -l) files, $(du -sh "$WHEELHOUSE" | cut -f1)"
