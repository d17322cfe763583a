"""Run manifests and scenario files through the simulator in one go: ``simulate``
(``labkit sim run`` is :mod:`labkit.sim.cli`).

A scenario file (the format of docs/scenarios.md) is applied as
its ``pod`` with its ``behaviour`` block, and its ``action`` is performed on virtual time:
``delete_pod_after_seconds`` (with ``grace_period_seconds``; the ``trigger`` text is
informational, the delete happens N seconds after the apply), ``update_image``, and the
``then:`` follow-up. ``node_reboot`` and ``kubelet_restart`` are not modelled: the pod runs
without them and the trace's warnings say so.
"""

from __future__ import annotations

from typing import Any

from ..errors import InvalidInput
from ..manifests import Document, load_documents, source_names
from ..trace import Trace
from ..versions import KubeVersion, lab_feature_gates
from .cluster import Cluster, gc_paused

UNSUPPORTED_ACTIONS = ("node_reboot", "kubelet_restart")


def updated_image(image: str) -> str:
    """A different image for an ``update_image`` action that names none."""
    last = image.rsplit("/", 1)[-1]
    return f"{image}-updated" if ":" in last else f"{image}:updated"


def apply_scenario(cluster: Cluster, doc: Document) -> list[str]:
    """Apply a scenario's pod with its behaviour and schedule its action."""
    scenario = doc.obj
    where = doc.where
    pod_obj = scenario.get("pod")
    if not isinstance(pod_obj, dict):
        raise InvalidInput("expected the scenario's Pod manifest", source=where, field="pod")
    line = cluster.apply(pod_obj, source=where, behaviour_block=scenario.get("behaviour"))
    name = pod_obj["metadata"]["name"]
    pod = cluster.pods[name]
    scenario_id = scenario.get("id", where)
    for capability in scenario.get("requires") or []:
        if capability in UNSUPPORTED_ACTIONS:
            cluster._warn(f"{where}: scenario {scenario_id} requires {capability}, which the simulator does not "
                          "model; the pod ran without it")
    action = scenario.get("action", "none")
    if action in (None, "none"):
        return [line]
    if not isinstance(action, dict):
        raise InvalidInput(f"expected 'none' or a mapping, got {action!r}", source=where, field="action")
    _schedule_action(cluster, pod, action, where, "action", 0.0)
    return [line]


def _schedule_action(cluster: Cluster, pod, action: dict, where: str, path: str, offset: float) -> None:
    for key in action:
        if key in UNSUPPORTED_ACTIONS:
            cluster._warn(f"{where}: {path}.{key} is not modelled by the simulator; the pod ran without it")
        elif key not in ("delete_pod_after_seconds", "grace_period_seconds", "trigger", "then", "update_image", "note"):
            raise InvalidInput(f"unknown action {key!r} (known: delete_pod_after_seconds, update_image, "
                               f"{', '.join(UNSUPPORTED_ACTIONS)})", source=where, field=f"{path}.{key}")
    if "delete_pod_after_seconds" in action:
        after = _seconds(action["delete_pod_after_seconds"], where, f"{path}.delete_pod_after_seconds")
        grace = action.get("grace_period_seconds")
        if grace is not None and (isinstance(grace, bool) or not isinstance(grace, int) or grace < 0):
            raise InvalidInput(f"expected whole seconds >= 0, got {grace!r}", source=where, field=f"{path}.grace_period_seconds")
        cluster._at(offset + after, cluster.delete_pod, pod, grace)
        if isinstance(action.get("then"), dict):
            _schedule_action(cluster, pod, action["then"], where, f"{path}.then", offset + after)
    if "update_image" in action:
        update = action["update_image"]
        upath = f"{path}.update_image"
        if not isinstance(update, dict) or update.get("container") not in pod.by_name:
            raise InvalidInput(f"expected {{container, after_seconds}} naming one of {', '.join(pod.container_names())}",
                               source=where, field=upath)
        after = _seconds(update.get("after_seconds", 0), where, f"{upath}.after_seconds")
        container = update["container"]
        image = update.get("image") or updated_image(pod.by_name[container].image)
        cluster._at(offset + after, cluster.set_image, pod, container, image)


def _seconds(value: Any, where: str, field: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        raise InvalidInput(f"expected seconds >= 0, got {value!r}", source=where, field=field)
    return float(value)


def simulate(documents_or_paths: Any, *, k8s_version: str | KubeVersion, feature_gates: dict[str, bool] | None = None,
             delete_after: float | None = None, until_seconds: float = 300, seed: int = 0) -> Trace:
    """Apply manifests and/or scenario files to a fresh simulated cluster and return the trace.

    ``feature_gates=None`` means the gates of a cluster labkit makes
    (``labkit.versions.lab_feature_gates``: on 1.28 the blog's ``SidecarContainers=true``),
    so "1.28" is the same cluster here as in ``connect()`` and ``labkit up``; pass
    ``{"SidecarContainers": False}`` for 1.28's own default, ``{}`` for the API server's.
    The run ends when everything has finished (Jobs done, pods terminal) or been deleted,
    or after ``until_seconds`` of virtual time. ``delete_after`` deletes every applied
    object that many seconds after the apply (Deployments and Jobs through the garbage
    collector, each pod with its own grace period).
    """
    if until_seconds is None or until_seconds <= 0:
        raise InvalidInput(f"expected seconds > 0, got {until_seconds!r}", field="until_seconds")
    if delete_after is not None and delete_after < 0:
        raise InvalidInput(f"expected seconds >= 0, got {delete_after!r}", field="delete_after")
    version = KubeVersion.parse(k8s_version)
    feature_gates = lab_feature_gates(version, feature_gates)
    with gc_paused():  # creating 10,000 pods is as much allocation as running them (see gc_paused)
        return _simulate(documents_or_paths, version, feature_gates, delete_after, until_seconds, seed)


def _simulate(documents_or_paths: Any, version: KubeVersion, feature_gates: dict[str, bool],
              delete_after: float | None, until_seconds: float, seed: int) -> Trace:
    cluster = Cluster(version, feature_gates, seed)
    docs = load_documents(documents_or_paths)
    if not docs:
        raise InvalidInput("nothing to simulate: no Kubernetes objects or scenarios in it (empty, or only comments)",
                           source=", ".join(source_names(documents_or_paths)))
    applied: list[tuple[str, str]] = []
    for doc in docs:
        if doc.is_scenario:
            apply_scenario(cluster, doc)
            applied.append(("Pod", doc.obj["pod"]["metadata"]["name"]))
        else:
            cluster.apply(doc.obj, source=doc.where)
            applied.append((doc.obj["kind"], doc.obj["metadata"]["name"]))
    pending = [0]
    if delete_after is not None:
        pending[0] += 1

        def delete_all() -> None:
            pending[0] -= 1
            for kind, name in applied:
                if kind == "Pod":
                    pod = cluster.pods.get(name)
                    if pod is not None and not pod.deleted:
                        cluster.delete_pod(pod)
                else:
                    workload = cluster.workloads.get((kind, name))
                    if workload is not None:
                        cluster.delete_workload(workload)

        cluster._at(delete_after, delete_all)
    run_until(cluster, until_seconds, lambda: pending[0] == 0 and cluster.done())
    return cluster.trace()


def run_until(cluster: Cluster, until_seconds: float, finished) -> None:
    """Advance the cluster to ``until_seconds`` after its origin, or until ``finished()``."""
    env = cluster.env
    end = (cluster.origin or 0.0) + until_seconds
    seen = -1
    peek, step = env.peek, env.step  # the loop runs once per SimPy event: 470,000 times for 10,000 pods
    with gc_paused():
        while True:
            if cluster.changes != seen:
                seen = cluster.changes
                if finished():
                    return
            if peek() > end:
                if end > env.now:      # an event may have landed exactly on the end
                    env.run(until=end)
                return
            step()
