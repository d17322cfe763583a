"""The one home of each rule: references, kubectl lines, sidecars, exit codes, wait conditions."""

from __future__ import annotations

import pytest

from labkit.errors import InvalidInput
from labkit.objects import container_roles, is_sidecar, normal_stop_exit, wait_state
from labkit.refs import Ref, check_condition, parse_ref, wait_args


@pytest.mark.parametrize("text, expected", [
    ("job/sidecar-job", Ref("Job", "sidecar-job")),
    ("job.batch/x", Ref("Job", "x")),
    ("deploy/sidecar-deploy", Ref("Deployment", "sidecar-deploy")),
    ("deployment.apps/x", Ref("Deployment", "x")),
    ("po/p", Ref("Pod", "p")),
    ("sidecar-job-7xk2p", Ref("Pod", "sidecar-job-7xk2p")),
    ("pods -l app=sidecar,tier=web", Ref("Pod", None, {"app": "sidecar", "tier": "web"})),
])
def test_parse_ref(text, expected):
    assert parse_ref(text) == expected


@pytest.mark.parametrize("text, message", [
    ("", "expected a reference"),
    ("service/x", "not 'service'"),
    ("job/", "KIND/NAME"),
    ("jobs -l app=x", "label selectors work on pods"),
    ("pods -l app", "key=value"),
    ("a b", "cannot read the reference"),
])
def test_parse_ref_refuses(text, message):
    with pytest.raises(InvalidInput, match=message):
        parse_ref(text)


def test_wait_args_are_the_kubectl_line():
    assert wait_args(parse_ref("job/sidecar-job"), "Complete", 120) == \
        ["wait", "job/sidecar-job", "--for=condition=Complete", "--timeout=120s"]
    assert wait_args(parse_ref("pod/p"), "Succeeded", 60) == \
        ["wait", "pod/p", "--for=jsonpath={.status.phase}=Succeeded", "--timeout=60s"]
    assert wait_args(parse_ref("pods -l app=x"), "Deleted", 30.5) == \
        ["wait", "pods", "-l", "app=x", "--for=delete", "--timeout=30.5s"]


def test_check_condition_names_the_choices():
    with pytest.raises(InvalidInput, match="cannot wait for 'Ready' on a job.*Complete, Failed, Deleted"):
        check_condition(parse_ref("job/x"), "Ready")
    check_condition(parse_ref("deploy/x"), "Available")


def test_sidecar_and_roles():
    assert is_sidecar({"restartPolicy": "Always"})
    assert not is_sidecar({"restartPolicy": "Never"}) and not is_sidecar({}) and not is_sidecar(None)
    assert container_roles({"initContainers": [{"name": "setup"}, {"name": "proxy", "restartPolicy": "Always"}],
                            "containers": [{"name": "app"}]}) == \
        [("setup", "init"), ("proxy", "sidecar"), ("app", "app")]


@pytest.mark.parametrize("code, signal, normal", [
    (143, "SIGTERM", True), (137, "SIGTERM", True), (131, "SIGQUIT", True), (137, "SIGQUIT", True),
    (143, "SIGQUIT", False), (131, "SIGTERM", False), (1, "SIGTERM", False), (0, "SIGTERM", False),
    (None, None, False), (143, None, True),
])
def test_normal_stop_exit(code, signal, normal):
    assert normal_stop_exit(code, signal) is normal


def _conditions(**flags):
    return {"status": {"conditions": [{"type": k, "status": "True" if v else "False", "reason": "R", "message": "m"}
                                      for k, v in flags.items()]}}


def test_wait_state_jobs_and_deployments():
    assert wait_state("Job", "Complete", _conditions(Complete=True)) == (True, None)
    assert wait_state("Job", "Complete", _conditions(Complete=False)) == (False, None)
    assert wait_state("Job", "Complete", _conditions(Failed=True)) == (False, "the Job is Failed (R: m)")
    assert wait_state("Job", "Failed", _conditions(Failed=True)) == (True, None)
    assert wait_state("Deployment", "Available", _conditions(Available=True)) == (True, None)
    assert wait_state("Deployment", "Available", None) == (False, None)
    assert wait_state("Deployment", "Deleted", None) == (True, None)
    assert wait_state("Job", "Deleted", {}) == (False, None)


def test_wait_state_pods():
    running = {"status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}}
    done = {"status": {"phase": "Succeeded", "conditions": [{"type": "Ready", "status": "False"}]}}
    assert wait_state("Pod", "Ready", running) == (True, None)
    assert wait_state("Pod", "Running", running) == (True, None)
    assert wait_state("Pod", "Succeeded", running) == (False, None)
    assert wait_state("Pod", "Succeeded", done) == (True, None)
    met, why = wait_state("Pod", "Ready", done)
    assert not met and "without being Ready" in why and "wait for job/NAME Complete" in why
    assert wait_state("Pod", "Failed", done) == (False, "the pod finished with phase Succeeded")


def test_kubectl_wait_timeout_message_is_kubectls_own():
    """kubectl v0.37.2 pkg/cmd/wait/condition.go: ErrWaitTimeout wrapped as "%w on %s/%s"."""
    from labkit.refs import parse_ref, wait_timeout_message

    assert wait_timeout_message(parse_ref("pod/x")) == "error: timed out waiting for the condition on pods/x"
    assert wait_timeout_message(parse_ref("job/j")) == "error: timed out waiting for the condition on jobs/j"
    assert wait_timeout_message(parse_ref("pods -l app=x")) == "error: timed out waiting for the condition"
