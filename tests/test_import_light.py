"""``import labkit`` stays light: the heavy libraries load only when something uses them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

BLOG_TRACE = Path(__file__).parent / "data" / "blog-job-trace.json"
HEAVY = ("kubernetes", "matplotlib", "papermill", "nbclient", "tree_sitter", "tree_sitter_bash")
MODULES = ("labkit", "labkit.trace", "labkit.checks", "labkit.versions", "labkit.lab", "labkit.cli", "labkit.plot")


def loaded_after(code: str) -> list[str]:
    script = f"{code}\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))"
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.splitlines()[-1])


def test_importing_labkit_loads_no_heavy_library():
    modules = loaded_after("\n".join(f"import {m}" for m in MODULES))
    assert set(MODULES) <= set(modules)
    heavy = [m for m in modules if m.split(".")[0] in HEAVY]
    assert heavy == [], f"imported at import time: {heavy}"


def test_the_check_is_able_to_see_a_heavy_import():
    """Guard against a vacuous test: drawing a trace does load matplotlib."""
    modules = loaded_after("import labkit.plot, labkit\n"
                           f"t = labkit.load_trace({str(BLOG_TRACE)!r})\n"
                           "labkit.plot.plot_trace(t)")
    assert "matplotlib" in modules


def test_the_shell_grammar_loads_only_when_a_script_is_read():
    """The simulator itself does not load tree-sitter; reading a script does (not vacuous)."""
    assert "tree_sitter" not in loaded_after("import labkit.sim.shell, labkit.sim.infer, labkit.sim")
    assert "tree_sitter_bash" in loaded_after("from labkit.sim.shell import read_script\nread_script('sleep 1')")


def test_one_simulator_module_loads_only_what_it_needs():
    modules = loaded_after("import labkit.sim.timing")
    labkit_modules = sorted(m for m in modules if m.startswith("labkit"))
    assert labkit_modules == ["labkit", "labkit.contract", "labkit.errors", "labkit.lab", "labkit.objects",
                              "labkit.printers", "labkit.refs", "labkit.sim", "labkit.sim.timing", "labkit.trace",
                              "labkit.versions"]
