"""What Kubernetes objects mean, read from their JSON: the one home of each rule.

Every backend and view asks here instead of deciding again, so they cannot drift apart:

- :func:`is_sidecar` / :func:`container_role`: an init container with ``restartPolicy:
  Always`` is a sidecar (KEP-753);
- :func:`normal_stop_exit`: which exit codes of a container the kubelet stopped are normal;
- :data:`WAIT_CONDITIONS` and :func:`wait_state`: what waiting for ``Complete``, ``Ready``,
  ``Deleted``, ... means, over the object as the API server returns it;
- :func:`pod_spec_of`: where the pod spec sits in a Pod, Job or Deployment.

(The names the API accepts are in :mod:`labkit.names`.)

>>> is_sidecar({"name": "sws-init", "restartPolicy": "Always"})
True
>>> normal_stop_exit(143), normal_stop_exit(131, "SIGQUIT"), normal_stop_exit(1)
(True, True, False)
>>> wait_state("Job", "Complete", {"status": {"conditions": [{"type": "Complete", "status": "True"}]}})
(True, None)
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from .errors import InvalidInput

# On the served simulator's node (labkit serve): its pace, simulated seconds per wall second, so a
# client (the cluster backend) counts in the server's seconds (docs/serve.md).
PACE_ANNOTATION = "labkit.dev/pace"

# -- containers ------------------------------------------------------------------------------


def is_sidecar(container: Mapping[str, Any] | None) -> bool:
    """An init container with ``restartPolicy: Always`` (the only value the field takes there)."""
    return bool(container) and container.get("restartPolicy") == "Always"


def container_role(group: str, container: Mapping[str, Any]) -> str:
    """``app`` for ``spec.containers``; ``sidecar`` or ``init`` for ``spec.initContainers``."""
    if group == "containers":
        return "app"
    return "sidecar" if is_sidecar(container) else "init"


def container_roles(spec: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(name, role) of every container of a pod spec in start order.

    Use it on an admitted spec, where a gate that is off has already dropped the field.

    >>> container_roles({"initContainers": [{"name": "proxy", "restartPolicy": "Always"}, {"name": "setup"}],
    ...                  "containers": [{"name": "app"}]})
    [('proxy', 'sidecar'), ('setup', 'init'), ('app', 'app')]
    """
    return [(c.get("name", ""), container_role(group, c))
            for group in ("initContainers", "containers") for c in spec.get(group) or ()]


# Signal numbers on Linux, for the stop signals images declare (STOPSIGNAL) and pods set.
SIGNALS = {"SIGHUP": 1, "SIGINT": 2, "SIGQUIT": 3, "SIGKILL": 9, "SIGUSR1": 10, "SIGUSR2": 12,
           "SIGTERM": 15, "SIGWINCH": 28}


def normal_stop_exit(exit_code: int | None, signal: str | None = "SIGTERM") -> bool:
    """Whether ``exit_code`` is how a process ends when the kubelet stops it: killed by its stop
    signal (128 + its number: 143 for SIGTERM, 131 for SIGQUIT) or by the SIGKILL at the end of
    the grace period (137). For a sidecar stopped at shutdown these are normal, not failures."""
    stop = SIGNALS.get(signal or "SIGTERM", SIGNALS["SIGTERM"])
    return exit_code in (128 + SIGNALS["SIGKILL"], 128 + stop)


# -- wait conditions ---------------------------------------------------------------------------

# What ``lab.wait(ref, condition)`` accepts per kind. Pod phases are waited on through
# ``--for=jsonpath={.status.phase}=X``; the rest are status conditions, or deletion.
POD_PHASES = ("Pending", "Running", "Succeeded", "Failed")
WAIT_CONDITIONS = {
    "Job": ("Complete", "Failed", "Deleted"),
    "Deployment": ("Available", "Deleted"),
    "Pod": ("Ready", "Initialized", "ContainersReady", "PodScheduled", *POD_PHASES, "Deleted"),
}


def condition_true(conditions: Iterable[Mapping[str, Any]] | None, kind: str) -> bool:
    """Whether ``status.conditions`` has ``kind`` (Ready, Complete, ...) with status True."""
    return any(c.get("type") == kind and c.get("status") == "True" for c in conditions or ())


def wait_state(kind: str, condition: str, obj: Mapping[str, Any] | None) -> tuple[bool, str | None]:
    """``(met, why it never will)`` for one look at ``obj`` (None: the object does not exist).

    The second item is set when waiting longer cannot help: a Job that failed while we wait
    for Complete, a pod that finished without ever being Ready (a fast Job pod can skip
    Ready entirely: wait for the Job's Complete instead).
    """
    if condition == "Deleted":
        return obj is None, None
    if obj is None:
        return False, None
    status = obj.get("status") or {}
    conditions = {c.get("type"): c for c in status.get("conditions") or ()}

    def because(name: str) -> str:
        c = conditions.get(name) or {}
        why = ": ".join(part for part in (c.get("reason"), c.get("message")) if part)
        return f" ({why})" if why else ""

    if kind == "Job":
        other = "Failed" if condition == "Complete" else "Complete"
        if condition_true(conditions.values(), condition):
            return True, None
        if condition_true(conditions.values(), other):
            return False, f"the Job is {other}{because(other)}"
        return False, None
    if kind == "Deployment":
        return condition_true(conditions.values(), condition), None
    phase = status.get("phase")
    if condition in POD_PHASES:
        if phase == condition:
            return True, None
        if phase in ("Succeeded", "Failed"):
            return False, f"the pod finished with phase {phase}"
        return False, None
    if condition_true(conditions.values(), condition):
        return True, None
    if phase in ("Succeeded", "Failed"):
        hint = ("; a fast Job pod can skip Ready entirely, so wait for job/NAME Complete instead"
                if condition == "Ready" else "")
        return False, f"the pod already finished (phase {phase}) without being {condition}{hint}"
    return False, None


# -- the pod spec inside an object ----------------------------------------------------------
def pod_spec_of(obj: dict) -> tuple[dict, str]:
    """The pod spec inside a Pod, Job or Deployment, and its field path prefix.

    >>> pod_spec_of({"kind": "Job", "spec": {"template": {"spec": {"containers": []}}}})
    ({'containers': []}, 'spec.template.spec')
    """
    kind = obj.get("kind")
    if kind == "Pod":
        return obj.get("spec") or {}, "spec"
    if kind in ("Job", "Deployment"):
        return ((obj.get("spec") or {}).get("template") or {}).get("spec") or {}, "spec.template.spec"
    raise InvalidInput(f"not a Pod, Job or Deployment: kind {kind!r}", field="kind")
