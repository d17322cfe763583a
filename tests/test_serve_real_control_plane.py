"""``labkit serve --control-plane real``: the simulated kubelet under a real control plane (issue 18).

The kubectl scenarios run under it in tests/test_serve_as_cluster.py
(``test_scenario_under_the_real_control_plane``); here: the blog's lesson, what is the real API
server's own and what says it is simulated, the official client, and that it stops every process
it starts, on Ctrl-C, on SIGTERM, while starting and when the start fails. Skipped where labkit
node's build of a control plane is not here.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from test_serve_as_cluster import KUBECTL, ROOT, PACE, _real_control_plane_or_skip, real_server  # noqa: F401

pytestmark = pytest.mark.skipif(KUBECTL is None, reason="kubectl is not installed (pip install -e '.[test]')")


def kubectl(server, *args: str, input: str | None = None, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run([KUBECTL, *args], env=server.env, input=input, capture_output=True, text=True, timeout=180)
    if check:
        assert result.returncode == 0, (args, result.stdout, result.stderr)
    return result


def fresh_namespace(server) -> str:
    ns = f"lesson-{uuid.uuid4().hex[:5]}"
    kubectl(server, "create", "namespace", ns)
    deadline = time.monotonic() + 30
    while kubectl(server, "-n", ns, "get", "serviceaccount", "default", check=False).returncode:
        assert time.monotonic() < deadline, "the ServiceAccount controller never made 'default'"
        time.sleep(0.2)
    return ns


def started_at(pod: dict, container: str) -> str:
    statuses = pod["status"]["initContainerStatuses"] + pod["status"]["containerStatuses"]
    state = next(s for s in statuses if s["name"] == container)
    return (state["state"].get("running") or state["state"].get("terminated") or state["lastState"]["terminated"])["startedAt"]


def test_the_blogs_lesson_runs_with_the_real_controllers(real_server):
    """The Job and the Deployment with static-web-server as a sidecar (an init container with
    restartPolicy Always): the real Job and Deployment controllers make the pods, the real
    scheduler binds them to the simulated node, the simulated kubelet starts the sidecar first."""
    ns = fresh_namespace(real_server)
    for manifest in ("job-sidecar.yaml", "deployment-sidecar.yaml"):
        kubectl(real_server, "-n", ns, "apply", "-f", os.fspath(ROOT / "manifests" / manifest))
    kubectl(real_server, "-n", ns, "wait", "--for=condition=complete", "job/sidecar-job", "--timeout=120s")
    kubectl(real_server, "-n", ns, "rollout", "status", "deployment/sidecar-deploy", "--timeout=120s")
    pods = json.loads(kubectl(real_server, "-n", ns, "get", "pods", "-o", "json").stdout)["items"]
    job_pod = next(p for p in pods if p["metadata"]["name"].startswith("sidecar-job-"))
    # the real Job controller's pod: its labels and owner, and its finalizer handled (the Job completed)
    assert job_pod["metadata"]["labels"]["batch.kubernetes.io/job-name"] == "sidecar-job"
    assert job_pod["metadata"]["ownerReferences"][0]["kind"] == "Job"
    assert job_pod["spec"]["nodeName"] == "labkit-sim-node" and job_pod["status"]["phase"] == "Succeeded"
    assert started_at(job_pod, "sws-init") <= started_at(job_pod, "sidecar-job")
    events = json.loads(kubectl(real_server, "-n", ns, "get", "events", "-o", "json").stdout)["items"]
    by = {(e["source"].get("component"), e["reason"]) for e in events}
    # the real controllers' and scheduler's Events beside the simulated kubelet's
    assert {("job-controller", "Completed"), ("deployment-controller", "ScalingReplicaSet"),
            ("kubelet", "Started")} <= by
    assert any(e["reason"] == "Scheduled" for e in events)


def test_the_api_server_is_real_and_the_node_says_it_is_simulated(real_server):
    version = json.loads(kubectl(real_server, "version", "-o", "json").stdout)["serverVersion"]
    assert version["gitVersion"] == real_server.plane.version          # e.g. v1.37.2, no -labkit-sim
    node = json.loads(kubectl(real_server, "get", "node", "labkit-sim-node", "-o", "json").stdout)
    assert "simulated kubelet" in node["metadata"]["annotations"]["labkit.dev/simulated"]
    assert real_server.plane.version in node["metadata"]["annotations"]["labkit.dev/simulated"]
    assert node["status"]["nodeInfo"]["osImage"] == "labkit simulator (no OS)"
    assert node["status"]["nodeInfo"]["kubeletVersion"].endswith("-labkit-sim")
    from labkit.tools import check_served_simulator

    check = check_served_simulator(real_server.kubeconfig)       # labkit doctor's line
    assert check.usable and "node: labkit's simulated kubelet (a model, no containers run)" in check.detail, check
    assert "labkit serve --control-plane real" not in real_server.describe()      # it says what, not how
    assert real_server.describe().startswith("labkit's simulated kubelet (a model: no container runs)")
    # what only a real API server has: server-side field management, its own uids
    ns = fresh_namespace(real_server)
    kubectl(real_server, "-n", ns, "apply", "-f", os.fspath(ROOT / "manifests/job-sidecar.yaml"))
    job = json.loads(kubectl(real_server, "-n", ns, "get", "job", "sidecar-job", "-o", "json",
                                 "--show-managed-fields").stdout)
    assert {m["manager"] for m in job["metadata"]["managedFields"]} >= {"kubectl-client-side-apply"}
    kubectl(real_server, "-n", ns, "wait", "--for=condition=complete", "job/sidecar-job", "--timeout=120s")
    # the model ran the pod only: the Job is the real controller's, the model has no workload
    assert real_server.call(lambda: (len(real_server.world.namespaces[ns].cluster.workloads),
                                     len(real_server.world.namespaces[ns].cluster.pods))) == (0, 1)


def test_the_official_client_reads_what_the_simulated_kubelet_wrote(real_server):
    """Default deserialisation of pods whose status the simulated kubelet PATCHed."""
    from kubernetes import client, config

    api = client.CoreV1Api(config.new_client_from_config(config_file=str(real_server.kubeconfig)))
    ns = fresh_namespace(real_server)
    api.create_namespaced_pod(ns, {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "echo"}, "spec": {
        "restartPolicy": "Never",
        "containers": [{"name": "app", "image": "busybox:1.36", "command": ["sh", "-c", "echo one; echo two"]}]}})
    deadline = time.monotonic() + 60
    while (pod := api.read_namespaced_pod("echo", ns)).status.phase != "Succeeded":
        assert time.monotonic() < deadline, pod.status
        time.sleep(0.3)
    [status] = pod.status.container_statuses
    assert status.state.terminated.exit_code == 0 and status.container_id.startswith("labkit-sim://")
    # kubectl logs goes API server -> node proxy -> the simulated kubelet's containerLogs endpoint
    assert api.read_namespaced_pod_log("echo", ns) == "one\ntwo\n"


# -- the CLI: it says which, and it leaves no process behind ---------------------------------------------------
LABKIT = [sys.executable, "-m", "labkit"]


def children(pid: int) -> set[int]:
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                    found.add(int(entry.name))
            except (OSError, ValueError, IndexError):
                pass
    return found


def alive(pid: int) -> bool:
    try:
        return (Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]) != "Z"
    except OSError:
        return False


def launch(tmp_path, *extra: str) -> subprocess.Popen:
    return subprocess.Popen([*LABKIT, "serve", "--control-plane", "real", "--kubeconfig", str(tmp_path / "kc"), *extra],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def components_of(process: subprocess.Popen, count: int = 4, timeout: float = 60) -> set[int]:
    deadline = time.monotonic() + timeout
    while len(found := children(process.pid)) < count and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.1)
    return found


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_ctrl_c_or_sigterm_stops_every_process_it_started(tmp_path, sig):
    _real_control_plane_or_skip()
    process = launch(tmp_path, "--pace", "10")
    first = process.stdout.readline()
    assert first.startswith("labkit serve: labkit's simulated kubelet (a model: no container runs) as node "
                            "labkit-sim-node under a real control plane v"), first + process.stderr.read()
    started = components_of(process)
    assert len(started) == 4
    argv = [Path(f"/proc/{pid}/cmdline").read_text().split("\0") for pid in started]
    [data_dir] = [a.split("=", 1)[1] for args in argv for a in args if a.startswith("--data-dir=")]   # etcd's
    process.send_signal(sig)
    out, err = process.communicate(timeout=60)
    assert process.returncode == 0 and out.endswith("labkit serve: stopped\n"), (out, err)
    assert [pid for pid in started if alive(pid)] == []
    assert not Path(data_dir).parent.exists()      # its own folder, removed


def test_what_a_killed_serve_left_running_is_stopped_by_the_next_start(tmp_path):
    """SIGKILL gives labkit serve no chance to stop its components (they run in sessions of their
    own, so they go on); the next control plane to start stops them, removes their folder and says so."""
    _real_control_plane_or_skip()
    (tmp_path / "killed").mkdir()
    (tmp_path / "next").mkdir()
    killed = launch(tmp_path / "killed", "--pace", "10")
    assert "under a real control plane" in killed.stdout.readline()
    started = components_of(killed)
    argv = [Path(f"/proc/{pid}/cmdline").read_text().split("\0") for pid in started]
    [data_dir] = [a.split("=", 1)[1] for args in argv for a in args if a.startswith("--data-dir=")]   # etcd's
    killed.kill()
    killed.communicate(timeout=30)
    assert len(started) == 4 and all(alive(pid) for pid in started)      # left running
    following = launch(tmp_path / "next", "--pace", "10")
    try:
        assert "under a real control plane" in following.stdout.readline()
    finally:
        following.send_signal(signal.SIGINT)
        out, err = following.communicate(timeout=60)
    assert [pid for pid in started if alive(pid)] == []
    assert not Path(data_dir).parent.exists()
    assert f"stopped the control plane a labkit serve (pid {killed.pid}) left running when it was killed" in err, err


def test_ctrl_c_while_it_starts_stops_what_it_started(tmp_path):
    _real_control_plane_or_skip()
    process = launch(tmp_path)
    started = components_of(process, count=1)      # etcd (at least) is up, the API server is starting
    assert started
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=60)
    assert "stopped while starting" in out, (out, err)
    assert [pid for pid in started | children(process.pid) if alive(pid)] == []


def test_a_failed_start_stops_what_it_started_and_says_why(tmp_path):
    """The API server's port is taken (bound, nobody answering, so `labkit serve`'s own check for a
    server on --port lets it through): it exits; etcd, already started, is stopped; one clear error."""
    _real_control_plane_or_skip()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        port = taken.getsockname()[1]
        process = launch(tmp_path, "--port", str(port))
        started = components_of(process, count=2, timeout=30)
        out, err = process.communicate(timeout=120)
    assert process.returncode != 0 and "kube-apiserver exited while waiting for kube-apiserver /readyz" in err, (out, err)
    assert "Traceback" not in err
    assert [pid for pid in started if alive(pid)] == []


def test_real_without_its_binaries_is_a_clear_error(tmp_path):
    result = subprocess.run([*LABKIT, "serve", "--control-plane", "real", "--k8s-version", "1.29", "--kubeconfig",
                             str(tmp_path / "kc")], capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stderr
    assert "no control plane is pinned for Kubernetes 1.29" in result.stderr


def test_auto_says_which_it_chose(tmp_path):
    """auto: labkit's own API server where no control plane of that version is built, and it says why."""
    process = subprocess.Popen([*LABKIT, "serve", "--k8s-version", "1.29", "--kubeconfig", str(tmp_path / "kc")],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        first = process.stdout.readline()
    finally:
        process.send_signal(signal.SIGINT)
        process.communicate(timeout=30)
    assert first.startswith("labkit serve: the labkit simulator (Kubernetes v1.29.")
    assert "(no real control plane: no control plane is pinned for Kubernetes 1.29" in first


def test_a_trace_recorded_there_says_the_pods_were_simulated(real_server):
    """The API server's /version is a real one; the cluster backend reads the node's annotation,
    so the trace is still marked served_simulator and no view calls it a Kubernetes cluster."""
    from labkit.cluster import ClusterLab
    from labkit.plot import describe_run

    with ClusterLab(real_server.version, kubeconfig=real_server.kubeconfig, quiet=True) as lab:
        lab.apply(ROOT / "manifests/job-sidecar.yaml")
        lab.wait("job/sidecar-job", "Complete", timeout=120)
        trace = lab.trace()
    marked = trace.extra["served_simulator"]
    assert marked["server_version"] == real_server.plane.version and marked["pace"] == PACE
    assert marked["node"].startswith("labkit's simulated kubelet (a model, no containers run) under a real control plane")
    assert "labkit's served simulator" in describe_run(trace) and "Kubernetes cluster" not in describe_run(trace)
    assert {"Started", "Exited"} <= {e.type for e in trace.events}
