"""labkit.claims: notebook 05's rows of versions and the blog's sentences as verdicts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from labkit.claims import VersionRows, blog_claims, check_verdicts, check_your_lab, passes, verdict_table
from labkit.errors import CheckFailed, LabkitError
from labkit.lab import connect
from labkit.notebook import repo_path
from labkit.versions import behaviour

ROOT = Path(__file__).resolve().parent.parent


class FakeFigures:
    def __init__(self):
        self.drawn = []

    def compare(self, traces, labels, name, title=None):
        self.drawn.append((name, list(labels)))


def test_rows_are_the_blogs_the_newest_and_yours_plus_a_checked_only_1_29():
    lab = connect("sim", "1.36", quiet=True)
    rows = VersionRows(lab, blog_version="1.28", newest_version="1.37")
    assert list(rows) == ["The blog's cluster: 1.28 with the SidecarContainers gate", "The newest release: 1.37",
                          "Your lab: 1.36"]
    assert rows.yours == "Your lab: 1.36" and rows.rows[rows.yours] is lab
    assert rows.first == "1.29 (simulated, checked only)"
    same = VersionRows(connect("sim", "1.29", quiet=True), blog_version="1.28", newest_version="1.37")
    assert same.checked_only == {} and same.first == "Your lab: 1.29"
    blog = VersionRows(connect("sim", "1.28", quiet=True), blog_version="1.28", newest_version="1.37")
    assert blog.yours.endswith("(your lab)") and len(list(blog)) == 2


def test_verdicts_from_three_versions():
    lab = connect("sim", "1.36", quiet=True)
    rows = VersionRows(lab, blog_version="1.28", newest_version="1.37")
    held = {rows.blog: False, rows.first: True, rows.newest: True}
    assert rows.verdict(held.get) == "holds from 1.29"
    assert rows.verdict(lambda row: row != rows.newest) == "no longer holds"
    assert rows.verdict(lambda row: False) == "does not hold"
    assert rows.verdict(lambda row: row == rows.first).startswith("changed: 1.28 False, 1.29 True, 1.37 False")
    assert passes(lambda: None) and not passes(lambda: (_ for _ in ()).throw(CheckFailed("no")))


def steps(manifest, then):
    def run(l):
        try:
            l.apply(repo_path(f"manifests/claims/{manifest}"))
        except LabkitError:
            return
        then(l)
    return run


def test_the_blogs_claims_come_out_as_upstream_says_and_a_wrong_model_is_caught():
    lab = connect("sim", "1.36", quiet=True)
    rows = VersionRows(lab, blog_version="1.28", newest_version="1.37")
    figures = FakeFigures()
    traces = {
        "start": rows.run(figures, "1", "t", steps("1-start-order.yaml", lambda l: l.wait("pod/start-order", "Succeeded", timeout=300))),
        "restarts": rows.run(figures, "2", "t", steps("2-restart-during-termination.yaml", lambda l: (
            l.wait("pod/restart-during-termination", "Ready", timeout=300), l.sleep(10),
            l.delete("pod/restart-during-termination", timeout=300)))),
        "shutdown": rows.run(figures, "3", "t", lambda l: (
            l.apply(repo_path("manifests/deployment-sidecar.yaml")),
            l.wait("deployment/sidecar-deploy", "Available", timeout=300), l.sleep(5),
            l.delete("deployment/sidecar-deploy", timeout=300))),
        "hooks": rows.run(figures, "4", "t", steps("4-poststart.yaml", lambda l: l.wait("pod/poststart-gate", "Succeeded", timeout=300))),
        "policies": rows.run(figures, "6", "t", steps("6-restart-policy-values.yaml", lambda l: l.sleep(10))),
        "unstarted": rows.run(figures, "7", "t", steps("7-never-started.yaml", lambda l: l.sleep(40))),
    }
    assert [labels for _, labels in figures.drawn] == [list(rows)] * 6
    gate_off = connect("sim", "1.28", feature_gates={"SidecarContainers": False}, quiet=True)
    gate_off.apply(repo_path("manifests/claims/5-gate-off-in-the-api-server.yaml"))
    gate_off.sleep(30)
    claims = blog_claims(rows, traces, gate_off=gate_off.trace())
    table, found = verdict_table(claims)
    assert found == {1: "does not hold", 2: "does not hold", 3: "holds from 1.29", 4: "holds", 5: "does not hold",
                     6: "no longer holds", 7: "does not hold"}
    assert table.count("\n") == 8
    check_verdicts(claims, found)
    check_your_lab(claims, rows, behaviour(lab.kubernetes_version, lab.feature_gates))
    with pytest.raises(CheckFailed, match="claim 3"):
        check_verdicts(claims, {**found, 3: "holds"})
    unordered = type("Rules", (), {"ordered_termination": False, "container_restart_rules": True,
                                   "container_restart_rules_dropped": False})()
    with pytest.raises(CheckFailed, match=r"claim 3 \(.*\) held on your lab"):
        check_your_lab(claims, rows, unordered)     # a 1.36 lab that should not have stopped in order


def test_notebook_05_holds_no_verdict_machinery():
    """Issue 20 point 15: the rows and the verdict lambdas live in labkit.claims."""
    nb = json.loads((ROOT / "notebooks" / "05-the-blogs-claims.ipynb").read_text(encoding="utf-8"))
    code = "\n".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code")
    for developer_code in ("lambda", "def passes", "def verdict", "def run_everywhere", "checked_only", "BLOG_SAYS"):
        assert developer_code not in code, developer_code
    assert "VersionRows(" in code and "blog_claims(" in code
