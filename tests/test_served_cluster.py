"""The cluster backend end to end on the session's served simulator (tests/conftest.py, pace 10).

Real kubectl subprocesses, the real ``kubernetes`` client's watches and the Recorder record a
run; the served simulator keeps its own trace of the same run; :func:`labkit.agree.compare`
checks that they tell the same story (the recorder's test). Also: the trace says it comes
from a served simulator and no view calls it a Kubernetes cluster; ``labkit run --backend
cluster --kubeconfig`` runs notebooks 03 and 04 on it; the server negotiates discovery as a
real API server of its version does.
"""

from __future__ import annotations

import json
import ssl
import urllib.request
from pathlib import Path

import pytest

from labkit.agree import compare
from labkit.cluster import ClusterLab
from labkit.errors import InvalidInput
from labkit.trace import Trace

ROOT = Path(__file__).resolve().parents[1]
MANIFESTS = ROOT / "manifests"
# A sidecar whose process exits 1 two seconds after each start, in a pod that is never
# restarted as a whole: the kubelet restarts the sidecar with back-off (CrashLoopBackOff).
CRASHING_SIDECAR = """
apiVersion: v1
kind: Pod
metadata:
  name: crashing-sidecar
spec:
  restartPolicy: Never
  initContainers:
  - name: flaky-proxy
    image: busybox:1.36
    restartPolicy: Always
    command: ["sh", "-c", "sleep 2; exit 1"]
  containers:
  - name: app
    image: busybox:1.36
    command: ["sh", "-c", "sleep 3600"]
"""


def record(served, steps) -> tuple[Trace, Trace]:
    """(what the cluster backend recorded, the simulator's own trace) of ``steps(lab)``."""
    with ClusterLab("1.29", kubeconfig=served.kubeconfig, quiet=True) as lab:
        steps(lab)
        lab.sleep(3)  # let the last updates arrive
        recorded = lab.trace()
        simulated = served.trace(lab.namespace)
    return recorded, simulated


def agree(recorded: Trace, simulated: Trace) -> None:
    result = compare(recorded, simulated)
    assert result.ok, "\n" + result.table()
    assert result.matched == len(recorded.events) >= 10


@pytest.fixture(scope="module")
def blog_job(served) -> tuple[Trace, Trace]:
    def steps(lab):
        lab.apply(MANIFESTS / "job-sidecar.yaml")
        lab.wait("job/sidecar-job", "Complete", timeout=120)

    return record(served, steps)


def _one(trace: Trace, type_: str, container: str | None = None, source: str = "watch", **match):
    found = [e for e in trace.select(type_, container=container) if e.source == source
             and all(getattr(e, key) == value for key, value in match.items())]
    assert len(found) == 1, found
    return found[0]


# -- the recorder against the simulator ---------------------------------------------------------

def test_the_blog_job_recorded_agrees_with_the_simulator(blog_job):
    recorded, simulated = blog_job
    agree(recorded, simulated)
    # every source the recorder has was compared: watch arrivals, status times, Events
    assert {e.source for e in recorded.events} == {"watch", "status", "event"}
    assert recorded.first("JobComplete", object="job/sidecar-job") is not None


def test_the_blog_deployment_with_a_delete_agrees_with_the_simulator(served):
    def steps(lab):
        lab.apply(MANIFESTS / "deployment-sidecar.yaml")
        lab.wait("deployment/sidecar-deploy", "Available", timeout=120)
        lab.sleep(3)
        lab.delete("deployment/sidecar-deploy", wait=True, timeout=180)

    recorded, simulated = record(served, steps)
    agree(recorded, simulated)
    (pod,) = recorded.pods
    # the app ignores SIGTERM: SIGKILL at the end of the 30 s grace period, then the sidecar stops
    assert _one(recorded, "Killed", "sidecar-deploy").exit_code == 137
    assert _one(recorded, "DeleteRequested", None, "status").grace_period_seconds == 30
    assert recorded.first("Deleted", pod=pod.name) is not None


def test_a_crash_looping_sidecar_agrees_with_the_simulator(served):
    def steps(lab):
        lab.apply(CRASHING_SIDECAR)
        # Initialized stays true once the sidecar first started (Ready comes and goes with each run)
        lab.wait("pod/crashing-sidecar", "Initialized", timeout=60)
        lab.sleep(60)  # simulated seconds: the restarts after 10 s and 20 s of back-off

    recorded, simulated = record(served, steps)
    agree(recorded, simulated)
    exits = [e for e in recorded.select("Exited", container="flaky-proxy") if e.source == "watch"]
    assert [e.attempt for e in exits][:3] == [0, 1, 2] and {e.exit_code for e in exits} == {1}
    assert [e.attempt for e in recorded.select("Restarted", container="flaky-proxy") if e.source == "event"][:2] == [1, 2]
    assert recorded.pods[0].final.containers["app"].state == "running"


def test_the_comparison_fails_on_a_status_time_a_second_late(blog_job):
    recorded, simulated = blog_job
    wrong = Trace.from_dict(recorded.to_dict())
    started = _one(wrong, "Started", "sidecar-job", "status")
    started.t += started.resolution_s   # one whole wall-clock second later
    wrong.events.sort(key=lambda e: e.t)
    result = compare(wrong, simulated)
    assert [(d.kind, d.event) for d in result.disagreements] == [("time", "sidecar-job Started #0 (status)")]
    assert "sidecar-job Started #0 (status)" in result.table()
    assert result.table().splitlines()[0].startswith("1 of ")


def test_the_comparison_fails_on_watch_updates_out_of_order(blog_job):
    """The sidecar's probe success made to arrive after the app's exit: each arrival is still
    within the network's delay of its event, but one pod's updates cannot arrive out of order."""
    recorded, simulated = blog_job
    wrong = Trace.from_dict(recorded.to_dict())
    probe = _one(wrong, "StartupProbeSucceeded", "sws-init")
    probe.t = _one(wrong, "Exited", "sidecar-job").t + 0.01
    wrong.events.sort(key=lambda e: e.t)
    result = compare(wrong, simulated)
    assert [(d.kind, d.event) for d in result.disagreements] == \
        [("order", "sws-init StartupProbeSucceeded #0 (watch)")]
    assert "which the simulator has later" in result.table()


def test_the_comparison_fails_on_an_event_the_simulator_never_had(blog_job):
    recorded, simulated = blog_job
    wrong = Trace.from_dict(recorded.to_dict())
    _one(wrong, "Exited", "sidecar-job").attempt = 1
    result = compare(wrong, simulated)
    assert [(d.kind, d.event) for d in result.disagreements] == [("unknown", "sidecar-job Exited #1 (watch)")]


# -- a trace from a served simulator says so ------------------------------------------------------

def test_the_trace_says_it_comes_from_the_served_simulator(blog_job, tmp_path):
    from labkit.display import trace_text
    from labkit.plot import describe_run

    recorded, _ = blog_job
    assert recorded.backend == "cluster" and recorded.kubernetes_version == "1.29.0"
    assert recorded.extra["served_simulator"] == {"server_version": "v1.29.0-labkit-sim", "pace": 10.0}
    saved = json.loads(recorded.save(tmp_path / "t.json").read_text())
    assert saved["served_simulator"] == {"server_version": "v1.29.0-labkit-sim", "pace": 10.0}
    for text in (describe_run(recorded), trace_text(recorded).splitlines()[0]):
        assert "labkit's served simulator" in text and "Kubernetes cluster" not in text
    # the same trace without the mark is a cluster's
    plain = Trace.from_dict({k: v for k, v in recorded.to_dict().items() if k != "served_simulator"})
    assert describe_run(plain).startswith("Kubernetes cluster")


def test_the_lab_counts_simulated_seconds_on_a_paced_server(served):
    with ClusterLab("1.29", kubeconfig=served.kubeconfig, quiet=True) as lab:
        assert lab.pace == 10.0 and lab.served_simulator["server_version"] == "v1.29.0-labkit-sim"
        assert "served simulator" in repr(lab)
        lab.apply(MANIFESTS / "job-sidecar.yaml")
        waited = lab.wait("job/sidecar-job", "Complete", timeout=120)
        trace = lab.trace()
    # the blog's Job takes about 11 simulated seconds (its sidecar's startup probe: 10 s)
    assert 8 <= waited <= 30
    deadline = _one(trace, "JobComplete", None, object="job/sidecar-job").t
    assert 9 <= deadline - _one(trace, "Started", "sws-init").t <= 20
    assert {e.resolution_s for e in trace.events if e.source == "status"} == {10.0}


# -- labkit run on the served simulator -----------------------------------------------------------

def test_labkit_run_notebooks_03_and_04_on_the_cluster_backend(served, tmp_path):
    from labkit.run import run_notebooks

    notebooks = [ROOT / "notebooks/03-native-sidecar-deployment.ipynb", ROOT / "notebooks/04-native-sidecar-job.ipynb"]
    report = run_notebooks(notebooks, backend="cluster", kubeconfig=served.kubeconfig, out=tmp_path, progress=False)
    assert [(r.name, r.status, r.failure) for r in report.results] == \
        [("03-native-sidecar-deployment.ipynb", "passed", ""), ("04-native-sidecar-job.ipynb", "passed", "")]
    traces = [p for r in report.results for p in r.traces]
    assert len(traces) >= 4
    for path in traces:
        data = json.loads(path.read_text())
        assert data["backend"] == "cluster" and data["served_simulator"]["pace"] == 10.0, path


def test_labkit_run_kubeconfig_is_checked_before_anything_runs(tmp_path):
    from labkit.run import run_notebooks

    notebook = ROOT / "notebooks/04-native-sidecar-job.ipynb"
    with pytest.raises(InvalidInput) as missing:
        run_notebooks([notebook], backend="cluster", kubeconfig=tmp_path / "nope", out=tmp_path / "out")
    assert str(missing.value) == f"{tmp_path / 'nope'}: --kubeconfig: no such file"
    with pytest.raises(InvalidInput, match="a kubeconfig is for --backend cluster, not 'sim'"):
        run_notebooks([notebook], backend="sim", kubeconfig=tmp_path, out=tmp_path / "out")
    assert not (tmp_path / "out").exists()


# -- the server: discovery as a real API server of its version negotiates it ----------------------

def _discovery(served, accept: str, path: str = "/apis") -> tuple[str, dict]:
    context = ssl.create_default_context(cadata=served.ca.decode())
    request = urllib.request.Request(served.url + path, headers={"Authorization": f"Bearer {served.token}",
                                                                     "Accept": accept})
    with urllib.request.urlopen(request, context=context, timeout=5) as response:
        return response.headers["Content-Type"], json.loads(response.read())


def test_discovery_answers_the_aggregated_version_this_server_has_or_the_legacy_list(served):
    """A 1.29 server serves aggregated discovery as v2beta1 only (v2 came with 1.30, kubernetes#122882):
    a client asking v2 first and v2beta1 second gets v2beta1; one asking only v2 gets the legacy
    APIGroupList (client-go's Accept lists it last), as kube-apiserver 1.29 answers."""
    both = ("application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,"
            "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,application/json")
    kind, body = _discovery(served, both)
    assert kind == "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList"
    assert body["apiVersion"] == "apidiscovery.k8s.io/v2beta1"
    assert [g["metadata"]["name"] for g in body["items"]] == ["apps", "batch", "events.k8s.io", "authorization.k8s.io"]
    kind, body = _discovery(served, "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json")
    assert kind == "application/json"
    assert body["kind"] == "APIGroupList" and "batch" in [g["name"] for g in body["groups"]]


def test_the_core_groups_aggregated_discovery_is_at_api_and_api_v1_is_always_its_resource_list(served):
    """kube-apiserver keeps two aggregated discovery managers, the legacy one at /api (the core
    group, named "") and /apis (the others); /api/v1 answers its APIResourceList whatever it is asked."""
    aggregated = ("application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,application/json")
    kind, body = _discovery(served, aggregated, "/api")
    assert kind == "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList"
    [core] = body["items"]
    assert core["metadata"]["name"] == "" and [v["version"] for v in core["versions"]] == ["v1"]
    assert {"pods", "events", "namespaces"} <= {r["resource"] for r in core["versions"][0]["resources"]}
    assert _discovery(served, "application/json", "/api")[1]["kind"] == "APIVersions"
    assert _discovery(served, aggregated, "/api/v1")[1]["kind"] == "APIResourceList"
