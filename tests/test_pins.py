"""The pins live in pyproject.toml; environment.yml and the Dockerfile agree with it.

- every runtime dependency and test extra is an exact ``==`` pin;
- environment.yml asks for Python 3.11 and lists the same pins in its pip section;
- the Dockerfile installs the package itself (pins from pyproject), carries no
  version of its own and pins its base image by digest;
- scripts/build_image.sh takes the Debian packages from the Dockerfile.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([0-9][0-9A-Za-z.+!-]*)$")


def _canonical(name: str) -> str:
    """PEP 503 normalised project name."""
    return re.sub(r"[-_.]+", "-", name).lower()


def _pins(requirements: list[str], where: str) -> dict[str, str]:
    """``{name: version}`` of exact pins; fails on anything that is not ``name==version``."""
    pins: dict[str, str] = {}
    for req in requirements:
        match = PIN.match(req.strip())
        assert match, f"{where}: {req!r} is not an exact 'name==version' pin"
        name = _canonical(match.group(1))
        assert name not in pins, f"{where}: {name} listed twice"
        pins[name] = match.group(2)
    return pins


@pytest.fixture(scope="module")
def pyproject() -> dict:
    with open(REPO / "pyproject.toml", "rb") as fh:
        return tomllib.load(fh)


@pytest.fixture(scope="module")
def project_pins(pyproject: dict) -> dict[str, str]:
    project = pyproject["project"]
    optional = project["optional-dependencies"]
    pins = _pins(project["dependencies"], "pyproject dependencies")
    for extra in ("test", "vg23"):
        pins.update(_pins(optional[extra], f"pyproject [{extra}]"))
    return pins


def test_pyproject_pins_are_exact(project_pins: dict[str, str]) -> None:
    # torch: the CPU build, exactly 2.13.0 (an unpinned torch pulls the CUDA stack)
    assert project_pins["torch"] == "2.13.0"
    assert {"numpy", "pandas", "scipy", "astropy", "pytest"} <= set(project_pins)


def test_environment_yml_matches_pyproject(pyproject: dict) -> None:
    env = yaml.safe_load((REPO / "environment.yml").read_text())
    deps = env["dependencies"]
    conda = [d for d in deps if isinstance(d, str)]
    assert "python=3.11" in conda, "environment.yml must pin python=3.11"
    pip_sections = [d["pip"] for d in deps if isinstance(d, dict) and "pip" in d]
    assert len(pip_sections) == 1, "environment.yml needs exactly one pip: section"
    pip_reqs = [r for r in pip_sections[0] if not r.startswith("-")]
    env_pins = _pins(pip_reqs, "environment.yml pip")
    project = pyproject["project"]
    expected = _pins(project["dependencies"] + project["optional-dependencies"]["test"],
                     "pyproject dependencies + [test]")
    assert env_pins == expected, (
        f"environment.yml differs from pyproject.toml: only in environment.yml "
        f"{sorted(set(env_pins.items()) - set(expected.items()))}, only in pyproject "
        f"{sorted(set(expected.items()) - set(env_pins.items()))}")
    # the CPU build of torch, as in the Dockerfile's online route
    assert any("download.pytorch.org/whl/cpu" in r for r in pip_sections[0])


def _instructions(dockerfile: str) -> list[str]:
    """Dockerfile instructions with continuation lines joined and comments dropped."""
    lines = [ln for ln in dockerfile.splitlines() if not ln.lstrip().startswith("#")]
    return [ins.strip() for ins in re.sub(r"\\\n", " ", "\n".join(lines)).splitlines()
            if ins.strip()]


def test_dockerfile_carries_no_versions_of_its_own(project_pins: dict[str, str]) -> None:
    instructions = _instructions((REPO / "Dockerfile").read_text())
    text = "\n".join(instructions)
    # no requirement pins or ranges: the versions come from pyproject.toml
    assert not re.search(r"[A-Za-z0-9_.-]+\s*(==|>=|<=|~=|!=)\s*[0-9]", text), \
        "the Dockerfile pins a Python package itself; pins belong in pyproject.toml"
    for name in project_pins:
        assert not re.search(rf"(?<![\w/-]){re.escape(name)}(?![\w-])", text, re.I), \
            f"the Dockerfile names the pinned package {name!r}; install it through pyproject"
    # no Debian version pins (pkg=1.2-3) either
    apt = [i for i in instructions if i.startswith("ARG APT_PACKAGES=")]
    assert len(apt) == 1
    assert "=" not in apt[0].split("=", 1)[1], "Debian packages are pinned by the base digest"
    # it installs the package from the project (pins from pyproject), offline or online
    assert re.search(r'pip install [^\n]*-e "/work\[\$EXTRAS\]"', text)
    assert "--no-index" in text and "--no-cache-dir" in text
    assert instructions[-1] == 'CMD ["make", "all"]'


def test_dockerfile_base_image_pinned_by_digest() -> None:
    instructions = _instructions((REPO / "Dockerfile").read_text())
    base = [i for i in instructions if i.startswith("ARG BASE_IMAGE=")]
    assert len(base) == 1, "one ARG BASE_IMAGE=<image>@sha256:<digest> before the first FROM"
    assert re.fullmatch(r"ARG BASE_IMAGE=python:3\.11[\w.-]*-bookworm@sha256:[0-9a-f]{64}",
                        base[0]), base[0]
    froms = [i for i in instructions if i.startswith("FROM ")]
    assert froms[0] == "FROM ${BASE_IMAGE} AS base"
    # every later stage builds on that base, never on another (unpinned) image
    assert all(re.fullmatch(r"FROM base( AS \w+)?", f) for f in froms[1:]), froms


def test_build_script_reads_apt_packages_from_dockerfile() -> None:
    script = (REPO / "scripts" / "build_image.sh").read_text()
    assert "ARG APT_PACKAGES=" in script
    assert "--build-arg BASE_IMAGE=" in script and "--build-arg WHEELHOUSE=" in script
    # the wheelhouse script reads the requirements from pyproject.toml, not a copy
    wheelhouse = (REPO / "scripts" / "wheelhouse.sh").read_text()
    assert "pyproject.toml" in wheelhouse
    assert not re.search(r"==\s*[0-9]", wheelhouse)
