"""The Job controller of the simulated cluster (``pkg/controller/job``): pods created up to
parallelism, the pod-failure back-off, the success and failure rules, the terminal conditions.

:class:`JobController` is one of the parts :class:`labkit.sim.cluster.Cluster` is made of; it
reacts to pod changes batched as the real controller batches them (SyncJobBatchPeriod).
"""

from __future__ import annotations

from . import timing
from .pods import SimPod, Workload


# The Job controller's terminal conditions: (event, condition, the condition 1.31+ writes first,
# reason, message) -- job_controller.go (JobReasonBackoffLimitExceeded, JobReasonCompletionsReached)
JOB_CONDITIONS = (
    ("JobComplete", "Complete", "SuccessCriteriaMet", "CompletionsReached", "Reached expected number of succeeded pods"),
    ("JobFailed", "Failed", "FailureTarget", "BackoffLimitExceeded", "Job has reached the specified backoff limit"),
)


class JobController:
    """Sync a Job: create its pods, count successes and failures, finish it."""

    def _batched_job_sync(self, job: Workload) -> None:
        job.sync_due = False
        self._job_sync(job)

    def _job_sync(self, job: Workload) -> None:
        if job.finished or job.deleted:
            return
        spec = job.spec
        completions = spec.get("completions")
        parallelism = int(spec.get("parallelism", 1))
        backoff_limit = int(spec.get("backoffLimit", timing.JOB_DEFAULT_BACKOFF_LIMIT))
        succeeded = sum(1 for p in job.pods if p.phase == "Succeeded")
        failed = sum(1 for p in job.pods if p.phase == "Failed")
        active = [p for p in job.pods if not p.terminal and p.deletion_requested_at is None]
        terminating = [p for p in job.pods if not p.terminal and p.deletion_requested_at is not None and not p.deleted]
        restart_policy = spec["template"]["spec"].get("restartPolicy")
        if restart_policy == "OnFailure":
            # pastBackoffLimitOnFailure: restarts of every container, sidecars included.
            restarts = sum(max(0, c.starts - 1) for p in active for c in p.containers)
            if restarts and (restarts >= backoff_limit or backoff_limit == 0):
                failed = backoff_limit + 1
        target = completions if completions is not None else 1
        if failed > backoff_limit:
            _, _, _, reason, message = JOB_CONDITIONS[1]
            self._job_finish(job, "JobFailed", active, terminating, reason=reason, message=message)
            return
        if succeeded >= target or (completions is None and succeeded and not active):
            # A pod counts as succeeded only once its phase is Succeeded, which the kubelet
            # writes after the sidecar has stopped.
            self._job_finish(job, "JobComplete", active, terminating)
            return
        want = min(parallelism, target - succeeded) - len(active) - job.creating
        if want <= 0:
            return
        delay = timing.CONTROLLER_S
        if failed > job.failures_seen:
            job.failures_seen = failed
            backoff = min(timing.JOB_POD_FAILURE_BACKOFF_S * 2 ** (failed - 1), timing.JOB_POD_FAILURE_BACKOFF_MAX_S)
            # counted from the failed pod's last container exit (backoff_utils.go getFinishedTime)
            finished = max(_finished_at(p) for p in job.pods if p.phase == "Failed")
            job.next_create_at = finished + backoff
        delay = max(delay, job.next_create_at - self.env.now)
        job.creating += want
        self._at(delay, self._job_create_pods, job, want)

    def _job_finish(self, job: Workload, event: str, active: list[SimPod], terminating: list[SimPod],
                    **fields: str) -> None:
        """The success or failure rule is met: delete the pods still running, then set the
        terminal condition. From 1.31 (delayTerminalCondition, PR #125510) the controller
        first writes SuccessCriteriaMet/FailureTarget and adds Complete/Failed only when no
        pod is terminating any more; before, at once (kubernetes#123775)."""
        for pod in active:
            self.delete_pod(pod)
        if self.behaviour.job_success_criteria_met and (active or terminating):
            return
        if event == "JobComplete":
            job.complete = True
        else:
            job.failed = True
        job.finished_at = self.env.now
        self.open_workloads -= 1
        self._emit_object(event, job.ref, **fields)

    def _job_create_pods(self, job: Workload, count: int) -> None:
        job.creating -= count
        if job.finished or job.deleted or job.deleting:
            return
        for _ in range(count):
            self._pod_from_template(job, self._suffix_name(f"{job.name}-"), {"kind": "Job", "name": job.name})


def _finished_at(pod: SimPod) -> float:
    """When the pod's last container exited: the finishedAt the Job controller's back-off counts from."""
    return max((c.last_exit.end for c in pod.containers if c.last_exit is not None), default=0.0)
