"""docs/troubleshooting.md: every `kubectl get pods` / describe output in it comes from the simulator.

Each case in the page is marked ``<!-- simulated: version=V [gates=NAME=BOOL] after=S [wait=REF:COND] -->``
and followed by its manifest (a ```yaml block) and two ```console blocks: ``kubectl get pods``
and the pod's state as ``kubectl describe`` reports it. This test runs each manifest on the
simulator and compares. To regenerate the outputs after a simulator change:
``python tests/test_docs_troubleshooting.py`` prints them.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

from labkit.errors import LabkitError
from labkit.printers import describe_pods
from labkit.sim import SimLab
from labkit.sim.lab import SIM_EPOCH

PAGE = Path(__file__).resolve().parent.parent / "docs" / "troubleshooting.md"
MARK = re.compile(r"<!-- simulated: (?P<options>[^>]*) -->\s*```yaml\n(?P<manifest>.*?)```"
                  r".*?```console\n(?P<get>.*?)```.*?```console\n(?P<describe>.*?)```", re.S)


def cases() -> list[tuple[dict[str, str], str, str, str]]:
    found = []
    for m in MARK.finditer(PAGE.read_text(encoding="utf-8")):
        options = dict(part.split("=", 1) for part in m["options"].split())
        found.append((options, m["manifest"], m["get"], m["describe"]))
    return found


def simulate(options: dict[str, str], manifest: str) -> tuple[str, str]:
    """What `kubectl get pods` and the describe summary show ``after`` seconds (after the wait, if any).

    The simulator must have read every container (no warnings): a page generated from a guess
    would teach the guess (issue 20: `sh -c "echo done"` was once misread)."""
    gates = None
    if "gates" in options:
        name, value = options["gates"].split("=")
        gates = {name: value == "true"}
    lab = SimLab(options["version"], feature_gates=gates, quiet=True)
    lab.apply(manifest)
    guesses = [w for w in lab.cluster.warnings if "the simulator" in w]
    assert guesses == [], f"the simulator guessed: {guesses}"
    if "wait" in options:
        ref, condition = options["wait"].split(":")
        start = lab.now
        try:
            lab.wait(ref, condition, timeout=60)
        except LabkitError:  # labkit's wait stops at once and says why; kubectl waits out its timeout
            lab.sleep(start + 60 - lab.now)
    lab.sleep(float(options["after"]))
    table = str(lab.pods()).rstrip("\n")
    pods = [lab.pod_json(p) for p in lab.cluster.pods.values() if not p.deleted]
    return table, describe_pods(pods, origin=SIM_EPOCH).rstrip("\n")  # times as t= seconds since the apply


def _body(block: str) -> str:
    """A console block without its first line (the command) and trailing blank lines."""
    return block.split("\n", 1)[1].rstrip("\n")


def test_the_page_has_its_five_cases():
    assert len(cases()) == 5


@pytest.mark.parametrize("index", range(5))
def test_outputs_are_what_the_simulator_shows(index: int):
    options, manifest, get, describe = cases()[index]
    assert get.startswith("$ kubectl get pods\n") and describe.startswith("$ kubectl describe pod")
    table, summary = simulate(options, manifest)
    assert _body(get) == table
    assert _body(describe) == summary


def test_the_held_job_case_says_what_its_output_shows():
    """The prose around case 3 must not claim what the simulated output contradicts."""
    text = PAGE.read_text(encoding="utf-8")
    section = text[text.index("## 3."):text.index("## 4.")]
    assert "writes no new status" not in section and "#106896" not in section
    assert "1/2 Completed" in section and "status_manager.go" in section


if __name__ == "__main__":  # print the outputs, to paste after a simulator change
    for options, manifest, _, _ in cases():
        table, summary = simulate(options, manifest)
        print(f"--- {options}\n{table}\n\n{summary}\n", file=sys.stdout)
