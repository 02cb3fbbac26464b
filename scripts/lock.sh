#!/usr/bin/env bash
# Write the lock files: every Python package of the environment, exact and hashed.
#
#   requirements/lock.txt         ocmembers' dependencies + the extras in EXTRAS
#                                 (test) + the build-system requirements, with
#                                 every transitive dependency (`uv pip compile
#                                 --generate-hashes`); installed with
#                                 `pip install --require-hashes -r`
#   requirements/lock-nodeps.txt  the extras in NODEPS_EXTRAS (vg23: gaia-oc-amd; pr22: astroML),
#                                 installed with `--no-deps` (its declared
#                                 torchvision is not needed for the network)
#
# Inputs: the ranges of pyproject.toml and requirements/constraints.txt (torch,
# CPU build). The lock is resolved for the image: CPython IMAGE_PYTHON on
# x86_64 Linux, manylinux_2_<GLIBC_MINOR> (Debian bookworm), so the same lock
# installs the .venv of the Makefile, environment.yml and the container.
#
# Versions already in the lock files are kept (uv reads them as preferences):
# a plain run only adds or drops what pyproject.toml asks for. To move:
#   scripts/lock.sh --upgrade-package NAME     one package (and what it needs)
#   scripts/lock.sh --upgrade                  everything, within the ranges
# Arguments go to `uv pip compile` of requirements/lock.txt.
#
# Needs python3 and the package index (uv's default, or UV_INDEX_URL /
# UV_EXTRA_INDEX_URL); uv itself is installed into a throwaway virtual
# environment (LOCK_TOOLS), never into .venv.
# Variables (environment):
#   PYTHON         interpreter for the tools venv and pip (default: python3)
#   UV_VERSION     uv used to resolve                (default: 0.13.9)
#   LOCK_TOOLS     venv holding uv                   (default: ${TMPDIR:-/tmp}/ocmembers-lock-tools)
#   EXTRAS         extras locked with their dependencies (default: test)
#   NODEPS_EXTRAS  extras locked without dependencies    (default: vg23,pr22)
#   IMAGE_PYTHON   Python version the lock must accept  (default: 3.11.2, Debian bookworm)
#   GLIBC_MINOR    newest manylinux_2_<N> accepted       (default: 36, bookworm's glibc)
#   TORCH_INDEX    index asked for the CPU torch wheel when pip's configuration
#                  has none (default: ARG TORCH_INDEX of the Dockerfile)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
PYTHON=${PYTHON:-python3}
UV_VERSION=${UV_VERSION:-0.13.9}
LOCK_TOOLS=${LOCK_TOOLS:-${TMPDIR:-/tmp}/ocmembers-lock-tools}
EXTRAS=${EXTRAS:-test}
NODEPS_EXTRAS=${NODEPS_EXTRAS-vg23,pr22}
IMAGE_PYTHON=${IMAGE_PYTHON:-3.11.2}
GLIBC_MINOR=${GLIBC_MINOR:-36}
TORCH_INDEX=${TORCH_INDEX:-$(sed -n 's/^ARG TORCH_INDEX=\(.*\)$/\1/p' Dockerfile)}
LOCK=requirements/lock.txt
NODEPS_LOCK=requirements/lock-nodeps.txt
CONSTRAINTS=requirements/constraints.txt

say() { echo "lock.sh: $*"; }
die() { echo "lock.sh: error: $*" >&2; exit 1; }

# ---- uv, in a venv of its own ------------------------------------------------
uv="$LOCK_TOOLS/bin/uv"
if ! "$uv" --version 2>/dev/null | grep -qx "uv $UV_VERSION\( .*\)\{0,1\}"; then
    say "installing uv==$UV_VERSION into $LOCK_TOOLS"
    "$PYTHON" -m venv "$LOCK_TOOLS"
    "$LOCK_TOOLS/bin/python" -m pip install --quiet "uv==$UV_VERSION"
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# ---- the CPU torch wheel, where uv can see it (a flat --find-links directory) --
torch_pin=$(sed -n 's/^torch==\([^ ;#]*\).*$/\1/p' "$CONSTRAINTS")
case "$torch_pin" in
    *+cpu) ;;
    *) die "$CONSTRAINTS must pin torch==<version>+cpu (found '${torch_pin:-nothing}')" ;;
esac
platform_args=(--only-binary=:all: --implementation cp --abi "cp$(echo "$IMAGE_PYTHON" | cut -d. -f1,2 | tr -d .)"
               --python-version "$IMAGE_PYTHON" --platform manylinux2014_x86_64)
for minor in $(seq 17 "$GLIBC_MINOR"); do
    platform_args+=(--platform "manylinux_2_${minor}_x86_64")
done
if ! "$PYTHON" -m pip download --quiet --no-deps --dest "$tmp/torch" "${platform_args[@]}" \
        "torch==$torch_pin"; then
    [ -n "$TORCH_INDEX" ] || die "torch==$torch_pin not found and no TORCH_INDEX"
    say "torch==$torch_pin not in pip's configuration; asking $TORCH_INDEX"
    "$PYTHON" -m pip download --quiet --no-deps --dest "$tmp/torch" "${platform_args[@]}" \
        --index-url "$TORCH_INDEX" "torch==$torch_pin"
fi

# ---- requirements of pyproject.toml that uv does not read from it itself ------
# $1 = build: the build-system requirements; $1 = extras: those of the extras $2
read_pyproject() {
    "$PYTHON" - "$@" <<'PY'
import sys
import tomllib

with open("pyproject.toml", "rb") as fh:
    meta = tomllib.load(fh)
if sys.argv[1] == "build":
    print("\n".join(meta["build-system"]["requires"]))
else:
    optional = meta["project"].get("optional-dependencies", {})
    for extra in (e for e in sys.argv[2].split(",") if e):
        if extra not in optional:
            sys.exit(f"lock.sh: unknown extra {extra!r} (pyproject has {sorted(optional)})")
        print("\n".join(optional[extra]))
PY
}

common=(--generate-hashes --python-version "$IMAGE_PYTHON"
        --python-platform "x86_64-manylinux_2_$GLIBC_MINOR"
        --custom-compile-command "scripts/lock.sh" --quiet)
extra_args=()
for extra in ${EXTRAS//,/ }; do extra_args+=(--extra "$extra"); done

say "resolving pyproject.toml [${EXTRAS}] + build-system for CPython $IMAGE_PYTHON, manylinux_2_$GLIBC_MINOR x86_64"
read_pyproject build | "$uv" pip compile pyproject.toml - "${extra_args[@]}" \
    --constraint "$CONSTRAINTS" --find-links "$tmp/torch" "${common[@]}" \
    --output-file "$LOCK" "$@"

if [ -n "$NODEPS_EXTRAS" ]; then
    say "resolving [${NODEPS_EXTRAS}] without dependencies"
    read_pyproject extras "$NODEPS_EXTRAS" >"$tmp/nodeps.in"
    "$uv" pip compile "$tmp/nodeps.in" --no-deps --no-annotate "${common[@]}" \
        --output-file "$NODEPS_LOCK"
else
    rm -f "$NODEPS_LOCK"
fi

# ---- checks: CPU torch only, no CUDA, every line hashed -----------------------
grep -q "^torch==$torch_pin " "$LOCK" || die "$LOCK does not pin torch==$torch_pin"
if grep -qiE '^(nvidia-|triton==|cuda-)' "$LOCK"; then
    die "$LOCK holds CUDA packages: a non-CPU torch was resolved"
fi
"$PYTHON" - "$LOCK" ${NODEPS_EXTRAS:+"$NODEPS_LOCK"} <<'PY'
import re
import sys

for path in sys.argv[1:]:
    text = re.sub(r"\\\n", " ", open(path).read())
    reqs = [ln for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    bad = [r.split()[0] for r in reqs if not re.search(r"==\S+ .*--hash=sha256:[0-9a-f]{64}", r)]
    if bad:
        sys.exit(f"lock.sh: error: {path}: not pinned with a hash: {bad}")
    print(f"lock.sh: {path}: {len(reqs)} packages")
PY
