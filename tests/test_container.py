"""The container as documented: what the README, docs/container.md, the Dockerfile and
scripts/build_image.sh promise each other (no Docker engine needed: the image build itself is
checked by hand, docs/container.md "Measured")."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from ocmembers import load_config
from ocmembers.stages.products import figures_dir, paper_paths

REPO = Path(__file__).resolve().parents[1]
README = (REPO / "README.md").read_text()
CONTAINER = (REPO / "docs" / "container.md").read_text()
DOCKERFILE = (REPO / "Dockerfile").read_text()
BUILD_IMAGE = (REPO / "scripts" / "build_image.sh").read_text()


def _commands(text: str) -> list[str]:
    """The shell commands of the fenced code blocks, continuation lines joined, comments cut."""
    out = []
    for block in re.findall(r"```(?:bash|sh)\n(.*?)```", text, re.S):
        joined = re.sub(r"\\\n\s*", " ", block)
        out += [line.split("  #")[0].strip() for line in joined.splitlines() if line.strip()]
    return out


def _docker_runs(text: str) -> list[list[str]]:
    return [shlex.split(c) for c in _commands(text) if c.startswith("docker run")]


def _mounts(argv: list[str]) -> list[str]:
    return [argv[i + 1].split(":")[1] for i, a in enumerate(argv) if a == "-v"]


def _run_config(argv: list[str]):
    """The configuration the container's make runs with for this `docker run`."""
    image = next(i for i, a in enumerate(argv) if a.startswith("ocmembers"))
    rest = argv[image + 1:]
    if rest[:2] == ["make", "demo"]:
        return load_config(source="sim", output_dir="data/demo")
    assert rest[:2] in ([], ["make", "all"]) or rest[:2] == ["make", "paper"], rest
    var = dict(a.split("=", 1) for a in rest[2:] if "=" in a)
    return load_config(source=var.get("SOURCE", "archive"), output_dir=var.get("OUTPUT_DIR", "data"))


@pytest.mark.parametrize("doc", ["README.md", "docs/container.md"])
def test_every_documented_run_brings_its_pdf_and_figures_out_as_the_user(doc):
    # the PDF stayed inside the --rm container; the files in the mounts belonged to root
    text = (REPO / doc).read_text()
    runs = _docker_runs(text)
    assert len(runs) >= 2, runs
    for argv in runs:
        assert "--user" in argv and argv[argv.index("--user") + 1] == "$(id -u):$(id -g)", argv
        mounts = _mounts(argv)
        cfg = _run_config(argv)
        for product in (paper_paths(cfg)["pdf"], figures_dir(cfg)):
            inside = "/work/" + str(product)
            assert any(inside.startswith(m.rstrip("/") + "/") for m in mounts), (product, argv)
    # the mounted directories are made by the user first (docker would make them as root), and
    # figures/ is the checkout's (its mount replaces the image's figure scripts)
    assert re.search(r"^mkdir -p data figures", text, re.M)
    assert "from the checkout" in " ".join(text.split())


def test_the_image_runs_as_any_user():
    final = DOCKERFILE.rsplit("\nFROM ", 1)[1]
    chmod = re.search(r"chmod 1777 ([^\n\\]+)", final)
    assert chmod and set(chmod.group(1).split()) >= {"/work/data", "/work/figures", "/work/paper"}
    assert re.search(r"ENV HOME=/tmp\b", final)
    # and the paper stage builds under the output directory, not in the image's paper/
    cfg = load_config(source="sim", output_dir="data/demo")
    assert paper_paths(cfg)["build"].is_relative_to(cfg.out_dir)


def test_readme_make_image_comment_says_what_make_image_runs():
    makefile = (REPO / "Makefile").read_text()
    recipe = re.search(r"^image:\n\t(.+)$", makefile, re.M).group(1)
    assert "scripts/build_image.sh" in recipe
    line = next(c for c in README.splitlines() if c.startswith("make image"))
    assert "scripts/build_image.sh" in line and "docker build" not in line, line


def test_readme_says_how_the_paper_gets_tex():
    from ocmembers.stages.paper import TEX_PACKAGES
    text = " ".join(README.split())
    assert "scripts/install_tex.sh" in text and "as root" in text and "sudo" in text
    assert f"apt-get install {' '.join(TEX_PACKAGES)}" in text


def test_the_offline_base_is_pinned_to_a_dated_snapshot_documented_once():
    snapshot = re.search(r"^SNAPSHOT=\$\{SNAPSHOT-(\d{8}T\d{6}Z)\}$", BUILD_IMAGE, re.M)
    assert snapshot, "scripts/build_image.sh: no dated default SNAPSHOT"
    date = snapshot.group(1)
    assert "snapshot.debian.org/archive/debian/$SNAPSHOT" in BUILD_IMAGE
    assert f"snapshot.debian.org/archive/debian/{date}" in CONTAINER
    assert f"ocmembers-base:bookworm-{date}" in DOCKERFILE          # the command in its header
    assert "NOT pinned" in BUILD_IMAGE and "NOT pinned" in CONTAINER  # the live-mirror route says so


def test_the_build_stage_can_be_pruned_by_its_label():
    build = DOCKERFILE.split(" AS build", 1)[1].split("\nFROM ", 1)[0]
    label = re.search(r"LABEL (org\.ocmembers\.stage=build)", build)
    assert label and "org.ocmembers.stage" not in DOCKERFILE.rsplit("\nFROM ", 1)[1]
    for text in (CONTAINER, BUILD_IMAGE):
        assert f"docker image prune -f --filter label={label.group(1)}" in text
    assert "docker builder prune" in CONTAINER


def test_container_doc_quotes_no_stale_measurements():
    # a test count is stale at the next commit; every measured time sits under a dated heading
    # or says its date
    assert not re.search(r"\b\d+ passed\b", CONTAINER)
    sections = re.split(r"^## ", CONTAINER, flags=re.M)
    for section in sections:
        heading = section.splitlines()[0] if section else ""
        for para in section.split("\n\n"):
            if re.search(r"\b\d+(?:-\d+)? s\b", para):
                assert re.search(r"20\d\d-\d\d-\d\d", heading + para), para[:200]
