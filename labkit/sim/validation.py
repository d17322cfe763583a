"""Step 5 of the simulated API server: validation, in upstream order and wording
(``pkg/apis/core/validation/validation.go``, ``pkg/apis/apps/validation``,
``pkg/apis/batch/validation``), and the warnings of ``pkg/api/pod/warnings.go``.

One module, as upstream's validation.go is one file: the pod spec, its containers, probes
and hooks are checked by the same functions for Pods and for Job and Deployment templates.
"""

from __future__ import annotations

import re
from typing import Any

from ..names import (dns1123_label_errors, dns1123_subdomain_errors, label_value_errors, port_name_errors,
                     qualified_name_errors)
from ..versions import Behaviour
from .defaults import MAX_INT32
from .field_errors import _Errors, duplicate, forbidden, invalid, not_found, not_supported, required, too_many
from ..images import SIGNAL_NUMBERS


def _port_number_errors(value: int) -> list[str]:
    return [] if 1 <= value <= 65535 else ["must be between 1 and 65535, inclusive"]


def _template_path(kind: str) -> str:
    return "spec" if kind == "Pod" else "spec.template.spec"


def _validate_labels(labels: Any, path: str, errs: _Errors) -> None:
    for key in sorted(labels or {}):
        for msg in qualified_name_errors(key):
            errs.add(path, invalid(key, msg))
        for msg in label_value_errors(labels[key]):
            errs.add(path, invalid(labels[key], msg))


def _validate_object_meta(meta: dict, errs: _Errors) -> None:
    """ValidateObjectMeta with NameIsDNSSubdomain (Pods, Jobs and Deployments alike)."""
    name = meta.get("name", "")
    for msg in dns1123_subdomain_errors(name):
        errs.add("metadata.name", invalid(name, msg))
    namespace = meta.get("namespace", "")
    for msg in dns1123_label_errors(namespace):
        errs.add("metadata.namespace", invalid(namespace, msg))
    _validate_labels(meta.get("labels"), "metadata.labels", errs)
    for key in sorted(meta.get("annotations") or {}):
        for msg in qualified_name_errors(key.lower()):
            errs.add("metadata.annotations", invalid(key, msg))


def object_meta_errors(meta: dict, *, cluster_scoped_label: bool = False) -> list[tuple[str, str]]:
    """ValidateObjectMeta's (path, message) errors for the objects labkit serve stores as they
    come (ServiceAccounts, Events: NameIsDNSSubdomain; Namespaces: ValidateNamespaceName, a
    DNS label, with ``cluster_scoped_label``)."""
    errs = _Errors()
    if cluster_scoped_label:
        name = meta.get("name", "")
        for msg in dns1123_label_errors(name):
            errs.add("metadata.name", invalid(name, msg))
        _validate_labels(meta.get("labels"), "metadata.labels", errs)
        return list(errs)
    _validate_object_meta(meta, errs)
    return list(errs)


def _nonnegative(value: Any, path: str, errs: _Errors) -> None:
    if isinstance(value, int) and value < 0:
        errs.add(path, invalid(value, "must be greater than or equal to 0"))


def _validate_port(port: Any, path: str, errs: _Errors) -> None:
    """ValidatePortNumOrName: a number 1-65535 or an IANA port name."""
    if isinstance(port, int):
        for msg in _port_number_errors(port):
            errs.add(path, invalid(port, msg))
    elif isinstance(port, str):
        for msg in port_name_errors(port):
            errs.add(path, invalid(port, msg))


def _validate_handler(handler: dict, kinds: tuple[str, ...], grace: int | None, beh: Behaviour, path: str, errs: _Errors) -> None:
    """validateHandler: exactly one action, each action valid."""
    count = 0
    for kind in kinds:
        action = handler.get(kind)
        if action is None:
            continue
        if count:
            errs.add(f"{path}.{kind}", forbidden("may not specify more than 1 handler type"))
            continue
        count += 1
        if kind == "exec" and not action.get("command"):
            errs.add(f"{path}.exec.command", required())
        elif kind == "httpGet":
            if not action.get("path"):
                errs.add(f"{path}.httpGet.path", required())
            _validate_port(action.get("port", 0), f"{path}.httpGet.port", errs)
            if action.get("scheme") not in ("HTTP", "HTTPS"):
                errs.add(f"{path}.httpGet.scheme", not_supported(action.get("scheme", ""), ["HTTP", "HTTPS"]))
        elif kind == "tcpSocket":
            _validate_port(action.get("port", 0), f"{path}.tcpSocket.port", errs)
        elif kind == "grpc":
            _validate_port(action.get("port", 0), f"{path}.grpc.port", errs)
        elif kind == "sleep" and grace is not None:
            seconds = action.get("seconds", 0)
            if beh.sleep_zero_allowed:  # PodLifecycleSleepActionAllowZero: beta (on) from 1.33
                if seconds < 0 or seconds > grace:
                    errs.add(f"{path}.sleep", invalid(seconds, f"must be non-negative and less than terminationGracePeriodSeconds ({grace})"))
            elif seconds <= 0 or seconds > grace:
                suffix = (". Enable AllowPodLifecycleSleepActionZeroValue feature gate for zero sleep."
                          if beh.sleep_zero_gate_alpha else "")
                errs.add(f"{path}.sleep", invalid(seconds, f"must be greater than 0 and less than terminationGracePeriodSeconds ({grace}){suffix}"))
    if count == 0:
        errs.add(path, required("must specify a handler type"))


_PROBE_ACTIONS = ("exec", "httpGet", "tcpSocket", "grpc")
_HOOK_ACTIONS = ("exec", "httpGet", "tcpSocket", "sleep")


def _validate_probe(probe: Any, which: str, grace: int | None, beh: Behaviour, path: str, errs: _Errors) -> None:
    """validateLivenessProbe / validateReadinessProbe / validateStartupProbe."""
    if probe is None:
        return
    _validate_handler(probe, _PROBE_ACTIONS, grace, beh, path, errs)
    for key in ("initialDelaySeconds", "timeoutSeconds", "periodSeconds", "successThreshold", "failureThreshold"):
        _nonnegative(probe.get(key), f"{path}.{key}", errs)
    probe_grace = probe.get("terminationGracePeriodSeconds")
    if probe_grace is not None and probe_grace <= 0:
        errs.add(f"{path}.terminationGracePeriodSeconds", invalid(probe_grace, "must be greater than 0"))
    if which == "readinessProbe":
        if probe_grace is not None:
            errs.add(f"{path}.terminationGracePeriodSeconds", invalid(probe_grace, "must not be set for readinessProbes"))
    elif probe.get("successThreshold") != 1:
        errs.add(f"{path}.successThreshold", invalid(probe.get("successThreshold"), "must be 1"))


def _validate_lifecycle(c: dict, grace: int | None, beh: Behaviour, path: str, errs: _Errors) -> None:
    lifecycle = c.get("lifecycle")
    if lifecycle is None:
        return
    for hook in ("postStart", "preStop"):
        if lifecycle.get(hook) is not None:
            _validate_handler(lifecycle[hook], _HOOK_ACTIONS, grace, beh, f"{path}.lifecycle.{hook}", errs)


def _validate_probes_and_hooks(c: dict, grace: int | None, beh: Behaviour, path: str, errs: _Errors) -> None:
    _validate_lifecycle(c, grace, beh, path, errs)
    for which in ("livenessProbe", "readinessProbe", "startupProbe"):
        _validate_probe(c.get(which), which, grace, beh, f"{path}.{which}", errs)


def _validate_container_common(c: dict, volumes: set[str], path: str, errs: _Errors) -> None:
    """validateContainerCommon: name, image, termination message, ports, env, mounts, pull policy."""
    name = c.get("name", "")
    if not name:
        errs.add(f"{path}.name", required())
    else:
        for msg in dns1123_label_errors(name):
            errs.add(f"{path}.name", invalid(name, msg))
    if not c.get("image"):
        errs.add(f"{path}.image", required())
    policy = c.get("terminationMessagePolicy")
    if policy not in ("File", "FallbackToLogsOnError"):
        errs.add(f"{path}.terminationMessagePolicy", not_supported(policy, ["File", "FallbackToLogsOnError"]))
    port_names: set[str] = set()
    for i, port in enumerate(c.get("ports") or []):
        port_path = f"{path}.ports[{i}]"
        if port.get("name"):
            msgs = port_name_errors(port["name"])
            for msg in msgs:
                errs.add(f"{port_path}.name", invalid(port["name"], msg))
            if not msgs and port["name"] in port_names:
                errs.add(f"{port_path}.name", duplicate(port["name"]))
            port_names.add(port["name"])
        if not port.get("containerPort"):
            errs.add(f"{port_path}.containerPort", required())
        else:
            for msg in _port_number_errors(port["containerPort"]):
                errs.add(f"{port_path}.containerPort", invalid(port["containerPort"], msg))
        if port.get("hostPort"):
            for msg in _port_number_errors(port["hostPort"]):
                errs.add(f"{port_path}.hostPort", invalid(port["hostPort"], msg))
        if port.get("protocol") not in ("SCTP", "TCP", "UDP"):
            errs.add(f"{port_path}.protocol", not_supported(port.get("protocol"), ["SCTP", "TCP", "UDP"]))
    for i, env in enumerate(c.get("env") or []):
        if not env.get("name"):
            errs.add(f"{path}.env[{i}].name", required())
    mount_paths: set[str] = set()
    for i, mount in enumerate(c.get("volumeMounts") or []):
        mount_path = f"{path}.volumeMounts[{i}]"
        if not mount.get("name"):
            errs.add(f"{mount_path}.name", required())
        if mount.get("name", "") not in volumes:
            errs.add(f"{mount_path}.name", not_found(mount.get("name", "")))
        if not mount.get("mountPath"):
            errs.add(f"{mount_path}.mountPath", required())
        if mount.get("mountPath", "") in mount_paths:
            errs.add(f"{mount_path}.mountPath", invalid(mount["mountPath"], "must be unique"))
        mount_paths.add(mount.get("mountPath", ""))
    pull = c.get("imagePullPolicy")
    if pull not in ("Always", "IfNotPresent", "Never"):
        errs.add(f"{path}.imagePullPolicy", not_supported(pull, ["Always", "IfNotPresent", "Never"]))


_CONTAINER_RESTART_POLICIES = ["Always", "OnFailure", "Never"]


def _validate_restart_rules(c: dict, path: str, errs: _Errors) -> None:
    """Container restartPolicyRules (KEP-5307, 1.35+): the structural limits of the API."""
    rules = c.get("restartPolicyRules")
    if not rules:
        return
    if "restartPolicy" not in c:
        errs.add(f"{path}.restartPolicy", required("must be specified when restartPolicyRules are specified"))
    if len(rules) > 20:
        errs.add(f"{path}.restartPolicyRules", too_many(len(rules), 20))
    for i, rule in enumerate(rules):
        rule_path = f"{path}.restartPolicyRules[{i}]"
        if rule.get("action") != "Restart":
            errs.add(f"{rule_path}.action", not_supported(rule.get("action", ""), ["Restart"]))
        codes = rule.get("exitCodes")
        if codes is None:
            errs.add(f"{rule_path}.exitCodes", required("must be specified"))
            continue
        if codes.get("operator") not in ("In", "NotIn"):
            errs.add(f"{rule_path}.exitCodes.operator", not_supported(codes.get("operator", ""), ["In", "NotIn"]))
        if len(codes.get("values") or []) > 255:
            errs.add(f"{rule_path}.exitCodes.values", too_many(len(codes["values"]), 255))


def _validate_containers(spec: dict, volumes: set[str], grace: int | None, beh: Behaviour, path: str, errs: _Errors) -> None:
    """validateContainers (regular containers)."""
    containers = spec.get("containers") or []
    if not containers:
        errs.add(f"{path}.containers", required())
        return
    names: set[str] = set()
    for i, c in enumerate(containers):
        c_path = f"{path}.containers[{i}]"
        _validate_container_common(c, volumes, c_path, errs)
        if c.get("name", "") in names:
            errs.add(f"{c_path}.name", duplicate(c.get("name", "")))
        names.add(c.get("name", ""))
        _validate_probes_and_hooks(c, grace, beh, c_path, errs)
        if "restartPolicy" in c:
            if beh.container_restart_rules:
                if c["restartPolicy"] not in _CONTAINER_RESTART_POLICIES:
                    errs.add(f"{c_path}.restartPolicy", not_supported(c["restartPolicy"], _CONTAINER_RESTART_POLICIES))
            else:
                errs.add(f"{c_path}.restartPolicy", forbidden("may not be set for non-init containers"))
        if beh.container_restart_rules:
            _validate_restart_rules(c, c_path, errs)


def _validate_init_containers(spec: dict, volumes: set[str], grace: int | None, beh: Behaviour, path: str, errs: _Errors) -> None:
    """validateInitContainers: sidecars get probes and hooks, plain init containers may not."""
    names = {c.get("name", "") for c in spec.get("containers") or []}
    for i, c in enumerate(spec.get("initContainers") or []):
        c_path = f"{path}.initContainers[{i}]"
        _validate_container_common(c, volumes, c_path, errs)
        policy = c.get("restartPolicy")
        if policy is not None:
            # Only Always until ContainerRestartRules is on (1.35), which also allows
            # OnFailure and Never on init containers (KEP-5307).
            allowed = _CONTAINER_RESTART_POLICIES if beh.container_restart_rules else ["Always"]
            if policy not in allowed:
                errs.add(f"{c_path}.restartPolicy", not_supported(policy, allowed))
        name = c.get("name", "")
        if name in names:
            errs.add(f"{c_path}.name", duplicate(name))
        elif name:
            names.add(name)
        if policy == "Always":
            _validate_probes_and_hooks(c, grace, beh, c_path, errs)
        else:
            for key in ("lifecycle", "livenessProbe", "readinessProbe", "startupProbe"):
                if c.get(key) is not None:
                    errs.add(f"{c_path}.{key}", forbidden("may not be set for init containers without restartPolicy=Always"))
        if beh.container_restart_rules:
            _validate_restart_rules(c, c_path, errs)


def _validate_pod_spec(spec: dict, beh: Behaviour, path: str, errs: _Errors) -> None:
    """ValidatePodSpec, in upstream order."""
    grace = spec.get("terminationGracePeriodSeconds")
    volumes: set[str] = set()
    for i, volume in enumerate(spec.get("volumes") or []):
        v_path = f"{path}.volumes[{i}]"
        sources = [k for k in volume if k != "name"]
        if len(sources) > 1:
            errs.add(f"{v_path}.{sources[1]}", forbidden("may not specify more than 1 volume type"))
        name = volume.get("name", "")
        if not name:
            errs.add(f"{v_path}.name", required())
        else:
            for msg in dns1123_label_errors(name):
                errs.add(f"{v_path}.name", invalid(name, msg))
        if name in volumes:
            errs.add(f"{v_path}.name", duplicate(name))
        volumes.add(name)
    _validate_containers(spec, volumes, grace, beh, path, errs)
    _validate_init_containers(spec, volumes, grace, beh, path, errs)
    _validate_stop_signals(spec, path, errs)
    policy = spec.get("restartPolicy")
    if policy not in ("Always", "OnFailure", "Never"):
        errs.add(f"{path}.restartPolicy", not_supported(policy, ["Always", "OnFailure", "Never"]))
    dns = spec.get("dnsPolicy")
    if dns not in ("ClusterFirstWithHostNet", "ClusterFirst", "Default", "None"):
        errs.add(f"{path}.dnsPolicy", not_supported(dns, ["ClusterFirstWithHostNet", "ClusterFirst", "Default", "None"]))
    _validate_labels(spec.get("nodeSelector"), f"{path}.nodeSelector", errs)
    deadline = spec.get("activeDeadlineSeconds")
    if deadline is not None and not 1 <= deadline <= MAX_INT32:
        errs.add(f"{path}.activeDeadlineSeconds", invalid(deadline, f"must be between 1 and {MAX_INT32}, inclusive"))


def _validate_stop_signals(spec: dict, path: str, errs: _Errors) -> None:
    """lifecycle.stopSignal (kept only with ContainerStopSignals on): KEP-4960's cross-validation
    with spec.os.name: the pod must name its OS; Linux pods take any Linux signal,
    Windows pods only SIGTERM and SIGKILL (supportedStopSignalsLinux/Windows)."""
    os_name = (spec.get("os") or {}).get("name")
    for group in ("initContainers", "containers"):
        for i, c in enumerate(spec.get(group) or []):
            signal = (c.get("lifecycle") or {}).get("stopSignal")
            if signal is None:
                continue
            where = f"{path}.{group}[{i}].lifecycle.stopSignal"
            if not os_name:
                errs.add(where, forbidden("may not be set for pods without spec.os.name (labkit's wording; "
                                          "the valid signals depend on the pod's OS)"))
            elif os_name == "windows" and signal not in ("SIGKILL", "SIGTERM"):
                errs.add(where, not_supported(signal, ["SIGKILL", "SIGTERM"]))
            elif os_name == "linux" and signal not in SIGNAL_NUMBERS:
                errs.add(where, invalid(signal, "must be a Linux signal name such as SIGTERM, SIGQUIT or SIGINT"))


def _validate_pod_template(template: dict, beh: Behaviour, path: str, errs: _Errors) -> None:
    """ValidatePodTemplateSpec."""
    meta = template.get("metadata") or {}
    _validate_labels(meta.get("labels"), f"{path}.labels", errs)
    for key in sorted(meta.get("annotations") or {}):
        for msg in qualified_name_errors(key.lower()):
            errs.add(f"{path}.annotations", invalid(key, msg))
    _validate_pod_spec(template.get("spec") or {}, beh, f"{path}.spec", errs)
    if template.get("spec", {}).get("ephemeralContainers"):
        errs.add(f"{path}.spec.ephemeralContainers", forbidden("ephemeral containers not allowed in pod template"))


def _validate_selector(selector: dict, path: str, errs: _Errors) -> None:
    """ValidateLabelSelector."""
    _validate_labels(selector.get("matchLabels"), f"{path}.matchLabels", errs)
    for i, expr in enumerate(selector.get("matchExpressions") or []):
        e_path = f"{path}.matchExpressions[{i}]"
        op, values = expr.get("operator"), expr.get("values") or []
        if op in ("In", "NotIn"):
            if not values:
                errs.add(f"{e_path}.values", required("must be specified when `operator` is 'In' or 'NotIn'"))
        elif op in ("Exists", "DoesNotExist"):
            if values:
                errs.add(f"{e_path}.values", forbidden("may not be specified when `operator` is 'Exists' or 'DoesNotExist'"))
        else:
            errs.add(f"{e_path}.operator", invalid(op or "", "not a valid selector operator"))
        for msg in qualified_name_errors(expr.get("key", "")):
            errs.add(f"{e_path}.key", invalid(expr.get("key", ""), msg))


def _selector_is_usable(selector: dict | None) -> bool:
    """Whether LabelSelectorAsSelector would accept it (In/NotIn need values, Exists none)."""
    for expr in (selector or {}).get("matchExpressions") or []:
        op, values = expr.get("operator"), expr.get("values") or []
        if op in ("In", "NotIn") and not values or op in ("Exists", "DoesNotExist") and values:
            return False
        if op not in ("In", "NotIn", "Exists", "DoesNotExist"):
            return False
    return True


def selector_matches(selector: dict | None, labels: dict | None) -> bool:
    """Whether a LabelSelector selects ``labels``; a missing selector selects nothing.

    >>> selector_matches({"matchLabels": {"app": "web"}}, {"app": "web", "tier": "x"})
    True
    """
    if selector is None:
        return False
    labels = labels or {}
    if any(labels.get(k) != v for k, v in (selector.get("matchLabels") or {}).items()):
        return False
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr.get("key"), expr.get("operator"), expr.get("values") or []
        if op == "In" and labels.get(key) not in values:
            return False
        if op == "NotIn" and key in labels and labels[key] in values:
            return False
        if op == "Exists" and key not in labels:
            return False
        if op == "DoesNotExist" and key in labels:
            return False
    return True


def _validate_int_or_percent(value: Any, path: str, errs: _Errors) -> None:
    if isinstance(value, int):
        _nonnegative(value, path, errs)
    elif isinstance(value, str):
        if not re.fullmatch(r"[0-9]+%", value):
            errs.add(path, invalid(value, "a valid percent string must be a numeric string followed by an ending '%' "
                                          "(e.g. '1%',  or '93%', regex used for validation is '[0-9]+%')"))


def _percent_or_int(value: Any) -> tuple[int, bool]:
    if isinstance(value, str) and value.endswith("%") and value[:-1].isdigit():
        return int(value[:-1]), True
    return (value if isinstance(value, int) else 0), False


def _validate_deployment(obj: dict, beh: Behaviour, errs: _Errors) -> None:
    """ValidateDeploymentSpec (pkg/apis/apps/validation)."""
    spec = obj["spec"]
    _nonnegative(spec.get("replicas"), "spec.replicas", errs)
    selector = spec.get("selector")
    if selector is None:
        errs.add("spec.selector", required())
    else:
        _validate_selector(selector, "spec.selector", errs)
        if not selector.get("matchLabels") and not selector.get("matchExpressions"):
            errs.add("spec.selector", invalid(selector, "empty selector is invalid for deployment"))
    template = spec.get("template") or {}
    labels = (template.get("metadata") or {}).get("labels") or {}
    if not _selector_is_usable(selector):
        # Upstream skips the whole template when the selector cannot be parsed.
        errs.add("spec.selector", invalid(selector, "invalid label selector"))
    else:
        if selector is None or selector.get("matchLabels") or selector.get("matchExpressions"):
            if not selector_matches(selector, labels):
                errs.add("spec.template.metadata.labels", invalid(labels, "`selector` does not match template `labels`"))
        _validate_pod_template(template, beh, "spec.template", errs)
        policy = template.get("spec", {}).get("restartPolicy")
        if policy != "Always":
            errs.add("spec.template.spec.restartPolicy", not_supported(policy, ["Always"]))
        if template.get("spec", {}).get("activeDeadlineSeconds") is not None:
            errs.add("spec.template.spec.activeDeadlineSeconds", forbidden("activeDeadlineSeconds in ReplicaSet is not Supported"))
    strategy = spec.get("strategy") or {}
    if strategy.get("type") == "Recreate":
        if strategy.get("rollingUpdate") is not None:
            errs.add("spec.strategy.rollingUpdate", forbidden("may not be specified when strategy `type` is 'Recreate'"))
    elif strategy.get("type") == "RollingUpdate":
        rolling = strategy.get("rollingUpdate") or {}
        unavailable, surge = rolling.get("maxUnavailable"), rolling.get("maxSurge")
        _validate_int_or_percent(unavailable, "spec.strategy.rollingUpdate.maxUnavailable", errs)
        _validate_int_or_percent(surge, "spec.strategy.rollingUpdate.maxSurge", errs)
        if _percent_or_int(surge)[0] == 0 and _percent_or_int(unavailable)[0] == 0:
            errs.add("spec.strategy.rollingUpdate.maxUnavailable", invalid(unavailable, "may not be 0 when `maxSurge` is 0"))
        number, is_percent = _percent_or_int(unavailable)
        if is_percent and number > 100:
            errs.add("spec.strategy.rollingUpdate.maxUnavailable", invalid(unavailable, "must not be greater than 100%"))
    else:
        # Upstream reports it on spec.strategy (printing the whole strategy); labkit prints the type.
        errs.add("spec.strategy", not_supported(strategy.get("type"), ["Recreate", "RollingUpdate"]))
    _nonnegative(spec.get("minReadySeconds"), "spec.minReadySeconds", errs)
    _nonnegative(spec.get("revisionHistoryLimit"), "spec.revisionHistoryLimit", errs)
    deadline = spec.get("progressDeadlineSeconds")
    if isinstance(deadline, int):
        _nonnegative(deadline, "spec.progressDeadlineSeconds", errs)
        if deadline <= spec.get("minReadySeconds", 0):
            errs.add("spec.progressDeadlineSeconds", invalid(deadline, "must be greater than minReadySeconds"))


def _validate_job(obj: dict, beh: Behaviour, errs: _Errors) -> None:
    """ValidateJob: generated selector, validateJobSpec, selector (pkg/apis/batch/validation)."""
    spec, meta = obj["spec"], obj["metadata"]
    selector = spec.get("selector")
    if spec.get("manualSelector") is not True and selector is not None:
        expected = {"batch.kubernetes.io/controller-uid": meta["uid"], "batch.kubernetes.io/job-name": meta["name"],
                    "controller-uid": meta["uid"], "job-name": meta["name"]}
        if not selector_matches(selector, expected):
            errs.add("spec.selector", invalid(selector, "`selector` not auto-generated"))
    for key in ("parallelism", "completions", "activeDeadlineSeconds", "backoffLimit", "ttlSecondsAfterFinished"):
        _nonnegative(spec.get(key), f"spec.{key}", errs)
    if spec.get("completionMode") not in ("NonIndexed", "Indexed"):
        errs.add("spec.completionMode", not_supported(spec.get("completionMode"), ["NonIndexed", "Indexed"]))
    template = spec.get("template") or {}
    _validate_pod_template(template, beh, "spec.template", errs)
    # Since kubernetes#95747 (1.20) a missing policy (defaulted to Always) is "Required".
    policy = template.get("spec", {}).get("restartPolicy")
    if policy in ("Always", "", None):
        errs.add("spec.template.spec.restartPolicy", required('valid values: "OnFailure", "Never"'))
    elif policy not in ("OnFailure", "Never"):
        errs.add("spec.template.spec.restartPolicy", not_supported(policy, ["OnFailure", "Never"]))
    if selector is None:
        errs.add("spec.selector", required())
    else:
        _validate_selector(selector, "spec.selector", errs)
        labels = (template.get("metadata") or {}).get("labels") or {}
        if _selector_is_usable(selector) and not selector_matches(selector, labels):
            errs.add("spec.template.metadata.labels", invalid(labels, "`selector` does not match template `labels`"))


def _validate(obj: dict, kind: str, beh: Behaviour) -> _Errors:
    errs = _Errors()
    _validate_object_meta(obj["metadata"], errs)
    if kind == "Pod":
        _validate_pod_spec(obj["spec"], beh, "spec", errs)
        for group in ("containers", "initContainers"):  # validateContainersOnlyForPod
            for i, c in enumerate(obj["spec"].get(group) or []):
                image = c.get("image", "")
                if image != image.strip():
                    errs.add(f"spec.{group}[{i}].image", invalid(image, "must not have leading or trailing whitespace"))
    elif kind == "Job":
        _validate_job(obj, beh, errs)
    else:
        _validate_deployment(obj, beh, errs)
    return errs


def _warnings_for_pod_spec(spec: dict, kind: str) -> list[str]:
    """The parts of pkg/api/pod/warnings.go that matter here."""
    warnings = []
    prefix = _template_path(kind)
    grace = spec.get("terminationGracePeriodSeconds")
    if isinstance(grace, int) and grace < 0:  # templates keep it; their pods get 1
        warnings.append(f"{prefix}.terminationGracePeriodSeconds: must be >= 0; negative values are invalid and will be treated as 1")
    return warnings
