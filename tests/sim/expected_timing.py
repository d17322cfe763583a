"""The timing the simulator tests expect, written out (not imported from labkit.sim.timing).

A test that added up ``labkit.sim.timing`` constants would follow any edit of them and could
never notice a timeline change. These are the values the expectations were reasoned from; if
labkit/sim/timing.py changes one on purpose, change it here too, and the tests that move say
what the change did. Sources: docs/timing.md.
"""

# Latencies labkit chose to match a one-node kind cluster (no upstream constant).
API_WATCH_S = 0.05
CONTROLLER_S = 0.05
SCHEDULE_S = 0.05
TERMINATED_POD_DELETE_S = 0.5     # a pod deleted while it ran: measured on labkit's node, 0.29-0.75 s
SANDBOX_S = 0.3                   # once the volumes are mounted
CONTAINER_START_S = 0.3
INSTANT_PROCESS_S = 0.01
PROBE_ANSWER_S = 0.003             # an HTTP probe of a local server (the kubelet's log on labkit's node)
SERVER_SHUTDOWN_S = 0.05
# Starts under a CPU limit: CPU seconds of the pause container's start (in the pod's cgroup) and
# of a container's start (in its own), fitted to containerd's event times on labkit's node; the
# kubelet's CFS period. A quota of L cores grants L x period per period, the first at once.
SANDBOX_CPU_S = 0.042
CONTAINER_CPU_S = 0.011
CFS_PERIOD_S = 0.1


def throttled(cpu_s: float, limit: float) -> float:
    """How much longer a start takes under a CPU limit of ``limit`` cores (docs/timing.md)."""
    return max(0.0, cpu_s / limit - CFS_PERIOD_S)


# The blog's manifests give each of their two containers a 10m limit: the pod's is 20m.
BLOG_SANDBOX_S = SANDBOX_S + throttled(SANDBOX_CPU_S, 0.02)          # 2.3 s
BLOG_CONTAINER_START_S = CONTAINER_START_S + throttled(CONTAINER_CPU_S, 0.01)   # 1.3 s

# Kubelet constants from upstream (kubernetes/kubernetes pkg/kubelet).
RELIST_PERIOD_S = 1.0              # genericPlegRelistPeriod, kubelet.go
VOLUME_MOUNT_WAIT_S = 0.3          # podAttachAndMountRetryInterval: the first sync's wait for the volumes
SYNC_ERROR_BACKOFF_S = 10.0        # backOffPeriod, kubelet.go
WORKER_BACKOFF_JITTER = 0.5        # workerBackOffPeriodJitterFactor, pod_workers.go
RESYNC_INTERVAL_S = 60.0           # syncFrequency default, KubeletConfiguration
MIN_GRACE_AFTER_SIGTERM_S = 2      # minimumGracePeriodInSeconds, kuberuntime_manager.go
MIN_POD_GRACE_S = 1                # a force delete's grace 0 becomes 1, calculateEffectiveGracePeriod
CRASHLOOP_INITIAL_S = 10.0         # containerBackOffPeriod, kubelet.go (backOffPeriod before)
CRASHLOOP_MAX_S = 300.0            # MaxContainerBackOff, kubelet.go

# Job controller (pkg/controller/job/job_controller.go, 1.28-1.37).
JOB_SYNC_BATCH_S = 1.0             # SyncJobBatchPeriod: a pod change syncs its Job 1 s later
