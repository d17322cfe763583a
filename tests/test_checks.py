"""Notebook self-checks: each passes with a useful value or fails saying what the trace showed."""

from __future__ import annotations

from pathlib import Path

import pytest

from labkit import checks
from labkit.errors import CheckFailed, InvalidInput
from labkit.trace import ContainerInfo, Event, Pod, Trace, load_trace


@pytest.fixture
def legacy_job(data_dir) -> Trace:
    return load_trace(data_dir / "traces" / "legacy-job-never-completes.json")


@pytest.fixture
def delete_128(data_dir) -> Trace:
    return load_trace(data_dir / "traces" / "deployment-delete-1.28.json")


@pytest.fixture
def delete_129(data_dir) -> Trace:
    return load_trace(data_dir / "traces" / "deployment-delete-1.29.json")


def fails(check, *args, **kwargs) -> str:
    with pytest.raises(CheckFailed) as info:
        check(*args, **kwargs)
    assert isinstance(info.value, AssertionError)  # a failed self-check fails the notebook cell
    return str(info.value)


# -- started_before -----------------------------------------------------------------------------


def test_started_before_passes_with_the_gap(blog_trace):
    result = checks.started_before(blog_trace, "sws-init", "sidecar-job")
    assert result.value == pytest.approx(0.56) and float(result) == pytest.approx(0.56)
    assert str(result) == ("✓ sws-init counted as started (startup probe passed at 10.05 s) before sidecar-job "
                           "started at 10.61 s (0.56 s earlier)")


def test_started_before_fails_when_the_app_does_not_wait_for_the_probe(legacy_job):
    message = fails(checks.started_before, legacy_job, "sws", "sidecar-job")
    assert message == ("expected sws to count as started before sidecar-job started, but sidecar-job started at "
                       "1.21 s, before sws counted as started at 9.93 s (startup probe passed) "
                       "(pod legacy-sidecar-job-q8w4n)")


def test_started_before_without_startup_probe_uses_started(make_trace):
    trace = make_trace([("init", "init"), ("app", "app")], [(0, "init", "Started"), (1, "init", "Exited", {"exit_code": 0}),
                                                            (2, "app", "Started")])
    assert checks.started_before(trace, "init", "app").value == 2.0
    assert "but init started at 0 s, before app counted as started at 2 s (Started)" in \
        fails(checks.started_before, trace, "app", "init")


def test_started_before_same_time_follows_the_recorded_order(make_trace):
    trace = make_trace([("proxy", "sidecar"), ("app", "app")], [(5, "proxy", "Started"), (5, "app", "Started")])
    assert checks.started_before(trace, "proxy", "app").value == 0.0
    fails(checks.started_before, trace, "app", "proxy")


def test_started_before_when_the_probe_never_passes_or_b_never_starts(make_trace):
    trace = make_trace([("proxy", "sidecar", ["startup"]), ("app", "app")],
                       [(1, "proxy", "Started"), (31, "proxy", "StartupProbeFailed"), (40, "app", "Started")])
    assert "app started at 40 s but proxy started at 1 s but its startup probe never passed" in \
        fails(checks.started_before, trace, "proxy", "app")
    trace = make_trace([("proxy", "sidecar"), ("app", "app")], [(1, "proxy", "Started")])
    assert "app never started in the 1 s the trace covers" in fails(checks.started_before, trace, "proxy", "app")


# -- stopped_before / exited_before ----------------------------------------------------------------


def test_stopped_before_holds_on_129_and_not_on_128(delete_128, delete_129):
    result = checks.stopped_before(delete_129, "sidecar-deploy", "sws-init")
    assert result.value == 0.0
    assert "sidecar-deploy ended (SIGKILLed at 50 s) before sws-init got SIGTERM at 50 s" in str(result)
    message = fails(checks.stopped_before, delete_128, "sidecar-deploy", "sws-init")
    assert "sws-init got SIGTERM at 20 s, while sidecar-deploy was still running" in message
    assert "SIGKILLed at 50 s, 30 s after its SIGTERM at 20 s" in message


def test_stopped_before_when_b_never_got_sigterm(blog_trace, legacy_job):
    assert checks.stopped_before(blog_trace, "sidecar-job", "sws-init").value == pytest.approx(1.04)
    message = fails(checks.stopped_before, legacy_job, "sidecar-job", "sws")
    assert "sws never got SIGTERM (was still running when the trace ended at 9.93 s (started at 1.08 s))" in message


def test_an_end_reported_twice_counts_at_its_first_report(make_trace):
    """Real clusters report one exit from the watch and again from the status (whole seconds)."""
    trace = make_trace([("proxy", "sidecar"), ("app", "app")], [
        (0, "proxy", "Started", {"attempt": 0}), (1, "app", "Started", {"attempt": 0}),
        (4.2, "app", "Exited", {"exit_code": 0, "attempt": 0, "source": "watch"}),
        (4.3, "proxy", "SIGTERM"), (4.4, "proxy", "Exited", {"exit_code": 0, "attempt": 0}),
        (5.0, "app", "Exited", {"exit_code": 0, "attempt": 0, "source": "status", "resolution_s": 1.0}),
    ])
    assert checks.stopped_before(trace, "app", "proxy").value == pytest.approx(0.1)
    assert checks.exited_before(trace, "app", "proxy").value == pytest.approx(0.2)


def test_exited_before(delete_128, delete_129, legacy_job):
    assert checks.exited_before(delete_129, "sidecar-deploy", "sws-init").value == pytest.approx(0.1)
    message = fails(checks.exited_before, delete_128, "sidecar-deploy", "sws-init")
    assert "sws-init ended first (exited 0 at 20.1 s), sidecar-deploy only at 50 s (SIGKILLed)" in message
    message = fails(checks.exited_before, legacy_job, "sidecar-job", "sws")
    assert "sidecar-job exited with code 0 at 1.27 s, and sws was still running when the trace ended" in message


# -- whole-second times (resolution_s) --------------------------------------------------------------


def recorded_delete_trace() -> Trace:
    """A real cluster's watch stream of the blog Deployment, deleted (tests/data/watch), through the recorder."""
    import json

    from labkit.printers import parse_time
    from labkit.recorder import TraceBuilder

    data = json.loads((Path(__file__).parent / "data" / "watch" / "deployment-delete-sigkill-1.29.json").read_text())
    builder = TraceBuilder("kind", data["kubernetes_version"], {})
    for item in data["stream"]:
        builder.feed(parse_time(item["arrival"]), item["event"])
    return builder.trace()


def test_a_whole_second_start_does_not_fail_an_order_it_cannot_disprove():
    """The app's status start (11 s, truncated: 11-12 s) reads before the sidecar's probe seen by the watch (11.6 s)."""
    trace = recorded_delete_trace()
    app = trace.first("Started", container="sidecar-deploy")
    probe = trace.first("StartupProbeSucceeded", container="sws-init")
    assert (app.t, app.resolution_s, probe.t, probe.resolution_s) == (11.0, 1.0, 11.6, None)  # the reported case
    result = checks.started_before(trace, "sws-init", "sidecar-deploy")
    assert result.value == 0.0  # the measured -0.6 s, kept within what the times allow
    assert ("before sidecar-deploy started at 11 s (by the clock the other way round, by 0.6 s; sidecar-deploy "
            "Started is a container status time to the whole second (11 s means 11–12 s), so the trace does not "
            "show the wrong order: 0 to 0.4 s earlier)") in str(result)
    # the recorder's ordered SIGTERM and the app's SIGKILL share a whole second, recorded SIGTERM first
    result = checks.stopped_before(trace, "sidecar-deploy", "sws-init")
    assert result.value == 0.0 and "both read 88 s" in str(result) and "Kubernetes Event time" in str(result)
    # what the trace does prove still fails
    message = fails(checks.started_before, trace, "sidecar-deploy", "sws-init")
    assert "sws-init started at 0 s, before sidecar-deploy counted as started at 11 s" in message
    assert "resolution" not in message  # 11 s apart: the resolution does not matter


@pytest.mark.parametrize(("app_start", "resolution", "holds", "value"), [
    (11.0, 1.0, True, 0.0),     # 11-12 s overlaps the probe at 11.6 s
    (10.7, 1.0, True, 0.0),     # 10.7-11.7 s still overlaps
    (10.6, 1.0, False, None),   # [10.6, 11.6) lies wholly before 11.6 s: proven wrong
    (10.0, 1.0, False, None),
    (11.0, None, False, None),  # an exact time (the simulator's): plain comparison
    (11.6, None, True, 0.0),    # exact tie: the recorded order (probe first) decides
    (12.0, 1.0, True, 0.4),     # clearly after: the plain gap, no note
])
def test_ordering_fails_only_when_the_trace_proves_the_wrong_order(make_trace, app_start, resolution, holds, value):
    extra = {"source": "status", "resolution_s": resolution} if resolution else {}
    trace = make_trace([("proxy", "sidecar", ["startup"]), ("app", "app")], sorted([
        (0, "proxy", "Started"), (11.6, "proxy", "StartupProbeSucceeded"), (app_start, "app", "Started", extra)],
        key=lambda e: (e[0], e[2] != "StartupProbeSucceeded")))
    if holds:
        result = checks.started_before(trace, "proxy", "app")
        assert result.value == pytest.approx(value)
        explained = "whole second" in str(result)
        assert explained == (app_start < 11.6 or (app_start == 11.6 and resolution is not None))
    else:
        message = fails(checks.started_before, trace, "proxy", "app")
        assert f"app started at {app_start:g} s, before proxy counted as started at 11.6 s" in message
        assert ("even allowing for the resolution: app Started is a container status time to the whole second "
                f"({app_start:g} s means {app_start:g}–{app_start + 1:g} s)" in message) == (resolution is not None)


def test_exited_before_with_rounded_ends_on_both_sides(make_trace):
    trace = make_trace([("proxy", "sidecar"), ("app", "app")], [
        (0, "proxy", "Started"), (1, "app", "Started"),
        (30, "proxy", "Exited", {"exit_code": 0, "source": "status", "resolution_s": 1.0}),
        (30, "app", "Killed", {"exit_code": 137, "source": "status", "resolution_s": 1.0}),
    ])
    result = checks.exited_before(trace, "app", "proxy")
    assert result.value == 0.0 and "both read 30 s" in str(result)
    result = checks.exited_before(trace, "proxy", "app")  # the other way round is just as possible
    assert result.value == 0.0 and "0 to 1 s earlier" in str(result)
    trace = make_trace([("proxy", "sidecar"), ("app", "app")], [
        (0, "proxy", "Started"), (1, "app", "Started"),
        (29, "proxy", "Exited", {"exit_code": 0, "source": "status", "resolution_s": 1.0}),
        (30, "app", "Killed", {"exit_code": 137, "source": "status", "resolution_s": 1.0}),
    ])
    message = fails(checks.exited_before, trace, "app", "proxy")
    assert "proxy ended first (exited 0 at 29 s), app only at 30 s (SIGKILLed) (even allowing for the resolution" in message


# -- pods and jobs -------------------------------------------------------------------------------


def test_pod_phase(blog_trace, legacy_job):
    result = checks.pod_phase(blog_trace, "Succeeded")
    assert result.value == "Succeeded" and str(result) == "✓ pod sidecar-job-x7k2p ended in phase Succeeded"
    assert checks.pod_phase(legacy_job, "Running", pod="legacy-sidecar-job").value == "Running"
    message = fails(checks.pod_phase, legacy_job, "Succeeded")
    assert message == ("expected the pod to end in phase Succeeded, but it ended in phase Running (phase Running "
                       "since 1.08 s; sws still running when the trace ended at 9.93 s) (pod legacy-sidecar-job-q8w4n)")
    with pytest.raises(InvalidInput, match="unknown pod phase 'Completed'"):
        checks.pod_phase(blog_trace, "Completed")


def test_pod_phase_without_final_status_uses_the_last_phase_event(make_trace):
    trace = make_trace([("app", "app")], [(0, None, "PodPhase", {"phase": "Pending"}),
                                          (1, None, "PodPhase", {"phase": "Running"})])
    assert checks.pod_phase(trace, "Running").value == "Running"
    assert "it ended in phase Running (phase Running since 1 s)" in fails(checks.pod_phase, trace, "Pending")


def test_job_complete(blog_trace, legacy_job):
    result = checks.job_complete(blog_trace, "sidecar-job")
    assert result.value == 12.91 and str(result) == "✓ job/sidecar-job completed at 12.91 s"
    assert checks.job_complete(blog_trace, "job/sidecar-job").value == 12.91
    message = fails(checks.job_complete, legacy_job, "legacy-sidecar-job")
    assert message.startswith("expected job/legacy-sidecar-job to complete, but no JobComplete came in the 9.93 s")
    assert "its pod legacy-sidecar-job-q8w4n ended in phase Running" in message
    assert "sws still running" in message
    assert "no pod of it" in fails(checks.job_complete, blog_trace, "other-job")


def test_job_failed_is_reported(make_trace):
    trace = make_trace([("app", "app")], [(0, "app", "Started"), (1, "app", "Exited", {"exit_code": 1}),
                                          (2, None, "JobFailed", {"object": "job/work", "reason": "BackoffLimitExceeded"})],
                       owner={"kind": "Job", "name": "work"})
    assert fails(checks.job_complete, trace, "work") == \
        "expected job/work to complete, but it failed at 2 s (JobFailed: BackoffLimitExceeded)"


# -- containers ----------------------------------------------------------------------------------


@pytest.fixture
def crashloop(make_trace) -> Trace:
    return make_trace([("app", "app")], [
        (0, "app", "Started", {"attempt": 0}), (2, "app", "Exited", {"exit_code": 1}),
        (2, "app", "Started", {"attempt": 1}), (4, "app", "Exited", {"exit_code": 1}),
        (14, "app", "Started", {"attempt": 2}), (15, "app", "Exited", {"exit_code": 0})])


def test_restarted(crashloop, blog_trace):
    result = checks.restarted(crashloop, "app", at_least=2)
    assert result.value == 2 and str(result) == "✓ app restarted 2 times (at 2 s, 14 s)"
    assert "app restarted 2 times (at 2 s, 14 s)" in fails(checks.restarted, crashloop, "app", at_least=3)
    assert "sws-init restarted 0 times (it ran once from 1.12 s)" in fails(checks.restarted, blog_trace, "sws-init")


def test_restarted_counts_the_final_status_when_starts_were_not_seen(blog_trace):
    blog_trace.pods[0].final.containers["sws-init"].restart_count = 3
    assert checks.restarted(blog_trace, "sws-init", at_least=3).value == 3


def test_exit_code(crashloop, delete_128, delete_129):
    assert checks.exit_code(crashloop, "app", 0).value == 0
    assert "app exited with code 0 at 15 s" in fails(checks.exit_code, crashloop, "app", 1)
    message = fails(checks.exit_code, delete_128, "sidecar-deploy", 0)
    assert message.startswith("expected sidecar-deploy to end with exit code 0, but sidecar-deploy was SIGKILLed at 50 s")
    assert str(checks.exit_code(delete_129, "sidecar-deploy", 137)).startswith("✓ sidecar-deploy ended with exit code 137")


def test_exit_code_of_a_stopped_sidecar_says_it_is_normal(make_trace):
    trace = make_trace([("proxy", "sidecar")], [(0, "proxy", "Started"), (5, "proxy", "SIGTERM"),
                                                (5.1, "proxy", "Exited", {"exit_code": 143})])
    assert "(normal for a sidecar stopped by the kubelet)" in str(checks.exit_code(trace, "proxy", 143))


def test_exit_code_of_a_running_container_fails(legacy_job):
    assert "sws was still running when the trace ended at 9.93 s" in fails(checks.exit_code, legacy_job, "sws", 0)


def test_killed_and_not_killed(delete_128, blog_trace):
    result = checks.killed(delete_128, "sidecar-deploy")
    assert result.value == 50.0
    assert "at 50 s, 30 s after its SIGTERM at 20 s (it did not stop on SIGTERM within the grace period)" in str(result)
    assert "sws-init was never SIGKILLed: it exited with code 0 at 11.81 s after SIGTERM at 11.72 s" in \
        fails(checks.killed, blog_trace, "sws-init")
    assert str(checks.not_killed(delete_128, "sws-init")) == \
        "✓ sws-init was never SIGKILLed (it exited with code 0 at 20.1 s after SIGTERM at 20 s)"
    assert "sidecar-deploy was SIGKILLed at 50 s, 30 s after its SIGTERM at 20 s" in \
        fails(checks.not_killed, delete_128, "sidecar-deploy")


def test_never(delete_128, blog_trace):
    assert checks.never(blog_trace, "Killed").value == 0
    assert str(checks.never(delete_128, "Killed", "sws-init")) == "✓ no sws-init Killed in the 50.5 s the trace covers"
    message = fails(checks.never, delete_128, "Killed")
    assert message == "expected no Killed, but it happened once: at 50 s (sidecar-deploy-6d9c7b8f5-2mzrt/sidecar-deploy)"
    message = fails(checks.never, delete_128, "SIGTERM", "sws-init")
    assert "it happened once: at 20 s (sidecar-deploy-6d9c7b8f5-2mzrt/sws-init)" in message
    with pytest.raises(InvalidInput, match="unknown event type 'SIGKILL'"):
        checks.never(blog_trace, "SIGKILL")


# -- timing -----------------------------------------------------------------------------------------


def test_gap(blog_trace, legacy_job):
    result = checks.gap(blog_trace, "sidecar-job Exited", "JobComplete")
    assert result.value == pytest.approx(2.23)
    assert str(result) == "✓ 'sidecar-job Exited' (10.68 s) → 'JobComplete' (12.91 s): 2.23 s"
    assert checks.gap(blog_trace, "PodPhase Succeeded", "JobComplete").value == pytest.approx(0.07)
    assert checks.gap(legacy_job, "sidecar-job Started", "sws StartupProbeSucceeded").value == pytest.approx(8.72)
    message = fails(checks.gap, legacy_job, "sidecar-job Exited", "JobComplete")
    assert "'JobComplete' never happened (the trace ends 8.66 s after 'sidecar-job Exited' at 1.27 s)" in message
    message = fails(checks.gap, legacy_job, "sws StartupProbeSucceeded", "sidecar-job Started")
    assert "'sidecar-job Started' happened at 1.21 s, before 'sws StartupProbeSucceeded' at 9.93 s" in message
    assert "'sws SIGTERM' never happened" in fails(checks.gap, legacy_job, "sws SIGTERM", "sws Exited")


def test_gap_rejects_unreadable_event_names(blog_trace):
    for bad in ("nonsense", "sws-init Starting", "PodPhase Done", "JobComplete now"):
        with pytest.raises(InvalidInput, match="cannot read event") as info:
            checks.gap(blog_trace, bad, "JobComplete")
        assert info.value.field == "event"


def test_took(delete_129):
    result = checks.took(delete_129, "DeleteRequested", "sidecar-deploy Killed", 30, 1)
    assert result.value == 30.0 and "took 30 s (expected 30 s ± 1 s)" in str(result)
    message = fails(checks.took, delete_129, "DeleteRequested", "Deleted", 2, tolerance=1)
    assert message == ("expected 'DeleteRequested' → 'Deleted' to take 2 s ± 1 s, but it took 30.6 s: "
                       "'DeleteRequested' at 20 s, 'Deleted' at 50.6 s (pod sidecar-deploy-6d9c7b8f5-2mzrt)")


def test_took_allows_for_rounded_times():
    """A status time r s coarse (resolution_s r) means an instant in [t, t + r): the duration may be
    anywhere between the two bounds, and the check fails only when none is within the tolerance."""
    def trace(resolution: float | None) -> Trace:
        t = Trace("cluster", "1.29.0")
        t.add_pod(Pod("p", containers=[ContainerInfo("app", "app")]))
        extra = {"source": "status", "resolution_s": resolution} if resolution else {}
        t.add(Event(0.0, "Started", pod="p", container="app", attempt=0))
        t.add(Event(10.0, "SIGTERM", pod="p", container="app", source="event", **({"resolution_s": resolution}
                                                                                    if resolution else {})))
        t.add(Event(20.0, "Exited", pod="p", container="app", exit_code=0, **extra))
        return t

    coarse = checks.took(trace(10.0), "app SIGTERM", "app Exited", 0.5, 1.5)
    assert coarse.value == 10.0
    assert str(coarse).endswith("took 10 s (expected 0.5 s ± 1.5 s; the times are rounded, so it took 0 s to 20 s)")
    message = fails(checks.took, trace(None), "app SIGTERM", "app Exited", 0.5, tolerance=1.5)
    assert message.endswith("but it took 10 s: 'app SIGTERM' at 10 s, 'app Exited' at 20 s (pod p)")
    message = fails(checks.took, trace(1.0), "app SIGTERM", "app Exited", 0.5, tolerance=1.5)
    assert message.endswith("(pod p)") and "(allowing for their rounded times: 9 s to 11 s)" in message


# -- which pods ------------------------------------------------------------------------------------


def two_pods(second_phase: str = "Succeeded") -> Trace:
    trace = Trace("sim", "1.29.0")
    for name, phase in (("sidecar-job-a", "Succeeded"), ("sidecar-job-b", second_phase)):
        trace.add_pod(Pod(name, containers=[ContainerInfo("sws-init", "sidecar"), ContainerInfo("sidecar-job", "app")]))
    for t, pod, container, kind, extra in [
        (0, "sidecar-job-a", "sws-init", "Started", {}), (0.5, "sidecar-job-b", "sws-init", "Started", {}),
        (1, "sidecar-job-a", "sidecar-job", "Started", {}), (1.5, "sidecar-job-b", "sidecar-job", "Started", {}),
        (2, "sidecar-job-a", None, "PodPhase", {"phase": "Succeeded"}),
        (3, "sidecar-job-b", None, "PodPhase", {"phase": second_phase})]:
        trace.add(Event(float(t), kind, pod=pod, container=container, **extra))
    return trace


def test_several_pods_must_all_agree():
    result = checks.started_before(two_pods(), "sws-init", "sidecar-job")
    assert result.value == [1.0, 1.0] and result.per_pod == {"sidecar-job-a": 1.0, "sidecar-job-b": 1.0}
    assert str(result).startswith("✓ in all 2 pods, as in sidecar-job-a: sws-init counted as started")
    message = fails(checks.pod_phase, two_pods("Failed"), "Succeeded")
    assert message == ("expected the pod to end in phase Succeeded in every pod, but not in 1 of 2: pod sidecar-job-b: "
                       "it ended in phase Failed (phase Failed since 3 s; sws-init, sidecar-job still running when "
                       "the trace ended at 3 s) (it held in 1: sidecar-job-a)")


def test_pod_is_chosen_by_name_or_prefix():
    trace = two_pods("Failed")
    assert checks.pod_phase(trace, "Failed", pod="sidecar-job-b").value == "Failed"
    assert checks.pod_phase(trace, "Succeeded", pod="sidecar-job-a").per_pod == {"sidecar-job-a": "Succeeded"}
    assert fails(checks.pod_phase, trace, "Succeeded", pod="web") == \
        "no pod named or starting with 'web' in the trace (pods: sidecar-job-a, sidecar-job-b)"


def test_unknown_container_lists_the_containers(blog_trace):
    assert fails(checks.exit_code, blog_trace, "sws", 0) == \
        "no pod has container(s) sws (containers by pod: sidecar-job-x7k2p: sws-init, sidecar-job)"


# -- report ---------------------------------------------------------------------------------------


def test_report_prints_one_line_per_check(blog_trace, capsys):
    checks.report(checks.started_before(blog_trace, "sws-init", "sidecar-job"),
                  checks.job_complete(blog_trace, "sidecar-job"),
                  checks.pod_phase(blog_trace, "Succeeded"))
    lines = capsys.readouterr().out.splitlines()
    assert lines == [
        "✓ sws-init counted as started (startup probe passed at 10.05 s) before sidecar-job started at 10.61 s "
        "(0.56 s earlier)",
        "✓ job/sidecar-job completed at 12.91 s",
        "✓ pod sidecar-job-x7k2p ended in phase Succeeded",
    ]
    assert repr(checks.pod_phase(blog_trace, "Succeeded")) == lines[2]  # what a notebook cell shows
