"""The package's shape, checked from its source (docs/ARCHITECTURE.md): no import cycle, ``core`` never reaches
Blender, and generating a take loads none of the lab (corpus synthesis, training, metrics, evaluation, plots)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKAGE = "lattice_talk"
NOT_PACKAGE = {"tests", "tools", "docs", "vendor_models", "datasets", "build", "dist"}
BLENDER_MODULES = ("bpy", "mathutils", "bmesh")
# The Blender side of the package: core sits below all of it (and below the package root, which registers it).
BLENDER_LAYER = tuple(f"{PACKAGE}.{name}" for name in ("scene", "operators", "panels", "props", "preferences"))
# What makes and judges models; generating a take never needs it.
LAB = tuple(f"{PACKAGE}.{name}" for name in (
    "core.data", "core.metrics", "core.real_av", "core.training", "core.speech.train", "core.speech.pretrain",
    "core.speech.recipe", "core.speech.real_clip_checks", "core.motion.video_train", "core.motion.video_corpus", "bench",
    "audio_fuzz")) + ("matplotlib",)


def package_modules() -> dict[str, Path]:
    """Every module of the package by dotted name (the repository root is the package)."""
    modules = {}
    for path in REPO.rglob("*.py"):
        parts = path.relative_to(REPO).with_suffix("").parts
        if parts[0] in NOT_PACKAGE or parts[0].startswith("."):
            continue
        parts = parts[:-1] if parts[-1] == "__init__" else parts
        modules[".".join((PACKAGE, *parts))] = path
    return modules


def imported_names(module: str, path: Path) -> set[str]:
    """Absolute names of everything ``module`` imports, at any level (inside functions too), relative ones resolved;
    ``from X import y`` yields ``X.y`` (the module X when y is a name inside it: see :func:`import_graph`)."""
    package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = ".".join(package[:len(package) - node.level + 1] + ([node.module] if node.module else [])) \
                if node.level else node.module or ""
            names.update(f"{base}.{alias.name}" for alias in node.names)
    return names


def module_of(name: str, modules: dict[str, Path]) -> str:
    """The package module an imported name lives in (X.y where y is a function or class: X); "" if none."""
    while name and name not in modules:
        name = name.rpartition(".")[0]
    return name


def import_graph() -> dict[str, set[str]]:
    modules = package_modules()
    return {module: {target for name in imported_names(module, path)
                     if (target := module_of(name, modules)) and target != module}
            for module, path in modules.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph[node]):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10 * len(graph)))
    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_the_finder_resolves_relative_imports_inside_functions_and_finds_cycles(tmp_path):
    source = tmp_path / "x.py"
    source.write_text("from . import y\n\ndef f():\n    from ..scene.render import still\n    import bpy\n")
    names = imported_names(f"{PACKAGE}.core.x", source)
    assert {f"{PACKAGE}.core.y", f"{PACKAGE}.scene.render.still", "bpy"} <= names
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_the_package_has_no_import_cycle():
    graph = import_graph()
    assert len(graph) > 100 and f"{PACKAGE}.core.speech.pipeline" in graph[f"{PACKAGE}.core.pipeline_registry"]
    assert cycles(graph) == []


def test_core_never_imports_blender():
    """core/ is a plain library: no Blender module and nothing of the Blender layer in its source (relative imports
    resolved, every subpackage, imports inside functions too), and importing all of it leaves bpy unloaded."""
    modules = package_modules()
    core = {name: path for name, path in modules.items() if name.startswith(f"{PACKAGE}.core")}
    offenders = sorted(f"{name}: {target}" for name, path in core.items() for target in imported_names(name, path)
                       if target.split(".")[0] in BLENDER_MODULES or target.startswith(BLENDER_LAYER)
                       or module_of(target, modules) == PACKAGE)
    assert offenders == []
    code = f"import sys, importlib; [importlib.import_module(m) for m in {sorted(core)!r}]; print('bpy' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip().splitlines()[-1] == "False"


def test_generating_a_take_loads_no_lab_module(tmp_path):
    """`generate` on the bundled sample, in a fresh interpreter: the take is written, and no corpus synthesis,
    training, metrics, evaluation or plotting module was imported on the way."""
    sample = REPO / "vendor_models" / "samples" / "hello.wav"
    out = tmp_path / "hello.npz"
    code = ("import sys\nfrom lattice_talk.cli import main\n"
            f"code = main(['generate', {str(sample)!r}, '--out', {str(out)!r}, '--quiet'])\n"
            "print('exit', code, *sorted(m for m in sys.modules if m.startswith(('lattice_talk', 'matplotlib'))))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    _, code, *loaded = result.stdout.splitlines()[-1].split()
    assert code == "0" and out.is_file()
    assert f"{PACKAGE}.core.speech.model" in loaded  # it did run the speech model
    assert [m for m in loaded if m.startswith(LAB)] == []
