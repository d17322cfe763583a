"""labkit.trace_builder and labkit.recorder: watch streams in the API server's format in, the right trace out.

The streams in tests/data/watch are hand-written (see its README and each file's
``provenance``), not recorded from a cluster; ``test_every_pod_update_has_the_phase_a_kubelet_reports``
keeps them to states a 1.29 kubelet reports.
"""

from __future__ import annotations

import copy
import json
import sys
import threading
import time
from pathlib import Path

import pytest

from labkit.printers import format_time, parse_time
from labkit.recorder import Recorder, TraceBuilder
from labkit.trace_builder import owner_of
from labkit.trace import Trace

WATCH = Path(__file__).parent / "data" / "watch"


def recording(name: str) -> dict:
    return json.loads((WATCH / name).read_text())


def build(name: str, *, version: str | None = None, gates=None, since=None, edit=None) -> Trace:
    data = recording(name)
    builder = TraceBuilder("kind", version or data["kubernetes_version"], gates or {}, since=since)
    for item in data["stream"]:
        event = item["event"]
        if edit is not None:
            event = edit(copy.deepcopy(event))
        builder.feed(parse_time(item["arrival"]), event)
    return builder.trace()


def wall(trace: Trace, event) -> float:
    return parse_time(trace.origin) + event.t


def one(trace: Trace, type_: str, container: str | None = None, source: str | None = None, **match):
    found = [e for e in trace.select(type_, container=container)
             if (source is None or e.source == source) and all(getattr(e, k) == v for k, v in match.items())]
    assert len(found) == 1, f"expected one {type_} {container} {source} {match}, got {found}"
    return found[0]


# -- the fixtures themselves -----------------------------------------------------------------------
def kubelet_phase(pod: dict) -> str | None:
    """The phase a 1.29 kubelet computes while the pod runs: ``getPhase`` (pkg/kubelet/kubelet_pods.go
    at v1.29.0) for the Pending/Running cases; None where it would be terminal (not modelled here)."""
    spec, status = pod["spec"], pod.get("status") or {}
    statuses = {c["name"]: c for c in (status.get("initContainerStatuses") or []) + (status.get("containerStatuses") or [])}
    pending_init = pending_sidecars = running = waiting = stopped = unknown = 0
    for c in spec.get("initContainers") or []:
        cs = statuses.get(c["name"])
        if c.get("restartPolicy") != "Always":  # a regular init container must have exited 0
            term = ((cs or {}).get("state") or {}).get("terminated")
            if not term or term.get("exitCode") != 0:
                pending_init += 1
            continue
        state = (cs or {}).get("state") or {}
        if cs is None:
            pending_sidecars += 1
        elif "running" in state:
            pending_sidecars += 0 if cs.get("started") else 1
            running += 1
        elif "terminated" in state:
            pass  # a terminated sidecar does not count for the phase
        elif "waiting" in state and not (cs.get("lastState") or {}).get("terminated"):
            pending_sidecars += 1
            waiting += 1
    for c in spec["containers"]:
        cs = statuses.get(c["name"])
        state = (cs or {}).get("state") or {}
        if cs is None:
            unknown += 1
        elif "running" in state:
            running += 1
        elif "terminated" in state or ("waiting" in state and (cs.get("lastState") or {}).get("terminated")):
            stopped += 1
        elif "waiting" in state:
            waiting += 1
    initialized = any(c["type"] == "Initialized" and c["status"] == "True" for c in status.get("conditions") or [])
    if pending_init or (pending_sidecars and not initialized):
        return "Pending"
    if waiting:
        return "Pending"
    if running and not unknown:
        return "Running"
    if not running and stopped and not unknown and spec.get("restartPolicy", "Always") == "Always":
        return "Running"
    return None if not unknown else "Pending"


@pytest.mark.parametrize("name", sorted(p.name for p in WATCH.glob("*.json")))
def test_every_fixture_says_it_is_hand_written(name):
    assert recording(name)["provenance"].startswith("hand-written:")


@pytest.mark.parametrize("name", sorted(p.name for p in WATCH.glob("*.json")))
def test_every_pod_update_has_the_phase_a_kubelet_reports(name):
    wrong = []
    for item in recording(name)["stream"]:
        pod = item["event"]["object"]
        if pod.get("kind") != "Pod" or (pod.get("status") or {}).get("phase") not in ("Pending", "Running"):
            continue
        if not (pod["status"].get("containerStatuses") or pod["status"].get("initContainerStatuses")):
            continue  # not yet seen by the kubelet: the API server's Pending
        expected = kubelet_phase(pod)
        if expected is not None and expected != pod["status"]["phase"]:
            wrong.append(f"{item['arrival']}: phase {pod['status']['phase']}, a kubelet reports {expected}")
    assert wrong == []


def test_the_phase_rule_sees_a_started_sidecar_beside_an_exited_app_as_running():
    """The state job-sidecar-1.29.json once had wrong (Pending): getPhase counts the running sidecar."""
    pod = {"spec": {"restartPolicy": "Never", "initContainers": [{"name": "sws-init", "restartPolicy": "Always"}],
                    "containers": [{"name": "sidecar-job"}]},
           "status": {"conditions": [{"type": "Initialized", "status": "True"}],
                      "initContainerStatuses": [{"name": "sws-init", "started": True, "state": {"running": {}}}],
                      "containerStatuses": [{"name": "sidecar-job", "state": {"terminated": {"exitCode": 0}}}]}}
    assert kubelet_phase(pod) == "Running"
    pod["status"]["initContainerStatuses"][0]["started"] = False
    pod["status"]["conditions"][0]["status"] = "False"
    assert kubelet_phase(pod) == "Pending"  # the sidecar has not passed its startup probe: not initialized


# -- the blog's Job --------------------------------------------------------------------------
def test_job_run_orders_sidecar_start_app_run_sidecar_stop_and_completion():
    trace = build("job-sidecar-1.29.json")
    sidecar_start = one(trace, "Started", "sws-init", "status")
    probe = one(trace, "StartupProbeSucceeded", "sws-init", "watch")
    app_start = one(trace, "Started", "sidecar-job", "status")
    app_exit = one(trace, "Exited", "sidecar-job", "status")
    sigterm = one(trace, "SIGTERM", "sws-init", "event")
    sidecar_exit = one(trace, "Exited", "sws-init", "status")
    succeeded = one(trace, "PodPhase", phase="Succeeded")
    complete = one(trace, "JobComplete", object="job/sidecar-job")
    assert sidecar_start.t < probe.t < app_start.t <= app_exit.t <= sigterm.t <= sidecar_exit.t
    assert sidecar_exit.t < succeeded.t < complete.t
    assert app_exit.exit_code == 0 and app_exit.reason == "Completed"
    assert sidecar_exit.exit_code == 0
    # whole-second status times, kept apart from the watch's sub-second arrivals
    assert wall(trace, sidecar_start) == parse_time("2025-06-01T10:00:03Z") and sidecar_start.resolution_s == 1.0
    watch_start = one(trace, "Started", "sws-init", "watch")
    assert wall(trace, watch_start) == pytest.approx(parse_time("2025-06-01T10:00:03.400Z"))
    assert watch_start.resolution_s is None
    assert [e.attempt for e in trace.select("Started")] == [0] * len(trace.select("Started"))


def test_job_run_trace_has_the_pod_roles_owner_and_final_status():
    trace = build("job-sidecar-1.29.json")
    (pod,) = trace.pods
    assert pod.owner == {"kind": "Job", "name": "sidecar-job"}
    assert [(c.name, c.role, c.probes) for c in pod.containers] == [("sws-init", "sidecar", ("startup",)),
                                                                   ("sidecar-job", "app", ())]
    assert pod.final.phase == "Succeeded" and not pod.final.deleted
    assert {n: (c.state, c.exit_code) for n, c in pod.final.containers.items()} == {
        "sws-init": ("terminated", 0), "sidecar-job": ("terminated", 0)}
    assert trace.origin == "2025-06-01T10:00:00.100Z"  # the pod's ADDED: the first event
    assert trace.events == sorted(trace.events, key=lambda e: e.t)


def test_job_run_spans_count_each_instance_once_and_the_sidecar_did_not_fail():
    trace = build("job-sidecar-1.29.json")
    spans = {s.container: s for s in trace.spans()}
    assert len(trace.spans()) == 2  # three reports of each start, one span
    sidecar, app = spans["sws-init"], spans["sidecar-job"]
    assert sidecar.start < sidecar.started_at < app.start
    assert sidecar.sigterm_at is not None and not sidecar.failed
    assert app.end <= sidecar.end and app.exit_code == 0


def test_trace_survives_json_round_trip():
    trace = build("job-sidecar-1.29.json")
    again = Trace.from_dict(json.loads(trace.to_json()))
    assert [e.to_dict() for e in again.events] == [e.to_dict() for e in trace.events]
    assert again.pods[0].final.to_dict() == trace.pods[0].final.to_dict()


# -- a sidecar restart --------------------------------------------------------------------------
def test_sidecar_restart_gives_attempts_restarts_and_exit_codes():
    trace = build("sidecar-restart-1.29.json")
    spans = [s for s in trace.spans() if s.container == "proxy"]
    assert [(s.attempt, s.exit_code) for s in spans] == [(0, 1), (1, 1)]
    assert all(s.failed for s in spans)  # a sidecar exiting 1 by itself is a real failure
    restarts = trace.select("Restarted", container="proxy")
    assert {e.source for e in restarts} == {"status", "watch", "event"} and {e.attempt for e in restarts} == {1}
    first_exit = one(trace, "Exited", "proxy", "status", attempt=0)
    second_start = one(trace, "Started", "proxy", "status", attempt=1)
    assert first_exit.t <= second_start.t and first_exit.reason == "Error"
    # the second exit was only seen through lastState while the sidecar waits in CrashLoopBackOff
    second_exit = one(trace, "Exited", "proxy", "status", attempt=1)
    assert wall(trace, second_exit) == parse_time("2025-06-01T10:00:15Z")
    final = trace.pods[0].final.containers["proxy"]
    assert (final.state, final.reason, final.restart_count) == ("waiting", "CrashLoopBackOff", 1)
    assert [e.type for e in trace.select(("PodReady", "PodNotReady"))] == ["PodReady", "PodNotReady", "PodReady",
                                                                           "PodNotReady"]


# -- SIGKILL on delete -----------------------------------------------------------------------------
def test_deleted_pod_shows_grace_period_sigkill_then_sidecar_in_order():
    trace = build("deployment-delete-sigkill-1.29.json")
    pod = trace.pods[0]
    assert pod.owner == {"kind": "Deployment", "name": "sidecar-deploy",
                         "via": {"kind": "ReplicaSet", "name": "sidecar-deploy-6d9f8c7b5d"}}
    requested = one(trace, "DeleteRequested", source="status")
    assert requested.grace_period_seconds == 30
    assert wall(trace, requested) == parse_time("2025-06-01T10:01:00Z")  # deletionTimestamp minus the grace period
    assert one(trace, "DeleteRequested", source="watch").grace_period_seconds == 30
    app_term = one(trace, "SIGTERM", "sidecar-deploy")
    killed = one(trace, "Killed", "sidecar-deploy", "status")
    assert killed.exit_code == 137 and killed.reason == "Error"
    assert killed.t - app_term.t == pytest.approx(30)  # SIGTERM ignored by the shell loop: SIGKILL after 30 s
    sidecar_term = one(trace, "SIGTERM", "sws-init")
    assert sidecar_term.extra.get("ordered") is True and sidecar_term.t >= killed.t  # 1.29+: sidecar last
    sidecar_exit = one(trace, "Exited", "sws-init", "status")
    assert sidecar_exit.exit_code == 0 and sidecar_exit.t >= killed.t
    deleted = one(trace, "Deleted")
    assert deleted.t > sidecar_exit.t and pod.final.deleted and pod.final.phase == "Failed"
    spans = {s.container: s for s in trace.spans()}
    assert spans["sidecar-deploy"].end_type == "Killed" and spans["sidecar-deploy"].stopped_by_kubelet
    assert not spans["sws-init"].failed


def test_without_ordered_termination_the_sidecar_gets_sigterm_at_once():
    trace = build("deployment-delete-sigkill-1.29.json", version="1.28.15", gates={"SidecarContainers": True})
    app_term = one(trace, "SIGTERM", "sidecar-deploy")
    sidecar_term = one(trace, "SIGTERM", "sws-init")
    assert sidecar_term.t == app_term.t and "ordered" not in sidecar_term.extra


def test_a_sidecar_waiting_for_its_turn_has_no_sigterm_yet():
    data = recording("deployment-delete-sigkill-1.29.json")
    builder = TraceBuilder("kind", "1.29.14", {})
    for item in data["stream"]:
        if item["arrival"] >= "2025-06-01T10:01:30":  # stop before the app was killed
            break
        builder.feed(parse_time(item["arrival"]), item["event"])
    trace = builder.trace()
    assert trace.select("SIGTERM", container="sws-init") == []
    assert len(trace.select("SIGTERM", container="sidecar-deploy")) == 1


def test_an_app_that_ended_seconds_before_the_killing_event_does_not_hold_the_sidecar_back():
    """The kubelet's Killing Event for a sidecar can come seconds after the app's exit (here 3 s: a
    later sync, or a served simulator that writes it when the stop signal goes out); the app has
    ended, so the sidecar's SIGTERM is the Event's time, not "still waiting for its turn"."""
    def later_kill(event):
        obj = event["object"]
        if obj.get("kind") == "Event" and obj.get("reason") == "Killing":
            obj["firstTimestamp"] = obj["lastTimestamp"] = "2025-06-01T10:00:16Z"
        for cs in (obj.get("status") or {}).get("initContainerStatuses") or []:
            if "terminated" in cs["state"]:
                cs["state"]["terminated"]["finishedAt"] = "2025-06-01T10:00:16Z"
        return event

    trace = build("job-sidecar-1.29.json", edit=later_kill)
    sigterm = one(trace, "SIGTERM", "sws-init", "event")
    assert sigterm.extra == {"ordered": True, "signal": "SIGQUIT"}   # static-web-server's STOPSIGNAL
    assert wall(trace, sigterm) == parse_time("2025-06-01T10:00:16Z")
    assert wall(trace, one(trace, "Exited", "sidecar-job", "status")) == parse_time("2025-06-01T10:00:13Z")


def test_prestop_hook_turns_killing_into_prestop():
    def add_prestop(event):
        obj = event["object"]
        if obj["kind"] == "Pod":
            obj["spec"]["containers"][0]["lifecycle"] = {"preStop": {"exec": {"command": ["sleep", "5"]}}}
        return event

    trace = build("deployment-delete-sigkill-1.29.json", edit=add_prestop)
    assert one(trace, "PreStop", "sidecar-deploy", "event").reason == "Killing"
    assert trace.select("SIGTERM", container="sidecar-deploy") == []


def test_probe_failures_from_events():
    builder = TraceBuilder("kind", "1.29.14", {})
    data = recording("deployment-delete-sigkill-1.29.json")
    first = data["stream"][2]
    builder.feed(parse_time(first["arrival"]), first["event"])
    pod = first["event"]["object"]
    base = {"apiVersion": "v1", "kind": "Event", "type": "Warning", "count": 1,
            "involvedObject": {"kind": "Pod", "name": pod["metadata"]["name"], "fieldPath": "spec.initContainers{sws-init}"},
            "firstTimestamp": "2025-06-01T10:00:20Z", "lastTimestamp": "2025-06-01T10:00:20Z"}
    unhealthy = {**base, "metadata": {"uid": "u1", "name": "x.1"}, "reason": "Unhealthy",
                 "message": "Startup probe failed: Get \"http://10.244.0.7:80/\": dial tcp 10.244.0.7:80: connect: connection refused"}
    killing = {**base, "metadata": {"uid": "u2", "name": "x.2"}, "reason": "Killing", "type": "Normal",
               "message": "Container sws-init failed liveness probe, will be restarted"}
    builder.feed(parse_time("2025-06-01T10:00:20.3Z"), {"type": "ADDED", "object": unhealthy})
    builder.feed(parse_time("2025-06-01T10:00:20.4Z"), {"type": "ADDED", "object": killing})
    builder.feed(parse_time("2025-06-01T10:00:20.5Z"), {"type": "ADDED", "object": killing})  # seen again: ignored
    trace = builder.trace()
    run = one(trace, "StartupProbeRun", "sws-init", "event")
    assert run.reason == "Unhealthy" and "connection refused" in run.message
    failed = one(trace, "LivenessProbeFailed", "sws-init")
    assert failed.message.startswith("Container sws-init failed liveness")
    # a restart is not the pod stopping: no waiting for the app, SIGTERM at once
    assert one(trace, "SIGTERM", "sws-init").t == failed.t


def test_events_seen_before_their_pod_are_replayed():
    data = recording("job-sidecar-1.29.json")
    items = data["stream"]
    events = [i for i in items if i["event"]["object"]["kind"] == "Event"]
    others = [i for i in items if i["event"]["object"]["kind"] != "Event"]
    builder = TraceBuilder("kind", "1.29.14", {})
    for item in events + others:  # the Event watch ran ahead of the pod watch
        builder.feed(parse_time(item["arrival"]), item["event"])
    trace = builder.trace()
    assert len(trace.select("Started", container="sws-init")) == 3
    assert one(trace, "SIGTERM", "sws-init").source == "event"


def test_since_drops_history_from_before_the_recording():
    since = parse_time("2025-06-01T10:00:30Z")
    trace = build("deployment-delete-sigkill-1.29.json", since=since)
    assert trace.select("Started") == []  # the pod started before the lab
    assert parse_time(trace.origin) >= since - 2
    assert one(trace, "Deleted")


def test_image_pull_failure_from_the_watch():
    data = recording("job-sidecar-1.29.json")
    pod = copy.deepcopy([i for i in data["stream"] if i["event"]["object"]["kind"] == "Pod"][2]["event"]["object"])
    pod["status"]["initContainerStatuses"][0]["state"] = {
        "waiting": {"reason": "ErrImagePull", "message": "failed to pull and unpack image"}}
    builder = TraceBuilder("kind", "1.29.14", {})
    builder.feed(1000.0, {"type": "MODIFIED", "object": pod})
    pod["status"]["initContainerStatuses"][0]["state"]["waiting"]["reason"] = "ImagePullBackOff"
    builder.feed(1001.0, {"type": "MODIFIED", "object": pod})
    failures = builder.trace().select("ImagePullFailed")
    assert [(e.container, e.reason) for e in failures] == [("sws-init", "ErrImagePull")]


# -- a restart-heavy pod: the kubelet's Events are dropped and combined, the statuses are not ---------
RESTARTS = "sidecar-liveness-restarts-1.37.json"


def build_restarts(edit_stream=None) -> Trace:
    data = recording(RESTARTS)
    stream = data["stream"] if edit_stream is None else edit_stream(copy.deepcopy(data["stream"]))
    builder = TraceBuilder("kind", data["kubernetes_version"], data["feature_gates"])
    for item in stream:
        builder.feed(parse_time(item["arrival"]), item["event"])
    return builder.trace()


def kubelet_events(reason: str) -> list[dict]:
    return [i["event"]["object"] for i in recording(RESTARTS)["stream"]
            if i["event"]["object"]["kind"] == "Event" and i["event"]["object"]["reason"] == reason]


def test_the_fixture_lost_killing_and_started_events_to_the_kubelets_rate_limit():
    """Eight liveness kills and the pod's deletion: the spam filter let the first five Killing Events
    through, none of the deletion's, and the sidecar's Started Events up to its fourth restart."""
    assert [e["count"] for e in kubelet_events("Killing")] == [1, 2, 3, 4, 5]
    started = [e for e in kubelet_events("Started") if e["involvedObject"]["fieldPath"] == "spec.initContainers{proxy}"]
    assert [e["count"] for e in started] == [1, 2, 3, 4, 5] and started[0]["message"] == "Container started"


def test_every_run_of_a_restart_heavy_sidecar_comes_from_its_statuses_when_its_events_are_dropped():
    trace = build_restarts()
    spans = [s for s in trace.spans() if s.container == "proxy"]
    assert [(s.attempt, s.end_type, s.exit_code) for s in spans] == [(k, "Exited", 0) for k in range(9)]
    assert {e.attempt for e in trace.select("Restarted", container="proxy") if e.source == "status"} == set(range(1, 9))
    for k in range(9):  # each run once from its status, whatever the Events said
        assert len([e for e in trace.select("Started", container="proxy") if e.source == "status" and e.attempt == k]) == 1
        assert len([e for e in trace.select("Exited", container="proxy") if e.source == "status" and e.attempt == k]) == 1
    # the Events that passed are extra detail, each on the run it was about
    data = recording(RESTARTS)
    origin = parse_time(trace.origin)
    starts = {e.attempt: e.t for e in trace.select("Started", container="proxy") if e.source == "status"}
    assert {e.attempt for e in trace.select("Started", container="proxy") if e.source == "event"} == set(range(5))
    sigterms = trace.select("SIGTERM", container="proxy")
    assert [e.attempt for e in sigterms] == [0, 1, 2, 3, 4]
    assert all(starts[e.attempt] < e.t < starts[e.attempt + 1] for e in sigterms)
    # the stop signal the container status reports (static-web-server's STOPSIGNAL; 1.33+ with ContainerStopSignals)
    assert {e.extra.get("signal") for e in sigterms} == {"SIGQUIT"}
    assert [e.attempt for e in trace.select("LivenessProbeFailed", container="proxy")] == [0, 1, 2, 3, 4]
    assert data["feature_gates"] == {"ContainerStopSignals": True} and origin is not None


def test_a_started_event_belongs_to_the_run_whose_status_start_it_matches_not_to_its_count():
    """The kubelet restarted before the sidecar's seventh run: its recorder's cache is empty, so that
    run's Started Event is a new one with count 1 (client-go tools/record eventLogger)."""
    def kubelet_restarted(stream):
        run6 = next(i for i in stream if i["event"]["object"]["kind"] == "Pod" and any(
            cs.get("restartCount") == 6 and "running" in cs["state"]
            for cs in i["event"]["object"]["status"].get("initContainerStatuses") or []))
        started_at = run6["event"]["object"]["status"]["initContainerStatuses"][0]["state"]["running"]["startedAt"]
        first = next(e for e in kubelet_events("Started") if e["involvedObject"]["fieldPath"] == "spec.initContainers{proxy}")
        again = copy.deepcopy(first)
        again["metadata"].update(name="flappy-proxy.1863a0c1f2e3d4b5", uid="f0e1d2c3-b4a5-4960-8877-665544332211")
        again.update(count=1, firstTimestamp=started_at, lastTimestamp=started_at)
        stream.append({"arrival": run6["arrival"], "event": {"type": "ADDED", "object": again}})
        return sorted(stream, key=lambda i: i["arrival"])

    trace = build_restarts(kubelet_restarted)
    from_events = [(e.attempt, e.type) for e in trace.select(("Started", "Restarted"), container="proxy")
                   if e.source == "event"]
    assert (6, "Started") in from_events and (6, "Restarted") in from_events
    assert [a for a, kind in from_events if kind == "Started"] == [0, 1, 2, 3, 4, 6]


def _event(name: str, uid: str, reason: str, message: str, field_path: str, when: str, count: int = 1,
           type_: str = "Normal") -> dict:
    """A core/v1 Event as the kubelet's recorder writes it (client-go tools/record at v0.37.2)."""
    return {"apiVersion": "v1", "kind": "Event",
            "metadata": {"name": name, "namespace": "labkit-r4n8t", "uid": uid, "resourceVersion": "2001",
                         "creationTimestamp": when},
            "involvedObject": {"apiVersion": "v1", "kind": "Pod", "name": "flappy-proxy", "namespace": "labkit-r4n8t",
                               "uid": "7c1d2e3f-4a5b-4c6d-8e7f-9a0b1c2d3e4f", "resourceVersion": "1007",
                               "fieldPath": field_path},
            "reason": reason, "message": message, "source": {"component": "kubelet", "host": "labkit-node"},
            "firstTimestamp": when, "lastTimestamp": when, "count": count, "type": type_, "eventTime": None,
            "reportingComponent": "kubelet", "reportingInstance": "labkit-node"}


def test_combined_events_are_read_for_the_container_their_message_names_or_not_at_all():
    """EventAggregate (client-go tools/record events_cache.go) makes the 10th distinct message of one
    reason about a pod within 10 minutes an Event "(combined from similar events): <message>"; later
    messages patch its message and count, never its involvedObject: its fieldPath stays the first one's."""
    def combined(stream):
        deletion = next(i for i in stream if i["event"]["object"]["kind"] == "Pod"
                        and i["event"]["object"]["metadata"].get("deletionTimestamp"))
        # a probe run of the last run, a second after it started
        started = stream[-1]["event"]["object"]["status"]["initContainerStatuses"][0]["state"]["terminated"]["startedAt"]
        when = format_time(parse_time(started) + 1.0)[:19] + "Z"
        unhealthy = _event("flappy-proxy.1863a0c1f2e3d4c6", "a1a1a1a1-0000-4000-8000-000000000001", "Unhealthy",
                           "(combined from similar events): Liveness probe failed: HTTP probe failed with statuscode: 404",
                           "spec.containers{app}", when, count=3, type_="Warning")
        killing = _event("flappy-proxy.1863a0c1f2e3d4c7", "a1a1a1a1-0000-4000-8000-000000000002", "Killing",
                         "(combined from similar events): Stopping container proxy", "spec.containers{app}",
                         deletion["arrival"][:19] + "Z", count=4)
        stream.append({"arrival": when[:19] + ".900Z", "event": {"type": "ADDED", "object": unhealthy}})
        stream.append({"arrival": deletion["arrival"], "event": {"type": "ADDED", "object": killing}})
        return sorted(stream, key=lambda i: i["arrival"])

    trace = build_restarts(combined)
    # "Liveness probe failed: ..." names no container: the combined one is on neither (not on its fieldPath's)
    assert [e for e in trace.events if (e.message or "").startswith("(combined")] == [one(trace, "SIGTERM", "proxy", attempt=8)]
    assert trace.select("LivenessProbeRun", container="app") == []
    sigterm = one(trace, "SIGTERM", "proxy", "event", attempt=8)
    assert sigterm.extra.get("ordered") is True and sigterm.extra.get("signal") == "SIGQUIT"
    assert trace.select("SIGTERM", container="app") == []  # not the container of the Event's fieldPath


def test_a_pods_lifecycle_stop_signal_names_the_signal_when_the_status_does_not():
    def spec_signal(stream):
        for item in stream:
            obj = item["event"]["object"]
            if obj["kind"] == "Pod":
                obj["spec"]["initContainers"][0]["lifecycle"] = {"stopSignal": "SIGINT"}
                obj["spec"]["os"] = {"name": "linux"}
                for cs in obj["status"].get("initContainerStatuses") or []:
                    cs.pop("stopSignal", None)
        return stream

    assert {e.extra.get("signal") for e in build_restarts(spec_signal).select("SIGTERM", container="proxy")} == {"SIGINT"}


def test_owner_of_bare_pod_and_replicaset():
    assert owner_of({"metadata": {}}) is None
    rs = {"metadata": {"labels": {"pod-template-hash": "abc12"},
                       "ownerReferences": [{"kind": "ReplicaSet", "name": "web-abc12", "controller": True}]}}
    assert owner_of(rs) == {"kind": "Deployment", "name": "web", "via": {"kind": "ReplicaSet", "name": "web-abc12"}}
    # a ReplicaSet of its own (no Deployment's template hash in its name) is the workload itself
    own = {"metadata": {"labels": {"pod-template-hash": "zz999"},
                        "ownerReferences": [{"kind": "ReplicaSet", "name": "mine", "controller": True}]}}
    assert owner_of(own) == {"kind": "ReplicaSet", "name": "mine"}


# -- the live part, against a small API server on 127.0.0.1 that plays a stream -------------------
# An expired resourceVersion as a real kube-apiserver reports it in a watch: HTTP 200, then one ERROR
# event whose object is the Status of errors.NewResourceExpired (apimachinery pkg/api/errors), sent by
# the watch cache's newErrWatcher (apiserver pkg/storage/cacher/cacher.go, v0.37.2), then the end.
EXPIRED = {"type": "ERROR", "object": {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                                       "message": "too old resource version: 1010 (1060)", "reason": "Expired",
                                       "code": 410}}
LISTS = {"Pod": ("v1", "PodList"), "Job": ("batch/v1", "JobList"), "Deployment": ("apps/v1", "DeploymentList"),
         "Event": ("v1", "EventList")}


def listed(kind: str, resource_version: str, objects=()) -> dict:
    """A list answer as the API server sends it: the items carry no kind or apiVersion."""
    api_version, list_kind = LISTS[kind]
    items = [{k: v for k, v in obj.items() if k not in ("kind", "apiVersion")} for obj in objects]
    return {"kind": list_kind, "apiVersion": api_version, "metadata": {"resourceVersion": resource_version},
            "items": items}


class _ApiServer:
    """Answers the recorder's requests from scripts, one per resource. A list request
    (``GET .../pods``) takes the next entry of ``lists`` (an empty list at version "1" once they are
    used up); a watch request (``?watch=true``) takes the next entry of ``scripts``: a list of watch
    events (sent, then the response ends as a server-side timeout would) or ``"http-410"`` (an HTTP
    410 answer, which real API servers do not send for an expired watch but an old or odd one
    might); once a script is used up, the watch is held open with no events for its
    ``timeoutSeconds``. Requests are recorded."""

    PATHS = {"/api/v1/namespaces/ns1/pods": "Pod", "/apis/batch/v1/namespaces/ns1/jobs": "Job",
             "/apis/apps/v1/namespaces/ns1/deployments": "Deployment", "/api/v1/namespaces/ns1/events": "Event"}

    def __init__(self, scripts: dict, lists: dict | None = None):
        import http.server
        import urllib.parse

        self.scripts = {kind: list(script) for kind, script in scripts.items()}
        self.lists = {kind: list(answers) for kind, answers in (lists or {}).items()}
        self.requests: list[tuple[str, dict, str]] = []
        self.done = threading.Event()
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def answer(self, code: int, body: dict) -> None:
                data = json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self):
                url = urllib.parse.urlsplit(self.path)
                kind = server.PATHS.get(url.path)
                query = dict(urllib.parse.parse_qsl(url.query))
                server.requests.append((kind, query, self.headers.get("Authorization", "")))
                if query.get("watch", "").lower() != "true":
                    answers = server.lists.get(kind, [])
                    self.answer(200, answers.pop(0) if answers else listed(kind, "1"))
                    return
                script = server.scripts.get(kind, [])
                entry = script.pop(0) if script else None
                if entry == "http-410":
                    self.answer(410, {"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": 410,
                                      "reason": "Expired", "message": "too old resource version"})
                    return
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                for event in entry or []:
                    self.wfile.write(json.dumps(event).encode() + b"\n")
                    self.wfile.flush()
                if entry is None:  # hold the watch open until its timeoutSeconds, as a quiet API server does
                    server.done.wait(float(query.get("timeoutSeconds", 60)))

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def queries(self, kind: str) -> list[tuple[str, str | None]]:
        """Each request for ``kind`` as ("list" or "watch", its resourceVersion)."""
        return [("watch" if q.get("watch", "").lower() == "true" else "list", q.get("resourceVersion"))
                for k, q, _ in self.requests if k == kind]

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.done.set()
        self.httpd.shutdown()
        self.httpd.server_close()


def _kubeconfig(tmp_path: Path, server: str) -> Path:
    config = {"apiVersion": "v1", "kind": "Config", "current-context": "c",
              "clusters": [{"name": "c", "cluster": {"server": server}}],
              "contexts": [{"name": "c", "context": {"cluster": "c", "user": "u"}}],
              "users": [{"name": "u", "user": {"token": "t"}}]}
    path = tmp_path / "kubeconfig"
    path.write_text(json.dumps(config))
    return path


def _until(condition, timeout: float = 120.0) -> bool:
    """Poll ``condition`` until it holds (True) or ``timeout`` wall seconds pass (False): generous,
    so that a busy machine makes a test slow, never wrong."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        threading.Event().wait(0.02)
    return True


def _record(api: _ApiServer, kubeconfig: Path, done, builder: TraceBuilder | None = None):
    """Run a Recorder against ``api`` until ``done(trace)`` (or 120 s), stop it; the builder and recorder."""
    builder = builder or TraceBuilder("cluster", "1.29.14", {})
    recorder = Recorder(builder, namespace="ns1", kubeconfig=str(kubeconfig)).start()
    try:
        _until(lambda: done(builder.trace()))
    finally:
        recorder.stop(timeout=20)
    return builder, recorder


def _by_kind(name: str) -> dict[str, list]:
    by_kind: dict[str, list] = {}
    for item in recording(name)["stream"]:
        by_kind.setdefault(item["event"]["object"]["kind"], []).append(item["event"])
    return by_kind


def _kubeconfig_with_token_refresh(tmp_path: Path, server: str) -> Path:
    """A kubeconfig whose gcp auth provider has no token yet: loading it runs ``cmd-path``, and a
    client built with persist_config=True then saves the new token into this file."""
    helper = tmp_path / "token.py"
    helper.write_text("import json; print(json.dumps({'credential': {'access_token': 'fresh-token', "
                      "'token_expiry': '2099-01-01T00:00:00Z'}}))\n")
    config = {"apiVersion": "v1", "kind": "Config", "current-context": "c",
              "clusters": [{"name": "c", "cluster": {"server": server}}],
              "contexts": [{"name": "c", "context": {"cluster": "c", "user": "u"}}],
              "users": [{"name": "u", "user": {"auth-provider": {"name": "gcp", "config": {
                  "cmd-path": f"{sys.executable} {helper}"}}}}]}
    path = tmp_path / "kubeconfig"
    path.write_text(json.dumps(config))
    return path


def test_recorder_reads_raw_json_resumes_never_writes_the_kubeconfig_and_stops_its_watches(tmp_path):
    by_kind = _by_kind("job-sidecar-1.29.json")
    pods = by_kind["Pod"]
    # An Event the client's V1Event model rejects (no involvedObject): with the models in the way
    # the Event watch failed on it and retried for ever, and no Event after it was seen.
    odd = {"type": "ADDED", "object": {"kind": "Event", "apiVersion": "v1",
                                       "metadata": {"name": "odd", "namespace": "ns1", "resourceVersion": "1000"},
                                       "reason": "Odd", "message": "no involvedObject"}}
    # the first watch times out after three updates; the second resumes from the last one's version
    scripts = {"Pod": [pods[:3], pods[3:]], "Job": [by_kind["Job"]], "Event": [[odd] + by_kind["Event"]]}
    with _ApiServer(scripts, {"Pod": [listed("Pod", "1010")]}) as api:
        kubeconfig = _kubeconfig_with_token_refresh(tmp_path, api.url)
        before = kubeconfig.read_bytes()
        builder = TraceBuilder("cluster", "1.29.14", {})
        saved: list = []
        recorder = Recorder(builder, namespace="ns1", kubeconfig=str(kubeconfig),
                            watch_log=lambda arrival, kind, event: saved.append((kind, event["type"])))
        recorder.start()
        client = recorder._api

        def everything_arrived(trace) -> bool:  # every event the server sends, not just the phases
            return (saved.count(("Pod", "MODIFIED")) == len(pods) - 1 and ("Event", "ADDED") in saved
                    and len([e for e in trace.events if e.source == "event"]) == 3
                    and bool(trace.select("JobComplete")) and bool(trace.select("SIGTERM"))
                    and len(trace.select("PodPhase")) == 3)

        assert _until(lambda: everything_arrived(builder.trace())), (saved, recorder.errors)
        assert client.rest_client.pool_manager.pools  # connections are open while it records
        recorder.stop(timeout=20)
        # every watch thread has ended, although the server held them open
        assert not recorder.running, recorder.errors
        assert len(client.rest_client.pool_manager.pools) == 0  # and the client's connections are closed
    assert kubeconfig.read_bytes() == before  # the refreshed token was not saved into the user's file
    assert {auth for _, _, auth in api.requests} == {"Bearer fresh-token"}  # ... although it was refreshed
    # list, watch from the list's version, resume from the last version seen
    assert api.queries("Pod")[:3] == [("list", None), ("watch", "1010"), ("watch", "1035")]
    watches = [query for kind, query, _ in api.requests if kind == "Pod" and "watch" in query]
    assert all(q["watch"].lower() == "true" and q["timeoutSeconds"] == str(Recorder.WATCH_TIMEOUT_S)
               and q["allowWatchBookmarks"].lower() == "true" for q in watches)
    trace = builder.trace()
    assert [e.phase for e in trace.select("PodPhase")] == ["Pending", "Running", "Succeeded"]
    assert [e.reason for e in trace.events if e.source == "event"] == ["Started", "Started", "Killing"]
    assert ("Event", "ADDED") in saved and saved.count(("Pod", "MODIFIED")) == len(pods) - 1
    assert recorder.errors == []


def test_an_expired_watch_as_a_real_server_sends_it_is_listed_again_and_nothing_is_lost_or_doubled(tmp_path):
    """HTTP 200 and an ERROR event: the recorder lists again, records from the listed pod what
    changed while no watch ran (here the sidecar's start, the app's whole run, the phase Running),
    and watches on from the list's version; bookmarks move that version on."""
    pods = _by_kind("job-sidecar-1.29.json")["Pod"]
    bookmark = {"type": "BOOKMARK", "object": {"kind": "Pod", "apiVersion": "v1", "metadata": {"resourceVersion": "1080"}}}
    scripts = {"Pod": [pods[:3] + [EXPIRED], [bookmark], pods[6:]]}
    lists = {"Pod": [listed("Pod", "1010"), listed("Pod", "1072", [pods[5]["object"]])]}
    with _ApiServer(scripts, lists) as api:
        builder, recorder = _record(api, _kubeconfig(tmp_path, api.url),
                                    lambda trace: len(trace.select("PodPhase")) == 3)
    assert api.queries("Pod")[:5] == [("list", None), ("watch", "1010"), ("list", None), ("watch", "1072"),
                                      ("watch", "1080")]
    assert len(recorder.relists) == 1 and "ended with an ERROR event" in recorder.relists[0]
    assert recorder.errors == []  # an expired watch is not trouble
    trace = builder.trace()
    assert [e.phase for e in trace.select("PodPhase")] == ["Pending", "Running", "Succeeded"]
    # the transitions of the gap, each once, from the listed object
    for container in ("sws-init", "sidecar-job"):
        assert [e.source for e in trace.select("Started", container=container)] == ["status", "watch"]
    app_exit = one(trace, "Exited", "sidecar-job", "status")
    assert wall(trace, app_exit) == parse_time("2025-06-01T10:00:13Z") and app_exit.exit_code == 0
    assert len(trace.select("Exited", container="sws-init")) == 2  # status and watch, after the gap
    assert [s.container for s in trace.spans()] == ["sws-init", "sidecar-job"]


def test_an_http_410_is_listed_again_too_and_a_pod_deleted_meanwhile_is_reported_deleted(tmp_path):
    pods = _by_kind("job-sidecar-1.29.json")["Pod"]
    scripts = {"Pod": [pods[:3], "http-410"]}
    lists = {"Pod": [listed("Pod", "1010"), listed("Pod", "1200")]}  # the pod is gone by the second list
    with _ApiServer(scripts, lists) as api:
        builder, recorder = _record(api, _kubeconfig(tmp_path, api.url), lambda trace: trace.select("Deleted"))
    assert api.queries("Pod")[:5] == [("list", None), ("watch", "1010"), ("watch", "1035"), ("list", None),
                                      ("watch", "1200")]
    assert len(recorder.relists) == 1 and "HTTP 410" in recorder.relists[0] and recorder.errors == []
    trace = builder.trace()
    assert len(trace.select("Deleted")) == 1 and trace.pods[0].final.deleted


def test_a_pod_listed_at_start_is_taken_as_it_is(tmp_path):
    """The first list is the state the recording starts from: a running pod's start is recorded."""
    pods = _by_kind("job-sidecar-1.29.json")["Pod"]
    with _ApiServer({}, {"Pod": [listed("Pod", "1060", [pods[4]["object"]])]}) as api:
        builder, _ = _record(api, _kubeconfig(tmp_path, api.url), lambda trace: trace.select("Started"))
    assert api.queries("Pod")[:2] == [("list", None), ("watch", "1060")]
    assert one(builder.trace(), "Started", "sws-init", "status").attempt == 0


def test_two_runs_started_in_one_second_take_their_started_events_in_count_order():
    """A sidecar that crashes at once restarts within the second of its first start: both status
    starts are equally near both Started Events, whose counts (1, 2) say which run each is about."""
    def one_second(stream):
        first, second = (next(i["event"]["object"]["status"]["initContainerStatuses"][0] for i in stream
                              if i["event"]["object"]["kind"] == "Pod" and any(
                                  cs.get("restartCount") == n and "running" in cs["state"]
                                  for cs in i["event"]["object"]["status"].get("initContainerStatuses") or []))
                         for n in (0, 1))
        start = first["state"]["running"]["startedAt"]
        text = json.dumps(stream)
        for later in (second["state"]["running"]["startedAt"], second["lastState"]["terminated"]["finishedAt"]):
            text = text.replace(f'"{later}"', f'"{start}"')
        return json.loads(text)

    trace = build_restarts(one_second)
    status = [e for e in trace.select("Started", container="proxy") if e.source == "status"]
    assert status[0].t == status[1].t   # the edit did what it says
    events = [e.attempt for e in trace.select("Started", container="proxy") if e.source == "event"]
    assert events == [0, 1, 2, 3, 4]


def test_a_sidecars_stop_signal_is_its_images_stopsignal_when_the_api_names_none():
    """A 1.29 kubelet reports no stopSignal (ContainerStopSignals, alpha and off through 1.37): the
    runtime stops static-web-server with its image's STOPSIGNAL, SIGQUIT, and so says the trace."""
    trace = build("job-sidecar-1.29.json")
    sigterm = one(trace, "SIGTERM", "sws-init", "event")
    assert sigterm.extra.get("signal") == "SIGQUIT"


def test_has_taken_waits_until_the_watches_reach_a_version_a_read_saw():
    """kubectl read the Job at resourceVersion 42 while its watch had delivered 41: the lab holds
    (has_taken) until the watch delivers 42, so the trace it then takes has that update."""
    def job_at(version: str) -> dict:
        return {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "j", "namespace": "ns", "uid": "u",
                                                                      "resourceVersion": version},
                "spec": {}, "status": {}}

    recorder = Recorder(TraceBuilder("cluster", "1.37.0"), namespace="ns")
    recorder._take("Job", {"type": "ADDED", "object": job_at("41")})
    assert recorder.has_taken("Job", "j", "41", timeout=0)
    assert not recorder.has_taken("Job", "j", "42", timeout=0.05)
    later = threading.Timer(0.2, recorder._take, ("Job", {"type": "MODIFIED", "object": job_at("42")}))
    later.start()
    began = time.monotonic()
    assert recorder.has_taken("Job", "j", "42", timeout=30)
    assert time.monotonic() - began >= 0.15          # it waited for the update, not for nothing
    later.join()
    assert recorder.has_taken("Job", "j", "opaque", timeout=0)      # not a number: nothing to wait for
    assert not recorder.has_taken("Job", "other", "1", timeout=0)


def test_wait_for_change_wakes_on_the_next_object_change_a_watch_takes():
    """A wait looks again when something changed (labkit.cluster): the count before a look, then a
    wait that ends at the first change after it, or at its timeout when nothing changes."""
    def pod_at(version: str) -> dict:
        return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "ns", "uid": "u",
                                                              "resourceVersion": version}, "spec": {}, "status": {}}

    recorder = Recorder(TraceBuilder("cluster", "1.37.0"), namespace="ns")
    before = recorder.changes()
    assert not recorder.wait_for_change(before, timeout=0.05)
    later = threading.Timer(0.2, recorder._take, ("Pod", {"type": "ADDED", "object": pod_at("7")}))
    later.start()
    began = time.monotonic()
    assert recorder.wait_for_change(before, timeout=30)
    assert time.monotonic() - began >= 0.15
    later.join()
    assert recorder.changes() == before + 1
    assert recorder.wait_for_change(before, timeout=0)          # a change after the count wakes at once
    assert not recorder.wait_for_change(recorder.changes(), timeout=0)
