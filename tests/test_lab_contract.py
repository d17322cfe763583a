"""One conformance suite for the ``Lab`` contract (labkit.contract), run on every backend it can reach.

The signatures are checked on every backend class; the behaviour on each backend that runs
here: the simulator always, the cluster backend on a served simulator where one can be
started, kind where Docker and kind exist (LABKIT_KIND_TESTS=1).
"""

from __future__ import annotations

import inspect
import os
import shutil
from pathlib import Path

import pytest

from labkit.cluster import ClusterLab
from labkit.contract import DEFAULT_TIMEOUT_S, Lab
from labkit.errors import InvalidInput, LabkitError
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
    with pytest.raises(LabkitError, match="will not become Failed: the Job is Complete"):
        lab.wait("job/sidecar-job", "Complete", timeout=180)
        lab.wait("job/sidecar-job", "Failed", timeout=30)


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
