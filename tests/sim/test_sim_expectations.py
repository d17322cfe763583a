"""The scenario expectation checker (labkit.expectations.check) fails when a trace is wrong.

Each case takes a hand-written trace that satisfies one ``expect`` fragment, checks that it
passes, then changes the trace the way a wrong simulator would and checks that exactly that
expectation fails, with a message that says why. The trace is written out here, not simulated,
so a simulator change cannot make these pass or fail.
"""

from __future__ import annotations

import copy

import pytest

from labkit.trace import Trace

from labkit.expectations import check

# A pod "web": sidecar "proxy" (startup probe) then app "app"; deleted at t=10: the app stops
# first, the sidecar last (exit 143 on SIGTERM), the pod object is gone at t=12.
EVENTS = [
    (0.0, None, "PodPhase", {"phase": "Pending"}),
    (0.0, "proxy", "Started", {"attempt": 0}),
    (2.0, "proxy", "StartupProbeSucceeded", {}),
    (2.0, "proxy", "Ready", {}),
    (2.5, "app", "Started", {"attempt": 0}),
    (2.5, None, "PodPhase", {"phase": "Running"}),
    (3.0, "app", "Ready", {}),
    (3.0, None, "PodReady", {}),
    (10.0, None, "DeleteRequested", {"grace_period_seconds": 30}),
    (10.0, "app", "SIGTERM", {}),
    (10.1, None, "PodNotReady", {}),
    (10.2, "app", "Exited", {"exit_code": 0}),
    (11.0, "proxy", "SIGTERM", {}),
    (11.5, "proxy", "Exited", {"exit_code": 143}),
    (11.6, None, "PodPhase", {"phase": "Succeeded"}),
    (12.0, None, "Deleted", {}),
]


def _base() -> dict:
    return {
        "schema": "labkit.trace/v1", "backend": "sim", "kubernetes_version": "1.29.0", "origin": None,
        "pods": [{"name": "web", "owner": None,
                  "containers": [{"name": "proxy", "role": "sidecar", "probes": ["startup"]},
                                 {"name": "app", "role": "app"}],
                  "final": {"phase": "Succeeded", "deleted": True, "containers": {
                      "proxy": {"state": "terminated", "restart_count": 0, "exit_code": 143, "reason": "Error"},
                      "app": {"state": "terminated", "restart_count": 0, "exit_code": 0, "reason": "Completed"}}}}],
        "events": [{"t": t, "pod": "web", "container": c, "type": kind, "source": "sim", **extra}
                   for t, c, kind, extra in EVENTS],
    }


# -- changes a wrong simulator could make --------------------------------------------------------
def same(data):
    pass


def drop(kind, container=None):
    def change(data):
        data["events"] = [e for e in data["events"] if not (e["type"] == kind and e["container"] == container)]
    return change


def move(kind, container, t):
    def change(data):
        event = next(e for e in data["events"] if e["type"] == kind and e["container"] == container)
        event["t"] = t
        data["events"].sort(key=lambda e: e["t"])  # stable: ties keep their order
    return change


def final(container=None, **fields):
    def change(data):
        target = data["pods"][0]["final"]
        if container is not None:
            target = target["containers"][container]
        target.update(fields)
        for key in [k for k, v in target.items() if v is None]:
            del target[key]
    return change


def both(*changes):
    def change(data):
        for one in changes:
            one(data)
    return change


def killed_instead_of_exited(data):
    event = next(e for e in data["events"] if e["type"] == "Exited" and e["container"] == "proxy")
    event.update(type="Killed", exit_code=137)


def liveness_failed_at_5(data):
    data["events"].append({"t": 5.0, "pod": "web", "container": "proxy", "type": "LivenessProbeFailed", "source": "sim"})
    data["events"].sort(key=lambda e: e["t"])


def observed_until(t):
    def change(data):
        data["observed_until"] = t
    return change


def problems(expect: dict, change) -> list[str]:
    data = _base()
    change(data)
    trace = Trace.from_dict(copy.deepcopy(data))
    return check(trace, {"pod": {"metadata": {"name": "web"}}, "expect": expect})


ANCHOR = {"event": "proxy StartupProbeSucceeded"}

# (id, expect fragment, a change it still holds for, a change it must fail on, words of the failure)
CASES = [
    ("order-occurs", {"order": [["proxy StartupProbeSucceeded", "occurs"]]}, same,
     drop("StartupProbeSucceeded", "proxy"), "order[0]: proxy StartupProbeSucceeded never happened"),
    ("order-never", {"order": [["proxy Killed", "never"]]}, same,
     killed_instead_of_exited, "order[0]: proxy Killed happened at [11.5]"),
    ("order-before", {"order": [["app Exited", "before", "proxy SIGTERM"]]}, same,
     move("Exited", "app", 11.2), "order[0]: first app Exited at 11.2 is not before any proxy SIGTERM ([11.0])"),
    ("order-before-missing", {"order": [["app Exited", "before", "proxy SIGTERM"]]}, same,
     drop("SIGTERM", "proxy"), "order[0]: proxy SIGTERM never happened (app Exited before proxy SIGTERM)"),
    ("order-overlaps", {"order": [["proxy", "overlaps", "app"]]}, same,
     both(move("SIGTERM", "proxy", 2.1), move("Exited", "proxy", 2.2)),
     "order[0]: proxy and app never ran at the same time"),
    ("order-overlaps-lhs-first", {"order": [["proxy", "overlaps_lhs_first", "app"]]}, same,
     move("Started", "app", 0.0), "order[0]: proxy did not start first"),
    ("final-phase", {"final_phase": "Succeeded"}, same,
     final(phase="Failed"), "final_phase: expected Succeeded, got Failed (phases: ['Pending', 'Running', 'Succeeded'])"),
    ("phase-invariant", {"phase_invariant": "Pending"},
     both(drop("PodPhase"), final(phase="Pending")), same,
     "phase_invariant: expected only Pending, saw ['Pending', 'Running', 'Succeeded', 'Succeeded']"),
    ("restart-count-exact", {"restart_counts": {"proxy": "0"}}, same,
     final("proxy", restart_count=2), "restart_counts.proxy: expected 0, got 2"),
    ("restart-count-at-least", {"restart_counts": {"proxy": ">=1"}}, final("proxy", restart_count=1),
     same, "restart_counts.proxy: expected >=1, got 0"),
    ("container-status", {"container_statuses": {"app": {"exit_code": 0, "reason": "Completed"}}}, same,
     final("app", exit_code=1, reason="Error"),
     "container_statuses.app: expected terminated {'exit_code': 0, 'reason': 'Completed'}, "
     "got terminated {'exit_code': 1, 'reason': 'Error'}"),
    ("container-status-not-terminated", {"container_statuses": {"app": {"exit_code": 0}}}, same,
     final("app", state="running", exit_code=None, reason=None),
     "container_statuses.app: expected terminated {'exit_code': 0}, got running {'exit_code': None, 'reason': None}"),
    ("waiting-reason", {"container_waiting_reason": {"proxy": "CrashLoopBackOff"}},
     final("proxy", state="waiting", exit_code=None, reason="CrashLoopBackOff"), same,
     "container_waiting_reason.proxy: expected waiting CrashLoopBackOff, got terminated Error"),
    ("ready-becomes-true", {"pod_ready": {"becomes_true": True}}, same,
     drop("PodReady"), "pod_ready.becomes_true: the pod never became Ready"),
    ("ready-never-true-early", {"pod_ready": {"never_true_for_s": 2.9}}, same,
     move("PodReady", None, 2.5), "pod_ready.never_true_for_s: Ready at [2.5]"),
    ("ready-never-true-short-run", {"pod_ready": {"never_true_for_s": 60}},
     both(drop("PodReady"), observed_until(60.0)), drop("PodReady"),
     "pod_ready.never_true_for_s: the run covers only 12.0 s"),
    ("ready-within-late", {"pod_ready": {"within_s_after": {**ANCHOR, "s": 5}}}, same,
     move("PodReady", None, 8.0), "pod_ready.within_s_after: Ready at [8.0], anchor 2.0"),
    ("ready-within-never-ready", {"pod_ready": {"within_s_after": {**ANCHOR, "s": 5}}}, same,
     drop("PodReady"), "pod_ready.within_s_after: the pod never became Ready"),
    ("ready-within-no-anchor", {"pod_ready": {"within_s_after": {**ANCHOR, "s": 5}}}, same,
     drop("StartupProbeSucceeded", "proxy"), "pod_ready.within_s_after: proxy StartupProbeSucceeded never happened"),
    ("ready-not-before-early", {"pod_ready": {"not_before": {**ANCHOR, "plus_s": 1}}}, same,
     move("PodReady", None, 2.5), "pod_ready.not_before: Ready at 2.5"),
    ("ready-not-before-never-ready", {"pod_ready": {"not_before": {**ANCHOR, "plus_s": 1}}}, same,
     drop("PodReady"), "pod_ready.not_before: the pod never became Ready"),
    ("ready-not-before-no-anchor", {"pod_ready": {"not_before": {**ANCHOR, "plus_s": 1}}}, same,
     drop("StartupProbeSucceeded", "proxy"), "pod_ready.not_before: proxy StartupProbeSucceeded never happened"),
    ("ready-false-after-delete-no-delete", {"pod_ready": {"becomes_false_after_delete": True}}, same,
     drop("DeleteRequested"), "pod_ready.becomes_false_after_delete: the pod was never deleted"),
    ("ready-false-after-delete-never-ready", {"pod_ready": {"becomes_false_after_delete": True}}, same,
     drop("PodReady"), "pod_ready.becomes_false_after_delete: the pod was not Ready when deleted"),
    ("ready-false-after-delete-stays-ready", {"pod_ready": {"becomes_false_after_delete": True}}, same,
     drop("PodNotReady"), "pod_ready.becomes_false_after_delete: no PodNotReady after the delete"),
    ("ready-false-after-delete-too-late", {"pod_ready": {"becomes_false_after_delete": True}}, same,
     move("PodNotReady", None, 12.5), "pod_ready.becomes_false_after_delete: NotReady only after the pod was gone"),
    ("timing-approx", {"timing": [{"from": "app SIGTERM", "to": "app Exited", "approx_s": 0.2, "tolerance_s": 0.1}]},
     same, move("Exited", "app", 10.8), "timing[0]: app SIGTERM -> app Exited took 0.80 s, expected 0.2 ± 0.1"),
    ("timing-max", {"timing": [{"from": "proxy Started", "to": "app Started", "max_s": 3}]}, same,
     move("Started", "app", 5.0), "timing[0]: proxy Started -> app Started took 5.00 s > 3"),
    ("timing-missing", {"timing": [{"from": "proxy Started", "to": "app Started", "max_s": 3}]}, same,
     drop("Started", "app"), "timing[0]: app Started never happened"),
    ("timing-within", {"timing": [{"events": ["app SIGTERM", "proxy SIGTERM"], "within_s": 1.2}]}, same,
     move("SIGTERM", "proxy", 11.4), "timing[0]: ['app SIGTERM', 'proxy SIGTERM'] spread over 1.40 s > 1.2"),
    ("never-after", {"never_after": {"anchor": "app Exited", "offset_s": 2, "events": ["proxy Exited"]}}, same,
     move("Exited", "proxy", 12.5), "never_after[0]: proxy Exited at [12.5] after app Exited + 2 s = 12.20"),
    ("never-after-no-anchor", {"never_after": {"anchor": "app Exited", "offset_s": 2, "events": ["proxy Exited"]}},
     same, drop("Exited", "app"), "never_after[0]: anchor 'app Exited' never happened"),
    ("deleted-within", {"pod_deleted_within_s": 3}, same,
     move("Deleted", None, 14.0), "pod_deleted_within_s: took 4.00 s > 3"),
    ("deleted-never", {"pod_deleted_within_s": 3}, same,
     drop("Deleted"), "pod_deleted_within_s: DeleteRequested True, Deleted False"),
    ("events-never", {"events_never": ["failed liveness probe"]}, same,
     liveness_failed_at_5, "events_never: 'failed liveness probe' happened (LivenessProbeFailed at [5.0])"),
]


@pytest.mark.parametrize(("expect", "holds", "breaks", "message"),
                         [pytest.param(*case[1:], id=case[0]) for case in CASES])
def test_each_check_passes_a_right_trace_and_fails_a_wrong_one(expect, holds, breaks, message):
    assert problems(expect, holds) == []
    assert problems(expect, breaks) == [message]


def test_every_checked_key_has_a_failing_case():
    from labkit.expectations import CHECKED_KEYS

    covered = {key for _, expect, *_ in CASES for key in expect}
    assert CHECKED_KEYS - covered == {"notes"}  # notes are prose, never checked


def test_unknown_keys_and_relations_are_reported_not_ignored():
    assert problems({"final_phaze": "Succeeded"}, same) == ["expect.final_phaze: no checker for this key"]
    assert problems({"order": [["proxy", "during", "app"]]}, same) == ["order[0]: unknown relation 'during'"]
    assert problems({"events_never": ["OOMKilled"]}, same) == ["events_never: cannot express 'OOMKilled' as a trace event"]


def test_on_a_real_trace_before_reads_times_as_bounds_not_instants():
    """A status time is rounded down (the change lies in [t, t + 1)); a watch arrival comes after its
    change (up to labkit.agree.NETWORK_S). Recorded on labkit's node: the sidecar's startup probe
    passed (watch, 40.589) and the app started (status, 40.565) in the same second; nothing proves
    the app first. Two seconds apart, the wrong order is proven."""
    def real(probe_t: float, app_t: float) -> Trace:
        data = _base()
        data["backend"] = "node"
        data["events"] = [
            {"t": 0.0, "pod": "web", "container": "proxy", "type": "Started", "source": "status", "resolution_s": 1.0},
            {"t": app_t, "pod": "web", "container": "app", "type": "Started", "source": "status", "resolution_s": 1.0},
            {"t": probe_t, "pod": "web", "container": "proxy", "type": "StartupProbeSucceeded", "source": "watch"}]
        data["events"].sort(key=lambda e: e["t"])
        return Trace.from_dict(data)

    expect = {"pod": {"metadata": {"name": "web"}},
              "expect": {"order": [["proxy StartupProbeSucceeded", "before", "app Started"]]}}
    assert check(real(40.589, 40.565), expect) == []
    [problem] = check(real(43.0, 40.565), expect)
    assert "first proxy StartupProbeSucceeded at 43.0 is not before any app Started" in problem
