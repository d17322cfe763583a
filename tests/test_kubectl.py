"""labkit.kubectl: the commands it builds, its errors, and kubectl's get-pods table from real pod JSON."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
import yaml

from labkit.errors import BackendUnavailable, InvalidInput, ToolError
from labkit.kubectl import Kubectl, parse_server_version, run_tool
from labkit.manifests import manifest_input
from labkit.printers import (PodRow, PodTable, describe_pods, format_time, human_duration, parse_time, pod_row,
                             pod_status_text)

WATCH = Path(__file__).parent / "data" / "watch"


def stream(name: str) -> list[dict]:
    return json.loads((WATCH / name).read_text())["stream"]


def pod_snapshots(name: str) -> list[dict]:
    """The pod objects of a recorded watch stream, in order."""
    return [item["event"]["object"] for item in stream(name) if item["event"]["object"]["kind"] == "Pod"]


# -- the table ---------------------------------------------------------------------------
def test_pod_table_prints_like_kubectl():
    table = PodTable([("sidecar-deploy-6d9f8c7b5d-x4k2p", "2/2", "Running", 0, 75),
                      ("sidecar-job-7xk2p", "0/2", "Completed", 0, 3 * 60 + 5)])
    assert str(table) == (
        "NAME                              READY   STATUS      RESTARTS   AGE\n"
        "sidecar-deploy-6d9f8c7b5d-x4k2p   2/2     Running     0          75s\n"
        "sidecar-job-7xk2p                 0/2     Completed   0          3m5s")


def test_pod_table_restarts_column_and_minimum_width():
    table = PodTable([PodRow("p", "1/2", "Running", 1, 30, last_restart_age=5)])
    # tabwriter: a column is at least 6 wide including 3 spaces of padding; RESTARTS shows the last restart
    assert str(table).splitlines() == ["NAME   READY   STATUS    RESTARTS     AGE",
                                       "p      1/2     Running   1 (5s ago)   30s"]


def test_empty_pod_table_says_so_like_kubectl():
    assert str(PodTable([], namespace="labkit-abcde")) == "No resources found in labkit-abcde namespace."


@pytest.mark.parametrize("seconds, text", [
    (0, "0s"), (-1, "0s"), (-5, "<invalid>"), (42, "42s"), (119, "119s"), (120, "2m"), (125, "2m5s"),
    (599, "9m59s"), (600, "10m"), (3 * 3600 - 1, "179m"), (3 * 3600, "3h"), (3 * 3600 + 1800, "3h30m"),
    (8 * 3600, "8h"), (47 * 3600, "47h"), (48 * 3600, "2d"), (53 * 3600, "2d5h"), (8 * 86400, "8d"),
    (2 * 365 * 86400, "2y"), (2 * 365 * 86400 + 10 * 86400, "2y10d"), (9 * 365 * 86400, "9y")])
def test_human_duration_matches_apimachinery(seconds, text):
    assert human_duration(seconds) == text


# -- STATUS from real pod JSON ----------------------------------------------------------------
def test_job_pod_statuses_through_its_life():
    pods = pod_snapshots("job-sidecar-1.29.json")
    rows = [pod_row(p, now=parse_time("2025-06-01T10:00:20Z")) for p in pods]
    assert [(r.ready, r.status) for r in rows] == [
        ("0/2", "Pending"),          # just created
        ("0/2", "Pending"),          # scheduled
        ("0/2", "Init:0/1"),         # kubelet: sidecar waiting to start
        ("0/2", "Init:0/1"),         # sidecar running, startup probe not yet passed
        ("1/2", "PodInitializing"),  # sidecar started: the app may start
        ("1/2", "Completed"),        # the app finished; the sidecar still runs
        ("0/2", "Completed"),        # the kubelet stopped the sidecar: Succeeded
        ("0/2", "Completed"),        # the Job removed its finalizer
    ]
    assert rows[-1].age == 20 and rows[-1].restarts == 0


def test_deployment_pod_terminating_then_error():
    pods = pod_snapshots("deployment-delete-sigkill-1.29.json")
    assert [(pod_row(p).ready, pod_status_text(p)) for p in pods] == [
        ("2/2", "Running"), ("2/2", "Terminating"), ("1/2", "Terminating"), ("0/2", "Error"), ("0/2", "Error")]


def test_sidecar_restart_and_crashloop_statuses():
    pods = pod_snapshots("sidecar-restart-1.29.json")
    now = parse_time("2025-06-01T10:00:20Z")
    rows = [pod_row(p, now=now) for p in pods]
    assert [(r.ready, r.status, r.restarts) for r in rows] == [
        ("0/2", "Pending", 0),
        ("1/2", "PodInitializing", 0),
        ("2/2", "Running", 0),
        ("1/2", "Init:Error", 0),              # the sidecar exited 1 (not yet restarted)
        ("2/2", "Running", 1),
        ("1/2", "Init:CrashLoopBackOff", 1),   # kubectl reports a sidecar in back-off like an init container
    ]
    assert rows[4].last_restart_age == 12  # lastState finishedAt 10:00:08
    assert "1 (12s ago)" in str(PodTable([rows[4]]))


def _pod(init=(), containers=(), phase="Pending", conditions=(), meta=None):
    return {"metadata": {"name": "p", "creationTimestamp": "2025-06-01T10:00:00Z", **(meta or {})},
            "spec": {"initContainers": [{"name": n, **extra} for n, extra, _ in init],
                     "containers": [{"name": n} for n, _ in containers]},
            "status": {"phase": phase, "conditions": list(conditions),
                       "initContainerStatuses": [{"name": n, "restartCount": 0, "ready": False, "state": s}
                                                 for n, _, s in init],
                       "containerStatuses": [{"name": n, "restartCount": 0, "ready": False, "state": s}
                                             for n, s in containers]}}


def test_plain_init_containers_count_and_fail():
    done = {"terminated": {"exitCode": 0, "reason": "Completed"}}
    running = {"running": {"startedAt": "2025-06-01T10:00:01Z"}}
    waiting = {"waiting": {"reason": "PodInitializing"}}
    assert pod_status_text(_pod([("a", {}, done), ("b", {}, running)], [("app", waiting)])) == "Init:1/2"
    failed = {"terminated": {"exitCode": 3, "reason": "Error"}}
    assert pod_status_text(_pod([("a", {}, failed)], [("app", waiting)])) == "Init:Error"
    no_reason = {"terminated": {"exitCode": 3}}
    assert pod_status_text(_pod([("a", {}, no_reason)], [("app", waiting)])) == "Init:ExitCode:3"


def test_image_pull_backoff_and_crashloop_of_the_app():
    pull = {"waiting": {"reason": "ImagePullBackOff", "message": "Back-off pulling image"}}
    assert pod_status_text(_pod([], [("app", pull)])) == "ImagePullBackOff"
    crash = {"waiting": {"reason": "CrashLoopBackOff"}}
    assert pod_status_text(_pod([], [("app", crash)], phase="Running")) == "CrashLoopBackOff"


def test_deleted_running_pod_is_terminating_but_finished_one_is_not():
    running = {"running": {"startedAt": "2025-06-01T10:00:01Z"}}
    meta = {"deletionTimestamp": "2025-06-01T10:01:30Z"}
    assert pod_status_text(_pod([], [("app", running)], "Running", meta=meta)) == "Terminating"
    done = {"terminated": {"exitCode": 0, "reason": "Completed"}}
    assert pod_status_text(_pod([], [("app", done)], "Succeeded", meta=meta)) == "Completed"


def test_pod_table_from_pods_uses_each_pods_age():
    pods = pod_snapshots("job-sidecar-1.29.json")[-1:] + pod_snapshots("deployment-delete-sigkill-1.29.json")[:1]
    table = PodTable.from_pods(pods, now=parse_time("2025-06-01T10:02:00Z"))
    assert [(r.name, r.age) for r in table] == [("sidecar-job-7xk2p", 120), ("sidecar-deploy-6d9f8c7b5d-x4k2p", 120)]
    assert table.row("sidecar-job").status == "Completed"


# -- commands --------------------------------------------------------------------------------
class Recorder:
    def __init__(self, result=None, raise_=None):
        self.calls = []
        self.result, self.raise_ = result, raise_

    def __call__(self, argv, *, env=None, timeout=None, input=None):
        self.calls.append({"argv": argv, "env": env, "timeout": timeout, "input": input})
        if self.raise_ is not None:
            raise self.raise_
        return self.result or subprocess.CompletedProcess(argv, 0, "", "")


def test_kubectl_argv_is_explicit_and_the_shown_command_is_what_a_learner_types(capsys):
    runner = Recorder(subprocess.CompletedProcess([], 0, "job.batch/sidecar-job created\n", ""))
    kubectl = Kubectl("/tmp/lab/kubeconfig", "kind-sidecar-lab", "labkit-abcde", runner=runner)
    before = dict(os.environ)
    lines = kubectl.apply("manifests/job-sidecar.yaml")
    assert lines == ["job.batch/sidecar-job created"]
    call = runner.calls[0]
    assert call["argv"] == ["kubectl", "--kubeconfig", "/tmp/lab/kubeconfig", "--context", "kind-sidecar-lab",
                            "--namespace", "labkit-abcde", "apply", "-f", "manifests/job-sidecar.yaml"]
    assert call["env"]["KUBECONFIG"] == "/tmp/lab/kubeconfig"
    assert dict(os.environ) == before  # never mutated
    assert capsys.readouterr().out == "$ kubectl apply -f manifests/job-sidecar.yaml -n labkit-abcde\n"


def test_apply_objects_goes_through_stdin(capsys):
    runner = Recorder()
    Kubectl(namespace="ns", runner=runner).apply({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web"}})
    call = runner.calls[0]
    assert call["argv"][-3:] == ["apply", "-f", "-"]
    assert yaml.safe_load(call["input"])["metadata"]["name"] == "web"
    assert "$ kubectl apply -f - -n ns" in capsys.readouterr().out


def test_failed_command_raises_tool_error_with_the_whole_story():
    result = subprocess.CompletedProcess([], 1, "", 'Error from server (NotFound): jobs.batch "nope" not found\n')
    kubectl = Kubectl("/k", "ctx", "ns", runner=Recorder(result), quiet=True)
    with pytest.raises(ToolError) as info:
        kubectl.run(["get", "job/nope"])
    error = info.value
    assert error.command == ["kubectl", "--kubeconfig", "/k", "--context", "ctx", "--namespace", "ns", "get", "job/nope"]
    assert error.returncode == 1
    assert "NotFound" in error.stderr and "NotFound" in str(error)
    assert "exit status 1: kubectl --kubeconfig /k" in str(error)


def test_missing_tool_and_timeout():
    with pytest.raises(BackendUnavailable, match="kubectl not found on PATH"):
        run_tool(["kubectl", "version"], runner=Recorder(raise_=FileNotFoundError("kubectl")))
    timeout = subprocess.TimeoutExpired(["kind", "create"], 5, output=b"Creating cluster", stderr=b"")
    with pytest.raises(ToolError) as info:
        run_tool(["kind", "create", "cluster"], timeout=5, runner=Recorder(raise_=timeout))
    assert info.value.returncode == -9 and "no answer within 5s" in info.value.stderr
    assert info.value.stdout == "Creating cluster"


def test_run_tool_really_runs_an_argv_without_a_shell(tmp_path):
    target = tmp_path / "a b; echo injected"
    result = run_tool(["python3", "-c", "import sys; print(sys.argv[1])", str(target)])
    assert result.stdout.strip() == str(target)


def test_manifest_input_and_refs(tmp_path):
    path = tmp_path / "job.yaml"
    path.write_text("kind: Job\n")
    assert manifest_input(str(path)) == (str(path), None)
    assert manifest_input(path) == (str(path), None)
    assert manifest_input("kind: Pod\nmetadata: {name: x}\n") == (None, "kind: Pod\nmetadata: {name: x}\n")
    with pytest.raises(InvalidInput, match="no such file"):
        manifest_input(str(tmp_path / "missing.yaml"))


def test_server_version_and_times():
    assert parse_server_version("v1.29.14") == "1.29.14"
    assert parse_server_version("v1.33.1+k3s1") == "1.33.1"
    assert parse_time("2025-06-01T10:00:05Z") == parse_time("2025-06-01T10:00:04.5Z") + 0.5
    assert format_time(parse_time("2025-06-01T10:00:05.25Z")) == "2025-06-01T10:00:05.250Z"


def test_describe_pods_shows_conditions_states_and_recent_events():
    items = [item["event"]["object"] for item in stream("job-sidecar-1.29.json")]
    pod = [o for o in items if o["kind"] == "Pod"][3]  # sidecar running, probe pending
    events = [o for o in items if o["kind"] == "Event"]
    text = describe_pods([pod], events)
    assert "pod sidecar-job-7xk2p: phase Pending, kubectl status Init:0/1" in text
    assert "Initialized=False (ContainersNotInitialized: containers with incomplete status: [sws-init])" in text
    assert "sws-init (sidecar): running since 2025-06-01T10:00:03Z, started=false, ready=false" in text
    assert "sidecar-job (app): waiting (PodInitializing)" in text
    assert "Normal Killing pod/sidecar-job-7xk2p [spec.initContainers{sws-init}]: Stopping container sws-init" in text
