"""Conformance: every scenario in tests/data/scenarios runs through the simulator and every
expectation in its ``expect`` block holds.

Each scenario runs on its ``min_version`` (1.29 where it is null) and on the newest
version labkit knows; scenarios whose notes say they hold on 1.28 with the gate on also
run there. A scenario that needs a capability the simulator does not model (node reboot,
kubelet restart) is skipped with that reason.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from labkit.sim import simulate
from labkit.sim.run import UNSUPPORTED_ACTIONS
from labkit.versions import NEWEST_MINOR

from labkit.expectations import check, describe, scenario_version

SCENARIOS = sorted((Path(__file__).parents[1] / "data" / "scenarios").glob("*.yaml"))


def _cases():
    for path in SCENARIOS:
        scenario = yaml.safe_load(path.read_text())
        versions = [(scenario_version(scenario), None)]
        if "1.28 with gate" in str(scenario.get("min_version_note", "")):
            versions.append(("1.28", {"SidecarContainers": True}))
        versions.append((f"1.{NEWEST_MINOR}", None))
        for version, gates in versions:
            label = version + ("-gate-on" if gates else "")
            yield pytest.param(path, version, gates, id=f"{path.stem}@{label}")


def test_scenario_files_are_the_ones_the_readme_indexes_and_named_by_id():
    # The README's index (section 7) is the list a reader sees: a file missing from it, or an
    # indexed scenario without its file, would go unchecked.
    readme = (Path(__file__).parents[1] / "data" / "scenarios" / "README.md").read_text(encoding="utf-8")
    indexed = re.findall(r"^\| `([a-z0-9-]+)` \|", readme.split("## 7. Index", 1)[1], re.M)
    assert indexed and sorted(indexed) == [path.stem for path in SCENARIOS]
    for path in SCENARIOS:
        assert yaml.safe_load(path.read_text())["id"] == path.stem


@pytest.mark.parametrize(("path", "version", "gates"), list(_cases()))
def test_scenario(path: Path, version: str, gates: dict | None):
    scenario = yaml.safe_load(path.read_text())
    missing = [c for c in scenario.get("requires") or [] if c in UNSUPPORTED_ACTIONS]
    if missing:
        pytest.skip(f"needs {', '.join(missing)}, which the simulator does not model")
    trace = simulate([str(path)], k8s_version=version, feature_gates=gates, until_seconds=300, seed=0)
    problems = check(trace, scenario)
    pod = scenario["pod"]["metadata"]["name"]
    assert not problems, "\n".join(problems) + "\n--- trace ---\n" + describe(trace, pod)
