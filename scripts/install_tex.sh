#!/usr/bin/env bash
# Install the LaTeX engine of the paper stage from Debian's packages (`make paper` runs this
# when latexmk is missing). As root (a container, a CI runner) it installs them with apt-get;
# as any other user it installs nothing and says what to run (sudo), then exits 1.
# The same packages as the Dockerfile's APT_PACKAGES and ocmembers.stages.paper.TEX_PACKAGES
# (tests/test_paper.py checks it). aa.cls is in none of them; the manuscript falls back to a
# standard class by itself.
set -euo pipefail
TEX_PACKAGES="latexmk texlive-latex-base texlive-latex-recommended texlive-fonts-recommended"
command -v latexmk >/dev/null && exit 0
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
  echo "install_tex: latexmk is missing and this is not root on Debian/Ubuntu, so nothing was installed;" \
       "run 'sudo apt-get install $TEX_PACKAGES' (or 'sudo bash scripts/install_tex.sh'), or install TeX Live" \
       "with latexmk another way, then 'make paper' again (every stage before the paper is made already)" >&2
  exit 1
fi
echo "install_tex: installing latexmk and TeX Live (Debian: $TEX_PACKAGES) ..." >&2
apt-get update -qq
# shellcheck disable=SC2086
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $TEX_PACKAGES >/dev/null
