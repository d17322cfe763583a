"""The map in docs/architecture.md is true: every import in labkit keeps its layers and groups.

The table between ``<!-- the map`` and ``<!-- end of the map -->`` is the data: a module may
import modules of a lower layer or of its own group, never a higher layer or another group of
its layer, and every module of labkit is in exactly one group. The import graph is read with
``ast`` (module-level imports and those inside functions alike), so this runs in well under a
second and needs no import of labkit.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "labkit"
DOC = ROOT / "docs" / "architecture.md"


def read_map(text: str) -> dict[str, tuple[int, str]]:
    """``{entry: (layer, group)}`` from the doc's table; ``sim/`` stands for a package and its modules."""
    block = text.split("<!-- the map", 1)[1].split("<!-- end of the map -->", 1)[0]
    entries: dict[str, tuple[int, str]] = {}
    for line in block.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) != 3 or not cells[0].isdigit():
            continue
        for entry in cells[2].split(","):
            entry = entry.strip().replace("\\_", "_")
            assert entry not in entries, f"{entry} is in the map twice"
            entries[entry] = (int(cells[0]), cells[1])
    return entries


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports(path: Path) -> set[str]:
    """The labkit modules ``path`` imports (``from .x import y`` may name module y of package x)."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[:len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            found.add(target)
            found.update(f"{target}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return {t for t in found if t == "labkit" or t.startswith("labkit.")}


def modules() -> dict[str, Path]:
    return {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def place(module: str, the_map: dict[str, tuple[int, str]]) -> tuple[int, str] | None:
    """Where ``module`` (``labkit.sim.kubelet``) is on the map, by its most specific entry."""
    rel = module.removeprefix("labkit.") if module != "labkit" else "labkit"
    parts = rel.split(".")
    for i in range(len(parts), 0, -1):
        head = ".".join(parts[:i])
        if i == len(parts) and head in the_map:
            return the_map[head]
        if head.replace(".", "/") + "/" in the_map:
            return the_map[head.replace(".", "/") + "/"]
    return None


def broken_arrows(graph: dict[str, set[str]], the_map: dict[str, tuple[int, str]]) -> list[str]:
    known = set(graph)
    broken = []
    for source, targets in sorted(graph.items()):
        layer, group = place(source, the_map)
        for target in sorted(t for t in targets if t in known):
            to_layer, to_group = place(target, the_map)
            if to_group != group and to_layer >= layer:
                broken.append(f"{source} ({group}, layer {layer}) -> {target} ({to_group}, layer {to_layer})")
    return broken


@pytest.fixture(scope="module")
def the_map():
    return read_map(DOC.read_text())


def test_every_module_is_on_the_map_once(the_map):
    assert {"ground", "sim", "clusters", "views", "serve", "lab", "top"} == {g for _, g in the_map.values()}
    missing = [name for name in modules() if place(name, the_map) is None]
    assert missing == [], "add these modules to the map in docs/architecture.md"
    entries = {e.rstrip("/") for e in the_map}
    stale = [e for e in entries if not (PACKAGE / f"{e}.py").exists() and not (PACKAGE / e).is_dir() and e != "labkit"]
    assert stale == [], "the map names modules that do not exist"


def test_every_import_keeps_the_maps_layers(the_map):
    graph = {name: imports(path) for name, path in modules().items()}
    assert broken_arrows(graph, the_map) == []


def test_a_broken_arrow_is_found(the_map):
    """The check itself can fail: each arrow the code used to have is caught."""
    old_arrows = {"labkit.cluster": {"labkit.serve"}, "labkit.printers": {"labkit.display"},
                  "labkit.sim.cli": {"labkit.plot"}, "labkit.objects": {"labkit.sim.lab"}}
    graph = {name: set() for name in modules()} | old_arrows
    assert broken_arrows(graph, the_map) == [
        "labkit.cluster (clusters, layer 2) -> labkit.serve (serve, layer 3)",
        "labkit.objects (ground, layer 1) -> labkit.sim.lab (sim, layer 2)",
        "labkit.printers (ground, layer 1) -> labkit.display (views, layer 2)",
        "labkit.sim.cli (sim, layer 2) -> labkit.plot (views, layer 2)"]


def test_the_relative_imports_are_read_as_python_does(tmp_path):
    assert imports(PACKAGE / "sim" / "lab.py") >= {"labkit.contract", "labkit.sim.cluster", "labkit.sim.pods"}
    assert "labkit.display" in imports(PACKAGE / "__init__.py")       # inside a function counts too



LONG_MODULE_LINES = 600


def long_modules_without_a_reason(paths: dict[str, Path]) -> list[str]:
    """Modules over ~600 lines whose docstring does not say why they stay one ("on purpose")."""
    found = []
    for name, path in paths.items():
        text = path.read_text()
        doc = ast.get_docstring(ast.parse(text)) or ""
        if text.count("\n") > LONG_MODULE_LINES and "on purpose" not in doc:
            found.append(f"{name} ({text.count(chr(10))} lines)")
    return found


def test_a_long_module_says_why_it_stays_one():
    """Issue 19's rule: split a module along its seams, or say in its docstring why it is one."""
    assert long_modules_without_a_reason(modules()) == []


def test_a_long_module_without_a_reason_is_found(tmp_path):
    long = tmp_path / "long.py"
    long.write_text('"""A long module."""\n' + "x = 1\n" * LONG_MODULE_LINES)
    said = tmp_path / "said.py"
    said.write_text('"""A long module, one on purpose: its cases read side by side."""\n' + "x = 1\n" * LONG_MODULE_LINES)
    assert long_modules_without_a_reason({"long": long, "said": said, "short": PACKAGE / "errors.py"}) == [
        f"long ({LONG_MODULE_LINES + 1} lines)"]
