"""The trace contract (labkit.trace/v1): JSON round trips, malformed files, span derivation."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from labkit.errors import TraceError
from labkit.trace import Event, Trace, dumps_indented, load_trace

# -- round trips ------------------------------------------------------------------------------


def test_blog_trace_round_trips_to_the_same_json(data_dir: Path, tmp_path: Path):
    path = data_dir / "blog-job-trace.json"
    original = json.loads(path.read_text())
    trace = load_trace(path)
    assert trace.to_dict() == original  # every field, including the top-level "note"
    again = Trace.from_dict(trace.to_dict())
    assert again.to_dict() == original
    saved = trace.save(tmp_path / "sub" / "copy.json")
    assert load_trace(saved).to_dict() == original
    assert json.loads(saved.read_text()) == original


_SCALARS = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=6)
_JSON = st.recursive(_SCALARS, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner,
                                                                                           max_size=3), max_leaves=8)
_FLAT = st.dictionaries(st.text(max_size=4), _SCALARS, max_size=4)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.text(max_size=6), _JSON | st.lists(_FLAT, max_size=4), max_size=5), st.sampled_from([1, 2, 4]))
def test_the_fast_indented_json_is_json_dumps_text(data, indent):
    """Trace.to_json lays out lists of flat objects (the events) itself: the text must be json's."""
    assert dumps_indented(data, indent) == json.dumps(data, indent=indent)


def test_to_json_is_json_dumps_of_to_dict(data_dir: Path):
    trace = load_trace(data_dir / "blog-job-trace.json")
    assert trace.to_json() == json.dumps(trace.to_dict(), indent=1)
    assert trace.to_json(indent=None) == json.dumps(trace.to_dict())


@pytest.mark.parametrize("name", ["legacy-job-never-completes.json", "deployment-delete-1.28.json",
                                  "deployment-delete-1.29.json"])
def test_fixture_traces_round_trip(data_dir: Path, name: str):
    original = json.loads((data_dir / "traces" / name).read_text())
    assert load_trace(data_dir / "traces" / name).to_dict() == original


def test_unknown_event_keys_are_kept(make_trace):
    trace = make_trace([("app", "app")], [(0, "app", "Started", {"attempt": 0, "extra": {"node": "kind-control-plane"}})])
    data = trace.to_dict()
    data["events"][0]["node"] = "kind-control-plane"
    loaded = Trace.from_dict(data)
    assert loaded.events[0].extra == {"node": "kind-control-plane"}
    assert loaded.to_dict()["events"][0]["node"] == "kind-control-plane"


def test_observed_until_extends_the_duration_and_round_trips(data_dir: Path, tmp_path: Path):
    data = _blog(data_dir)
    assert load_trace(data_dir / "blog-job-trace.json").duration == 12.91  # no observed_until: the last event
    data["observed_until"] = 60
    path = tmp_path / "watched.json"
    path.write_text(json.dumps(data))
    trace = load_trace(path)
    assert trace.observed_until == 60.0 and trace.duration == 60.0
    assert "observed_until" not in trace.extra and trace.extra == {"note": data["note"]}
    assert trace.to_dict()["observed_until"] == 60.0
    assert load_trace(trace.save(tmp_path / "again.json")).observed_until == 60.0
    data["observed_until"] = 12.91  # watched until the last event: allowed
    assert Trace.from_dict(data).duration == 12.91
    data["observed_until"] = None
    assert Trace.from_dict(data).observed_until is None
    empty = Trace("kind", "1.29.0", observed_until=5.0)  # watched for 5 s, nothing happened
    assert empty.duration == 5.0 and Trace.from_dict(empty.to_dict()).duration == 5.0


def test_events_must_be_added_in_time_order(make_trace):
    trace = make_trace([("app", "app")], [(5, "app", "Started")])
    with pytest.raises(ValueError, match="time-ordered"):
        trace.add(Event(4.0, "Exited", pod="web", container="app", exit_code=0))


# -- malformed files ---------------------------------------------------------------------------


def _blog(data_dir: Path) -> dict:
    return json.loads((data_dir / "blog-job-trace.json").read_text())


def _set(path: str, value):
    """A mutation that sets ``path`` (dotted, with [i]) in the blog trace's dict."""
    def mutate(data: dict) -> None:
        *parents, last = path.replace("[", ".").replace("]", "").split(".")
        target = data
        for key in parents:
            target = target[int(key)] if key.isdigit() else target[key]
        target[int(last) if last.isdigit() else last] = value
    return mutate


def _delete(path: str):
    def mutate(data: dict) -> None:
        *parents, last = path.replace("[", ".").replace("]", "").split(".")
        target = data
        for key in parents:
            target = target[int(key)] if key.isdigit() else target[key]
        del target[last]
    return mutate


MALFORMED = [
    # (id, mutation, field path, words in the message)
    ("wrong-schema", _set("schema", "labkit.trace/v2"), "schema", "unsupported schema 'labkit.trace/v2'"),
    ("missing-version", _delete("kubernetes_version"), "kubernetes_version", "missing"),
    ("missing-events", _delete("events"), "events", "missing"),
    ("unknown-backend", _set("backend", "minikube"), "backend", "unknown value 'minikube'"),
    ("gate-not-bool", _set("feature_gates.SidecarContainers", "yes"), "feature_gates.SidecarContainers",
     'expected true or false, got "yes"'),
    ("pods-not-list", _set("pods", {}), "pods", "expected a list"),
    ("containers-not-list", _set("pods[0].containers", "sws-init"), "pods[0].containers", "expected a list"),
    ("unknown-role", _set("pods[0].containers[0].role", "proxy"), "pods[0].containers[0].role", "unknown value 'proxy'"),
    ("final-undeclared-container", _set("pods[0].final.containers.sws", {"state": "running"}),
     "pods[0].final.containers.sws", "not declared"),
    ("unknown-phase", _set("pods[0].final.phase", "Done"), "pods[0].final.phase", "unknown value 'Done'"),
    ("t-is-string", _set("events[1].t", "1.12"), "events[1].t", 'expected a number, got "1.12"'),
    ("t-is-bool", _set("events[1].t", True), "events[1].t", "expected a number, got true"),
    ("t-negative", _set("events[0].t", -1.0), "events[0].t", "cannot be negative"),
    ("t-unsorted", _set("events[3].t", 1.0), "events[3].t", "events must be sorted by t: 1.0 comes after 10.05"),
    ("unknown-event-type", _set("events[1].type", "Startd"), "events[1].type", "unknown value 'Startd'"),
    ("undeclared-container", _set("events[1].container", "sws"), "events[1].container",
     "pod 'sidecar-job-x7k2p' has no container 'sws'"),
    ("unknown-pod", _set("events[1].pod", "other-pod"), "events[1].pod", "pod 'other-pod' is not listed in pods"),
    ("container-event-without-container", _set("events[1].container", None), "events[1]",
     "a Started event needs both pod and container"),
    ("pod-event-with-container", _set("events[0].container", "sws-init"), "events[0]",
     "a PodPhase event needs a pod and container null"),
    ("exited-without-exit-code", _delete("events[6].exit_code"), "events[6].exit_code", "missing"),
    ("exit-code-not-int", _set("events[6].exit_code", "0"), "events[6].exit_code", 'expected a number, got "0"'),
    ("attempt-not-int", _set("events[1].attempt", 0.5), "events[1].attempt", "expected a number, got 0.5"),
    ("unknown-source", _set("events[1].source", "kubelet"), "events[1].source", "unknown value 'kubelet'"),
    ("workload-without-object", _delete("events[11].object"), "events[11].object", "must name its object"),
    ("workload-with-container", _set("events[11].container", "sws-init"), "events[11].container",
     "needs container null"),
    ("event-not-object", _set("events[2]", [10.05, "StartupProbeSucceeded"]), "events[2]", "expected an object"),
    ("observed-until-negative", _set("observed_until", -1), "observed_until", "cannot be negative, got -1.0"),
    ("observed-until-before-last-event", _set("observed_until", 12.5), "observed_until",
     "watched until 12.5, but its last event is at t=12.91"),
    ("observed-until-string", _set("observed_until", "60"), "observed_until", 'expected a number, got "60"'),
    ("observed-until-bool", _set("observed_until", True), "observed_until", "expected a number, got true"),
]


@pytest.mark.parametrize("mutate, field, words", [m[1:] for m in MALFORMED], ids=[m[0] for m in MALFORMED])
def test_malformed_trace_names_file_and_field(data_dir: Path, tmp_path: Path, mutate, field: str, words: str):
    data = _blog(data_dir)
    mutate(data)
    path = tmp_path / "broken.json"
    path.write_text(json.dumps(data))
    with pytest.raises(TraceError) as info:
        load_trace(path)
    error = info.value
    assert error.source == str(path)
    assert error.field == field
    assert words in error.message
    assert str(error).startswith(f"{path}: {field}: ")


def test_duplicate_pod_names_are_rejected(data_dir: Path, tmp_path: Path):
    data = _blog(data_dir)
    data["pods"].append(dict(data["pods"][0]))
    with pytest.raises(TraceError) as info:
        Trace.from_dict(data, source="dup.json")
    assert (info.value.source, info.value.field) == ("dup.json", "pods[1].name")
    assert "duplicate pod 'sidecar-job-x7k2p'" in str(info.value)


@pytest.mark.parametrize("content, words", [
    (b'{"schema": "labkit.trace/v1", ', "not valid JSON"),
    (b"", "not valid JSON"),
    (b"[1, 2]", "a trace must be a JSON object"),
    (b'{"t": NaN}', "schema: missing"),
    (b"\xff\xfe\x00binary", "not a text file"),
])
def test_unreadable_files_are_trace_errors(tmp_path: Path, content: bytes, words: str):
    path = tmp_path / "trace.json"
    path.write_bytes(content)
    with pytest.raises(TraceError) as info:
        load_trace(path)
    assert info.value.source == str(path)
    assert words in str(info.value)
    assert "\n" not in str(info.value)


def test_nan_time_is_rejected(data_dir: Path, tmp_path: Path):
    text = (data_dir / "blog-job-trace.json").read_text().replace('"t": 1.12', '"t": NaN', 1)
    path = tmp_path / "nan.json"
    path.write_text(text)
    with pytest.raises(TraceError, match=r"events\[1\]\.t: expected a finite number"):
        load_trace(path)


def test_missing_file_is_a_trace_error(tmp_path: Path):
    with pytest.raises(TraceError, match="no such file") as info:
        load_trace(tmp_path / "nope.json")
    assert info.value.source == str(tmp_path / "nope.json")


# -- spans -----------------------------------------------------------------------------------


def test_blog_trace_spans(blog_trace: Trace):
    sidecar, app = blog_trace.spans()
    assert (sidecar.container, sidecar.role, sidecar.attempt) == ("sws-init", "sidecar", 0)
    assert (sidecar.start, sidecar.started_at, sidecar.sigterm_at, sidecar.end) == (1.12, 10.05, 11.72, 11.81)
    assert (sidecar.end_type, sidecar.exit_code, sidecar.failed) == ("Exited", 0, False)
    assert sidecar.ready == [(10.05, 11.72)]
    assert sidecar.marks == [(10.05, "StartupProbeSucceeded"), (11.72, "SIGTERM")]
    assert (app.container, app.start, app.started_at, app.end, app.exit_code) == ("sidecar-job", 10.61, 10.61, 10.68, 0)
    assert app.sigterm_at is None and not app.stopped_by_kubelet


def test_restarts_give_one_span_per_attempt(make_trace):
    trace = make_trace([("app", "app")], [
        (0, "app", "Started", {"attempt": 0}), (2, "app", "Exited", {"exit_code": 1}),
        (2, "app", "Started", {"attempt": 1}), (2, "app", "Restarted"), (5, "app", "Exited", {"exit_code": 1}),
        (15, "app", "Started", {"attempt": 2}), (15, "app", "Restarted"),
    ])
    spans = trace.spans()
    assert [(s.attempt, s.start, s.end, s.exit_code) for s in spans] == [(0, 0, 2, 1), (1, 2, 5, 1), (2, 15, None, None)]
    assert [s.marks for s in spans] == [[], [(2.0, "Restarted")], [(15.0, "Restarted")]]
    assert [s.failed for s in spans] == [True, True, False]  # still running is not a failure


def test_attempt_defaults_to_the_instance_number(make_trace):
    trace = make_trace([("app", "app")], [(0, "app", "Started"), (1, "app", "Exited", {"exit_code": 0}),
                                          (2, "app", "Started")])
    assert [s.attempt for s in trace.spans()] == [0, 1]


def test_a_start_without_a_seen_exit_closes_the_previous_instance(make_trace):
    trace = make_trace([("app", "app")], [(0, "app", "Started", {"attempt": 0}), (4, "app", "Started", {"attempt": 1})])
    first, second = trace.spans()
    assert (first.end, first.end_type, first.exit_code) == (4.0, None, None)
    assert (second.start, second.end) == (4.0, None)


def test_sigkill_ends_a_span_with_137(make_trace):
    trace = make_trace([("proxy", "sidecar"), ("app", "app")], [
        (0, "proxy", "Started", {"attempt": 0}), (1, "app", "Started", {"attempt": 0}),
        (10, "app", "SIGTERM"), (10, "proxy", "SIGTERM"),
        (40, "app", "Killed", {"exit_code": 137}), (40, "proxy", "Killed", {"exit_code": 137}),
    ])
    proxy, app = trace.spans()
    for span in (proxy, app):
        assert (span.end, span.end_type, span.exit_code, span.sigterm_at) == (40.0, "Killed", 137, 10.0)
        assert span.stopped_by_kubelet
    assert not proxy.failed  # a sidecar's 137 after its stop signal is normal
    assert app.failed  # an app container SIGKILLed at the end of the grace period is reported as Error


def test_started_at_with_and_without_startup_probe(make_trace):
    trace = make_trace([("probed", "sidecar", ["startup"]), ("never", "sidecar", ["startup"]), ("plain", "app")], [
        (1, "probed", "Started", {"attempt": 0}), (1.5, "never", "Started", {"attempt": 0}),
        (11, "probed", "StartupProbeSucceeded"), (12, "plain", "Started", {"attempt": 0}),
    ])
    probed, never, plain = trace.spans()
    assert (probed.start, probed.started_at) == (1.0, 11.0)
    assert (never.start, never.started_at) == (1.5, None)
    assert (plain.start, plain.started_at) == (12.0, 12.0)


def test_ready_intervals(make_trace):
    trace = make_trace([("proxy", "sidecar")], [
        (0, "proxy", "Started", {"attempt": 0}), (1, "proxy", "Ready"), (3, "proxy", "NotReady"),
        (4, "proxy", "Ready"), (4.5, "proxy", "Ready"), (6, "proxy", "Exited", {"exit_code": 0}),
        (7, "proxy", "Started", {"attempt": 1}), (8, "proxy", "Ready"),
    ])
    first, second = trace.spans()
    assert first.ready == [(1.0, 3.0), (4.0, 6.0)]  # closed by the exit; a repeated Ready changes nothing
    assert second.ready == [(7.0, None)]  # no NotReady since 4 s: ready from its start, to the trace's end
    assert (first.ready_reported_until, second.ready_reported_until) == (7.0, None)  # the API said ready until 7 s


def test_ready_flag_carries_over_a_restart_only_while_the_api_kept_it(make_trace):
    """A sidecar restarted within one kubelet sync never shows NotReady, and the pod stays Ready
    (06's liveness run); one whose restart waited for the back-off shows NotReady in between."""
    trace = make_trace([("proxy", "sidecar")], [
        (0, "proxy", "Started", {"attempt": 0}), (1, "proxy", "Ready"), (6, "proxy", "Exited", {"exit_code": 0}),
        (6.3, "proxy", "Started", {"attempt": 1}), (12, "proxy", "Exited", {"exit_code": 0}),
        (12.3, "proxy", "NotReady"), (25, "proxy", "Started", {"attempt": 2}), (26, "proxy", "Ready"),
    ])
    first, second, third = trace.spans()
    assert first.ready == [(1.0, 6.0)]
    assert second.ready == [(6.3, 12.0)]
    assert third.ready == [(26.0, None)]
    # what the API showed after each exit: ready on into the restart; ready until the 12.3 s status
    assert [s.ready_reported_until for s in (first, second, third)] == [6.3, 12.3, None]


def test_a_deleted_pods_containers_read_ready_until_the_kubelets_final_status(data_dir):
    """Recorded on labkit's node (kubelet v1.37.2): the app exits at its SIGTERM, 15.5 s, but the
    API shows it ready until the status written once every container has stopped, 47.2 s; the
    sidecar's failing readiness probe had already made it and the pod NotReady (docs/timing.md)."""
    trace = load_trace(data_dir / "traces" / "node-1.37-readiness-false-during-termination.json")
    spans = {s.container: s for s in trace.spans()}
    app, sidecar = spans["main"], spans["probe-test"]
    assert app.end == pytest.approx(15.5, abs=0.01) and app.ready[-1][1] == app.end
    assert app.ready_reported_until == pytest.approx(47.24, abs=0.01)
    not_ready = [e.t for e in trace.events if e.type == "PodNotReady"]
    assert sidecar.ready_reported_until is None and sidecar.ready[-1][1] == pytest.approx(23.41, abs=0.01)
    assert not_ready == [sidecar.ready[-1][1]] and sidecar.end > not_ready[0]  # NotReady by its probe, still running


def test_the_simulator_reports_a_deleted_pods_status_as_the_node_did(data_dir):
    """The same scenario in the simulator: ready on after the exit until the final status, the
    pod NotReady by the probe before that, each within the node's whole-second status times."""
    from labkit.sim import simulate

    node = {s.container: s for s in load_trace(data_dir / "traces" /
                                               "node-1.37-readiness-false-during-termination.json").spans()}
    scenario = data_dir / "scenarios" / "sidecar-readiness-false-during-termination.yaml"
    sim = {s.container: s for s in simulate([scenario], k8s_version="1.37").spans()}
    for spans in (node, sim):
        app, sidecar = spans["main"], spans["probe-test"]
        assert app.end < sidecar.ready[-1][1] < app.ready_reported_until
        assert app.ready_reported_until == pytest.approx(sidecar.end, abs=1.0)  # the final status
    # the lag agrees within a second plus the node's whole-second finishedAt (resolution_s 1.0)
    assert (sim["main"].ready_reported_until - sim["main"].end) == pytest.approx(
        node["main"].ready_reported_until - node["main"].end, abs=2.0)


@pytest.mark.parametrize("role, events, failed", [
    ("app", [(1, "Exited", {"exit_code": 0})], False),
    ("app", [(1, "Exited", {"exit_code": 1})], True),
    ("app", [(1, "SIGTERM", {}), (1.1, "Exited", {"exit_code": 143})], True),
    ("sidecar", [(1, "SIGTERM", {}), (1.1, "Exited", {"exit_code": 143})], False),
    ("sidecar", [(1, "SIGTERM", {}), (31, "Killed", {"exit_code": 137})], False),
    ("sidecar", [(1, "SIGTERM", {}), (1.1, "Exited", {"exit_code": 1})], True),
    ("sidecar", [(1, "Killed", {"exit_code": 137})], True),  # e.g. OOM-killed, nobody asked it to stop
    ("sidecar", [(1, "Exited", {"exit_code": 143})], True),  # 143 without a stop signal
    ("sidecar", [(1, "LivenessProbeFailed", {}), (1, "SIGTERM", {}), (3, "Killed", {"exit_code": 137})], True),
    ("init", [(1, "Exited", {"exit_code": 2})], True),
])
def test_span_failed_semantics(make_trace, role, events, failed):
    trace = make_trace([("c", role)], [(0, "c", "Started", {"attempt": 0})] + [(t, "c", k, e) for t, k, e in events])
    (span,) = trace.spans()
    assert span.failed is failed


def test_spans_by_pod_keep_pod_then_declaration_order():
    trace = Trace("sim", "1.29.0")
    from labkit.trace import ContainerInfo, Pod

    for name in ("a", "b"):
        trace.add_pod(Pod(name, containers=[ContainerInfo("proxy", "sidecar"), ContainerInfo("app", "app")]))
    for t, pod, container in [(0, "b", "app"), (1, "a", "app"), (2, "b", "proxy"), (3, "a", "proxy")]:
        trace.add(Event(float(t), "Started", pod=pod, container=container, attempt=0))
    assert [(s.pod, s.container) for s in trace.spans()] == [("a", "proxy"), ("a", "app"), ("b", "proxy"), ("b", "app")]
    assert [(s.pod, s.container) for s in trace.spans(pod="b")] == [("b", "proxy"), ("b", "app")]


# -- observed_until from each backend -----------------------------------------------------------


def test_the_simulator_watches_until_the_virtual_time_it_reached():
    from labkit.sim.lab import SimLab
    from labkit.sim.run import simulate

    manifests = Path(__file__).parent.parent / "manifests"
    done = simulate([manifests / "job-sidecar.yaml"], k8s_version="1.29")
    assert done.observed_until == done.events[-1].t  # it stopped when nothing was left to happen
    stuck = simulate([manifests / "legacy" / "job-legacy-sidecar.yaml"], k8s_version="1.29", until_seconds=60)
    last = stuck.events[-1].t
    assert last < 15 and 59 < stuck.observed_until <= 60 and stuck.duration == stuck.observed_until
    assert Trace.from_dict(json.loads(stuck.to_json())).observed_until == stuck.observed_until
    lab = SimLab("1.29", quiet=True)
    lab.apply(manifests / "legacy" / "job-legacy-sidecar.yaml")
    lab.sleep(45)
    assert lab.trace().events[-1].t == last and 44 < lab.trace().observed_until <= 45
    lab.sleep(5)
    assert lab.trace().events[-1].t == last and 49 < lab.trace().observed_until <= 50


def _recording(name: str) -> list[tuple[float, dict]]:
    from labkit.printers import parse_time

    data = json.loads((Path(__file__).parent / "data" / "watch" / name).read_text())
    return [(parse_time(item["arrival"]), item["event"]) for item in data["stream"]]


def test_a_recording_is_watched_until_its_last_arrival_or_the_recorders_clock():
    from labkit.printers import parse_time
    from labkit.recorder import TraceBuilder

    stream = _recording("job-sidecar-1.29.json")
    builder = TraceBuilder("kind", "1.29.14").feed_all(stream)
    trace = builder.trace()
    origin = parse_time(trace.origin)
    assert trace.observed_until == pytest.approx(max(t for t, _ in stream) - origin)
    now = [stream[-1][0] + 40]  # a live watch, 40 s after the last update: nothing more happened
    builder.watching(lambda: now[0])
    assert builder.trace().observed_until == pytest.approx(now[0] - origin)
    now[0] += 20
    assert builder.trace().observed_until == pytest.approx(now[0] - origin)
    builder.watching(None)  # the watch stopped: later traces end there
    now[0] += 100
    assert builder.trace().observed_until == pytest.approx(now[0] - 100 - origin)
    assert builder.trace().duration == builder.trace().observed_until > builder.trace().events[-1].t


def test_the_recorder_marks_the_builder_live_while_it_watches(monkeypatch):
    import kubernetes
    import kubernetes.watch

    from labkit.printers import parse_time
    from labkit.recorder import Recorder, TraceBuilder

    class Quiet:  # a Watch with nothing to report
        resource_version = None

        def stream(self, *args, **kwargs):
            return iter(())

        def stop(self):
            pass

    class Api:
        def __init__(self, *args):
            pass

        def __getattr__(self, name):
            return lambda *args, **kwargs: None

    monkeypatch.setattr(kubernetes.config, "new_client_from_config", lambda **kwargs: None)
    for name in ("CoreV1Api", "BatchV1Api", "AppsV1Api"):
        monkeypatch.setattr(kubernetes.client, name, Api)
    monkeypatch.setattr(kubernetes.watch, "Watch", Quiet)
    stream = _recording("job-sidecar-1.29.json")
    builder = TraceBuilder("kind", "1.29.14").feed_all(stream)
    origin = parse_time(builder.trace().origin)
    now = [stream[-1][0] + 30]
    recorder = Recorder(builder, namespace="labkit-x", clock=lambda: now[0]).start()
    try:
        assert builder.trace().observed_until == pytest.approx(30 + stream[-1][0] - origin)
    finally:
        recorder.stop()
    now[0] += 60
    assert builder.trace().observed_until == pytest.approx(30 + stream[-1][0] - origin)


def test_summaries_say_how_long_the_trace_was_observed(blog_trace):
    from labkit.display import trace_html, trace_text

    assert "12 events over 12.9s\n" in trace_text(blog_trace) + "\n" and "observed" not in trace_text(blog_trace)
    blog_trace.observed_until = 60.0
    assert "1 pod(s), 12 events over 12.9s, observed for 60.0s" in trace_text(blog_trace)
    assert "12 events over 12.9s, observed for 60.0s" in trace_html(blog_trace, image=False)
    assert repr(blog_trace).endswith("12 events over 12.9s, observed for 60.0s>")

