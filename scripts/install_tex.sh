#!/usr/bin/env bash
# Install the LaTeX engine of the paper stage from Debian's packages (aa.cls is in none
# of them; the manuscript falls back to a standard class by itself).
set -euo pipefail
command -v latexmk >/dev/null && exit 0
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
  echo "install_tex: latexmk is missing; install latexmk texlive-latex-base texlive-latex-recommended texlive-publishers" >&2
  exit 1
fi
echo "install_tex: installing latexmk and TeX Live (Debian) ..." >&2
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
  latexmk texlive-latex-base texlive-latex-recommended texlive-publishers >/dev/null
