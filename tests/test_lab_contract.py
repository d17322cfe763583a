"""One conformance suite for the ``Lab`` contract (labkit.contract), run on every backend it can reach.

The signatures are checked on every backend class; the behaviour on each backend that runs
here: the simulator always, the cluster backend on a served simulator where one can be
started, labkit's real node when it runs, kind where Docker and kind exist (LABKIT_KIND_TESTS=1).
Error cases are asserted by class and whole message, the same constants for every backend, so
a backend whose wording or class drifts fails here.
"""

from __future__ import annotations

import inspect
import os
import shutil
from pathlib import Path

import pytest

from labkit.cluster import ClusterLab
from labkit.contract import CLOSED, DEFAULT_TIMEOUT_S, Lab
from labkit.errors import InvalidInput, LabkitError, NotFound, WaitTimeout, WillNeverHappen
from labkit.kind import KindLab
from labkit.printers import PodTable
from labkit.sim import SimLab
from labkit.trace import Trace

MANIFESTS = Path(__file__).resolve().parents[1] / "manifests"
PROTOCOL_METHODS = [name for name, member in vars(Lab).items()
                    if callable(member) and not name.startswith("_") or name in ("__enter__", "__exit__")]


def _shape(fn) -> list[tuple[str, object, object]]:
    return [(p.name, p.kind, p.default) for p in inspect.signature(fn).parameters.values()
            if p.kind is not inspect.Parameter.VAR_KEYWORD or p.name != "ignored_options"]


@pytest.mark.parametrize("cls", [SimLab, ClusterLab, KindLab], ids=lambda c: c.__name__)
@pytest.mark.parametrize("method", PROTOCOL_METHODS)
def test_every_backend_has_the_contracts_signature(cls, method):
    assert _shape(getattr(cls, method)) == _shape(getattr(Lab, method)), \
        f"{cls.__name__}.{method}{inspect.signature(getattr(cls, method))} != Lab.{method}{inspect.signature(getattr(Lab, method))}"


def test_the_contract_lists_what_notebooks_use():
    assert {"apply", "delete", "wait", "sleep", "pods", "logs", "set_image", "trace", "add_listener",
            "remove_listener", "reset", "close"} <= set(PROTOCOL_METHODS)
    assert inspect.signature(Lab.wait).parameters["timeout"].default == DEFAULT_TIMEOUT_S


# -- behaviour, per reachable backend -----------------------------------------------------------

def _kind_missing() -> str | None:
    if os.environ.get("LABKIT_KIND_TESTS") != "1":
        return "set LABKIT_KIND_TESTS=1 to create a real kind cluster (takes minutes)"
    for tool in ("docker", "kind", "kubectl"):
        if shutil.which(tool) is None:
            return f"{tool} not found on PATH"
    return None


def _open(backend: str, request) -> Lab:
    if backend == "node":
        from labkit.node import why_not_running

        reason = why_not_running()
        if reason:
            pytest.skip(reason)
        from labkit.node.lab import NodeLab

        return NodeLab(keep_cluster=True, quiet=True)
    if backend == "sim":
        return SimLab("1.29", quiet=True)
    if backend == "served":  # the cluster backend on the session's served simulator (tests/conftest.py)
        return ClusterLab("1.29", kubeconfig=request.getfixturevalue("served").kubeconfig, quiet=True)
    reason = _kind_missing()
    if reason:
        pytest.skip(reason)
    return KindLab("1.29", cluster_name="labkit-contract", keep_cluster=False, quiet=True)


@pytest.fixture(params=["sim", "served", "kind", "node"])
def lab(request):
    lab = _open(request.param, request)
    try:
        yield lab
    finally:
        lab.close()


def test_a_lab_is_a_lab(lab):
    assert isinstance(lab, Lab)
    assert lab.backend in ("sim", "kind", "cluster", "node") and lab.why
    if lab.backend == "node":  # the node runs the release it was built from
        assert lab.kubernetes_version == lab.node.pins.kubernetes.lstrip("v")
    else:
        assert lab.kubernetes_version.startswith("1.29")


def test_apply_wait_trace_delete(lab):
    assert lab.apply(MANIFESTS / "job-sidecar.yaml") == ["job.batch/sidecar-job created"]
    waited = lab.wait("job/sidecar-job", "Complete", timeout=180)
    assert isinstance(waited, float) and waited > 0
    table = lab.pods()
    assert isinstance(table, PodTable) and len(table) == 1 and table[0].status == "Completed"
    trace = lab.trace()
    assert isinstance(trace, Trace)
    [pod] = trace.pods
    assert pod.owner == {"kind": "Job", "name": "sidecar-job"}
    assert [(c.name, c.role) for c in pod.containers] == [("sws-init", "sidecar"), ("sidecar-job", "app")]
    lines = lab.delete("job/sidecar-job", timeout=120)
    assert lines == ['job.batch "sidecar-job" deleted']
    assert lab.wait("job/sidecar-job", "Deleted", timeout=5) == 0.0


def test_wait_refuses_what_it_cannot_mean(lab):
    lab.apply(MANIFESTS / "job-sidecar.yaml")
    with pytest.raises(InvalidInput, match="cannot wait for 'Available' on a job"):
        lab.wait("job/sidecar-job", "Available")
    with pytest.raises(InvalidInput, match="NotFound"):
        lab.wait("job/no-such-job", "Complete", timeout=5)
    with pytest.raises(InvalidInput, match="not 'service'"):
        lab.wait("service/x", "Ready")
    lab.wait("job/sidecar-job", "Complete", timeout=180)
    with pytest.raises(WillNeverHappen) as info:
        lab.wait("job/sidecar-job", "Failed", timeout=30)
    assert str(info.value).startswith("job/sidecar-job will not become Failed: the Job is Complete")
    [pod] = [row.name for row in lab.pods()]
    assert lab.wait(f"pod/{pod}", "Succeeded", timeout=5) == 0.0      # held at the first look
    with pytest.raises(WillNeverHappen) as info:
        lab.wait(f"pod/{pod}", "Ready", timeout=30)
    assert str(info.value).splitlines()[0] == (
        f"pod/{pod} will not become Ready: the pod already finished (phase Succeeded) without being Ready; "
        "a fast Job pod can skip Ready entirely, so wait for job/NAME Complete instead")


def test_listeners_and_logs(lab):
    seen: list[int] = []
    unsubscribe = lab.add_listener(lambda trace: seen.append(len(trace.events)))
    assert callable(unsubscribe)
    lab.apply(MANIFESTS / "job-sidecar.yaml")
    lab.wait("job/sidecar-job", "Complete", timeout=180)
    assert seen and seen[-1] > 0
    unsubscribe()
    count = len(seen)
    lab.sleep(2)
    assert len(seen) == count
    lab.remove_listener(print)          # not registered: no error
    assert isinstance(lab.logs("job/sidecar-job"), str)


def test_set_image_rolls_a_deployment(lab):
    lab.apply(MANIFESTS / "deployment-sidecar.yaml")
    lab.wait("deployment/sidecar-deploy", "Available", timeout=180)
    assert lab.set_image("deployment/sidecar-deploy", "sws-init", "joseluisq/static-web-server:2.45.0") == \
        ["deployment.apps/sidecar-deploy image updated"]
    with pytest.raises(InvalidInput, match="a Job's template cannot change"):
        lab.set_image("job/x", "c", "i")


# -- error cases and edge paths: the same class and message on every backend -------------------
SLEEPER = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "sleeper", "labels": {"app": "contract"}},
           "spec": {"terminationGracePeriodSeconds": 1,
                    "containers": [{"name": "main", "image": "alpine:3.20", "command": ["sleep", "3600"]}]}}


def test_delete_by_label_waits_until_the_pods_are_gone(lab):
    assert lab.apply([SLEEPER]) == ["pod/sleeper created"]
    assert lab.wait("pods -l app=contract", "Ready", timeout=120) >= 0
    with pytest.raises(WaitTimeout) as info:
        lab.wait("pod/sleeper", "Succeeded", timeout=2)
    assert str(info.value).splitlines()[0] == "timed out after 2s waiting for condition Succeeded on pod/sleeper"
    with pytest.raises(InvalidInput) as info:
        lab.logs("sleeper", previous=True)
    assert str(info.value) == 'Error from server (BadRequest): previous terminated container "main" in pod "sleeper" not found'
    assert lab.delete("pods -l app=contract", timeout=60) == ['pod "sleeper" deleted']
    assert [row.name for row in lab.pods()] == []
    assert lab.delete("pods -l app=contract") == []
    assert lab.wait("pods -l app=contract", "Deleted", timeout=5) >= 0
    with pytest.raises(NotFound) as info:
        lab.wait("pods -l app=contract", "Ready", timeout=5)
    assert str(info.value) == "ref: no matching resources found for 'pods -l app=contract'"


def test_a_missing_object_is_not_found_on_every_call(lab):
    calls = [(lambda: lab.wait("job/nope", "Complete", timeout=5), 'jobs.batch "nope"'),
             (lambda: lab.delete("job/nope", timeout=5), 'jobs.batch "nope"'),
             (lambda: lab.delete("deploy/nope", grace_period=0, wait=False), 'deployments.apps "nope"'),
             (lambda: lab.logs("nope"), 'pods "nope"'),
             (lambda: lab.logs("job/nope"), 'jobs.batch "nope"'),
             (lambda: lab.set_image("pod/nope", "c", "alpine:3.21"), 'pods "nope"')]
    for call, named in calls:
        with pytest.raises(NotFound) as info:
            call()
        assert str(info.value) == f"ref: Error from server (NotFound): {named} not found"
        assert info.value.status["reason"] == "NotFound" and info.value.status["code"] == 404
    assert lab.wait("job/nope", "Deleted", timeout=5) == 0.0


BAD_ARGUMENTS = [
    ("sleep", (-1,), {}, "seconds: expected a number of seconds >= 0, got -1"),
    ("sleep", ("2",), {}, "seconds: expected a number of seconds >= 0, got '2'"),
    ("delete", ("job/x",), {"grace_period": -3}, "grace_period: expected a whole number of seconds >= 0, got -3"),
    ("delete", ("job/x",), {"grace_period": 1.5}, "grace_period: expected a whole number of seconds >= 0, got 1.5"),
    ("delete", ("job/x",), {"timeout": -1}, "timeout: expected a number of seconds >= 0, got -1"),
    ("wait", ("job/x", "Complete"), {"timeout": float("nan")}, "timeout: expected a number of seconds >= 0, got nan"),
    ("wait", ("job/x", "Available"), {},
     "condition: cannot wait for 'Available' on a job (choose one of Complete, Failed, Deleted)"),
    ("wait", ("service/x", "Ready"), {}, "ref: labkit handles pods, Jobs and Deployments, not 'service' (in 'service/x')"),
    ("wait", ("",), {"condition": "Ready"}, "ref: expected a reference like job/sidecar-job or 'pods -l app=x', got ''"),
    ("logs", ("pods -l app=x",), {}, "pod: logs takes one pod, job/NAME or deployment/NAME, not a selector ('pods -l app=x')"),
    ("set_image", ("job/x", "c", "i"), {},
     "ref: set image takes pod/NAME or deployment/NAME, not 'job/x' (a Job's template cannot change)"),
]


def test_invalid_arguments_are_refused_before_anything_is_sent(lab):
    for method, args, kwargs, message in BAD_ARGUMENTS:
        with pytest.raises(InvalidInput) as info:
            getattr(lab, method)(*args, **kwargs)
        assert (type(info.value), str(info.value)) == (InvalidInput, message), (method, args, kwargs)


def test_a_closed_lab_refuses_every_call_but_keeps_its_trace(lab):
    lab.close()
    lab.close()                          # idempotent
    calls = [lambda: lab.apply([SLEEPER]), lambda: lab.wait("job/x", "Complete"), lambda: lab.delete("job/x"),
             lambda: lab.sleep(1), lab.pods, lambda: lab.logs("x"), lambda: lab.set_image("pod/x", "c", "i"),
             lab.reset]
    for call in calls:
        with pytest.raises(LabkitError) as info:
            call()
        assert (type(info.value), str(info.value)) == (LabkitError, CLOSED)
    assert isinstance(lab.trace(), Trace)


CRASHER_RUN_S = 15   # long enough that the second run is surely running when first looked at
CRASHER = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "crasher"},
           "spec": {"terminationGracePeriodSeconds": 1,
                    "containers": [{"name": "main", "image": "alpine:3.20",
                                    "command": ["sh", "-c", f"echo ran; sleep {CRASHER_RUN_S}; exit 1"]}]}}


def test_logs_previous_reads_the_run_the_status_shows_as_last_state(lab, tmp_path):
    """While the second run runs (about 16-31 s), --previous reads the first. Once a later run has
    died, the kubelet has already deleted the container the status still names as lastState (it
    keeps only the newest exited one, cleanUpContainersInPod), and answers that it cannot retrieve
    its logs, until the status shows CrashLoopBackOff (recorded so on labkit's node, kubelet
    v1.37.2). That window is about 14 simulated seconds: at the session's pace 10 a wall second
    and a half, less than a busy CI machine took for two kubectl calls, so the served simulator
    runs this test at pace 2 (seven wall seconds). --previous is read between two looks at the
    status, and the answer counts when both looks show the window (STATUS Error, the same
    restarts); else the next death's window is taken. No sleep decides it."""
    if lab.backend == "cluster":
        from labkit.serve import serve

        lab.close()
        with serve("1.29", pace=2.0, kubeconfig=tmp_path / "kubeconfig") as server, \
                ClusterLab("1.29", kubeconfig=server.kubeconfig, quiet=True) as slower:
            _previous_logs(slower)
        return
    _previous_logs(lab)


def _previous_logs(lab) -> None:
    lab.apply([CRASHER])
    lab.sleep(CRASHER_RUN_S + 7)
    [row] = lab.pods()
    assert row.restarts == 1 and row.status == "Running", row
    assert lab.logs("crasher", previous=True).splitlines() == ["ran"]
    for _ in range(6):
        before = _next_death(lab)
        answer = lab.logs("crasher", previous=True)
        [after] = lab.pods()
        if (after.status, after.restarts) == (before.status, before.restarts):
            assert answer.startswith("unable to retrieve container logs for "), (before, answer)
            return
    pytest.fail("six deaths of the container and no --previous read between two looks that showed its window")


def _next_death(lab):
    """The pod's row once its status shows a run that has died (STATUS Error) after the first."""
    for _ in range(400):
        [row] = lab.pods()
        if row.status == "Error" and row.restarts >= 1:
            return row
        lab.sleep(0.5)
    raise AssertionError(f"the container did not die again within 200 s: {row}")
