"""versions.py is the one home of per-version behaviour: each cut-off flips where upstream
shipped it, and no other module of labkit compares Kubernetes minors."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from labkit.versions import behaviour, minor_in_span

LABKIT = Path(__file__).resolve().parent.parent / "labkit"

# Modules other helpers are still moving onto the table: path -> what is left to do. Each entry
# must still hold a comparison (the test below fails once it is gone, so the entry goes too).
NOT_YET_MOVED: dict[str, str] = {}

_ORDERING = (ast.Lt, ast.LtE, ast.Gt, ast.GtE)


def _mentions_minor(node: ast.AST) -> bool:
    """``x.minor``, ``minor``, ``KubeVersion(...)`` or ``KubeVersion.parse(...)`` anywhere in the operand."""
    for sub in ast.walk(node):
        if isinstance(sub, ast.Attribute) and sub.attr == "minor" or isinstance(sub, ast.Name) and sub.id == "minor":
            return True
        if isinstance(sub, ast.Call):
            func = sub.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            owner = getattr(func.value, "id", "") if isinstance(func, ast.Attribute) else ""
            if name == "KubeVersion" or owner == "KubeVersion" and name == "parse":
                return True
    return False


def version_comparisons(source: str) -> list[int]:
    """Lines that compare a Kubernetes minor (or version) with an ordering operator, or with a
    number by ``==``/``!=``: the shape of a cut-off. Comparing two versions for equality
    (``asked.minor != server.minor``) is not a cut-off and is not reported."""
    lines = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Compare):
            continue
        operands = [node.left, *node.comparators]
        if not any(_mentions_minor(o) for o in operands):
            continue
        has_number = any(isinstance(o, ast.Constant) and isinstance(o.value, (int, float)) and not isinstance(o.value, bool)
                         for o in operands)
        if any(isinstance(op, _ORDERING) for op in node.ops) or has_number:
            lines.append(node.lineno)
    return lines


@pytest.mark.parametrize("code", [
    "if beh.minor >= 34 and not beh.container_restart_rules: pass",  # sim/api.py before the move
    "x = 'y' if minor == 32 else ''",
    "ok = (first is None or first <= minor)",
    "if version.minor < GATE_LOCKED_MINOR: pass",                   # kind.py before the move
    "if KubeVersion.parse(v) >= KubeVersion(1, 29): pass",
])
def test_the_scan_finds_a_cut_off(code):
    assert version_comparisons(code) == [1]


@pytest.mark.parametrize("code", [
    "if asked.minor != server.minor: pass",
    "if beh.sleep_zero_allowed: pass",
    "n = behaviour.minor + 1",
])
def test_the_scan_leaves_what_is_no_cut_off(code):
    assert version_comparisons(code) == []


def test_no_module_outside_versions_compares_minors():
    found = {}
    for path in sorted(LABKIT.rglob("*.py")):
        rel = path.relative_to(LABKIT).as_posix()
        if rel == "versions.py":
            continue
        lines = version_comparisons(path.read_text(encoding="utf-8"))
        if lines:
            found[rel] = lines
    unexpected = {rel: lines for rel, lines in found.items() if rel not in NOT_YET_MOVED}
    assert unexpected == {}, ("a version cut-off outside labkit/versions.py: add a Behaviour field "
                              f"(with its upstream source) and read it instead: {unexpected}")
    stale = sorted(set(NOT_YET_MOVED) - set(found))
    assert stale == [], f"moved onto the table: drop them from NOT_YET_MOVED: {stale}"


# field -> (last minor without it, first minor with it), from pkg/features/kube_features.go at
# each release tag and the PRs named in versions.py.
CUT_OFFS = {
    "ordered_termination": (28, 29),            # kubernetes/kubernetes#120620 (sidecars on in 1.28 too)
    "job_status_terminating": (28, 29),         # JobPodReplacementPolicy beta
    "job_success_criteria_met": (30, 31),       # kubernetes#125510
    "sleep_zero_allowed": (32, 33),             # PodLifecycleSleepActionAllowZero beta
    "container_stop_signals_dropped": (32, 33),  # ContainerStopSignals alpha, off
    "container_restart_rules": (34, 35),         # ContainerRestartRules beta
    "requeue_at_backoff_expiry": (34, 35),       # kubernetes#133066
    "probe_worker_keeps_sidecars": (34, 35),     # kubernetes#133072
    "kubelet_container_events_unnamed": (34, 35),  # kuberuntime_container.go at v1.34.0 / v1.35.0
    "scaling_from_to": (31, 32),                 # deployment/sync.go at v1.31.0 / v1.32.0
    "pod_ready_to_start_condition": (28, 29),    # PodReadyToStartContainersCondition beta
}


@pytest.mark.parametrize("name", sorted(CUT_OFFS))
def test_each_cut_off_flips_where_upstream_shipped_it(name):
    before, after = CUT_OFFS[name]
    assert getattr(behaviour(f"1.{before}", {"SidecarContainers": True}), name) is False
    assert getattr(behaviour(f"1.{after}"), name) is True


@pytest.mark.parametrize("name,minor", [("sleep_action_dropped", 29), ("sleep_zero_gate_alpha", 32),
                                        ("container_restart_rules_dropped", 34)])
def test_a_gate_that_exists_but_is_off_holds_for_one_minor(name, minor):
    # PodLifecycleSleepAction alpha in 1.29, beta 1.30; PodLifecycleSleepActionAllowZero alpha in
    # 1.32, beta 1.33; ContainerRestartRules alpha in 1.34, beta 1.35 (kube_features.go).
    on = [m for m in range(28, 38) if getattr(behaviour(f"1.{m}", {"SidecarContainers": True} if m == 28 else {}), name)]
    assert on == [minor]


def test_stop_signals_are_dropped_only_while_their_gate_is_off():
    assert behaviour("1.33").container_stop_signals_dropped is True
    assert behaviour("1.33", {"ContainerStopSignals": True}).container_stop_signals_dropped is False
    assert behaviour("1.32").container_stop_signals_dropped is False   # no field to drop: it is unknown


def test_a_span_of_minors_includes_both_ends_and_open_ends():
    assert [m for m in range(27, 38) if minor_in_span(m, 29, 31)] == [29, 30, 31]
    assert [m for m in range(27, 38) if minor_in_span(m, None, 28)] == [27, 28]
    assert [m for m in range(27, 38) if minor_in_span(m, 36, None)] == [36, 37]


@pytest.mark.parametrize("minor,hint", [("1.31", False), ("1.32", True)])
def test_sleep_zero_names_its_alpha_gate_only_in_1_32(minor, hint):
    from labkit.errors import InvalidInput
    from labkit.sim.api import admit

    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {"containers": [
        {"name": "app", "image": "alpine:3.20", "lifecycle": {"preStop": {"sleep": {"seconds": 0}}}}]}}
    with pytest.raises(InvalidInput) as err:
        admit(pod, behaviour(minor))
    assert err.value.field == "spec.containers[0].lifecycle.preStop.sleep"
    assert ("Enable AllowPodLifecycleSleepActionZeroValue feature gate for zero sleep." in str(err.value)) is hint
