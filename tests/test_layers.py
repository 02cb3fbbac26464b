"""The package's layers: imports point one way only, and nothing imports a stage.

``method`` (the papers' maths) <- ``config`` <- ``sources`` (all I/O) <- ``sim``
(the simulated sky, a plug-in source) <- ``api`` <- ``stages`` (one module per Make target) <- ``cli``. The test parses
every module of ``src/ocmembers`` (imports inside functions included, since they
make a dependency just the same) and fails on an upward import, on an import of a
stage module, and on a cycle between modules.
"""

from __future__ import annotations

import ast
import subprocess
import sys
import time
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[1] / "src" / "ocmembers"

#: rank of each layer: a module may import modules of its own rank or lower
LAYERS: dict[str, int] = {
    "ocmembers._version": 0, "ocmembers.exceptions": 0,
    "ocmembers.method": 1,
    "ocmembers.config": 2,
    "ocmembers.sources": 3,
    "ocmembers.sim": 4,
    "ocmembers.api": 5,
    "ocmembers.stages": 6,
    "ocmembers.cli": 7,
}
#: modules of ``stages`` that are not stages (shared by the stages)
STAGE_HELPERS = {"ocmembers.stages", "ocmembers.stages.products", "ocmembers.stages.runner",
                 "ocmembers.stages.plots", "ocmembers.stages.membership_run",
                 "ocmembers.stages.pr22_cluster", "ocmembers.stages.pr22_compare"}
#: the root package only re-exports the public API, lazily
ROOT = "ocmembers"


def module_name(path: Path, pkg: Path = PKG) -> str:
    rel = path.relative_to(pkg.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def imports_of(path: Path, pkg: Path = PKG) -> list[tuple[str, int]]:
    """Every ``ocmembers`` module imported by the file at ``path`` (resolved, with line numbers)."""
    name = module_name(path, pkg)
    is_pkg = path.name == "__init__.py"
    here = name if is_pkg else name.rsplit(".", 1)[0]
    known = {module_name(p, pkg) for p in pkg.rglob("*.py")}
    out: list[tuple[str, int]] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out += [(a.name, node.lineno) for a in node.names if a.name.split(".")[0] == ROOT]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = here.split(".")
                base = base[:len(base) - (node.level - 1)]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            if mod.split(".")[0] != ROOT:
                continue
            # `from pkg import module` imports the module
            for a in node.names:
                sub = f"{mod}.{a.name}"
                out.append((sub if sub in known else mod, node.lineno))
    return out


def layer_of(mod: str) -> int | None:
    best = None
    for prefix, rank in LAYERS.items():
        if mod == prefix or mod.startswith(prefix + "."):
            if best is None or len(prefix) > len(best[0]):
                best = (prefix, rank)
    return None if best is None else best[1]


def graph(pkg: Path = PKG) -> dict[str, list[tuple[str, int]]]:
    return {module_name(p, pkg): imports_of(p, pkg) for p in sorted(pkg.rglob("*.py"))}


def violations(pkg: Path = PKG) -> list[str]:
    """Upward imports, imports of a stage, imports of the root package, and import cycles."""
    g = graph(pkg)
    bad: list[str] = []
    for mod, deps in g.items():
        if mod == ROOT:
            continue
        rank = layer_of(mod)
        if rank is None:
            bad.append(f"{mod}: in no layer (add it to a layer package)")
            continue
        for dep, line in deps:
            if dep == ROOT:
                bad.append(f"{mod}:{line} imports the root package (import from its layer module)")
                continue
            dr = layer_of(dep)
            if dr is not None and dr > rank:
                bad.append(f"{mod}:{line} imports {dep} of a higher layer")
            if dep.startswith("ocmembers.stages.") and dep not in STAGE_HELPERS and dep != mod:
                bad.append(f"{mod}:{line} imports the stage {dep} (stages are run, never imported)")
    # cycles (depth-first search over the module graph, root package left out)
    edges = {m: sorted({d for d, _ in deps if d in g and d != ROOT and d != m})
             for m, deps in g.items() if m != ROOT}
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(m: str) -> None:
        state[m] = 1
        stack.append(m)
        for d in edges.get(m, ()):
            if state.get(d) == 1:
                bad.append("import cycle: " + " -> ".join(stack[stack.index(d):] + [d]))
            elif d not in state:
                visit(d)
        stack.pop()
        state[m] = 2

    for m in sorted(edges):
        if m not in state:
            visit(m)
    return bad


def test_layers_hold_on_the_package():
    assert violations() == []


def test_layer_check_fails_on_planted_upward_import_and_cycle(tmp_path):
    pkg = tmp_path / "ocmembers"
    for d in ("method", "sources", "stages"):
        (pkg / d).mkdir(parents=True)
        (pkg / d / "__init__.py").write_text("")
    (pkg / "__init__.py").write_text("")
    (pkg / "method" / "a.py").write_text("def f():\n    from ocmembers.sources import io\n")
    (pkg / "sources" / "io.py").write_text("from ..method import a\n")
    (pkg / "stages" / "one.py").write_text("")
    (pkg / "stages" / "two.py").write_text("from ocmembers.stages import one\n")
    found = violations(pkg)
    assert any("ocmembers.method.a:2 imports ocmembers.sources.io of a higher layer" in v for v in found)
    assert any(v.startswith("import cycle:") for v in found)
    assert any("imports the stage ocmembers.stages.one" in v for v in found)


def test_cli_help_does_not_import_torch_or_the_stages():
    code = ("import sys, ocmembers.cli as c\n"
            "try:\n    c.main(['--help'])\nexcept SystemExit:\n    pass\n"
            "heavy = sorted(m for m in sys.modules if m == 'torch' or m.startswith('ocmembers.stages.')"
            " or m in ('pandas', 'astropy', 'scipy'))\n"
            "print('HEAVY', heavy)\n")
    t0 = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={"PYTHONPATH": str(PKG.parent), "PATH": "/usr/bin:/bin"})
    elapsed = time.perf_counter() - t0
    assert out.returncode == 0, out.stderr
    assert "HEAVY []" in out.stdout, out.stdout
    assert "members" in out.stdout and "catalogues" in out.stdout
    print(f"ocmembers --help: {elapsed:.2f} s")


@pytest.mark.parametrize("stage", ["members", "train", "cones"])
def test_stage_help_lists_its_own_options_without_importing_it(stage):
    code = (f"import sys, ocmembers.cli as c\n"
            f"try:\n    c.main(['{stage}', '--help'])\nexcept SystemExit:\n    pass\n"
            "print('LOADED', 'torch' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={"PYTHONPATH": str(PKG.parent), "PATH": "/usr/bin:/bin"})
    assert out.returncode == 0, out.stderr
    assert "LOADED False" in out.stdout
    assert "--source" in out.stdout
    if stage == "members":
        assert "--cone" in out.stdout and "--model" in out.stdout


def test_every_cli_stage_is_a_stage_module_with_run():
    import importlib.util

    from ocmembers.cli import STAGES
    for name, (module, _) in STAGES.items():
        assert module.startswith("ocmembers.stages."), (name, module)
        spec = importlib.util.find_spec(module)
        assert spec is not None and spec.origin, (name, module)
        tree = ast.parse(Path(spec.origin).read_text(encoding="utf-8"))
        funcs = {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}
        assert funcs & {"run", "main"}, f"{module} has neither run() nor main()"


#: The only imports of ``ocmembers`` modules inside functions in the lower layers, each with its reason;
#: everything else is imported at module top (a lazy import hides a dependency and can hide a cycle).
LAZY_IMPORTS_ALLOWED: dict[tuple[str, str], str] = {
    ("ocmembers.sources.models", "ocmembers.sources.vg23"):
        "the published vg23 weights (torch state dicts) load only when that model is asked for",
    # TODO(product graph): no reason to be lazy (``_version`` is one string); sources/cache.py is
    # being reworked in parallel: move it to the top there, then drop this entry (the test says so)
    ("ocmembers.sources.cache", "ocmembers._version"): "none yet: pending the cache.py rework",
}
LAZY_LAYERS = ("ocmembers.method", "ocmembers.sources", "ocmembers.sim")


def function_level_imports(pkg: Path = PKG) -> list[tuple[str, str, int]]:
    """``(module, imported ocmembers module, line)`` for every import inside a function body."""
    found: list[tuple[str, str, int]] = []
    for path in sorted(pkg.rglob("*.py")):
        mod = module_name(path, pkg)
        tree = ast.parse(path.read_text(encoding="utf-8"))
        lines = set()
        for fn in ast.walk(tree):
            if isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
                lines |= {n.lineno for n in ast.walk(fn) if isinstance(n, (ast.Import, ast.ImportFrom))}
        found += [(mod, dep, line) for dep, line in imports_of(path, pkg) if line in lines]
    return found


def test_lower_layers_import_inside_functions_only_where_allowed():
    lazy = [(m, d, line) for m, d, line in function_level_imports()
            if m.startswith(LAZY_LAYERS) and (m, d) not in LAZY_IMPORTS_ALLOWED]
    assert lazy == [], ("imports inside functions (move them to the module top, or allow one with "
                        f"its reason in LAZY_IMPORTS_ALLOWED): {lazy}")
    listed = {(m, d) for m, d, _ in function_level_imports()}
    assert set(LAZY_IMPORTS_ALLOWED) <= listed, "an allowed lazy import no longer exists: drop it"


def test_lazy_import_check_sees_a_planted_function_import(tmp_path):
    pkg = tmp_path / "ocmembers"
    (pkg / "method").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "method" / "__init__.py").write_text("")
    (pkg / "method" / "b.py").write_text("X = 1\n")
    (pkg / "method" / "a.py").write_text("from . import b\n\n\ndef f():\n    from .b import X\n    return X\n")
    assert function_level_imports(pkg) == [("ocmembers.method.a", "ocmembers.method.b", 5)]
