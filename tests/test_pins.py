"""The environment is the lock; pyproject.toml declares ranges.

- pyproject.toml: compatible ranges (a lower bound each), no exact pins;
- requirements/lock.txt (scripts/lock.sh): every line an exact ``==`` pin with
  sha256 hashes; the locked versions satisfy every range of pyproject.toml
  (dependencies, the test extra, the build-system requirements);
  requirements/lock-nodeps.txt does the same for the vg23 extra;
- torch is locked to the CPU build 2.13.0+cpu, nothing of CUDA is locked;
- the lock is closed: following the ``Requires-Dist`` of the installed
  distributions (markers evaluated for this environment, extras only where a
  requirement asks for them) from pyproject's requirements never leaves the
  lock, and every locked version satisfies what asks for it; a planted hole is
  caught (``test_closure_check_catches_*``);
- the locked releases run on the image's Python (Debian bookworm's 3.11.2);
- the Makefile, environment.yml, the Dockerfile and scripts/wheelhouse.sh
  install that lock and carry no version of their own; the Dockerfile pins its
  base image by digest; scripts/build_image.sh takes the Debian packages from
  the Dockerfile.
"""

from __future__ import annotations

import importlib.metadata as md
import os
import re
import tomllib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import NormalizedName, canonicalize_name
from packaging.version import Version

REPO = Path(__file__).resolve().parents[1]
LOCK = REPO / "requirements" / "lock.txt"
NODEPS_LOCK = REPO / "requirements" / "lock-nodeps.txt"
CONSTRAINTS = REPO / "requirements" / "constraints.txt"
HASH = re.compile(r"--hash=sha256:([0-9a-f]{64})(?=\s|$)")


@dataclass(frozen=True)
class Locked:
    name: NormalizedName
    version: Version
    hashes: tuple[str, ...]
    line: str


def parse_lock(text: str, where: str) -> dict[NormalizedName, Locked]:
    """``{name: Locked}`` of a hashed requirements file; fails on anything else.

    Every line must be ``name==version [; marker] --hash=sha256:... ...``;
    entries whose marker does not hold here are left out (there must be exactly
    one entry per name that holds).
    """
    locked: dict[NormalizedName, Locked] = {}
    for line in re.sub(r"\\\n", " ", text).splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        assert not line.startswith("-"), f"{where}: option line {line!r}; the lock is plain pins"
        spec, _, options = line.partition(" --")
        options = "--" + options if options else ""
        hashes = tuple(HASH.findall(options))
        assert hashes, f"{where}: {spec!r} has no --hash=sha256 (pip --require-hashes refuses it)"
        assert len(hashes) == len(options.split()), f"{where}: {spec!r}: an option other than --hash"
        req = Requirement(spec)
        pins = list(req.specifier)
        assert len(pins) == 1 and pins[0].operator == "==" and "*" not in pins[0].version, \
            f"{where}: {spec!r} is not an exact 'name==version' pin"
        if req.marker is not None and not req.marker.evaluate():
            continue
        name = canonicalize_name(req.name)
        assert name not in locked, f"{where}: {name} locked twice"
        locked[name] = Locked(name, Version(pins[0].version), hashes, line)
    return locked


@pytest.fixture(scope="module")
def pyproject() -> dict:
    with open(REPO / "pyproject.toml", "rb") as fh:
        return tomllib.load(fh)


@pytest.fixture(scope="module")
def lock() -> dict[NormalizedName, Locked]:
    return parse_lock(LOCK.read_text(), "requirements/lock.txt")


@pytest.fixture(scope="module")
def nodeps_lock() -> dict[NormalizedName, Locked]:
    return parse_lock(NODEPS_LOCK.read_text(), "requirements/lock-nodeps.txt")


def _roots(pyproject: dict) -> list[Requirement]:
    """What the lock must hold: dependencies, the test extra, the build-system requirements."""
    project = pyproject["project"]
    reqs = (project["dependencies"] + project["optional-dependencies"]["test"]
            + pyproject["build-system"]["requires"])
    return [Requirement(r) for r in reqs]


def _installed() -> dict[NormalizedName, md.Distribution]:
    """The distributions of this environment, first on sys.path wins (as for import)."""
    found: dict[NormalizedName, md.Distribution] = {}
    for dist in md.distributions():
        name = dist.metadata["Name"]
        if name:
            found.setdefault(canonicalize_name(name), dist)
    return found


# ---------------------------------------------------------------- pyproject


def test_pyproject_declares_ranges_not_pins(pyproject: dict) -> None:
    project = pyproject["project"]
    optional = project["optional-dependencies"]
    reqs = project["dependencies"] + [r for extra in optional.values() for r in extra]
    for text in reqs:
        req = Requirement(text)
        ops = {s.operator for s in req.specifier}
        assert not ops & {"==", "==="}, f"pyproject: {text!r} is an exact pin; pins live in the lock"
        assert ops & {">=", "~=", ">"}, f"pyproject: {text!r} has no lower bound"
    names = {canonicalize_name(Requirement(r).name) for r in project["dependencies"]}
    assert {"numpy", "pandas", "scipy", "astropy", "torch"} <= names
    assert {"test", "vg23"} <= set(optional)


def test_lock_satisfies_pyproject(pyproject: dict, lock: dict[NormalizedName, Locked],
                                  nodeps_lock: dict[NormalizedName, Locked]) -> None:
    for req in _roots(pyproject):
        name = canonicalize_name(req.name)
        assert name in lock, f"requirements/lock.txt lacks {req} (run scripts/lock.sh)"
        assert req.specifier.contains(lock[name].version, prereleases=True), \
            f"requirements/lock.txt: {name}=={lock[name].version} outside pyproject's {req}"
    optional = pyproject["project"]["optional-dependencies"]
    for text in (*optional["vg23"], *optional["pr22"]):
        req = Requirement(text)
        name = canonicalize_name(req.name)
        assert name in nodeps_lock, f"requirements/lock-nodeps.txt lacks {req}"
        assert req.specifier.contains(nodeps_lock[name].version, prereleases=True)
        assert name not in lock, f"{name} is installed with --no-deps, not from lock.txt"
    assert "pytest" in lock


def test_locks_are_written_by_lock_script() -> None:
    script = REPO / "scripts" / "lock.sh"
    assert os.access(script, os.X_OK), "scripts/lock.sh must be executable"
    text = script.read_text()
    assert "--generate-hashes" in text and "requirements/constraints.txt" in text
    for path in (LOCK, NODEPS_LOCK):
        assert "scripts/lock.sh" in "\n".join(path.read_text().splitlines()[:3]), \
            f"{path.name}: header must name the command that writes it (scripts/lock.sh)"


# --------------------------------------------------------------------- torch


def test_torch_is_the_cpu_build(lock: dict[NormalizedName, Locked]) -> None:
    torch = lock["torch"]
    assert torch.version.public == "2.13.0" and torch.version.local == "cpu", torch.line
    # the hash of the one CPU wheel (cp311, manylinux_2_28 x86_64) that pip installs
    assert len(torch.hashes) == 1, "torch: only the CPU wheel may be locked"
    cuda = [n for n in lock if n.startswith(("nvidia-", "cuda-")) or n == "triton"]
    assert not cuda, f"CUDA packages in the lock: {cuda}"
    constraint = [ln for ln in CONSTRAINTS.read_text().splitlines() if ln.startswith("torch")]
    assert constraint == [f"torch=={torch.version}"], "constraints.txt and the lock disagree on torch"
    installed = _installed().get(canonicalize_name("torch"))
    if installed is not None:
        assert Version(installed.version) == torch.version, "this environment's torch is not the locked one"


# ------------------------------------------------------------------ closure


def closure_problems(locked: dict[NormalizedName, Version], roots: Iterable[Requirement],
                     installed: Callable[[NormalizedName], md.Distribution | None],
                     optional_roots: Iterable[Requirement] = ()) -> list[str]:
    """What keeps ``locked`` from being the closure of ``roots``; [] when it is.

    Walks the ``Requires-Dist`` of the installed distributions from ``roots``
    (and ``optional_roots``: build-system requirements, which the environment
    need not keep installed), evaluating markers for this environment with the
    extras a requirement asks for (an extra nobody asks for is ignored). Every
    requirement met must be locked at a version it accepts; every locked
    package reached from ``roots`` must be installed here so that its own
    requirements can be followed. Then every locked, installed package's
    requirements are checked as well, reached or not.
    """
    problems: list[str] = []
    todo: list[tuple[Requirement, str, bool]] = [(r, "pyproject.toml", True) for r in roots]
    todo += [(r, "pyproject.toml [build-system]", False) for r in optional_roots]
    seen: set[tuple[NormalizedName, frozenset[str]]] = set()
    followed: set[NormalizedName] = set()

    def follow(name: NormalizedName, extras: frozenset[str], required: bool) -> None:
        dist = installed(name)
        if dist is None:
            if required:
                problems.append(f"{name} is locked but not installed here: cannot follow its "
                                f"requirements (rebuild the environment: make env)")
            return
        followed.add(name)
        for text in dist.requires or []:
            req = Requirement(text)
            if req.marker is None or any(req.marker.evaluate({"extra": e})
                                         for e in sorted(extras | {""})):
                todo.append((req, f"{name} {dist.version}", required))

    def drain() -> None:
        while todo:
            req, by, required = todo.pop()
            name = canonicalize_name(req.name)
            if name not in locked:
                problems.append(f"{name} (required by {by}: {req}) is not in the lock")
                continue
            if not req.specifier.contains(locked[name], prereleases=True):
                problems.append(f"{name}=={locked[name]} in the lock does not satisfy {by}: {req}")
            key = (name, frozenset(canonicalize_name(e) for e in req.extras))
            if key not in seen:
                seen.add(key)
                follow(name, key[1], required)

    drain()
    # every locked package, reached or not: its requirements are in the lock too
    for name in sorted(set(locked) - followed):
        follow(name, frozenset(), False)
        drain()
    return problems


@pytest.fixture(scope="module")
def closure_inputs(pyproject: dict, lock: dict[NormalizedName, Locked]):
    installed = _installed()
    if "numpy" not in installed:
        pytest.skip("the locked packages are not installed in this environment")
    roots = _roots(pyproject)
    build = [Requirement(r) for r in pyproject["build-system"]["requires"]]
    runtime = [r for r in roots if str(r) not in {str(b) for b in build}]
    versions = {name: entry.version for name, entry in lock.items()}
    return versions, runtime, build, installed.get


def test_lock_is_closed_under_requirements(closure_inputs) -> None:
    versions, runtime, build, installed = closure_inputs
    problems = closure_problems(versions, runtime, installed, build)
    assert not problems, "the lock is not closed (run scripts/lock.sh):\n  " + "\n  ".join(problems)


def test_closure_check_catches_a_missing_package(closure_inputs) -> None:
    versions, runtime, build, installed = closure_inputs
    direct = {canonicalize_name(r.name) for r in runtime + build}
    # a package that only something else requires (astropy -> pyerfa, ...)
    for hole in ("pyerfa", "urllib3", "kiwisolver", "threadpoolctl"):
        if hole in versions and hole not in direct:
            break
    else:
        pytest.fail("no transitive-only package to plant a hole with")
    planted = {n: v for n, v in versions.items() if n != hole}
    problems = closure_problems(planted, runtime, installed, build)
    assert any(p.startswith(f"{hole} (required by") for p in problems), problems


def test_closure_check_catches_a_version_outside_a_range(closure_inputs) -> None:
    versions, runtime, build, installed = closure_inputs
    planted = dict(versions, numpy=Version("1.21.0"))  # pyproject: numpy>=2.0,<3
    problems = closure_problems(planted, runtime, installed, build)
    assert any(p.startswith("numpy==1.21.0 in the lock does not satisfy") for p in problems), problems


def test_locked_releases_run_on_the_image_python(lock: dict[NormalizedName, Locked]) -> None:
    """Debian bookworm's python3.11 (the offline image) is 3.11.2; some releases need more."""
    wheelhouse = (REPO / "scripts" / "wheelhouse.sh").read_text()
    image_python = re.search(r"IMAGE_PYTHON=\$\{IMAGE_PYTHON:-([0-9.]+)\}", wheelhouse).group(1)
    assert image_python in (REPO / "scripts" / "lock.sh").read_text(), \
        "scripts/lock.sh must resolve for the same IMAGE_PYTHON as scripts/wheelhouse.sh"
    installed = _installed()
    bad = []
    for name, entry in lock.items():
        dist = installed.get(name)
        # metadata of the locked release itself (a venv not yet rebuilt may hold another)
        if dist is None or Version(dist.version) != entry.version:
            continue
        requires_python = dist.metadata.get("Requires-Python")
        if requires_python and not SpecifierSet(requires_python).contains(image_python):
            bad.append(f"{name}=={entry.version} (Requires-Python {requires_python})")
    assert not bad, f"locked releases that do not run on Python {image_python}: {bad}"


# ------------------------------------------- the files that install the lock


def test_makefile_installs_the_lock() -> None:
    makefile = (REPO / "Makefile").read_text()
    assert "LOCK := requirements/lock.txt" in makefile
    assert "NODEPS_LOCK := requirements/lock-nodeps.txt" in makefile
    rule = re.search(r"^\$\(ENV_STAMP\): (.*)\n((?:\t.*\n|\s*\n)*)", makefile, re.M)
    assert rule, "no $(ENV_STAMP) rule"
    assert {"$(LOCK)", "$(NODEPS_LOCK)", "pyproject.toml"} <= set(rule.group(1).split())
    recipe = re.sub(r"\\\n", " ", rule.group(2))
    assert re.search(r"pip install [^\n]*--require-hashes [^\n]*-r \$\(LOCK\)", recipe)
    assert re.search(r"pip install [^\n]*--require-hashes --no-deps -r \$\(NODEPS_LOCK\)", recipe)
    assert re.search(r"pip install [^\n]*--no-deps [^\n]*-e \.", recipe)
    assert not re.search(r"[A-Za-z0-9_.-]+\s*(==|>=|<=|~=)\s*[0-9]", recipe), \
        "the Makefile installs a version of its own; versions belong in the lock"


def test_environment_yml_installs_the_lock() -> None:
    env = yaml.safe_load((REPO / "environment.yml").read_text())
    deps = env["dependencies"]
    conda = [d for d in deps if isinstance(d, str)]
    assert "python=3.11" in conda, "environment.yml must pin python=3.11"
    pip_sections = [d["pip"] for d in deps if isinstance(d, dict) and "pip" in d]
    assert len(pip_sections) == 1, "environment.yml needs exactly one pip: section"
    pip = pip_sections[0]
    assert "--require-hashes" in pip and "-r requirements/lock.txt" in pip
    own = [r for r in pip if not r.startswith("-")]
    assert not own, f"environment.yml lists packages of its own {own}; they belong in the lock"
    # the CPU build of torch, as in the Dockerfile's online route
    assert any(r.startswith("--extra-index-url") and r.endswith("/whl/cpu") for r in pip)


def _instructions(dockerfile: str) -> list[str]:
    """Dockerfile instructions with continuation lines joined and comments dropped."""
    lines = [ln for ln in dockerfile.splitlines() if not ln.lstrip().startswith("#")]
    return [ins.strip() for ins in re.sub(r"\\\n", " ", "\n".join(lines)).splitlines()
            if ins.strip()]


def test_dockerfile_installs_the_lock(pyproject: dict) -> None:
    instructions = _instructions((REPO / "Dockerfile").read_text())
    text = "\n".join(instructions)
    assert "COPY requirements/lock.txt requirements/lock-nodeps.txt /deps/" in instructions
    assert re.search(r"pip install [^\n;]*--require-hashes [^\n;]*-r /deps/lock\.txt", text)
    assert re.search(r"pip install [^\n;]*--require-hashes --no-deps [^\n;]*-r /deps/lock-nodeps\.txt",
                     text)
    # the project itself: nothing to resolve, built with the locked setuptools
    assert re.search(r"pip install [^\n;]*--no-deps --no-build-isolation [^\n;]*-e /work", text)
    # no requirement pins or ranges, no package named: the versions come from the lock
    assert not re.search(r"[A-Za-z0-9_.-]+\s*(==|>=|<=|~=|!=)\s*[0-9]", text), \
        "the Dockerfile pins a Python package itself; versions belong in the lock"
    project = pyproject["project"]
    names = [Requirement(r).name for r in project["dependencies"]
             + [r for extra in project["optional-dependencies"].values() for r in extra]]
    for name in names:
        assert not re.search(rf"(?<![\w/-]){re.escape(name)}(?![\w-])", text, re.I), \
            f"the Dockerfile names the package {name!r}; install it through the lock"
    # no Debian version pins (pkg=1.2-3) either
    apt = [i for i in instructions if i.startswith("ARG APT_PACKAGES=")]
    assert len(apt) == 1
    assert "=" not in apt[0].split("=", 1)[1], "Debian packages are pinned by the base digest"
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


def test_build_scripts_use_the_lock() -> None:
    script = (REPO / "scripts" / "build_image.sh").read_text()
    assert "ARG APT_PACKAGES=" in script
    assert "--build-arg BASE_IMAGE=" in script and "--build-arg WHEELHOUSE=" in script
    assert "requirements/lock.txt" in script and "requirements/lock-nodeps.txt" in script
    # the wheelhouse holds exactly the locked files, hash-checked, no versions of its own
    wheelhouse = (REPO / "scripts" / "wheelhouse.sh").read_text()
    assert "requirements/lock.txt" in wheelhouse and "requirements/lock-nodeps.txt" in wheelhouse
    assert re.search(r"pip download --no-deps --require-hashes", wheelhouse)
    assert not re.search(r"[A-Za-z0-9_.-]==\s*[0-9]", wheelhouse), \
        "scripts/wheelhouse.sh pins a package itself; versions belong in the lock"
