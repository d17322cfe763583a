"""Every latency and kubelet constant the simulator uses, in one table.

Kubelet constants come from the upstream code (each one's source is in docs/timing.md,
with the constant's upstream name); latencies of the API server, scheduler and container runtime
are not fixed by any code, so they are chosen here, once, to match what a one-node kind
cluster with cached images shows (container starts within about a second of the
decision, about one second between an init container exiting and the next starting).
Changing a value here changes every timeline; nothing else in labkit.sim hard-codes a
duration.
"""

from __future__ import annotations

# -- API server, controllers, scheduler --------------------------------------------------
# An API change reaches a watcher (kubelet, Job/ReplicaSet controller, garbage collector).
API_WATCH_S = 0.05
# A controller creates the pods of a new Job/ReplicaSet one watch hop after the object.
CONTROLLER_S = 0.05
# The scheduler binds a new pod and the kubelet's watch delivers it.
SCHEDULE_S = 0.05
# A deleted pod's object goes (the status manager's delete, grace 0) once SyncTerminatedPod has
# run: it waits for the next relist, for the volume manager to unmount (WaitForUnmount polls every
# 0.3 s) and removes the pod's cgroups. Measured on labkit's node: 0.29-0.75 s after the terminal
# status (docs/timing.md). A pod that had already finished when it was deleted goes at once: the
# API server gives it grace 0 (podStrategy.CheckGracefulDelete).
TERMINATED_POD_DELETE_S = 0.5

# -- kubelet sync loop (pkg/kubelet/kubelet.go, pod_workers.go) --------------------------
# Generic PLEG relist period: container starts/exits are noticed at the next relist, and
# a pod worker only syncs once the pod cache is newer than its previous sync
# (podCache.GetNewerThan), so syncs fall on relist ticks. The phase of the ticks within
# the second is drawn from the seed.
RELIST_PERIOD_S = 1.0
# A sync that failed (a container in CrashLoopBackOff or ImagePullBackOff) puts the pod back
# on the work queue (pod_workers.go completeWork): after wait.Jitter(backOffPeriod, 0.5),
# i.e. [10 s, 15 s), up to 1.34; from 1.35 (PR #133066) after wait.Jitter(time left of the
# CrashLoopBackOff, 0.5), that time capped at the resync interval. Jitter drawn from the seed.
SYNC_ERROR_BACKOFF_S = 10.0        # kubelet.go backOffPeriod
WORKER_BACKOFF_JITTER = 0.5        # pod_workers.go workerBackOffPeriodJitterFactor
RESYNC_INTERVAL_S = 60.0           # kubelet syncFrequency default (pod_workers resyncInterval)

# A pod's first SyncPod waits for its volumes before it creates the probe workers and the sandbox
# (WaitForAttachAndMount, pkg/kubelet/volumemanager): it checks at once, before the reconciler has
# mounted them, then every podAttachAndMountRetryInterval, 0.3 s. On a real cluster every pod
# has a volume: its service account token's, added at admission. The startup probe's success
# came 10.31-10.36 s after the blog's pod's creation in fourteen runs on labkit's node, 0.3 s
# after a ticker anchored at the kubelet's first sight of the pod (docs/timing.md).
VOLUME_MOUNT_WAIT_S = 0.3

# -- container runtime ---------------------------------------------------------------------
# First sync of a pod, once its volumes are mounted: pause container and network set up.
SANDBOX_S = 0.3
# Create + start one container with the image already cached.
CONTAINER_START_S = 0.3
# CPU time a start spends inside a cgroup with a CFS quota: runc's init runs in the new
# container's cgroup, the pause container's in the pod's, whose quota is the pod's CPU limit
# (pkg/kubelet/cm ResourceConfigForPod). Under a limit of L cores that work takes about
# cpu / L less the first period's share: with the blog's 10m limits, seconds (fitted to
# containerd's event times on labkit's node, docs/timing.md "CPU limits").
SANDBOX_CPU_S = 0.042
CONTAINER_CPU_S = 0.011
# The kubelet's CFS period (cpuCFSQuotaPeriod default) and its smallest quota, 1 ms per period,
# i.e. 10m (MinQuotaPeriod in pkg/kubelet/cm).
CFS_PERIOD_S = 0.1
MIN_CPU_LIMIT = 0.01
# A pull of an image that cannot be pulled fails after this long (ErrImagePull).
IMAGE_PULL_FAIL_S = 1.0
# A command that does no waiting (echo, touch, exit N) still takes a moment to run.
INSTANT_PROCESS_S = 0.01
# Servers of known images (static-web-server, nginx, agnhost) listen this long after the
# process starts, and exit this long after SIGTERM/SIGQUIT when idle.
SERVER_LISTEN_S = 0.2
SERVER_SHUTDOWN_S = 0.05
# A lifecycle hook that does no waiting (httpGet, tcpSocket, a quick exec).
INSTANT_HOOK_S = 0.01
# An HTTP or TCP probe of a local server answers this long after its tick (the kubelet's log on
# labkit's node: "HTTP-Probe" at 19.968023, "Probe succeeded" at 19.971083; docs/fidelity.md).
PROBE_ANSWER_S = 0.003

# -- kubelet constants (kuberuntime, flowcontrol, pod_workers) ---------------------------
MIN_GRACE_AFTER_SIGTERM_S = 2      # minimumGracePeriodInSeconds (kuberuntime_manager.go)
MIN_POD_GRACE_S = 1                # calculateEffectiveGracePeriod: force delete 0 -> 1
DEFAULT_TERMINATION_GRACE_S = 30   # API default of spec.terminationGracePeriodSeconds
CRASHLOOP_INITIAL_S = 10.0         # containerBackOffPeriod
CRASHLOOP_MAX_S = 300.0            # MaxContainerBackOff
CRASHLOOP_RESET_S = 600.0          # backoff entry expires after 2 x max without a failure
IMAGE_BACKOFF_INITIAL_S = 10.0     # image pull back-off (same flowcontrol.Backoff)
IMAGE_BACKOFF_MAX_S = 300.0

# -- Job controller ------------------------------------------------------------------------
JOB_SYNC_BATCH_S = 1.0   # SyncJobBatchPeriod: a pod change syncs its Job this much later (1.28-1.37)
JOB_POD_FAILURE_BACKOFF_S = 10.0   # DefaultJobPodFailureBackOff, doubled per failure
JOB_POD_FAILURE_BACKOFF_MAX_S = 360.0
JOB_DEFAULT_BACKOFF_LIMIT = 6

# -- SimLab --------------------------------------------------------------------------------
# Listeners are called at least this often (virtual seconds) while time advances.
LISTENER_INTERVAL_S = 0.5


def throttled(cpu_s: float, limit: float | None) -> float:
    """How much longer ``cpu_s`` seconds of CPU work take under a CFS quota of ``limit`` cores
    than unthrottled: each period grants ``limit`` x period of CPU, the first at once.

    >>> round(throttled(0.015, 0.01), 3), throttled(0.015, None), throttled(0.015, 2.0)
    (1.4, 0.0, 0.0)
    """
    if limit is None:
        return 0.0
    return max(0.0, cpu_s / max(limit, MIN_CPU_LIMIT) - CFS_PERIOD_S)
