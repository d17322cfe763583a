"""The Deployment and ReplicaSet controllers of the simulated cluster (``pkg/controller/deployment``,
``pkg/controller/replicaset``): a ReplicaSet per template, named by its pod-template-hash, rolled
out within maxSurge and maxUnavailable (or Recreate), and each ReplicaSet's pods made to match.

:class:`DeploymentController` is one of the parts :class:`labkit.sim.cluster.Cluster` is made of.
"""

from __future__ import annotations

import copy
import json
from typing import Any

from . import timing
from .pods import SimPod, Workload, spec_hashes


ALPHANUMS = "bcdfghjklmnpqrstvwxz2456789"


def _safe_encode(text: str) -> str:
    """rand.SafeEncodeString: each character mapped onto the alphabet."""
    return "".join(ALPHANUMS[ord(ch) % len(ALPHANUMS)] for ch in text)


def _fnv32a(data: bytes) -> int:
    value = 0x811C9DC5
    for byte in data:
        value = ((value ^ byte) * 0x01000193) & 0xFFFFFFFF
    return value


def template_hash(template: dict) -> str:
    """A pod-template-hash like the Deployment controller's (fnv32a, safe-encoded), of the template
    with empty objects left out: ``"resources": {}`` and no ``resources`` are the same Go struct, so
    a rollback (``kubectl rollout undo`` sends the ReplicaSet's template as Go encodes it) finds
    the old ReplicaSet again, as the controller's EqualIgnoreHash does."""
    return _safe_encode(str(_fnv32a(json.dumps(_without_empty_objects(template), sort_keys=True).encode())))


def _without_empty_objects(value: Any) -> Any:
    if isinstance(value, dict):
        kept = {k: _without_empty_objects(v) for k, v in value.items()}
        return {k: v for k, v in kept.items() if v != {}}
    if isinstance(value, list):
        return [_without_empty_objects(v) for v in value]
    return value


def _rolling_update(spec: dict, replicas: int, field: str, *, round_up: bool) -> int:
    """A rollingUpdate field (an int or a percentage of ``replicas``) as a number of pods; 0 for Recreate."""
    strategy = spec.get("strategy") or {}
    if strategy.get("type") == "Recreate":
        return 0
    value = (strategy.get("rollingUpdate") or {}).get(field, "25%")
    if isinstance(value, str) and value.endswith("%"):
        share = replicas * int(value[:-1])
        return -(-share // 100) if round_up else share // 100
    return int(value)


def max_surge(spec: dict, replicas: int) -> int:
    """The Deployment's maxSurge as a number of pods (rounded up, like the controller)."""
    return _rolling_update(spec, replicas, "maxSurge", round_up=True)


def max_unavailable(spec: dict, replicas: int) -> int:
    """The Deployment's maxUnavailable as a number of pods (rounded down, like the controller)."""
    return _rolling_update(spec, replicas, "maxUnavailable", round_up=False)


class DeploymentController:
    """Roll a Deployment's ReplicaSets and keep their pods matching their replicas."""

    def _deployment_create_rs(self, deploy: Workload) -> None:
        if deploy.deleted:
            return
        deploy.rs_name = name = f"{deploy.name}-{template_hash(deploy.spec['template'])}"
        revision = 1 + max((rs["revision"] for rs in deploy.replicasets.values()), default=0)
        if name in deploy.replicasets:
            deploy.replicasets[name]["revision"] = revision
        else:
            deploy.replicasets[name] = {"template": copy.deepcopy(deploy.spec["template"]), "revision": revision,
                                        "created": self.env.now}
        self._at(timing.CONTROLLER_S, self._deployment_scale, deploy)

    def _owner_ref(self, deploy: Workload) -> dict:
        return {"kind": "ReplicaSet", "name": deploy.rs_name, "deployment": deploy.name}

    def _deployment_scale(self, deploy: Workload) -> None:
        """One sync of the deployment controller (pkg/controller/deployment): the new ReplicaSet
        scaled up and the old ones down within maxSurge and maxUnavailable (rolling.go
        reconcileNewReplicaSet, reconcileOldReplicaSets), or the old ones first to 0 and then
        the new one up (recreate.go); then each ReplicaSet's pods made to match its replicas."""
        if deploy.deleted or deploy.deleting or deploy.rs_name is None:
            return
        new_rs = deploy.rs_name
        replicas = int(deploy.spec.get("replicas", 1))
        live = list(deploy.live)
        mine = {name: [p for p in live if p.owner and p.owner.get("name") == name]
                for name in dict.fromkeys([new_rs, *deploy.rs_replicas])}
        old = [name for name in mine if name != new_rs]
        old_count = sum(len(mine[name]) for name in old)
        strategy = deploy.spec.get("strategy") or {}
        if strategy.get("type") == "Recreate":
            for name in old:
                self._scale_rs(deploy, name, 0)
            going = any(p.owner and p.owner.get("name") != new_rs and not p.deleted for p in deploy.pods)
            if not going:
                self._scale_rs(deploy, new_rs, replicas)
        elif not old_count:
            self._scale_rs(deploy, new_rs, replicas)
            for name in old:
                self._scale_rs(deploy, name, 0)
        else:
            surge, unavailable = max_surge(deploy.spec, replicas), max_unavailable(deploy.spec, replicas)
            if surge == 0 and unavailable == 0:
                unavailable = 1      # deployment util ResolveFenceposts
            # counts of pods are the ReplicaSets' replicas, as the controller's are
            new_count = deploy.rs_replicas.get(new_rs, 0)
            want = min(replicas, new_count + max(0, replicas + surge - sum(deploy.rs_replicas.values())))
            if want > new_count:
                self._scale_rs(deploy, new_rs, want)
            # reconcileOldReplicaSets: never below replicas - maxUnavailable available pods,
            # counting the new ReplicaSet's pods that are not available yet
            min_available = replicas - unavailable
            new_unavailable = deploy.rs_replicas.get(new_rs, 0) - sum(1 for p in mine[new_rs] if p in deploy.ready)
            budget = sum(deploy.rs_replicas.values()) - min_available - new_unavailable
            ready_now = len([p for p in live if p in deploy.ready])
            for unready_first in (True, False):
                for name in old:
                    for pod in sorted(mine[name], key=lambda p: -p.created_at):
                        if budget <= 0:
                            break
                        if unready_first and pod in deploy.ready:
                            continue
                        if not unready_first:
                            if ready_now - 1 < min_available:
                                break
                            ready_now -= 1
                        budget -= 1
                        mine[name].remove(pod)
                        self._scale_rs(deploy, name, len(mine[name]), delete=pod)
        self._rs_match(deploy, new_rs, mine[new_rs])

    def _scale_rs(self, deploy: Workload, name: str, count: int, *, delete: SimPod | None = None) -> None:
        before = deploy.rs_replicas.get(name, 0)
        if count == before and delete is None:
            return
        deploy.rs_replicas[name] = count
        if count != before:
            deploy.scalings.append((self.env.now, name, before, count))
        if delete is not None:
            self.delete_pod(delete)
        elif name != deploy.rs_name:
            for pod in [p for p in deploy.live if p.owner and p.owner.get("name") == name][count:]:
                self.delete_pod(pod)

    def _rs_match(self, deploy: Workload, name: str, pods: list[SimPod]) -> None:
        """The ReplicaSet controller: create or delete the new ReplicaSet's pods to match its replicas."""
        want = deploy.rs_replicas.get(name, 0)
        labels = dict((deploy.spec["template"].get("metadata") or {}).get("labels") or {})
        for _ in range(want - len(pods)):
            pod = self._pod_from_template(deploy, self._suffix_name(f"{name}-"), self._owner_ref(deploy))
            pod.labels.setdefault("pod-template-hash", name.rsplit("-", 1)[1])
            pod.labels.update(labels)
        if len(pods) > want:
            # controller.ActivePods ranking, simplified: not-ready pods first, then the newest
            for pod in sorted(pods, key=lambda p: (p in deploy.ready, -p.created_at))[:len(pods) - want]:
                self.delete_pod(pod)

    def _deployment_update(self, deploy: Workload, stored: dict) -> None:
        old_template = deploy.spec["template"]
        deploy.obj = stored
        deploy.spec = stored["spec"]
        if template_hash(old_template) != template_hash(stored["spec"]["template"]):
            # A new template: a new ReplicaSet, rolled out within maxSurge/maxUnavailable.
            deploy.models = self._models(stored, "<input>", None)
            deploy.hashes = spec_hashes(stored["spec"]["template"]["spec"])
            deploy.available = len(deploy.ready) >= int(deploy.spec.get("replicas", 1)) - \
                max_unavailable(deploy.spec, int(deploy.spec.get("replicas", 1)))
            self._deployment_create_rs(deploy)
            return
        self._at(timing.CONTROLLER_S, self._deployment_scale, deploy)

    def _deployment_sync(self, deploy: Workload, pod: SimPod) -> None:
        going = pod.deletion_requested_at is not None or pod.terminal
        if pod.ready and not going:
            deploy.ready[pod] = None
        else:
            deploy.ready.pop(pod, None)
        if going and pod in deploy.live:
            del deploy.live[pod]
            if not deploy.deleted:
                # The ReplicaSet replaces a pod that is going away.
                self._at(timing.CONTROLLER_S, self._deployment_scale, deploy)
        elif not going and not deploy.deleted and any(n != deploy.rs_name and count for n, count in deploy.rs_replicas.items()):
            # a pod's readiness changed during a rollout: the controller may go on with it
            self._at(timing.CONTROLLER_S, self._deployment_scale, deploy)
        if deploy.deleted:
            return
        replicas = int(deploy.spec.get("replicas", 1))
        if not deploy.available:
            if len(deploy.ready) >= replicas - max_unavailable(deploy.spec, replicas):
                # Available = availableReplicas >= replicas - maxUnavailable (deployment
                # util); minReadySeconds is 0, so available means ready.
                deploy.available = True
                deploy.available_at = self.env.now
                self._emit_object("DeploymentAvailable", deploy.ref)
