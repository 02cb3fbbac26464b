#!/usr/bin/env bash
# Download every file the container installs into a local wheelhouse, so that
# `docker build` can install the locked environment with `pip --no-index`
# (no network, no CA bundle needed inside the build).
#
# The files are exactly those of the lock, requirements/lock.txt and
# requirements/lock-nodeps.txt (scripts/lock.sh writes them): `pip download
# --require-hashes --no-deps` checks each against its hash, for the image's
# interpreter and platform; the versions live in the lock only. The few
# packages published as source only (connection_pool, dust_extinction,
# matplotlib-venn) come as their locked source archives, which pip builds
# inside the image; their build requirements (setuptools, setuptools_scm,
# wheel, ...: pip never hash-checks build requirements) are added as wheels.
#
# Any host with Python 3 and pip will do: the downloads are resolved for the
# image (IMAGE_PYTHON, manylinux_2_<GLIBC_MINOR> x86_64), not for the host.
#
# Usage:  scripts/wheelhouse.sh            (or: make image)
# Variables (environment):
#   WHEELHOUSE   destination directory          (default: <repo>/wheelhouse)
#   PYTHON       interpreter that runs pip      (default: python3)
#   TORCH_INDEX  index of the CPU-only torch wheel, asked only when pip's own
#                configuration (PyPI, PIP_FIND_LINKS, ...) has no wheel with the
#                locked hash (default: ARG TORCH_INDEX of the Dockerfile)
#   IMAGE_PYTHON the image's Python version the files must accept
#                (default: 3.11.2, python3.11 of Debian bookworm)
#   GLIBC_MINOR  newest manylinux_2_<N> tag accepted (default: 36, bookworm's glibc)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
WHEELHOUSE=${WHEELHOUSE:-$ROOT/wheelhouse}
PYTHON=${PYTHON:-python3}
TORCH_INDEX=${TORCH_INDEX:-$(sed -n 's/^ARG TORCH_INDEX=\(.*\)$/\1/p' "$ROOT/Dockerfile")}
IMAGE_PYTHON=${IMAGE_PYTHON:-3.11.2}
GLIBC_MINOR=${GLIBC_MINOR:-36}
LOCK=$ROOT/requirements/lock.txt
NODEPS_LOCK=$ROOT/requirements/lock-nodeps.txt

mkdir -p "$WHEELHOUSE"
# pip does not imply older manylinux tags for --platform: list them all.
target=(--implementation cp --abi cp311 --python-version "$IMAGE_PYTHON"
        --platform manylinux2014_x86_64 --platform manylinux2010_x86_64
        --platform manylinux1_x86_64)
for minor in $(seq 5 "$GLIBC_MINOR"); do
    target+=(--platform "manylinux_2_${minor}_x86_64")
done

# 1. the locked files. --no-deps: the lock is complete (tests/test_pins.py
#    checks its closure); it also lets pip take the source archives of the
#    source-only packages for the foreign --platform. torch: the hash in the
#    lock is that of the CPU wheel, so no CUDA build can be taken.
for lock in "$LOCK" "$NODEPS_LOCK"; do
    echo "wheelhouse.sh: the files of ${lock#"$ROOT"/} into $WHEELHOUSE"
    if ! "$PYTHON" -m pip download --no-deps --require-hashes --dest "$WHEELHOUSE" \
            "${target[@]}" -r "$lock"; then
        [ -n "$TORCH_INDEX" ] || exit 1
        echo "wheelhouse.sh: retrying with $TORCH_INDEX (the CPU torch wheel)"
        "$PYTHON" -m pip download --no-deps --require-hashes --dest "$WHEELHOUSE" \
            "${target[@]}" --extra-index-url "$TORCH_INDEX" -r "$lock"
    fi
done

# 2. build requirements of the source archives, as wheels for the image: pip
#    builds those packages inside the image with --no-index, in an isolated
#    build environment filled from the wheelhouse.
build_reqs=$("$PYTHON" - "$WHEELHOUSE" <<'PY'
import sys
import tarfile
import tomllib
import zipfile
from pathlib import Path

def top_pyproject(sdist: Path) -> bytes | None:
    """pyproject.toml at the top of a source archive, None when it has none."""
    is_top = lambda n: n.count("/") == 1 and n.endswith("/pyproject.toml")
    if sdist.suffix == ".zip":
        with zipfile.ZipFile(sdist) as archive:
            names = [n for n in archive.namelist() if is_top(n)]
            return archive.read(names[0]) if names else None
    with tarfile.open(sdist) as tar:
        names = [n for n in tar.getnames() if is_top(n)]
        return tar.extractfile(names[0]).read() if names else None


reqs = set()
for sdist in sorted(Path(sys.argv[1]).iterdir()):
    if not sdist.name.endswith((".tar.gz", ".tgz", ".zip")):
        continue
    text = top_pyproject(sdist)
    build = tomllib.loads(text.decode()).get("build-system", {}) if text else {}
    # no [build-system]: pip's legacy default
    reqs.update(build.get("requires", ["setuptools>=40.8.0", "wheel"]))
print("\n".join(sorted(reqs)))
PY
)
if [ -n "$build_reqs" ]; then
    mapfile -t build_reqs <<<"$build_reqs"
    echo "wheelhouse.sh: build requirements of the source archives: ${build_reqs[*]}"
    "$PYTHON" -m pip download --dest "$WHEELHOUSE" --only-binary=:all: "${target[@]}" "${build_reqs[@]}"
fi

# A CUDA build of torch would pull gigabytes of nvidia-* wheels: refuse it.
if ls "$WHEELHOUSE"/nvidia_* >/dev/null 2>&1; then
    echo "wheelhouse.sh: CUDA wheels (nvidia_*) in $WHEELHOUSE: a non-CPU torch was picked;" \
         "remove them and check the lock" >&2
    exit 1
fi
echo "wheelhouse.sh: $(ls "$WHEELHOUSE" | wc -l) files, $(du -sh "$WHEELHOUSE" | cut -f1)"
