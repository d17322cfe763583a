"""Step 4 of the simulated API server: ``PrepareForCreate`` of the registry strategies
(``pkg/registry/core/pod/strategy.go``, ``pkg/registry/batch/job/strategy.go``): fields of
disabled feature gates are dropped silently (``dropDisabledPodFields`` in
``pkg/api/pod/util.go``; labkit adds a warning saying so) and the Job selector is generated.
"""

from __future__ import annotations

import uuid

from ..objects import pod_spec_of
from ..versions import SIDECAR_GATE, Behaviour


_SILENT = "this is labkit's explanation: the real API server does it silently"


def _prepare_for_create(obj: dict, kind: str, beh: Behaviour, warnings: list[str], notes: dict[str, str]) -> None:
    obj.pop("status", None)
    meta = obj["metadata"]
    # The API server gives every object a random UID; labkit derives it from the object's
    # identity so that a simulated run is reproducible.
    meta["uid"] = str(uuid.uuid5(uuid.NAMESPACE_URL, f"labkit-sim/{kind}/{meta['namespace']}/{meta['name']}"))
    spec, prefix = pod_spec_of(obj)
    if kind == "Pod" and isinstance(spec.get("terminationGracePeriodSeconds"), int) and spec["terminationGracePeriodSeconds"] < 0:
        # Convert_v1_Pod_To_core_Pod (1.27+, kubernetes#115606) turns a negative value into 1.
        spec["terminationGracePeriodSeconds"] = 1
        warnings.append(f"labkit: spec.terminationGracePeriodSeconds was negative; the API server stores 1 "
                        f"({_SILENT})")
    _drop_disabled_fields(spec, prefix, beh, warnings, notes)
    if kind == "Job":
        _generate_job_selector(obj)


def _drop_disabled_fields(spec: dict, prefix: str, beh: Behaviour, warnings: list[str], notes: dict[str, str]) -> None:
    """dropDisabledPodFields for the gates labkit models; every drop gets a labkit warning."""
    inits, regular = spec.get("initContainers") or [], spec.get("containers") or []
    if beh.sidecar_gate != "absent" and not beh.sidecars_enabled:
        why = (f"the {SIDECAR_GATE} feature gate is off on this Kubernetes 1.{beh.minor} cluster"
               + (" (the 1.28 default; the blog's kind config turns it on)" if beh.sidecar_gate == "alpha" else ""))
        for i, c in enumerate(inits):
            if "restartPolicy" in c:
                path = f"{prefix}.initContainers[{i}].restartPolicy"
                del c["restartPolicy"]
                name = c.get("name", f"#{i}")
                notes[f"{prefix}.initContainers[{i}]"] = (
                    f"{why}, so the API server dropped {path} and {name!r} became a plain init container")
                warnings.append(
                    f"labkit: {path} was dropped: {why}, so the API server removes the field and {name!r} "
                    "runs as a plain init container, not a sidecar; one that never exits keeps the pod in "
                    f"Init forever ({_SILENT})")
    if beh.container_restart_rules_dropped:
        # ContainerRestartRules is alpha (off) in 1.34: dropContainerRestartRules removes
        # container-level restartPolicy from regular containers, any value but Always from init
        # containers, and every restartPolicyRules (pkg/api/pod/util.go).
        why = "the ContainerRestartRules feature gate is off (alpha in Kubernetes 1.34)"
        for group, containers in (("initContainers", inits), ("containers", regular)):
            for i, c in enumerate(containers):
                for key in ("restartPolicy", "restartPolicyRules"):
                    if key not in c or (group == "initContainers" and key == "restartPolicy" and c[key] == "Always"):
                        continue
                    del c[key]
                    warnings.append(f"labkit: {prefix}.{group}[{i}].{key} was dropped: {why}, so the API server "
                                    f"removes the field and the pod's restartPolicy applies ({_SILENT})")
    if beh.container_stop_signals_dropped:
        # dropContainerStopSignals (pkg/api/pod/util.go): with ContainerStopSignals off the
        # field is wiped, and a lifecycle left empty with it.
        why = "the ContainerStopSignals feature gate is off (alpha, off by default, from Kubernetes 1.33)"
        for group, containers in (("initContainers", inits), ("containers", regular)):
            for i, c in enumerate(containers):
                lifecycle = c.get("lifecycle")
                if isinstance(lifecycle, dict) and "stopSignal" in lifecycle:
                    del lifecycle["stopSignal"]
                    if not lifecycle:
                        del c["lifecycle"]
                    warnings.append(f"labkit: {prefix}.{group}[{i}].lifecycle.stopSignal was dropped: {why}, so the "
                                    f"image's STOPSIGNAL (or SIGTERM) is sent ({_SILENT})")
    if beh.sleep_action_dropped:
        # PodLifecycleSleepAction is alpha (off) in 1.29 and beta (on) from 1.30.
        for group, containers in (("initContainers", inits), ("containers", regular)):
            for i, c in enumerate(containers):
                for hook in ("postStart", "preStop"):
                    handler = (c.get("lifecycle") or {}).get(hook)
                    if handler and "sleep" in handler:
                        del handler["sleep"]
                        path = f"{prefix}.{group}[{i}].lifecycle.{hook}"
                        why = "the PodLifecycleSleepAction feature gate is off (alpha in Kubernetes 1.29)"
                        notes[path] = f"{why}, so the API server dropped {path}.sleep"
                        warnings.append(f"labkit: {path}.sleep was dropped: {why} ({_SILENT})")


def _generate_job_selector(job: dict) -> None:
    """The Job strategy's generateSelector: labels on the template, selector on the uid."""
    spec = job["spec"]
    if spec.get("manualSelector") is True:
        return
    meta = job["metadata"]
    labels = spec["template"].setdefault("metadata", {}).setdefault("labels", {})
    for key in ("batch.kubernetes.io/controller-uid", "controller-uid"):
        labels.setdefault(key, meta["uid"])
    for key in ("batch.kubernetes.io/job-name", "job-name"):
        labels.setdefault(key, meta["name"])
    selector = spec.setdefault("selector", {})
    if isinstance(selector, dict):
        selector.setdefault("matchLabels", {}).setdefault("batch.kubernetes.io/controller-uid", meta["uid"])
