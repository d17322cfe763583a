"""The Job and Deployment controllers around the kubelet."""

from __future__ import annotations

import json
import re

import pytest

from labkit.sim import SimLab, simulate
import expected_timing as T  # written out, not read from labkit.sim.timing
from labkit.sim.deployments import _fnv32a, template_hash
from labkit.sim.behaviour import BEHAVIOUR_ANNOTATION


def job(name="work", *, app=None, sidecar=None, restart="Never", **spec) -> dict:
    """A Job whose containers are described by the behaviour annotation."""
    behaviour = {"app": app or {"process": "e2e-helper", "run_seconds": 5, "exit_code": 0}}
    pod_spec = {"restartPolicy": restart,
                "containers": [{"name": "app", "image": "busybox:1.36", "command": ["sh", "-c", "sleep 5"]}]}
    if sidecar is not None:
        behaviour["side"] = sidecar
        pod_spec["initContainers"] = [{"name": "side", "image": "busybox:1.36", "restartPolicy": "Always",
                                       "command": ["sh", "-c", "sleep 600"]}]
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name},
            "spec": {**spec, "template": {"metadata": {"annotations": {BEHAVIOUR_ANNOTATION: json.dumps(behaviour)}},
                                          "spec": pod_spec}}}


def test_completions_and_parallelism():
    trace = simulate([job(completions=3, parallelism=2)], k8s_version="1.29")
    starts = sorted(e.t for e in trace.select("Started", container="app"))
    assert len(trace.pods) == 3 and len(starts) == 3
    assert starts[0] == starts[1] and starts[2] > starts[0] + 5       # two at a time
    complete = trace.first("JobComplete")
    assert complete.t > max(e.t for e in trace.select("PodPhase") if e.phase == "Succeeded") - 1e-9


def test_backoff_limit_fails_the_job_after_backed_off_replacements():
    failing = {"process": "e2e-helper", "run_seconds": 1, "exit_code": 1}
    trace = simulate([job(app=failing, backoffLimit=2)], k8s_version="1.29")
    assert len(trace.pods) == 3                          # backoffLimit 2: the third failure ends it
    created = [trace.select("PodPhase", pod=p.name)[0].t for p in trace.pods]
    gaps = [b - a for a, b in zip(created, created[1:])]
    # A replacement waits 10 s, then 20 s (DefaultJobPodFailureBackOff), counted from the failed
    # pod's last container exit (backoff_utils.go getFinishedTime), not from when the controller
    # saw it: its syncs come SyncJobBatchPeriod (1 s) after a pod change.
    exited = [max(e.t for e in trace.select("Exited", pod=p.name)) for p in trace.pods]
    assert created[1] - exited[0] == pytest.approx(10, abs=0.01)
    assert created[2] - exited[1] == pytest.approx(20, abs=0.01)
    assert all(g > 10 for g in gaps)
    ended = trace.first("JobFailed")
    assert ended.reason == "BackoffLimitExceeded" and trace.first("JobComplete") is None


def test_on_failure_counts_container_restarts_sidecars_included():
    flappy = {"process": "e2e-helper", "run_seconds": 1, "exit_code": 1}
    trace = simulate([job(app={"process": "e2e-helper", "run_seconds": 600}, sidecar=flappy,
                          restart="OnFailure", backoffLimit=2)], k8s_version="1.29")
    assert trace.first("JobFailed") is not None
    # Only the sidecar restarted (the app runs 600 s): its restarts alone failed the Job,
    # whose controller then deleted the pod.
    final = trace.pods[0].final
    assert final.containers["side"].restart_count == 2 and final.containers["app"].restart_count == 0
    assert trace.first("DeleteRequested").t > trace.first("JobFailed").t - 1 and final.deleted


def _job_with_a_slow_terminating_pod(version: str):
    """Pod A is deleted early and takes 60 s to stop (its sidecar ignores SIGTERM); its
    replacement B completes long before that."""
    lab = SimLab(version, quiet=True)
    lab.apply(job(app={"process": "e2e-helper", "run_seconds": 10, "handles_sigterm": True},
                  sidecar={"process": "shell-script", "run_seconds": None, "handles_sigterm": False}))
    lab.sleep(5)
    first = lab.pods()[0].name
    lab.delete(f"pod/{first}", grace_period=60, wait=False)
    lab.wait("job/work", "Complete", timeout=200)
    lab.sleep(100)
    return lab.trace(), first


def test_before_1_31_complete_does_not_wait_for_terminating_pods():
    trace, first = _job_with_a_slow_terminating_pod("1.29")
    done = trace.first("JobComplete").t
    first_gone = [e.t for e in trace.select("PodPhase", pod=first) if e.phase in ("Succeeded", "Failed")][0]
    assert done < first_gone               # kubernetes#123775


def test_from_1_31_complete_waits_until_no_pod_is_terminating():
    trace, first = _job_with_a_slow_terminating_pod("1.31")
    done = trace.first("JobComplete").t
    first_gone = [e.t for e in trace.select("PodPhase", pod=first) if e.phase in ("Succeeded", "Failed")][0]
    # the controller sees the pod's terminal phase one watch hop later and syncs the Job
    # SyncJobBatchPeriod after that (job_controller.go enqueueSyncJobBatched)
    assert done == pytest.approx(first_gone + T.API_WATCH_S + T.JOB_SYNC_BATCH_S)


def test_pod_changes_in_one_batch_period_sync_the_job_once_a_batch_period_after_the_first():
    """A pod change queues its Job SyncJobBatchPeriod (1 s) ahead, and one already queued keeps
    its time: a Job whose pod ran 5 s completes 1 s after its Succeeded reached the controller
    (1.1 s after the phase on labkit's node, kube-controller-manager v1.37.2). So does the blog's
    Job: the sync its pod's Running queued finds the pod still Running, as the terminal phase
    comes two relists after the sync that found the pod done (on the node: Succeeded at 16.3 s,
    Complete at 17.4 s)."""
    trace = simulate([job()], k8s_version="1.37")
    phases = {e.phase: e.t for e in trace.select("PodPhase")}
    assert phases["Succeeded"] - phases["Running"] > 4
    assert trace.first("JobComplete").t == pytest.approx(phases["Succeeded"] + T.API_WATCH_S + T.JOB_SYNC_BATCH_S)
    from pathlib import Path

    blog = simulate([str(Path(__file__).parents[2] / "manifests" / "job-sidecar.yaml")], k8s_version="1.37")
    phases = {e.phase: e.t for e in blog.select("PodPhase")}
    assert phases["Succeeded"] - phases["Running"] > T.JOB_SYNC_BATCH_S + T.API_WATCH_S
    assert blog.first("JobComplete").t == pytest.approx(phases["Succeeded"] + T.API_WATCH_S + T.JOB_SYNC_BATCH_S)


def test_deployment_names_replacement_and_scale():
    doc = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
           "spec": {"replicas": 4, "selector": {"matchLabels": {"app": "web"}},
                    "template": {"metadata": {"labels": {"app": "web"}},
                                 "spec": {"containers": [{"name": "c", "image": "nginx:1.27"}]}}}}
    lab = SimLab("1.29", quiet=True, seed=2)
    lab.apply(doc)
    lab.wait("deployment/web", "Available")
    trace = lab.trace()
    # Available once replicas - maxUnavailable (25% of 4, rounded down: 1) pods are ready.
    ready = sorted(e.t for e in trace.select("PodReady"))
    assert trace.first("DeploymentAvailable").t == pytest.approx(ready[2] + T.API_WATCH_S)
    rs = trace.pods[0].owner["via"]["name"]
    # <deployment>-<pod-template-hash>, the hash in rand.SafeEncodeString's alphabet (no vowels)
    assert re.fullmatch(r"web-[bcdfghjklmnpqrstvwxz2456789]{6,10}", rs), rs
    assert {(p.owner["kind"], p.owner["name"], p.owner["via"]["name"]) for p in trace.pods} == {("Deployment", "web", rs)}
    names = [row.name for row in lab.pods()]
    lab.delete(f"pod/{names[0]}", wait=False)
    lab.sleep(0.2)
    assert {row.name: row.status for row in lab.pods()}[names[0]] == "Terminating"
    lab.sleep(2)
    now = [row.name for row in lab.pods()]
    assert names[0] not in now and len(now) == 4 and len(set(now) - set(names)) == 1   # replaced
    doc["spec"]["replicas"] = 2
    assert lab.apply(doc) == ["deployment.apps/web configured"]
    lab.sleep(40)
    assert len(lab.pods()) == 2


def test_deleting_a_job_deletes_its_pods_with_their_grace():
    lab = SimLab("1.29", quiet=True)
    lab.apply(job(app={"process": "shell-script", "run_seconds": None, "handles_sigterm": False}))
    lab.sleep(3)
    before = lab.now
    assert lab.delete("job/work") == ['job.batch "work" deleted']
    assert 30 < lab.now - before < 32
    assert lab.trace().first("DeleteRequested").grace_period_seconds == 30


def test_template_hash_is_fnv32a_of_the_template_safe_encoded():
    # Upstream controller.ComputeHash: an fnv.New32a hasher over the template, then
    # rand.SafeEncodeString(fmt.Sprint(hasher.Sum32())), which maps each byte b of the decimal
    # string to "bcdfghjklmnpqrstvwxz2456789"[b % 27]. labkit hashes the template's JSON (sorted
    # keys) where upstream hashes a dump of the Go struct, so names have the form, not the value,
    # of a real cluster's.
    assert _fnv32a(b"") == 0x811C9DC5 and _fnv32a(b"foobar") == 0xBF9CF968  # published FNV-1a vectors
    # {} -> "{}" -> fnv1a32 = ((0x811C9DC5 ^ 0x7B) * 0x01000193 ^ 0x7D) * 0x01000193 mod 2**32
    # = 1415952421 -> digits 1,4,1,5,9,5,2,4,2,1 (bytes 49,52,... % 27 = 22,25,22,26,3,26,23,25,23,22)
    assert template_hash({}) == "5859f96865"
