"""ClusterLab against an existing context, tested by the kubectl commands it sends.

A scripted runner records every argv and answers in kubectl's own output formats (JSON from
tests/data/watch for pods). No cluster is involved.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from labkit.cluster import ClusterLab
from labkit.errors import (BackendUnavailable, Invalid, InvalidInput, LabkitError, NotFound, ToolError,
                           WaitTimeout, WillNeverHappen)

WATCH = Path(__file__).parent / "data" / "watch"
FLAGS = ("--kubeconfig", "--context", "--namespace")


def done(stdout="", stderr="", code=0):
    return subprocess.CompletedProcess([], code, stdout, stderr)


def core(argv):
    out, skip = [], False
    for part in argv:
        if skip:
            skip = False
        elif part in FLAGS:
            skip = True
        else:
            out.append(part)
    return tuple(out)


def objects(name, kind):
    data = json.loads((WATCH / name).read_text())
    return [i["event"]["object"] for i in data["stream"] if i["event"]["object"]["kind"] == kind]


class Kubectl:
    """Answers kubectl commands: ``answers`` maps a command prefix (without global flags) to replies."""

    def __init__(self, answers=None, server="v1.29.14", namespace_exists=False):
        self.answers = {tuple(k): (list(v) if isinstance(v, list) else [v]) for k, v in (answers or {}).items()}
        self.server, self.namespace_exists = server, namespace_exists
        self.calls = []

    def commands(self):
        return [core(c["argv"]) for c in self.calls]

    def __call__(self, argv, *, env=None, timeout=None, input=None):
        assert argv[0] == "kubectl", argv
        self.calls.append({"argv": list(argv), "env": env, "input": input})
        key = core(argv)[1:]
        for prefix, replies in sorted(self.answers.items(), key=lambda kv: -len(kv[0])):
            if key[:len(prefix)] == prefix:
                reply = replies.pop(0) if len(replies) > 1 else replies[0]
                if isinstance(reply, BaseException):
                    raise reply
                return subprocess.CompletedProcess(argv, reply.returncode, reply.stdout, reply.stderr)
        if key[:2] == ("config", "current-context"):
            return done("kind-sidecar-lab\n")
        if key[:1] == ("version",):
            return done(json.dumps({"clientVersion": {"gitVersion": "v1.32.4"}, "serverVersion": {"gitVersion": self.server}}))
        if key[:2] == ("get", "namespace"):
            return done(json.dumps({"kind": "Namespace", "metadata": {"name": key[2]}}) if self.namespace_exists else "")
        if key[:2] == ("create", "namespace"):
            return done(f"namespace/{key[2]} created\n")
        if key[:2] == ("label", "namespace"):
            return done(f"namespace/{key[2]} labeled\n")
        if key[:2] == ("get", "serviceaccount"):
            return done(json.dumps({"kind": "ServiceAccount", "metadata": {"name": "default"}}))
        if key[:2] == ("delete", "namespace"):
            return done(f'namespace "{key[2]}" deleted\n')
        if key[:2] == ("get", "pods"):
            return done(json.dumps({"kind": "List", "items": []}))
        if key[:2] == ("get", "events"):
            return done(json.dumps({"kind": "List", "items": []}))
        raise AssertionError(f"unexpected command {argv}")


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.now += seconds


OPENED: list[ClusterLab] = []


@pytest.fixture(autouse=True)
def close_labs():
    """Close what a test left open, so no lab is closed later by atexit."""
    yield
    while OPENED:
        lab = OPENED.pop()
        lab.quiet = True
        lab.kubectl.quiet = True
        lab.close()


def open_lab(runner, **options):
    clock = Clock()
    options.setdefault("context", "prod")
    lab = ClusterLab(runner=runner, record=False, sleep=clock.sleep, clock=clock, wall_clock=clock, **options)
    OPENED.append(lab)
    return lab


def test_own_namespace_is_made_shown_and_deleted_and_the_cluster_is_left_alone(capsys):
    runner = Kubectl()
    lab = open_lab(runner)
    namespace = lab.namespace
    assert namespace.startswith("labkit-") and len(namespace) == len("labkit-") + 5
    lab.close()
    commands = runner.commands()
    assert ("kubectl", "create", "namespace", namespace) in commands
    assert commands[-1] == ("kubectl", "delete", "namespace", namespace, "--wait=false")
    for call in runner.calls:  # the context is pinned; kubeconfig comes from the user's environment
        assert call["argv"][1:3] == ["--context", "prod"] and "--kubeconfig" not in call["argv"]
    assert not any(c[1] == "config" for c in commands)  # never reads or changes the user's contexts here
    out = capsys.readouterr().out
    assert f"$ kubectl create namespace {namespace}\n" in out
    assert f"$ kubectl delete namespace {namespace} --wait=false\n" in out
    assert "runs against context prod" in out


def test_current_context_is_read_once_and_pinned():
    runner = Kubectl()
    lab = open_lab(runner, context=None, quiet=True)
    assert lab.context == "kind-sidecar-lab"
    assert runner.commands()[0] == ("kubectl", "config", "current-context")
    assert all(c["argv"][1:3] == ["--context", "kind-sidecar-lab"] for c in runner.calls[1:])
    lab.close()


def test_unreachable_cluster_is_backend_unavailable_with_the_command():
    refused = done("", "The connection to the server 127.0.0.1:6443 was refused - did you specify the right host or port?\n", 1)
    with pytest.raises(BackendUnavailable, match=r"(?s)cannot reach the cluster of context 'prod'.*was refused") as info:
        open_lab(Kubectl({("version",): refused}), quiet=True)
    assert "kubectl --context prod version -o json" in str(info.value)


def test_refuses_a_namespace_it_did_not_create():
    runner = Kubectl(namespace_exists=True)
    with pytest.raises(InvalidInput, match="already exists and labkit did not create it") as info:
        open_lab(runner, namespace="team-a", quiet=True)
    assert info.value.field == "namespace"
    assert not [c for c in runner.commands() if c[1] in ("create", "delete", "label")]


def test_in_an_allowed_existing_namespace_only_what_was_applied_is_deleted():
    applied = done("job.batch/sidecar-job created\nconfigmap/settings unchanged\n")
    runner = Kubectl({("apply",): applied, ("delete",): done("deleted\n")}, namespace_exists=True)
    lab = open_lab(runner, namespace="team-a", allow_existing_namespace=True, quiet=True)
    lab.apply("kind: Job\n")
    lab.close()
    deletes = [c for c in runner.commands() if c[1] == "delete"]
    assert deletes == [("kubectl", "delete", "configmap/settings", "--ignore-not-found", "--wait=false"),
                       ("kubectl", "delete", "job.batch/sidecar-job", "--ignore-not-found", "--wait=false")]
    assert all(c["argv"][3:5] == ["--namespace", "team-a"] for c in runner.calls if core(c["argv"])[1] == "delete")


def test_kubeconfig_file_is_passed_explicitly(tmp_path):
    kubeconfig = tmp_path / "config"
    kubeconfig.write_text("apiVersion: v1\nkind: Config\n")
    runner = Kubectl()
    before = dict(os.environ)
    lab = open_lab(runner, kubeconfig=kubeconfig, quiet=True)
    lab.close()
    for call in runner.calls:
        assert call["argv"][1:3] == ["--kubeconfig", str(kubeconfig)]
        assert call["env"]["KUBECONFIG"] == str(kubeconfig)
    assert dict(os.environ) == before
    with pytest.raises(InvalidInput, match="no such file"):
        open_lab(Kubectl(), kubeconfig=tmp_path / "missing")


def test_other_version_is_reported_and_gates_that_do_not_apply_are_dropped(capsys):
    # the gate was removed in 1.37 (on 1.36 it still exists, locked on, and would be kept)
    lab = open_lab(Kubectl(server="v1.37.1"), k8s_version="1.28", feature_gates={"SidecarContainers": True})
    out = capsys.readouterr().out
    assert "Kubernetes 1.28 was asked for, but context prod runs 1.37.1" in out
    assert lab.kubernetes_version == "1.37.1" and lab.feature_gates == {}
    lab.close()


def job(conditions):
    return done(json.dumps({"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "sidecar-job"},
                            "status": {"conditions": conditions}}))


COMPLETE = [{"type": "Complete", "status": "True", "reason": "CompletionsReached"}]
FAILED = [{"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded",
           "message": "Job has reached the specified backoff limit"}]


def test_wait_polls_until_the_job_is_complete(capsys):
    runner = Kubectl({("get", "job/sidecar-job"): [job([]), job([]), job(COMPLETE)]})
    lab = open_lab(runner)
    capsys.readouterr()
    lab.wait("job/sidecar-job", "Complete", timeout=120)
    polls = [c for c in runner.commands() if c[1:3] == ("get", "job/sidecar-job")]
    assert polls[0] == ("kubectl", "get", "job/sidecar-job", "--ignore-not-found", "-o", "json") and len(polls) == 3
    assert capsys.readouterr().out == (f"$ kubectl wait job/sidecar-job --for=condition=Complete --timeout=120s "
                                       f"-n {lab.namespace}\njob.batch/sidecar-job condition met\n")


class ChangingRecorder:
    """A recorder whose watches take one change while each wait for a change runs."""

    def __init__(self, clock):
        self.clock, self.taken, self.asked = clock, 0, []

    def changes(self):
        return self.taken

    def wait_for_change(self, after, timeout):
        self.asked.append((after, timeout))
        self.clock.now += 0.01
        self.taken += 1
        return True

    def has_taken(self, kind, name, resource_version, timeout):
        return True


def test_while_recording_a_wait_looks_again_on_each_change_instead_of_polling():
    """kubectl wait watches; so does this wait: it looks again as soon as the recorder's watches
    took a change made after its last look began, not on a fixed poll (a real Deployment's delete,
    5 s after Available, came up to 0.75 s late with polls of 0.5 s)."""
    runner = Kubectl({("get", "job/sidecar-job"): [job([]), job([]), job(COMPLETE)]})
    lab = open_lab(runner, quiet=True)
    start = lab.clock()
    lab._recorder = recorder = ChangingRecorder(lab.clock)
    try:
        waited = lab.wait("job/sidecar-job", "Complete", timeout=120)
    finally:
        lab._recorder = None
    assert len([c for c in runner.commands() if c[1:3] == ("get", "job/sidecar-job")]) == 3
    assert [after for after, _ in recorder.asked] == [0, 1]      # each wait: changes after the count before the last look
    assert all(timeout <= ClusterLab.WATCHED_POLL_S for _, timeout in recorder.asked)
    assert waited == pytest.approx(0.02) and lab.clock() - start == pytest.approx(0.02)   # no poll slept


def test_a_met_wait_holds_until_the_recorder_has_what_it_read(monkeypatch):
    """The wait reads with kubectl and the trace comes from a watch, which can be behind: a trace
    taken right after a wait missed the Job's Complete once (notebook 04 on a busy machine). The
    wait hands what met its condition to the transport, which holds until its watches have it."""
    runner = Kubectl({("get", "job/sidecar-job"): [job([]), job(COMPLETE)]})
    lab = open_lab(runner, quiet=True)
    handed: list[dict] = []
    monkeypatch.setattr(lab, "_recorded", handed.extend)
    lab.wait("job/sidecar-job", "Complete", timeout=120)
    assert [(o["kind"], o["metadata"]["name"], o["status"]["conditions"]) for o in handed] == [
        ("Job", "sidecar-job", COMPLETE)]


def test_wait_for_complete_stops_at_once_when_the_job_failed():
    lab = open_lab(Kubectl({("get", "job/sidecar-job"): job(FAILED)}), quiet=True)
    with pytest.raises(WillNeverHappen, match="will not become Complete: the Job is Failed .BackoffLimitExceeded"):
        lab.wait("job/sidecar-job", "Complete")


def test_wait_timeout_tells_the_pods_story():
    pods = objects("job-sidecar-1.29.json", "Pod")
    events = objects("job-sidecar-1.29.json", "Event")
    runner = Kubectl({("get", "job/sidecar-job"): job([]),
                      ("get", "pods"): done(json.dumps({"kind": "List", "items": [pods[3]]})),
                      ("get", "events"): done(json.dumps({"kind": "List", "items": events}))})
    lab = open_lab(runner, quiet=True)
    with pytest.raises(WaitTimeout) as info:
        lab.wait("job/sidecar-job", "Complete", timeout=3)
    text = str(info.value)
    assert text.startswith("timed out after 3s waiting for condition Complete on job/sidecar-job\n")
    assert "Initialized=False (ContainersNotInitialized" in text
    assert "sws-init (sidecar): running since 2025-06-01T10:00:03Z, started=false" in text
    assert "Started pod/sidecar-job-7xk2p [spec.initContainers{sws-init}]: Started container sws-init" in text


def test_waiting_for_a_finished_pod_to_be_ready_points_to_the_job():
    pod = objects("job-sidecar-1.29.json", "Pod")[-1]
    lab = open_lab(Kubectl({("get", "pod/x"): done(json.dumps(pod))}), quiet=True)
    with pytest.raises(WillNeverHappen, match="wait for job/NAME Complete instead"):
        lab.wait("pod/x", "Ready")
    lab.wait("pod/x", "Succeeded")


def test_wait_rejects_a_condition_the_kind_does_not_have():
    lab = open_lab(Kubectl(), quiet=True)
    with pytest.raises(InvalidInput, match="cannot wait for 'Available' on a job"):
        lab.wait("job/sidecar-job", "Available")
    with pytest.raises(InvalidInput, match="pods, Jobs and Deployments"):
        lab.wait("statefulset/db", "Ready")


def test_delete_a_deployment_in_the_foreground_with_a_grace_period_for_its_pods(capsys):
    deployment = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "sidecar-deploy"},
                  "spec": {"selector": {"matchLabels": {"app": "sidecar-deploy"}}}}
    runner = Kubectl({("get", "deployment/sidecar-deploy"): [done(json.dumps(deployment))] * 3 + [done("")],
                      ("delete", "deployment/sidecar-deploy"): done('deployment.apps "sidecar-deploy" deleted\n'),
                      ("delete", "pods"): done('pod "sidecar-deploy-6d9f8c7b5d-x4k2p" deleted\n')})
    lab = open_lab(runner)
    capsys.readouterr()
    setup = len(runner.calls)
    lines = lab.delete("deployment/sidecar-deploy", grace_period=5, timeout=60)
    assert lines == ['deployment.apps "sidecar-deploy" deleted', 'pod "sidecar-deploy-6d9f8c7b5d-x4k2p" deleted']
    sent = runner.commands()[setup:]
    assert sent == [("kubectl", "get", "deployment/sidecar-deploy", "--ignore-not-found", "-o", "json"),
                    ("kubectl", "get", "deployment/sidecar-deploy", "--ignore-not-found", "-o", "json"),
                    ("kubectl", "delete", "deployment/sidecar-deploy", "--wait=false", "--cascade=foreground"),
                    ("kubectl", "delete", "pods", "-l", "app=sidecar-deploy", "--grace-period=5", "--wait=false"),
                    ("kubectl", "get", "deployment/sidecar-deploy", "--ignore-not-found", "-o", "json"),
                    ("kubectl", "get", "deployment/sidecar-deploy", "--ignore-not-found", "-o", "json")]
    # the learner reads the one command the call stands for, as on every backend, and kubectl's lines
    out = capsys.readouterr().out.splitlines()
    assert out == [f"$ kubectl delete deployment/sidecar-deploy --grace-period=5 -n {lab.namespace}", *lines]


def test_delete_a_pod_with_a_grace_period_without_waiting():
    runner = Kubectl({("delete", "pod/web"): done('pod "web" deleted\n'), ("get", "pod/web"): done(json.dumps({"kind": "Pod"}))})
    lab = open_lab(runner, quiet=True)
    lab.delete("pod/web", grace_period=0, wait=False)
    assert runner.commands()[-1] == ("kubectl", "delete", "pod/web", "--wait=false", "--grace-period=0", "--force")


def test_pods_is_kubectls_table(capsys):
    pods = objects("deployment-delete-sigkill-1.29.json", "Pod")[:1] + objects("job-sidecar-1.29.json", "Pod")[-1:]
    runner = Kubectl({("get", "pods"): done(json.dumps({"kind": "List", "items": pods}))})
    lab = open_lab(runner)
    capsys.readouterr()
    table = lab.pods()
    assert capsys.readouterr().out == f"$ kubectl get pods -n {lab.namespace}\n"
    assert [(r.name, r.ready, r.status) for r in table] == [("sidecar-deploy-6d9f8c7b5d-x4k2p", "2/2", "Running"),
                                                           ("sidecar-job-7xk2p", "0/2", "Completed")]
    assert str(table).splitlines()[0].split() == ["NAME", "READY", "STATUS", "RESTARTS", "AGE"]


def test_logs_and_set_image_commands():
    runner = Kubectl({("logs",): done("test\n"), ("set", "image"): done("deployment.apps/sidecar-deploy image updated\n"),
                      ("get", "job/sidecar-job"): done(json.dumps({"kind": "Job"})),
                      ("get", "deployment/sidecar-deploy"): done(json.dumps({"kind": "Deployment"}))})
    lab = open_lab(runner, quiet=True)
    assert lab.logs("job/sidecar-job", "sidecar-job") == "test\n"
    assert lab.set_image("deploy/sidecar-deploy", "sws-init", "joseluisq/static-web-server:2.43.0") == [
        "deployment.apps/sidecar-deploy image updated"]
    assert [c for c in runner.commands() if c[1] != "get"][-2:] == [
        ("kubectl", "logs", "job/sidecar-job", "-c", "sidecar-job"),
        ("kubectl", "set", "image", "deployment/sidecar-deploy", "sws-init=joseluisq/static-web-server:2.43.0")]


def test_a_refused_apply_raises_invalid_with_the_servers_causes():
    invalid = done("", 'The Job "sidecar-job" is invalid: spec.template.spec.initContainers[0].restartPolicy: '
                       'Unsupported value: "OnFailure": supported values: "Always"\n', 1)
    lab = open_lab(Kubectl({("apply",): invalid}), quiet=True)
    with pytest.raises(Invalid) as info:
        lab.apply("kind: Job\n")
    assert info.value.causes == [("spec.template.spec.initContainers[0].restartPolicy",
                                  'Unsupported value: "OnFailure": supported values: "Always"')]
    assert isinstance(info.value.__cause__, ToolError) and info.value.__cause__.command[-3:] == ["apply", "-f", "-"]


def test_kubectls_error_forms_become_typed_errors():
    from labkit.kubectl import api_error

    def error(stderr):
        return api_error(ToolError(["kubectl"], 1, "", stderr))

    several = error('The Pod "p" is invalid: \n* spec.containers[0].image: Required value\n'
                    '* spec.containers[0].name: Required value\n')
    assert isinstance(several, Invalid) and str(several) == (
        "spec.containers[0].image: Required value (and 1 more error)")
    assert several.causes == [("spec.containers[0].image", "Required value"),
                              ("spec.containers[0].name", "Required value")]
    missing = error('Error from server (NotFound): jobs.batch "nope" not found\n')
    assert type(missing) is NotFound and str(missing) == str(NotFound.of("Job", "nope"))
    bad = error('Error from server (BadRequest): previous terminated container "app" in pod "p" not found\n')
    assert type(bad) is InvalidInput and "BadRequest" in str(bad)
    other = ToolError(["kubectl"], 1, "", "error: You must be logged in to the server (Unauthorized)\n")
    assert api_error(other) is other


def test_reset_moves_to_a_fresh_namespace_and_close_is_final():
    runner = Kubectl()
    lab = open_lab(runner, quiet=True)
    first = lab.namespace
    lab.reset()
    assert lab.namespace != first and lab.namespace.startswith("labkit-")
    assert ("kubectl", "delete", "namespace", first, "--wait=false") in runner.commands()
    lab.close()
    lab.close()  # twice is fine
    assert runner.commands().count(("kubectl", "delete", "namespace", lab.namespace, "--wait=false")) == 1
    with pytest.raises(LabkitError, match="closed"):
        lab.pods()


def test_listeners_get_the_trace_and_can_unsubscribe(capsys):
    lab = open_lab(Kubectl(), quiet=True)
    got = []
    unsubscribe = lab.add_listener(got.append)
    lab.add_listener(lambda trace: 1 / 0)  # a broken listener does not stop the others
    lab._notify()
    assert len(got) == 1 and got[0].backend == "cluster" and got[0].kubernetes_version == "1.29.14"
    assert "ZeroDivisionError" in capsys.readouterr().err
    unsubscribe()
    lab._notify()
    assert len(got) == 1
    lab.close()
