"""Step 3 of the simulated API server: defaulting, as ``pkg/apis/core/v1/defaults.go``
(``SetDefaults_PodSpec``, ``SetDefaults_Container``, ``SetDefaults_Probe``, ...) and the
``apps/v1`` and ``batch/v1`` defaulters do it.
"""

from __future__ import annotations

from typing import Any


MAX_INT32 = 2147483647


def _image_pull_policy(image: str) -> str:
    """``Always`` for ``:latest`` or no tag and no digest, else ``IfNotPresent`` (SetDefaults_Container).

    >>> [_image_pull_policy(i) for i in ("alpine", "alpine:3.20", "localhost:5000/x", "x@sha256:ab", "x:latest@sha256:ab")]
    ['Always', 'IfNotPresent', 'Always', 'IfNotPresent', 'Always']
    """
    name, _, digest = image.partition("@")
    last = name.rsplit("/", 1)[-1]
    tag = last.rsplit(":", 1)[1] if ":" in last else ("" if digest else "latest")
    return "Always" if tag == "latest" else "IfNotPresent"


def _default_handler(handler: Any) -> None:
    if isinstance(handler, dict) and isinstance(handler.get("httpGet"), dict):
        handler["httpGet"].setdefault("path", "/")
        handler["httpGet"].setdefault("scheme", "HTTP")


def _default_probe(probe: dict) -> None:
    # SetDefaults_Probe sets these when 0 (absent). initialDelaySeconds is not defaulted
    # upstream (an omitempty 0); labkit writes the 0 so readers need no fallback.
    for key, value in (("timeoutSeconds", 1), ("periodSeconds", 10), ("successThreshold", 1), ("failureThreshold", 3)):
        if not probe.get(key):
            probe[key] = value
    probe.setdefault("initialDelaySeconds", 0)
    _default_handler(probe)


def defaulted_probe(probe: dict) -> dict:
    """A copy of ``probe`` as the API server stores it (SetDefaults_Probe): ``periodSeconds: 0``
    becomes 10, not "as often as possible".

    >>> defaulted_probe({"periodSeconds": 0})["periodSeconds"]
    10
    """
    copy = dict(probe)
    _default_probe(copy)
    return copy


def _default_container(c: dict) -> None:
    if not c.get("imagePullPolicy"):
        c["imagePullPolicy"] = _image_pull_policy(c.get("image", ""))
    c.setdefault("terminationMessagePath", "/dev/termination-log")
    c.setdefault("terminationMessagePolicy", "File")
    for port in c.get("ports") or []:
        if isinstance(port, dict):
            port.setdefault("protocol", "TCP")
    for key in ("livenessProbe", "readinessProbe", "startupProbe"):
        if isinstance(c.get(key), dict):
            _default_probe(c[key])
    lifecycle = c.get("lifecycle")
    if isinstance(lifecycle, dict):
        _default_handler(lifecycle.get("postStart"))
        _default_handler(lifecycle.get("preStop"))


def _default_pod_spec(spec: dict) -> None:
    """SetDefaults_PodSpec and the defaulters of everything inside it."""
    spec.setdefault("restartPolicy", "Always")
    spec.setdefault("dnsPolicy", "ClusterFirst")
    spec.setdefault("terminationGracePeriodSeconds", 30)
    spec.setdefault("schedulerName", "default-scheduler")
    spec.setdefault("securityContext", {})
    for c in (spec.get("initContainers") or []) + (spec.get("containers") or []):
        if isinstance(c, dict):
            _default_container(c)
    for volume in spec.get("volumes") or []:
        # SetDefaults_Volume: a volume with no source is an emptyDir.
        if isinstance(volume, dict) and not any(k != "name" for k in volume):
            volume["emptyDir"] = {}


def _set_defaults(obj: dict, kind: str) -> None:
    meta = obj.setdefault("metadata", {})
    meta.setdefault("namespace", "default")  # kubectl fills in the context's namespace
    if kind == "Pod":
        spec = obj.setdefault("spec", {})
        _default_pod_spec(spec)
        # SetDefaults_Pod (Pods only, not templates): requests default to limits.
        for c in (spec.get("initContainers") or []) + (spec.get("containers") or []):
            resources = c.get("resources") or {}
            for name, quantity in (resources.get("limits") or {}).items():
                resources.setdefault("requests", {}).setdefault(name, quantity)
        return
    spec = obj.setdefault("spec", {})
    template = spec.setdefault("template", {})
    _default_pod_spec(template.setdefault("spec", {}))
    if kind == "Deployment":  # apps/v1 SetDefaults_Deployment
        spec.setdefault("replicas", 1)
        strategy = spec.setdefault("strategy", {})
        strategy.setdefault("type", "RollingUpdate")
        if strategy["type"] == "RollingUpdate":
            rolling = strategy.setdefault("rollingUpdate", {})
            rolling.setdefault("maxUnavailable", "25%")
            rolling.setdefault("maxSurge", "25%")
        spec.setdefault("revisionHistoryLimit", 10)
        spec.setdefault("progressDeadlineSeconds", 600)
    else:  # batch/v1 SetDefaults_Job
        if "completions" not in spec and "parallelism" not in spec:
            spec["completions"] = 1
        spec.setdefault("parallelism", 1)
        spec.setdefault("backoffLimit", MAX_INT32 if "backoffLimitPerIndex" in spec else 6)
        spec.setdefault("completionMode", "NonIndexed")
        spec.setdefault("suspend", False)
        labels = (template.get("metadata") or {}).get("labels")
        if labels and not meta.get("labels"):
            meta["labels"] = dict(labels)
